"""The dashboard in a real headless Chromium: charts draw under the strict CSP, filters swap
the panels with htmx and push the URL, and the page is usable at phone width.

Screenshots go to test-output/ (dashboard.png, dashboard-phone.png): look at them.
"""

import os
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; the ORM calls here are still synchronous.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

from datetime import UTC

from django.core.management import call_command
from django.test import Client

from .conftest import first_site

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
    assert page.locator(".chart[data-figure]").count() == 3  # the series, the visitors, the event types
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

    # A KPI card charts its metric in place, and marks itself.
    page.evaluate("window.__sameDocument = true")
    page.locator("a.kpi-link", has_text="Bounce rate").click()
    page.wait_for_function("() => location.search.includes('metric=bounce_rate')")
    page.wait_for_function(ALL_CHARTS_DRAWN)
    assert page.locator("#series h2").inner_text().startswith("Bounce rate per day")
    assert page.locator("a.kpi-link[aria-current=true] .kpi-label").inner_text().lower() == "bounce rate"
    assert page.evaluate("window.__sameDocument") is True
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


# Per chart (subplots' axes are x2, y2...: their ticks are g.x2tick): its x tick labels (per axis, as shown), its y tick labels, and which of them
# overlap the y-axis title, each other, or the edge of the chart.
CHART_LABELS = """(chart) => {
  const frame = chart.getBoundingClientRect();
  const boxes = (selector, root) => [...(root || chart).querySelectorAll(selector)]
    .filter(node => node.textContent.trim() && node.getBoundingClientRect().width > 0)
    .map(node => { const b = node.getBoundingClientRect();
                   return {text: node.textContent, left: b.left, right: b.right, top: b.top, bottom: b.bottom}; });
  const meets = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  const result = {x: [], y: [], titleOverTick: [], crowded: [], cut: []};
  chart.querySelectorAll('g.xaxislayer-above').forEach(axis => {
    const ticks = boxes('g[class$="tick"] text', axis).sort((a, b) => a.left - b.left);
    if (!ticks.length) return;
    result.x.push(ticks.map(t => t.text));
    ticks.slice(1).forEach((t, i) => { if (t.left < ticks[i].right + 2) result.crowded.push([ticks[i].text, t.text]); });
    ticks.forEach(t => { if (t.left < frame.left - 1 || t.right > frame.right + 1 || t.right > window.innerWidth) result.cut.push(t.text); });
  });
  chart.querySelectorAll('g.yaxislayer-above').forEach(axis => result.y.push(boxes('g[class$="tick"] text', axis).map(t => t.text)));
  const titles = boxes('g[class^="g-y"][class$="title"] text');
  const yticks = boxes('g.yaxislayer-above g[class$="tick"] text');
  titles.forEach(title => yticks.forEach(tick => { if (meets(title, tick)) result.titleOverTick.push([title.text, tick.text]); }));
  return result;
}"""
SHOTS = Path(os.environ.get("DASHBOARD_SHOTS", str(OUTPUT)))
VIEWS = {
    "today": "range=today",
    "7d-compare": "range=7d&compare=on",
    "month": "range=month",
    "12m": "range=12m",
    "custom": "range=custom&start={start}&end={end}",
    "own-scale": "range=30d&scale=own",
}


@pytest.mark.parametrize("width", [1400, 390])
def test_no_chart_repeats_a_tick_label_or_lets_a_title_or_date_collide_or_get_cut(staff_page, live_server, width):
    from datetime import date, datetime, timedelta

    from beacons.counting.increments import Hit, aggregates_add, increments_for
    from beacons.models import BeaconDefinition

    # One busy day five weeks ago: six-digit tick labels ("250,000"), the widest a y title must clear.
    page_view = BeaconDefinition.objects.get(slug="page_view")
    hit = Hit(first_site().pk, page_view.pk, tuple(page_view.granularity_codes), "/launch")
    busy = increments_for(hits=[hit], received_at=datetime.now(UTC) - timedelta(days=35))
    aggregates_add(increments={key: n * 250_000 for key, n in busy.items()})
    start, end = date.today() - timedelta(days=45), date.today() - timedelta(days=5)
    page = staff_page(width=width, height=900)
    SHOTS.mkdir(parents=True, exist_ok=True)
    for name, query in VIEWS.items():
        page.goto(f"{live_server.url}/dashboard/?{query.format(start=start, end=end)}")
        page.wait_for_function(ALL_CHARTS_DRAWN, timeout=15_000)
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
        for chart in page.locator(".chart[data-figure]").all():
            labels = chart.evaluate(CHART_LABELS)
            assert labels["x"], (name, width)
            for ticks in labels["x"] + labels["y"]:
                assert len(ticks) == len(set(ticks)), (name, width, ticks)
            assert labels["titleOverTick"] == [], (name, width)
            assert labels["crowded"] == [] and labels["cut"] == [], (name, width, labels)
        assert page.evaluate("document.documentElement.scrollWidth") <= width, name
        cut_cards = page.evaluate(
            "() => [...document.querySelectorAll('.kpi-value')].filter(e => e.scrollWidth > e.clientWidth).map(e => e.textContent.trim())"
        )
        assert cut_cards == [], (name, width)
    assert page.problems == []
