"""Shared links in a real headless Chromium: a link opens without signing in and draws the dashboard,
answers 404 once revoked, and an embed loads in a page of an allowed origin and is refused (by CSP)
in a page of another. Both origins are plain HTML servers on loopback.

Screenshots go to test-output/ (shared-dashboard.png, shared-dashboard-phone.png, embed.png,
embed-phone.png): look at them.
"""

import os
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

# Playwright's sync API runs an event loop in this thread; the ORM calls here are still synchronous.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

from django.core.management import call_command

from beacons.sharing import shared_link_revoke

from .conftest import first_site
from .test_dashboard_browser import ALL_CHARTS_DRAWN, OUTPUT
from .test_sharing import share

pytestmark = pytest.mark.browser


@pytest.fixture
def demo_traffic(transactional_db):
    call_command("beacons_demo", hits=4_000, identifiers=30, days=60, errors=20, seed=5)


@pytest.fixture
def visitor(browser, live_server):
    """A browser context of someone who never signed in; pages fail the test on a script error."""
    contexts = []

    def open_page(width=1400, height=900):
        context = browser.new_context(viewport={"width": width, "height": height}, base_url=live_server.url)
        contexts.append(context)
        page = context.new_page()
        page.problems = []
        page.on("pageerror", lambda error: page.problems.append(str(error)))
        page.on("console", lambda message: message.type == "error" and page.problems.append(message.text))
        return page

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def two_origins(tmp_path):
    """Two plain HTML servers on loopback, each its own origin: (directory, origin) pairs."""
    servers = []
    for name in ("allowed", "other"):
        root = tmp_path / name
        root.mkdir()
        server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append((server, root, f"http://127.0.0.1:{server.server_address[1]}"))
    yield [(root, origin) for _, root, origin in servers]
    for server, _, _ in servers:
        server.shutdown()
        server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_a_shared_link_opens_without_signing_in_and_after_revocation_answers_404(demo_traffic, visitor, live_server):
    link, url = share(label="Browser")
    OUTPUT.mkdir(exist_ok=True)
    for width, name in [(1400, "shared-dashboard.png"), (390, "shared-dashboard-phone.png")]:
        page = visitor(width=width, height=900 if width > 400 else 844)
        response = page.goto(url)
        assert response.status == 200
        assert response.headers["referrer-policy"] == "no-referrer"
        page.wait_for_function(ALL_CHARTS_DRAWN, timeout=15_000)
        assert page.locator("#top tbody tr").count() == 10
        assert page.locator("a[href*='/admin/'], .site-switcher, #errors").count() == 0
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.screenshot(path=str(OUTPUT / name), full_page=True)
        assert page.problems == []
    # A filter swaps the panels with htmx and the URL stays the shared one.
    page.select_option("#id_range", "7d")
    page.wait_for_function("() => location.search.includes('range=7d')")
    assert page.evaluate("location.pathname") == url
    page.wait_for_function(ALL_CHARTS_DRAWN)
    assert "7 days" in page.locator(".headline").inner_text()

    shared_link_revoke(link=link)
    response = page.goto(url)
    assert response.status == 404
    assert "does not open anything" in page.content() and "fig-series" not in page.content()


def test_an_embed_loads_in_a_page_of_an_allowed_origin_and_is_refused_by_csp_in_another(
    demo_traffic, visitor, live_server, two_origins
):
    (allowed_root, allowed), (other_root, other) = two_origins
    site = first_site()
    site.extra_origins = allowed
    site.save()
    _, url = share()
    embed = f"{live_server.url}{url}embed/series/?range=30d"
    for root in (allowed_root, other_root):
        (root / "post.html").write_text(
            f'<!doctype html><html><head><meta charset="utf-8"><title>Post</title><link rel="icon" href="data:,">'
            f'</head><body><h1>Our numbers</h1><iframe id="chart" src="{embed}" width="820" height="440" '
            f'style="border:0; max-width:100%"></iframe></body></html>'
        )

    page = visitor(width=1400)
    page.goto(f"{allowed}/post.html")
    frame = page.frame_locator("#chart")
    frame.locator("#series .chart svg.main-svg").first.wait_for(timeout=15_000)
    assert frame.locator("#series h2").inner_text().startswith("Page views per day")
    assert page.problems == []
    page.screenshot(path=str(OUTPUT / "embed.png"), full_page=True)
    phone = visitor(width=390, height=844)
    phone.goto(embed)
    phone.wait_for_function(ALL_CHARTS_DRAWN, timeout=15_000)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    phone.screenshot(path=str(OUTPUT / "embed-phone.png"), full_page=True)

    refused = visitor(width=1400)
    refused.goto(f"{other}/post.html")
    refused.wait_for_function("() => document.getElementById('chart')")
    deadline = time.monotonic() + 10
    while not any("frame-ancestors" in problem for problem in refused.problems):
        assert time.monotonic() < deadline, f"no CSP refusal reported: {refused.problems}"
        refused.wait_for_timeout(100)
    assert refused.frame_locator("#chart").locator("#series").count() == 0
