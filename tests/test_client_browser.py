"""beacon.js in a real headless Chromium against a live test server.

One browser per module, a fresh context per test; arrivals are awaited by polling the
database with a bounded timeout. Playwright's own user agent says "HeadlessChrome", which
the ingest rightly drops as a crawler, so the browser presents a normal Chrome user agent.
Pages on another origin are plain HTML files served by a second loopback server.
"""

import json
import os
import threading
import time
from datetime import timedelta
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

# Playwright's sync API runs an event loop in this thread; the ORM calls here are still synchronous.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

from django.db.models import Sum
from django.utils import timezone

from beacons.models import (
    BeaconAggregate,
    BeaconDefinition,
    BeaconEvent,
    ExperimentConversion,
    ExperimentExposure,
    Granularity,
    Site,
)
from beacons.queries import visitors, visits
from beacons.sites import sites_cache_clear

from .conftest import BROWSER_UA, first_site

pytestmark = pytest.mark.browser

WAIT_SECONDS = 30  # a limit, not a delay: under CI load a browser may take its time
DNT_ON = "Object.defineProperty(Navigator.prototype, 'doNotTrack', {get: () => '1'});"
GPC_ON = "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true});"
SPY_ON_SEND_BEACON = """
window.sentBodies = [];
const sendBeacon = navigator.sendBeacon.bind(navigator);
navigator.sendBeacon = (url, data) => {
  data.text().then(text => window.sentBodies.push(text));
  return sendBeacon(url, data);
};
"""
# Headless pages never become hidden on their own; this is what a browser does when the tab is switched away.
HIDE_PAGE = """() => {
  Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true});
  document.dispatchEvent(new Event('visibilitychange'));
}"""


@pytest.fixture
def context(browser, transactional_db, live_server):
    context = browser.new_context(user_agent=BROWSER_UA, base_url=live_server.url)
    yield context
    context.close()
    # Closing pages sends their last beacons; answered now, not by a live server whose database
    # access is already blocked, or written into the next test's tables (a CI run saw both).
    wait_until_quiet(seconds=0.5)


@pytest.fixture
def page(context):
    """A page that fails the test if beacon.js or the demo break the page (besides deliberate errors)."""
    page = context.new_page()
    page.problems = []
    page.on("pageerror", lambda error: page.problems.append(str(error)))
    page.on("console", lambda message: message.type == "error" and page.problems.append(message.text))
    return page


def _static_page(live_server, options: str, body: str = "") -> str:
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Shop</title><link rel="icon" href="data:,">
<script>
window.beacons = window.beacons || function(){{(beacons.q = beacons.q || []).push(arguments)}};
beacons("track", "early_call", "before-load");
</script>
<script defer src="{live_server.url}/static/beacons/beacon.min.js" data-endpoint="{live_server.url}/beacon" {options}>
</script>
</head><body>{body}</body></html>
"""


@pytest.fixture(scope="module")
def other_origin(live_server, tmp_path_factory):
    """Plain HTML pages (no Django) served from a second loopback server: another origin."""
    root = tmp_path_factory.mktemp("other_origin")
    buttons = """<button data-beacon="outbound_click" data-beacon-id="partner">Partner</button>
<button id="throw" onclick="throw new Error('Shop is broken')">Throw</button>"""
    (root / "shop.html").write_text(_static_page(live_server, 'data-batch-timeout="200"', buttons))
    (root / "consent.html").write_text(_static_page(live_server, 'data-require-consent data-batch-timeout="200"'))
    (root / "hash_router.html").write_text(_static_page(live_server, "data-hash data-query-string"))
    (root / "batch.html").write_text(_static_page(live_server, 'data-batch-size="1000" data-batch-timeout="60000"'))
    handler = partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def wait_until(predicate, what: str):
    deadline = time.monotonic() + WAIT_SECONDS
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {WAIT_SECONDS}s waiting for {what}")
        time.sleep(0.05)


def count(event_type: str, identifier: str = "") -> int:
    """Hits counted for a type (identifier "" is its total), summed over all its day buckets."""
    rows = BeaconAggregate.objects.filter(
        definition__slug=event_type, identifier=identifier, granularity=Granularity.DAY
    )
    return rows.aggregate(total=Sum("count"))["total"] or 0


def wait_for_count(event_type: str, identifier: str, expected: int):
    wait_until(lambda: count(event_type, identifier) >= expected, f"{expected} {event_type} {identifier!r}")


def wait_until_quiet(*, seconds: float = 1.0, timeout: float = 15.0):
    """Until nothing more is counted for ``seconds``: what closing pages send (on pagehide) is
    answered before the test ends, not written into the next test's tables by the live server."""
    deadline = time.monotonic() + timeout
    seen, since = None, time.monotonic()
    while time.monotonic() < deadline:
        now = (
            BeaconAggregate.objects.aggregate(n=Sum("count"))["n"],
            BeaconEvent.objects.count(),
            ExperimentExposure.objects.count(),
            ExperimentConversion.objects.aggregate(n=Sum("count"))["n"],
        )
        if now != seen:
            seen, since = now, time.monotonic()
        elif time.monotonic() - since >= seconds:
            return
        time.sleep(0.1)


