"""The ingest fast path of the served application (``beacon_site.wsgi``): beacons skip the
middleware stack and the URL walk, every other request takes Django's path. (Every test that
sends beacons with the ``beacon_client`` fixture runs through both paths.)"""

import importlib
import json

import pytest
from django.core import signals
from django.db import close_old_connections
from django.test import Client, RequestFactory, override_settings

from beacons.ingest.fastpath import FastPathHandler
from beacons.models import BeaconAggregate, DroppedHits

from .conftest import BROWSER_UA, FastPathClient, day_count

pytestmark = pytest.mark.django_db


@pytest.fixture
def served(monkeypatch):
    """Calls the served application with a request built like the test client's; returns
    (status line, headers dict, body). The test's transaction stays open, as the test client keeps it."""
    from beacon_site.wsgi import application

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)

    def call(method: str, path: str, *, body: bytes = b"", **meta):
        factory = RequestFactory(HTTP_USER_AGENT=BROWSER_UA)
        request = factory.generic(method, path, data=body, content_type="application/json", **meta)
        started = {}

        def start_response(status, headers, exc_info=None):
            started["status"], started["headers"] = status, dict(headers)

        response = application(request.environ, start_response)
        try:
            content = b"".join(response)
        finally:
            response.close()
        return started["status"], started["headers"], content

    yield call
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def middleware_calls(monkeypatch):
    """The paths that went through the served application's middleware stack."""
    from beacon_site.wsgi import application

    calls: list[str] = []
    chain = application._middleware_chain

    def recorded(request):
        calls.append(request.path)
        return chain(request)

    monkeypatch.setattr(application, "_middleware_chain", recorded)
    return calls


def test_the_served_application_has_the_fast_path():
    from beacon_site.wsgi import application

    assert isinstance(application, FastPathHandler)
    assert application.ingest_roots == {"beacon", "api", "count"}


def test_beacons_skip_the_middleware_and_other_pages_do_not(served, middleware_calls):
    body = json.dumps({"event_type": "page_view", "identifier": "/fast"}).encode()
    assert served("POST", "/beacon", body=body)[0] == "204 No Content"
    assert served("POST", "/beacon/signup/footer")[0] == "204 No Content"
    status, headers, _ = served("GET", "/beacon/newsletter_open.gif", QUERY_STRING="i=issue-7")
    assert (status, headers["Content-Type"]) == ("200 OK", "image/gif")
    assert middleware_calls == []
    assert (
        day_count("page_view", "/fast"),
        day_count("signup", "footer"),
        day_count("newsletter_open", "issue-7"),
    ) == (1, 1, 1)

    assert served("GET", "/dashboard/")[0] == "302 Found"  # to sign in: the middleware stack ran
    assert served("GET", "/beaconless")[0] == "404 Not Found"  # under the prefix, no ingest pattern
    assert middleware_calls == ["/dashboard/", "/beaconless"]


def test_the_drop_in_endpoints_take_the_fast_path_and_the_stats_api_does_not(served, middleware_calls):
    from beacons.models import Site

    Site.objects.create(domain="shop.example", name="Shop", umami_website_id="1f0e9d8c-7b6a-4543-9210-fedcba987654")
    plausible = json.dumps({"n": "pageview", "u": "https://shop.example/p", "d": "shop.example"}).encode()
    assert served("POST", "/api/event", body=plausible)[0] == "202 Accepted"
    umami = {"type": "event", "payload": {"website": "1f0e9d8c-7b6a-4543-9210-fedcba987654", "url": "/u"}}
    assert served("POST", "/api/send", body=json.dumps(umami).encode())[0] == "200 OK"
    status, headers, _ = served("GET", "/count", QUERY_STRING="p=/g", HTTP_REFERER="https://shop.example/g")
    assert (status, headers["Content-Type"]) == ("200 OK", "image/gif")
    assert served("POST", "/api/9/envelope/", body=b"{}")[0].startswith("40")  # no site has that project
    assert middleware_calls == []
    shop = Site.objects.get(domain="shop.example")
    counted = BeaconAggregate.objects.filter(site=shop, definition__slug="page_view", granularity="D", dimension="")
    assert dict(counted.exclude(identifier="").values_list("identifier", "count")) == {"/p": 1, "/u": 1, "/g": 1}

    assert served("GET", "/api/v1/sites")[0].startswith("40")  # the stats API: a key is asked for
    assert served("GET", "/api/events")[0] == "404 Not Found"  # under an ingest root, no ingest pattern
    assert middleware_calls == ["/api/v1/sites", "/api/events"]


