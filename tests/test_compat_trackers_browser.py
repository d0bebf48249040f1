"""Other trackers' real clients, unchanged from npm, in headless Chromium against the drop-in endpoints.

Plausible's npm tracker (``@plausible-analytics/tracker``, an ES module), the classic
``plausible-tracker`` (its ES module build, whose extensionless imports an import map resolves)
and Umami's tracker script (``src/tracker/index.js`` of the ``umami`` package, the source its
``public/script.js`` is built from) run on plain HTML pages served from a second loopback origin,
as a customer's pages would, and send to the live test server. GoatCounter's count.js is on no
npm package: its /count requests are tested with the test client only (test_compat_trackers.py).
"""

import json
import re
import shutil
import subprocess
import tarfile
import tempfile
import threading
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from django.test import Client

from beacons.models import BeaconAggregate, BeaconDefinition, BeaconEvent, Site

from . import test_client_browser
from .npm_packages import CACHE, INSTALL_TIMEOUT_SECONDS, npm_package_dir, npm_required
from .test_client_browser import HIDE_PAGE, _QuietHandler, wait_until
from .test_compat_trackers import site_count

pytestmark = pytest.mark.browser

# Fixtures, used by name: a browser context per test on the live server, a page that records its errors.
context, page = test_client_browser.context, test_client_browser.page

WEBSITE = "0b7d2c1e-4f3a-4d5e-8a9b-123456789abc"
PLAUSIBLE_NPM = "@plausible-analytics/tracker@0.4"
PLAUSIBLE_CLASSIC = "plausible-tracker@0.3"
UMAMI = "umami@2"
FROM_HACKER_NEWS = "https://news.ycombinator.com/item?id=1"


def npm_package_files(spec: str) -> Path:
    """The files of the npm package ``spec`` as published (``npm pack``), in the same cache as
    ``npm_package_dir``, without its dependencies: the umami package is Umami's whole web app, and
    the tracker script needs none of it."""
    npm_required()
    target = CACHE / ("files-" + re.sub(r"[^\w.@-]+", "-", spec))
    if not target.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        unpacking = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=CACHE))
        try:
            result = subprocess.run(
                ["npm", "pack", "--pack-destination", str(unpacking), spec],
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT_SECONDS,
                cwd=unpacking,
            )
            if result.returncode:
                pytest.fail(f"npm pack {spec} failed:\n{result.stderr[-4000:]}")
            with tarfile.open(unpacking / result.stdout.strip().splitlines()[-1]) as archive:
                archive.extractall(unpacking, filter="data")
            try:
                (unpacking / "package").rename(target)
            except OSError:  # another worker's unpacking got there first
                pass
        finally:
            shutil.rmtree(unpacking, ignore_errors=True)
    return target


def version_of(package: Path) -> str:
    return json.loads((package / "package.json").read_text())["version"]