def barrier(page, name: str = "barrier"):
    """Send one more event and wait for it, so anything sent before it has had its chance to arrive."""
    page.evaluate(f"() => {{ beacons.track('{name}'); beacons.flush(); }}")
    wait_for_count(name, "", 1)


def error_events():
    return list(BeaconEvent.objects.filter(definition__slug="error").order_by("id"))


def test_django_page_view_is_counted_once_on_load(page):
    page.goto("/demo/pricing")
    wait_for_count("page_view", "/demo/pricing", 1)
    barrier(page)

    assert count("page_view", "/demo/pricing") == 1
    assert count("page_view") == 1
    assert page.problems == []
    assert page.context.cookies() == []  # beacon.js keeps nothing in the browser
    assert page.evaluate("() => localStorage.length + sessionStorage.length") == 0


def test_tag_renders_a_deferred_minified_script_that_the_csp_allows(page):
    logged = []
    page.on("console", lambda message: logged.append(message.text))
    response = page.goto("/demo/")

    assert "script-src 'self'" in response.headers["content-security-policy"]
    script = page.locator("script[data-endpoint]")
    assert script.get_attribute("src").endswith("/static/beacons/beacon.min.js")
    assert script.get_attribute("defer") is not None
    assert script.get_attribute("data-endpoint") == "/beacon"
    wait_for_count("page_view", "/demo/", 1)
    assert page.problems == []  # no CSP violation, no error from the client
    assert any(text.startswith("[beacons] send") for text in logged)  # the demo turns debug on


def test_stub_calls_made_before_the_script_loads_are_replayed(page):
    page.goto("/demo/")  # demo.js calls beacons("track", "demo_loaded", path) through the stub
    page.evaluate(HIDE_PAGE)

    wait_for_count("demo_loaded", "/demo/", 1)


def test_spa_navigation_counts_each_route_once(page):
    page.goto("/demo/")
    wait_for_count("page_view", "/demo/", 1)

    page.click("#spa")  # history.pushState to /demo/spa
    wait_for_count("page_view", "/demo/spa", 1)
    page.evaluate("() => history.replaceState({}, '', '/demo/spa')")  # same route: not a new view
    page.evaluate("() => history.pushState({}, '', '/demo/spa')")  # same route again
    page.evaluate("() => history.pushState({step: 2}, '', '/demo/pricing')")
    wait_for_count("page_view", "/demo/pricing", 1)
    page.go_back()  # popstate back to /demo/spa
    wait_for_count("page_view", "/demo/spa", 2)
    barrier(page)

    assert count("page_view", "/demo/") == 1
    assert count("page_view", "/demo/spa") == 2
    assert count("page_view", "/demo/pricing") == 1
    assert count("page_view") == 4
    assert page.problems == []


def test_track_calls_and_data_beacon_clicks_arrive_when_the_page_is_hidden(page):
    page.goto("/demo/")
    page.evaluate("() => beacons.track('video_play', 'intro', {seconds: 3})")
    page.click("text=Download the brochure")
    page.click("#signup")  # demo.js: beacons("track", "signup", "demo", {plan: "pro"})
    page.evaluate(HIDE_PAGE)

    wait_for_count("video_play", "intro", 1)
    wait_for_count("download_click", "brochure.pdf", 1)
    wait_for_count("signup", "demo", 1)
    assert page.problems == []


def test_events_queued_when_the_page_closes_still_arrive(page):
    page.goto("/demo/")
    wait_for_count("page_view", "/demo/", 1)
    page.click("text=Download the brochure")
    page.close(run_before_unload=True)

    wait_for_count("download_click", "brochure.pdf", 1)


