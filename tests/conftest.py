import json
import os
from datetime import UTC, datetime

import pytest
from django.core import signals
from django.core.cache import cache
from django.core.handlers.wsgi import WSGIRequest
from django.db import close_old_connections, connection
from django.http import HttpResponse
from django.test import Client
from django.test.client import ClientHandler

from beacons.ingest.fastpath import IngestFastPath

BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


@pytest.fixture(autouse=True)
def _fresh_process_state():
    """Caches that outlive a test (rate limits, dedupe ids, salts, sinks, definitions, sites) start empty."""
    from beacons import registry, sites
    from beacons.counting import sinks
    from beacons.experiments import recording
    from beacons.ingest import privacy

    cache.clear()
    sites.sites_cache_clear()
    privacy._salt_cache.clear()
    sinks.sinks_reset()
    registry._definitions_cache.clear()
    recording._units_counted.clear()
    yield
    cache.clear()
    sinks.sinks_reset()


@pytest.fixture(autouse=True)
def _registry_defaults(request):
    """Tests with a database start with the types the migration registers (page_view, error)
    and the first site.

    Transactional tests empty every table when they end, migration rows included, so a
    later test in the same worker would otherwise miss them.
    """
    marker = request.node.get_closest_marker("django_db")
    transactional = bool(marker and marker.kwargs.get("transaction")) or bool(
        {"transactional_db", "live_server"} & set(request.fixturenames)
    )
    if not (marker or transactional or {"db", "admin_client", "django_user_model"} & set(request.fixturenames)):
        return
    request.getfixturevalue("transactional_db" if transactional else "db")
    from importlib import import_module

    from django.apps import apps

    import_module("beacons.migrations.0002_default_definitions").register_defaults(apps, None)
    import_module("beacons.migrations.0013_first_site").first_site_create(apps, None)
    import_module("beacons.migrations.0016_definition_dimensions").page_views_keep_every_dimension(apps, None)
    import_module("beacons.migrations.0017_visitor_sketch").page_views_count_identity(apps, None)


def first_site():
    """The site the migration created (every test with a database has it)."""
    from beacons.models import Site

    return Site.objects.order_by("pk").first()


def first_site_zone(zone: str) -> None:
    """Give the first site the time zone ``zone``: its buckets and its dashboard follow it."""
    site = first_site()
    site.time_zone = zone
    site.save(update_fields=["time_zone"])


@pytest.fixture
def site(db):
    """The first site (the one the migration creates)."""
    return first_site()


def utc(*parts) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.fixture
def clock(monkeypatch):
    """``clock(moment)`` stops the clock at ``moment`` (and returns it)."""
    from django.utils import timezone as django_timezone

    def stop_at(moment: datetime) -> datetime:
        monkeypatch.setattr(django_timezone, "now", lambda: moment)
        return moment

    return stop_at


@pytest.fixture
def tokyo(db):
    """A second site, in Tokyo's time zone."""
    from beacons.models import Site

    return Site.objects.create(domain="tokyo.example.com", name="Tokyo shop", time_zone="Asia/Tokyo")


def page_view_at(at, page: str, *, visitor: str = "v1", event_type: str = "page_view", source: str = ""):
    """One page view (or ``event_type`` hit) of ``visitor`` at ``at``, recorded as ingest records it
    (through the sink of the settings); ``visitor=""`` is a visitor without a visitor key."""
    from beacons.ingest.parsing import EventInput
    from beacons.ingest.recording import RequestContext, events_record

    context = RequestContext(
        site_id=first_site().pk,
        received_at=at,
        user_agent="Mozilla/5.0 Chrome/131.0",
        referer="",
        source="beacon",
        tracked=bool(visitor),
    )
    context.__dict__["visitor_hash"] = visitor  # a fixed key: how keys are made is not under test here
    event = EventInput(event_type=event_type, identifier=page, campaign={"utm_source": source} if source else {})
    return events_record(events=[event], context=context)


def day_count(slug, identifier=""):
    """The day counter of a type (and page): 0 when none was written."""
    from beacons.models import BeaconAggregate, Granularity

    row = BeaconAggregate.objects.filter(
        definition__slug=slug, identifier=identifier, granularity=Granularity.DAY
    ).first()
    return row.count if row else 0