def _page(title: str, head: str, body: str = "") -> str:
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title><link rel="icon" href="data:,">
{head}
</head><body><h1>{title}</h1>{body}</body></html>
"""


@pytest.fixture(scope="module")
def tracker_pages(live_server, tmp_path_factory):
    """Pages with each tracker, served from a second loopback server (another origin); each
    package's files under its own folder. Yields the pages' origin and the packages' versions."""
    packages = {
        "plausible-npm": npm_package_dir(PLAUSIBLE_NPM),
        "plausible-classic": npm_package_dir(PLAUSIBLE_CLASSIC),
        "umami": npm_package_files(UMAMI),
    }
    root = tmp_path_factory.mktemp("tracker_pages")
    for folder, package in packages.items():
        (root / folder).symlink_to(package, target_is_directory=True)
    # The tracker skips pages of 127.* unless told to capture them, and automated browsers unless
    # window.__plausible is set (its own tests set it).
    (root / "plausible-npm.html").write_text(
        _page(
            "Plausible npm",
            f"""<script>window.__plausible = true;</script>
<script type="module">
import {{ init }} from "/plausible-npm/plausible.js";
init({{domain: "shop.example", endpoint: "{live_server.url}/api/event", captureOnLocalhost: true}});
</script>""",
        )
    )
    module = "/plausible-classic/build/module"
    imports = {f"{module}/lib/{name}": f"{module}/lib/{name}.js" for name in ("tracker", "request")}
    (root / "plausible-classic.html").write_text(
        _page(
            "Plausible classic",
            f"""<script type="importmap">{json.dumps({"imports": imports})}</script>
<script type="module">
import Plausible from "{module}/index.js";
window.classic = Plausible({{domain: "shop.example", apiHost: "{live_server.url}", trackLocalhost: true}});
window.classic.trackPageview();
</script>""",
        )
    )
    (root / "umami.html").write_text(
        _page(
            "Umami",
            f"""<script defer src="/umami/src/tracker/index.js" data-website-id="{WEBSITE}"
        data-host-url="{live_server.url}"></script>""",
            '<button data-umami-event="Signup" data-umami-event-plan="pro">Sign up</button>',
        )
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {
        "origin": f"http://127.0.0.1:{server.server_address[1]}",
        "versions": {folder: version_of(package) for folder, package in packages.items()},
    }
    server.shutdown()
    server.server_close()


@pytest.fixture
def shop(tracker_pages, transactional_db, settings):
    """The site the pages count for: named by Plausible's domain and Umami's website id, its pages
    on the second origin (an extra allowed origin)."""
    settings.ALLOWED_HOSTS = ["localhost", "testserver"]  # so 127.0.0.1 is allowed only as the shop's origin
    settings.BEACONS_ALLOWED_ORIGINS = []
    return Site.objects.create(
        domain="shop.example", name="Shop", extra_origins=tracker_pages["origin"], umami_website_id=WEBSITE
    )


@pytest.fixture
def staff_client(make_staff, shop):
    client = Client()
    client.force_login(make_staff(sites=[shop]))
    return client


def answered(sender, path: str, action, *, name: str = "") -> tuple[dict, int, dict]:
    """(body, status, request headers) of the POST to ``path`` (whose body names ``name``, when
    given) that ``action`` makes the page send, once it is answered. Playwright delivers a page's
    events only while one of its calls runs, so the call waits for the answer, not a poll."""

    def wanted(response) -> bool:
        request = response.request
        return response.url.endswith(path) and request.method == "POST" and name in (request.post_data or "")

    with sender.expect_response(wanted) as sent:
        action()
    response = sent.value
    return json.loads(response.request.post_data), response.status, response.request.all_headers()


def dashboard_rows(client, site, panel: str) -> list[tuple[str, int]]:
    response = client.get("/dashboard/", {"site": site.domain, "range": "today"})
    assert response.status_code == 200
    return [(row.get("identifier", row.get("text")), row["count"]) for row in response.context[panel]["rows"]]


def test_the_versions_under_test_are_the_ones_named(tracker_pages):
    versions = tracker_pages["versions"]
    assert versions["plausible-npm"].startswith("0.4.")
    assert versions["plausible-classic"].startswith("0.3.")
    assert versions["umami"].startswith("2.")


def test_plausible_npm_tracker_counts_page_views_and_custom_events_with_props_and_revenue(
    page, tracker_pages, shop, staff_client
):
    BeaconDefinition.objects.create(slug="signup", name="Sign-ups", keep_raw=True, property_keys="plan")
    url = f"{tracker_pages['origin']}/plausible-npm.html?utm_campaign=spring"
    pageview, status, _ = answered(page, "/api/event", lambda: page.goto(url, referer=FROM_HACKER_NEWS))
    assert (status, pageview["n"], pageview["u"], pageview["d"], pageview["r"]) == (
        202,
        "pageview",
        url,
        "shop.example",
        FROM_HACKER_NEWS,
    )

    signup, status, _ = answered(
        page,
        "/api/event",
        lambda: page.evaluate(
            "() => plausible('Signup', {props: {plan: 'pro'}, revenue: {amount: 19.9, currency: 'EUR'}})"
        ),
    )
    assert (status, signup["p"], signup["$"]) == (202, {"plan": "pro"}, {"amount": 19.9, "currency": "EUR"})
    # leaving the page: the tracker reports scroll depth and engaged time, accepted and counted nowhere
    engagement, status, _ = answered(page, "/api/event", lambda: page.evaluate(HIDE_PAGE), name="engagement")
    assert (status, engagement["n"], "sd" in engagement and "e" in engagement) == (202, "engagement", True)

    wait_until(lambda: site_count(shop, "signup", "/plausible-npm.html") == 1, "the custom event")
    assert site_count(shop, "page_view", "/plausible-npm.html") == 1
    assert site_count(shop, "page_view", "spring", dimension="utm_campaign") == 1
    assert BeaconEvent.objects.get().payload["meta"] == {
        "plan": "pro",
        "revenue_amount": 19.9,
        "revenue_currency": "EUR",
    }
    assert BeaconAggregate.objects.exclude(site=shop).count() == 0
    assert ("/plausible-npm.html", 1) in dashboard_rows(staff_client, shop, "top")
    assert ("Hacker News", 1) in dashboard_rows(staff_client, shop, "sources")
    assert page.problems == []


def test_plausible_classic_tracker_counts_page_views_and_custom_events_with_props(
    page, tracker_pages, shop, staff_client
):
    BeaconDefinition.objects.create(slug="signup", name="Sign-ups", property_keys="plan")
    url = f"{tracker_pages['origin']}/plausible-classic.html"
    pageview, status, _ = answered(page, "/api/event", lambda: page.goto(url, referer=FROM_HACKER_NEWS))
    assert (status, pageview["n"], pageview["d"], pageview["h"]) == (202, "pageview", "shop.example", 0)

    signup, status, _ = answered(
        page, "/api/event", lambda: page.evaluate("() => classic.trackEvent('Signup', {props: {plan: 'team'}})")
    )
    assert (status, signup["p"]) == (202, '{"plan":"team"}')  # the classic tracker's props: a JSON string

    wait_until(lambda: site_count(shop, "signup", "/plausible-classic.html") == 1, "the custom event")
    assert site_count(shop, "page_view", "/plausible-classic.html") == 1
    assert site_count(shop, "signup", "team", dimension="prop:plan") == 1
    assert ("/plausible-classic.html", 1) in dashboard_rows(staff_client, shop, "top")
    assert ("Hacker News", 1) in dashboard_rows(staff_client, shop, "sources")
    assert page.problems == []


def test_umami_tracker_counts_page_views_and_click_events_through_the_cors_preflight(
    page, tracker_pages, shop, staff_client
):
    url = f"{tracker_pages['origin']}/umami.html?utm_source=newsletter"
    pageview, status, _ = answered(page, "/api/send", lambda: page.goto(url, referer=FROM_HACKER_NEWS))
    assert (status, pageview["type"], pageview["payload"]["website"]) == (200, "event", WEBSITE)
    assert pageview["payload"]["url"] == "/umami.html?utm_source=newsletter"

    # data-umami-event on a button; the tracker now sends the first answer back in x-umami-cache,
    # a header only a CORS preflight lets through
    signup, status, headers = answered(page, "/api/send", lambda: page.click("text=Sign up"))
    assert (status, signup["payload"]["name"], signup["payload"]["data"]) == (200, "Signup", {"plan": "pro"})
    assert "x-umami-cache" in headers

    identify, status, _ = answered(page, "/api/send", lambda: page.evaluate("() => umami.identify({plan: 'pro'})"))
    assert (status, identify["type"]) == (200, "identify")  # accepted, counting nothing

    wait_until(lambda: site_count(shop, "signup", "/umami.html") == 1, "the click event")
    assert site_count(shop, "page_view", "/umami.html") == 1
    assert site_count(shop, "page_view") == 1
    assert ("/umami.html", 1) in dashboard_rows(staff_client, shop, "top")
    assert ("newsletter", 1) in dashboard_rows(staff_client, shop, "sources")
    assert page.problems == []