def test_events_queued_before_navigating_away_still_arrive(page):
    page.goto("/demo/")
    page.evaluate("() => beacons.track('newsletter_signup', 'header')")
    page.click("text=Pricing")  # a real navigation: pagehide flushes the queue
    page.wait_for_url("**/demo/pricing")

    wait_for_count("newsletter_signup", "header", 1)
    wait_for_count("page_view", "/demo/pricing", 1)


def test_thrown_error_and_rejected_promise_arrive_as_error_events(page):
    page.goto("/demo/")
    page.click("#throw")
    page.click("#reject")
    page.evaluate(HIDE_PAGE)

    wait_until(lambda: len(error_events()) == 2, "2 error events")
    by_message = {event.payload["meta"]["message"]: event for event in error_events()}
    thrown = by_message["Error: Demo error from the throw button"]
    rejected = by_message["Error: Demo rejected promise"]
    assert thrown.identifier == rejected.identifier == "/demo/"
    assert "demo.js" in thrown.payload["meta"]["stack"]
    assert "demo.js" in rejected.payload["meta"]["stack"]
    assert thrown.payload["meta"]["source"].endswith("/static/demo/demo.js")
    assert thrown.payload["meta"]["line"] > 0
    # The event rows are written before the counters are folded: wait for the counters too.
    wait_for_count("error", "/demo/", 2)
    assert count("error", "/demo/") == 2


def test_the_same_error_is_sent_at_most_five_times_per_page(page):
    page.goto("/demo/")
    for _ in range(7):
        page.click("#throw")
    page.evaluate("() => beacons.error('Handled but worth knowing', {area: 'cart'})")
    page.evaluate(HIDE_PAGE)

    wait_until(lambda: len(error_events()) == 6, "6 error events")
    messages = [event.payload["meta"]["message"] for event in error_events()]
    assert messages.count("Error: Demo error from the throw button") == 5
    handled = error_events()[-1].payload["meta"]
    assert handled == {"message": "Handled but worth knowing", "area": "cart"}


def test_a_broken_call_never_throws_into_the_page(page):
    page.goto("/demo/")
    page.evaluate(
        """() => {
          const cyclic = {}; cyclic.self = cyclic;
          beacons.track('cyclic_meta', 'x', cyclic);
          beacons.track('Bad Type!');
          beacons.track('too_long', 'x'.repeat(1000), {blob: 'y'.repeat(5000)});
          beacons('no_such_method');
          beacons.error(null);
          beacons.error({toString() { throw new Error('nope'); }});
          beacons.track('cut_emoji', 'x'.repeat(255) + '\\u{1F600}');
          beacons.track('lone_surrogate', 'a\\uD800b', {text: 'c\\uDC00d'});
        }"""
    )
    barrier(page)

    assert page.problems == []
    assert count("too_long", "x" * 256) == 1  # identifier cut to the server's limit, oversize meta dropped
    assert count("cut_emoji", "x" * 255 + "\ufffd") == 1  # cutting the pair did not lose the event
    assert count("lone_surrogate", "a\ufffdb") == 1


@pytest.mark.parametrize("privacy_signal", [DNT_ON, GPC_ON], ids=["do-not-track", "global-privacy-control"])
def test_with_do_not_track_nothing_is_sent(context, browser, live_server, privacy_signal):
    context.add_init_script(privacy_signal)
    private = context.new_page()
    sent = []
    private.on("request", lambda request: request.url.endswith("/beacon") and sent.append(request.url))
    private.goto("/demo/")
    private.evaluate("() => beacons.track('secret', 'x')")
    private.click("#throw")
    private.click("text=Download the brochure")
    private.close(run_before_unload=True)

    other = browser.new_context(user_agent=BROWSER_UA, base_url=live_server.url)
    try:
        barrier_page = other.new_page()
        barrier_page.goto("/demo/pricing")
        wait_for_count("page_view", "/demo/pricing", 1)  # beacons are separate requests: no arrival order
        barrier(barrier_page)
    finally:
        other.close()

    assert sent == []
    assert count("page_view") == 1  # the other visitor's only
    assert count("secret") == count("error") == count("download_click") == 0