def test_a_beacon_gets_the_security_headers_of_the_middleware():
    fast = FastPathClient(HTTP_USER_AGENT=BROWSER_UA).post("/beacon", data="{", content_type="application/json")
    full = Client(HTTP_USER_AGENT=BROWSER_UA).post("/beacon", data="{", content_type="application/json")
    assert fast.status_code == full.status_code == 400
    for header in (
        "X-Content-Type-Options",
        "Referrer-Policy",
        "Cross-Origin-Opener-Policy",
        "Content-Security-Policy",
    ):
        assert fast.headers.get(header) == full.headers.get(header) != None, header  # noqa: E711


def test_https_redirect_applies_to_beacons_as_to_pages(settings):
    settings.SECURE_SSL_REDIRECT = True
    response = FastPathClient(HTTP_USER_AGENT=BROWSER_UA).post("/beacon", data="{}", content_type="application/json")
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/beacon"


def test_a_disallowed_host_is_a_400_not_a_500(served):
    body = json.dumps({"event_type": "page_view"}).encode()
    status, _, _ = served("POST", "/beacon", body=body, HTTP_HOST="evil.example", HTTP_ORIGIN="https://evil.example")
    assert status == "400 Bad Request"
    assert day_count("page_view") == 0


def test_a_crash_in_a_view_is_answered_and_reported_as_django_does(served, monkeypatch):
    from beacons.ingest import views

    reported = []

    def report(sender, request, **kwargs):
        reported.append(request.path)

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(views, "events_record", broken)
    signals.got_request_exception.connect(report)
    try:
        status, _, _ = served("POST", "/beacon", body=json.dumps({"event_type": "page_view"}).encode())
    finally:
        signals.got_request_exception.disconnect(report)
    assert status == "500 Internal Server Error"
    assert reported == ["/beacon"]


def test_rejected_beacons_count_nothing_on_the_fast_path(served):
    status, headers, content = served("POST", "/beacon", body=b'{"event_type": "page_view", "identifier": ')
    assert status == "400 Bad Request"
    assert headers["Content-Type"] == "application/json"
    assert "error" in json.loads(content)
    status, _, _ = served("POST", "/beacon", body=b"{}", HTTP_USER_AGENT="curl/8.5")  # a bot: dropped, 204
    assert status == "204 No Content"
    assert day_count("page_view") == 0
    assert DroppedHits.objects.get(reason=DroppedHits.Reason.BOT).count == 1


@override_settings(ROOT_URLCONF="tests.urls_ingest_elsewhere")
def test_no_fast_path_where_the_site_serves_ingest_elsewhere():
    handler = FastPathHandler()
    assert (handler.ingest_match("/beacon"), handler.ingest_match("/api/event")) == (None, None)
    client = FastPathClient(HTTP_USER_AGENT=BROWSER_UA)
    assert (
        client.post("/t/beacon", data='{"event_type": "page_view"}', content_type="application/json").status_code == 204
    )
    assert (
        client.post("/beacon", data='{"event_type": "page_view"}', content_type="application/json").status_code == 404
    )


def test_the_fast_path_can_be_turned_off(settings):
    import beacon_site.wsgi

    settings.BEACONS_FAST_PATH = False
    try:
        assert type(importlib.reload(beacon_site.wsgi).application).__name__ == "WSGIHandler"
    finally:
        settings.BEACONS_FAST_PATH = True
        importlib.reload(beacon_site.wsgi)


@pytest.mark.django_db(transaction=True)
def test_the_asgi_application_takes_the_fast_path_for_beacons_only(monkeypatch):
    import asyncio

    from beacon_site.asgi import application
    from beacons.ingest.fastpath import FastPathASGIHandler

    assert isinstance(application, FastPathASGIHandler)
    through_middleware = []
    chain = application._middleware_chain

    async def recorded(request):
        through_middleware.append(request.path)
        return await chain(request)

    monkeypatch.setattr(application, "_middleware_chain", recorded)

    def call(method: str, path: str, body: bytes = b"") -> tuple[int, dict]:
        scope = {
            "type": "http",
            "method": method,
            "path": path,
            "query_string": b"",
            "headers": [
                (b"host", b"testserver"),
                (b"user-agent", BROWSER_UA.encode()),
                (b"content-type", b"application/json"),
            ],
            "client": ("81.2.69.142", 50000),
            "server": ("testserver", 80),
        }
        sent, messages = [], [{"type": "http.request", "body": body, "more_body": False}]

        async def receive():
            if messages:
                return messages.pop()
            await asyncio.Event().wait()  # the client stays connected until the answer

        async def send(message):
            sent.append(message)

        asyncio.run(application(scope, receive, send))
        start = sent[0]
        return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}

    status, headers = call("POST", "/beacon", json.dumps({"event_type": "page_view", "identifier": "/asgi"}).encode())
    assert (status, headers["Content-Security-Policy"] != "") == (204, True)
    assert call("POST", "/beacon", b'{"event_type": ')[0] == 400
    assert through_middleware == []
    assert day_count("page_view", "/asgi") == 1
    assert call("GET", "/dashboard/")[0] == 302
    assert through_middleware == ["/dashboard/"]
