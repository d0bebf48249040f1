"""The dashboard in a real headless Chromium: charts draw under the strict CSP, filters swap
the panels with htmx and push the URL, and the page is usable at phone width.

Screenshots go to test-output/ (dashboard.png, dashboard-phone.png): look at them.
"""

import os
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; the ORM calls here are still synchronous.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402

pytestmark = pytest.mark.browser

OUTPUT = Path(__file__).resolve().parent.parent / "test-output"
ALL_CHARTS_DRAWN = """() => {
  const charts = [...document.querySelectorAll('.chart[data-figure]')];
  return charts.length > 0 && charts.every(chart => chart.querySelector('svg.main-svg'));
}"""


@pytest.fixture
def staff_page(browser, live_server, make_staff):
    call_command("beacons_demo", hits=20_000, identifiers=40, days=60, errors=30, seed=3)
    client = Client()
    client.force_login(make_staff("browser-staff"))

    def open_page(width=1280, height=900):
        context = browser.new_context(viewport={"width": width, "height": height})
        context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}])
        page = context.new_page()
        page.problems = []
        page.on("console", lambda message: message.type == "error" and page.problems.append(message.text))
        page.on("pageerror", lambda error: page.problems.append(str(error)))
        return page

    return open_page


def test_dashboard_draws_every_chart_under_the_csp_and_filters_swap_with_htmx(staff_page, live_server):
    page = staff_page()
    page.goto(f"{live_server.url}/dashboard/")
    page.wait_for_function(ALL_CHARTS_DRAWN, timeout=15_000)
    assert page.locator(".chart[data-figure]").count() == 2
    assert page.locator("#top tbody tr").count() == 10
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "dashboard.png"), full_page=True)

    # A filter change re-renders the panels without a page load and puts the state in the URL.
    page.evaluate("window.__sameDocument = true")
    page.select_option("#id_range", "7d")
    page.wait_for_function("() => location.search.includes('range=7d')")
    page.wait_for_function(ALL_CHARTS_DRAWN)
    assert "7 days" in page.locator(".headline").inner_text()
    assert page.evaluate("window.__sameDocument") is True

    # A row of the top table filters the whole dashboard to it; back restores the previous view.
    first = page.locator("#top tbody tr a").first
    name = first.inner_text()
    first.click()
    page.wait_for_function("() => /identifier=[^&]/.test(location.search)")
    page.wait_for_function(ALL_CHARTS_DRAWN)
    assert page.locator(".headline .chip").inner_text().startswith(name)
    page.go_back()
    page.wait_for_function("() => !/identifier=[^&]/.test(location.search)")
    page.reload()
    page.wait_for_function(ALL_CHARTS_DRAWN)
    assert page.locator("#id_range").input_value() == "7d"
    assert page.problems == []


def test_dashboard_is_usable_at_phone_width(staff_page, live_server):
    page = staff_page(width=390, height=844)
    page.goto(f"{live_server.url}/dashboard/?range=12m&compare=on")
    page.wait_for_function(ALL_CHARTS_DRAWN, timeout=15_000)
    page_width = page.evaluate("document.documentElement.scrollWidth")
    assert page_width <= 390
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "dashboard-phone.png"), full_page=True)
    assert page.problems == []