def test_a_page_on_another_origin_counts_page_views_events_and_errors(context, other_origin, settings):
    settings.ALLOWED_HOSTS = ["localhost", "testserver"]  # so 127.0.0.1 is allowed only by the next line
    settings.BEACONS_ALLOWED_ORIGINS = [other_origin]
    page = context.new_page()
    page.goto(f"{other_origin}/shop.html")
    page.click("text=Partner")
    page.click("#throw")
    # data-batch-timeout="200": the queue is sent by its timer, the page stays open

    wait_for_count("page_view", "/shop.html", 1)
    wait_for_count("early_call", "before-load", 1)
    wait_for_count("outbound_click", "partner", 1)
    wait_until(lambda: len(error_events()) == 1, "the error event")
    error = error_events()[0]
    assert error.identifier == "/shop.html"
    assert error.payload["meta"]["message"] == "Error: Shop is broken"
    assert "shop.html" in error.payload["meta"]["stack"]


def test_another_origin_that_is_not_allowed_counts_nothing(context, other_origin, settings):
    settings.ALLOWED_HOSTS = ["localhost", "testserver"]
    settings.BEACONS_ALLOWED_ORIGINS = []
    page = context.new_page()
    sent = []
    page.on("request", lambda request: request.url.endswith("/beacon") and sent.append(request.url))
    page.goto(f"{other_origin}/shop.html")

    wait_until(lambda: sent, "the page view to be sent")
    allowed_page = context.new_page()
    allowed_page.goto("/demo/")
    wait_for_count("page_view", "/demo/", 1)
    barrier(allowed_page)

    assert count("page_view", "/shop.html") == 0
    assert count("page_view", "/demo/") == 1


def test_with_consent_required_nothing_is_sent_until_the_consent_cookie_is_set(context, other_origin, settings):
    settings.BEACONS_ALLOWED_ORIGINS = [other_origin]
    page = context.new_page()
    sent = []
    page.on("request", lambda request: request.url.endswith("/beacon") and sent.append(request.post_data))
    page.goto(f"{other_origin}/consent.html")
    page.evaluate("() => { beacons.track('before_consent'); beacons.flush(); }")
    page.evaluate("() => { document.cookie = 'beacon_consent=no'; beacons.track('consent_refused'); beacons.flush(); }")
    assert sent == []

    page.evaluate("() => { document.cookie = 'beacon_consent=yes'; beacons.track('after_consent'); }")
    wait_for_count("after_consent", "", 1)
    assert count("before_consent") == count("consent_refused") == count("early_call") == count("page_view") == 0
    assert [cookie["name"] for cookie in page.context.cookies()] == ["beacon_consent"]  # the site's, only


def test_a_large_queue_is_split_under_the_servers_batch_and_body_limits(context, other_origin, settings):
    settings.BEACONS_ALLOWED_ORIGINS = [other_origin]
    context.add_init_script(SPY_ON_SEND_BEACON)
    page = context.new_page()
    page.goto(f"{other_origin}/batch.html")  # batch size 1000, timeout 60 s: only flush() sends
    page.evaluate(
        """() => {
          for (let i = 0; i < 60; i++) beacons.track('bulk', 'item-' + i, {note: 'x'.repeat(1500)});
          beacons.flush();
        }"""
    )

    wait_for_count("bulk", "", 60)
    bodies = [body for body in page.evaluate("() => window.sentBodies") if '"bulk"' in body]
    batches = [json.loads(body)["events"] for body in bodies]
    assert len(batches) >= 3  # 60 events of ~1.5 KB: the body limit splits them, not only the 50-event cap
    assert all(len(batch) <= 50 for batch in batches)
    assert all(len(body.encode()) <= 32000 for body in bodies)
    assert sum(event["event_type"] == "bulk" for batch in batches for event in batch) == 60
    assert count("bulk", "item-59") == 1


def test_the_first_copy_wins_when_the_script_is_included_twice(page):
    page.goto("/demo/")
    page.evaluate(
        """() => new Promise(resolve => {
          const again = document.createElement('script');
          again.src = '/static/beacons/beacon.js';
          again.onload = resolve;
          document.head.append(again);
        })"""
    )
    wait_for_count("page_view", "/demo/", 1)
    barrier(page)

    assert count("page_view", "/demo/") == 1
    assert page.problems == []