class FastPathClientHandler(IngestFastPath, ClientHandler):
    """The test client's handler with the served application's ingest fast path: a request of an
    ingest path is answered by its WSGI call (``IngestFastPath.ingest_call``) and the client sees
    what a server would send (status line, headers, body); any other takes the client's path."""

    def __call__(self, environ):
        sent_environ = dict(environ)  # a request rewrites its environ (PATH_INFO decoded)
        started = {}

        def start_response(status, headers, exc_info=None):
            started.update(status=status, headers=headers)

        answer = self.ingest_call(environ, start_response)
        if answer is None:
            return super().__call__(environ)
        try:
            body = b"".join(answer)
        finally:
            # As the test client closes a response: without closing the test's database connection.
            signals.request_finished.disconnect(close_old_connections)
            answer.close()
            signals.request_finished.connect(close_old_connections)
        code, reason = started["status"].split(" ", 1)
        response = HttpResponse(body, status=int(code), reason=reason)
        del response["Content-Type"]
        for name, value in started["headers"]:
            response.headers[name] = value
        response.wsgi_request = WSGIRequest(sent_environ)  # what the test client reads the request's URLconf from
        return response


class FastPathClient(Client):
    def __init__(self, enforce_csrf_checks=False, **defaults):
        super().__init__(enforce_csrf_checks, **defaults)
        self.handler = FastPathClientHandler(enforce_csrf_checks)


@pytest.fixture(params=["django path", "fast path"])
def beacon_client(request):
    """A test client that looks like a real browser (empty and bot user agents are dropped). Every
    test that sends beacons with it runs twice: through Django's full request path, and through the
    ingest fast path (``beacons.ingest.fastpath``) that the served application takes."""
    client_class = FastPathClient if request.param == "fast path" else Client
    return client_class(HTTP_USER_AGENT=BROWSER_UA)


@pytest.fixture
def send(beacon_client):
    """POST a JSON body to /beacon; returns the response."""

    def _send(body, content_type="application/json", **headers):
        data = body if isinstance(body, (str, bytes)) else json.dumps(body)
        return beacon_client.post("/beacon", data=data, content_type=content_type, **headers)

    return _send


@pytest.fixture
def redis_sink(settings):
    """The redis sink on the real Redis, with a key prefix of this test alone (deleted afterwards)."""
    import uuid

    from beacons.counting.sinks import redis_client

    prefix = f"test-{uuid.uuid4().hex[:12]}"
    settings.BEACONS_SINK = "redis"
    settings.BEACONS_REDIS_PREFIX = prefix
    client = redis_client(settings.BEACONS_REDIS_URL)
    yield client
    keys = list(client.scan_iter(match=f"{{{prefix}}}:*"))
    if keys:
        client.delete(*keys)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium, one per test module.

    It presents a normal Chrome user agent browser-wide: Playwright's own says "HeadlessChrome",
    which ingest rightly drops as a crawler, and a beacon that outlives its page is sent
    without a context's override.
    """
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, f"--user-agent={BROWSER_UA}"]
        )
        yield chromium
        chromium.close()


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def pytest_collection_modifyitems(config, items):
    from django.db import connection as conn

    skip_pg = pytest.mark.skip(reason="needs PostgreSQL (run with DATABASE_URL=postgres://...)")
    for item in items:
        if "postgres" in item.keywords and conn.vendor != "postgresql":
            item.add_marker(skip_pg)


@pytest.fixture
def make_staff(django_user_model):
    """An active staff user holding ``permissions`` ("app.codename"), a member of ``sites``; by
    default every dashboard permission (view counts, view and change error groups) on the first site."""
    from django.contrib.auth.models import Permission

    from dashboard.permissions import CHANGE_ERRORS, VIEW_COUNTS, VIEW_ERRORS

    def _make(username="staffer", permissions=(VIEW_COUNTS, VIEW_ERRORS, CHANGE_ERRORS), sites=None, **fields):
        """``sites``: the sites the user is a member of (default: the first site)."""
        user = django_user_model.objects.create(
            username=username, **{"is_staff": True, **fields}
        )  # no password: hashing is slow
        user.beacon_sites.set([first_site()] if sites is None else sites)
        for name in permissions:
            app_label, codename = name.split(".")
            user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        return user

    return _make
