"""The real npm ``@sentry/browser`` in headless Chromium, on a page of another origin, sending to the live server.

The npm package ships ES modules only (its CDN bundles are built by Sentry's release, not published to npm
since v8), so the published modules, unchanged, are bundled with esbuild into one script that defines
``window.Sentry``, as ``bundle.min.js`` from Sentry's CDN does.
"""

import json
import subprocess
import threading
from functools import partial
from http.server import ThreadingHTTPServer

import pytest

from beacons.models import BeaconEvent, ErrorGroup, Site

from .conftest import BROWSER_UA, first_site
from .npm_packages import INSTALL_TIMEOUT_SECONDS, npm_package_dir
from .test_client_browser import _QuietHandler, wait_until
from .test_client_browser import context as context  # the fixtures, by name ("as": kept though no code calls them)
from .test_client_browser import page as page

pytestmark = pytest.mark.browser

SENTRY_BROWSER = "@sentry/browser@11"
ESBUILD = "esbuild@0"
KEY = "fedcba9876543210fedcba9876543210"
PROJECT = 77
APP_JS = """function checkout(order) {
  throw new Error("Order " + order + " could not be paid");
}
"""


@pytest.fixture(scope="module")
def sentry_bundle(tmp_path_factory) -> str:
    """The SDK as one minified script defining ``window.Sentry``; its text."""
    sdk = npm_package_dir(SENTRY_BROWSER)
    esbuild = npm_package_dir(ESBUILD).parent / ".bin" / "esbuild"
    root = tmp_path_factory.mktemp("sentry_bundle")
    entry = root / "entry.js"
    entry.write_text(
        f"export * from {json.dumps(str(sdk / json.loads((sdk / 'package.json').read_text())['module']))};"
    )
    bundle = root / "sentry.min.js"
    command = [esbuild, entry, "--bundle", "--format=iife", "--global-name=Sentry", "--minify", f"--outfile={bundle}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_SECONDS)
    if result.returncode:
        pytest.fail(f"esbuild could not bundle {SENTRY_BROWSER}:\n{result.stderr[-4000:]}")
    return bundle.read_text()


@pytest.fixture(scope="module")
def shop_origin(live_server, sentry_bundle, tmp_path_factory):
    """A shop's page on a second loopback origin: the SDK, initialised with a DSN of the live server, and app.js."""
    root = tmp_path_factory.mktemp("shop_origin")
    dsn = f"http://{KEY}@{live_server.url.split('://', 1)[1]}/{PROJECT}"
    (root / "sentry.min.js").write_text(sentry_bundle)
    (root / "app.js").write_text(APP_JS)
    (root / "shop.html").write_text(f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Shop</title><link rel="icon" href="data:,">
<script src="/sentry.min.js"></script>
<script>
Sentry.init({{dsn: "{dsn}", release: "shop@3.1.0", environment: "browser-test"}});
Sentry.setTag("checkout", "v2");
</script>
<script src="/app.js"></script>
</head><body><button id="pay" onclick="checkout(42)">Pay</button></body></html>
""")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_browser_sdk_errors_and_messages_arrive_as_the_shops_error_groups(page, shop_origin, settings):
    settings.ALLOWED_HOSTS = ["localhost", "testserver"]  # so 127.0.0.1 is allowed only as the shop's origin
    settings.BEACONS_ALLOWED_ORIGINS = []
    shop = Site.objects.create(
        domain="shop.example",
        name="Shop",
        extra_origins=shop_origin,
        sentry_project_id=PROJECT,
        sentry_public_key=KEY,
    )
    page.goto(f"{shop_origin}/shop.html")
    page.click("#pay")  # uncaught: the SDK's global handler reports it
    page.evaluate("() => { setTimeout(() => checkout(7)); Sentry.captureMessage('Coupon 12 expired'); }")

    def shop_groups():
        return {group.title: group for group in ErrorGroup.objects.filter(site=shop)}

    wait_until(lambda: sum(group.count for group in shop_groups().values()) == 3, "3 errors of the shop")
    thrown = shop_groups()["Error: Order <num> could not be paid"]
    assert (thrown.count, thrown.culprit) == (2, "checkout (/app.js)")
    assert shop_groups()["Coupon <num> expired"].count == 1
    assert not ErrorGroup.objects.filter(site=first_site()).exists()
    kept = BeaconEvent.objects.filter(error_group=thrown).first()
    assert (kept.identifier, kept.user_agent, kept.source) == ("/shop.html", BROWSER_UA, "sentry")
    meta = kept.payload["meta"]
    assert (meta["release"], meta["environment"], meta["tags"]) == ("shop@3.1.0", "browser-test", {"checkout": "v2"})
    assert meta["stack"].startswith(f"    at checkout ({shop_origin}/app.js:2:")
    # The only problems are the errors thrown on purpose: no refused request, no CORS error.
    assert [problem for problem in page.problems if "could not be paid" not in problem] == []


def test_browser_sdk_on_an_origin_the_site_does_not_allow_counts_nothing(page, shop_origin, settings):
    settings.ALLOWED_HOSTS = ["localhost", "testserver"]
    settings.BEACONS_ALLOWED_ORIGINS = []
    Site.objects.create(domain="shop.example", name="Shop", sentry_project_id=PROJECT, sentry_public_key=KEY)
    answered = []
    page.on("response", lambda response: "/envelope/" in response.url and answered.append(response.status))
    page.on("requestfailed", lambda request: "/envelope/" in request.url and answered.append(request.failure))
    page.goto(f"{shop_origin}/shop.html")
    page.click("#pay")

    wait_until(lambda: answered, "the SDK's envelope to be answered")
    # A 403 for an origin no site allows carries no CORS header: the browser reports a failed request.
    assert answered[0] in (403, "net::ERR_FAILED")
    assert not BeaconEvent.objects.exists()