def test_a_hash_routed_app_counts_each_hash_route_once(context, other_origin, settings):
    settings.BEACONS_ALLOWED_ORIGINS = [other_origin]
    page = context.new_page()
    page.goto(f"{other_origin}/hash_router.html?ref=ad#/")
    page.evaluate("() => { location.hash = '#/cart'; }")  # hashchange and popstate: one view
    wait_for_count("page_view", "/hash_router.html#/cart", 1)
    wait_for_count("page_view", "/hash_router.html#/", 1)
    page.evaluate("() => { location.hash = '#/cart'; }")  # same route
    barrier(page)

    # The query string is sent (data-query-string); the page_view type drops it unless told to keep it.
    assert count("page_view", "/hash_router.html#/") == 1
    assert count("page_view", "/hash_router.html#/cart") == 1
    assert count("page_view") == 2


def site_count(site, event_type: str, identifier: str = "") -> int:
    rows = BeaconAggregate.objects.filter(
        site=site, definition__slug=event_type, identifier=identifier, granularity=Granularity.DAY
    )
    return rows.aggregate(total=Sum("count"))["total"] or 0


def test_two_sites_count_separately_from_pages_on_their_own_origins(context, other_origin, settings):
    """The same page served from two host names (two sites): each visit counts for its own site
    only, decided by the page's origin, as a site's own pages send it."""
    settings.ALLOWED_HOSTS = ["testserver", "localhost"]
    port = other_origin.rsplit(":", 1)[1]
    blog = first_site()
    Site.objects.filter(pk=blog.pk).update(domain="127.0.0.1", extra_origins=other_origin)
    shop = Site.objects.create(domain="shop.localhost", name="Shop", extra_origins=f"http://localhost:{port}")
    ignored = Site.objects.create(domain="ignored.test", name="Not visited")
    sites_cache_clear()  # the update above sends no signal

    context.new_page().goto(f"{other_origin}/shop.html")
    for _ in range(2):
        context.new_page().goto(f"http://localhost:{port}/shop.html")

    wait_until(lambda: site_count(blog, "page_view", "/shop.html") == 1, "the 127.0.0.1 page view")
    wait_until(lambda: site_count(shop, "page_view", "/shop.html") == 2, "the localhost page views")
    assert site_count(blog, "page_view") == 1
    assert site_count(shop, "page_view") == 2
    assert site_count(ignored, "page_view") == 0


def test_page_views_carry_the_referrer_and_campaign_tags_even_when_the_query_is_left_out(
    context, other_origin, settings
):
    settings.BEACONS_ALLOWED_ORIGINS = [other_origin]
    context.add_init_script(SPY_ON_SEND_BEACON)
    page = context.new_page()
    page.goto(
        f"{other_origin}/shop.html?utm_source=newsletter&utm_medium=email&utm_campaign=Spring+Sale&ref=&x=1",
        referer="https://news.ycombinator.com/item?id=1",
    )

    wait_for_count("page_view", "/shop.html", 1)  # the identifier leaves the query string out
    wait_until(lambda: any('"page_view"' in body for body in page.evaluate("() => window.sentBodies")), "the body")
    [view] = [json.loads(b) for b in page.evaluate("() => window.sentBodies") if '"page_view"' in b]
    assert view == {
        "event_type": "page_view",
        "identifier": "/shop.html",
        "referrer": "https://news.ycombinator.com/item?id=1",
        "utm_source": "newsletter",
        "utm_medium": "email",
        "utm_campaign": "Spring Sale",
    }


def test_two_visitors_in_two_browsers_give_two_visitors_their_visits_and_one_bounce(
    browser, transactional_db, live_server
):
    reader, bouncer = (
        browser.new_context(user_agent=BROWSER_UA.replace("Chrome/", f"Chrome/{version}."), base_url=live_server.url)
        for version in (1, 2)  # two people behind one address: told apart by their browsers
    )
    try:
        page = reader.new_page()
        page.goto("/demo/")
        wait_for_count("page_view", "/demo/", 1)
        page.goto("/demo/pricing")
        wait_for_count("page_view", "/demo/pricing", 1)
        bouncer.new_page().goto("/demo/")
        wait_for_count("page_view", "/demo/", 2)
    finally:
        reader.close()
        bouncer.close()
        wait_until_quiet()

    site, page_view = first_site(), BeaconDefinition.objects.get(slug="page_view")
    now = timezone.now()
    period = {"site": site, "start": now - timedelta(days=1), "end": now + timedelta(days=1)}
    assert visitors.visitors(definitions=[page_view], **period).visitors == 2
    figures = visits.visits_totals(**period).current
    assert (figures.visits, figures.bounces, figures.pages) == (2, 1, 3)
