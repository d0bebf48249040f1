"""The dashboard's visitor and visit views of issue 15: the busiest pages' Visitors column and
Entry / Exit tabs, visitors beside each breakdown value, the KPI cards that chart their metric,
and the Visitors panel (signed-in vs anonymous). Every test runs on a fixed clock."""

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from .conftest import page_view_at

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_CURRENT_URL": "http://testserver/dashboard/"}
NOW = datetime(2026, 12, 2, 2, 59, 30, tzinfo=UTC)  # late in the third hour of the day
TODAY = datetime(2026, 12, 2, tzinfo=UTC)


@pytest.fixture
def staff(client, make_staff):
    client.force_login(make_staff(is_superuser=True))
    return client


@pytest.fixture
def clock(monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    return NOW


@pytest.fixture
def visits_today(clock):
    """Today before 02:59: v1 /a → /b after 60 s; v2 /a (a bounce); v3 /b → /c after 120 s; v1 back
    at 02:10 on /a, over the 30-minute gap (a second visit, a bounce). Page views: /a 3, /b 2, /c 1;
    visitors: /a 2, /b 2, /c 1."""
    page_view_at(TODAY + timedelta(hours=1), "/a", visitor="v1")
    page_view_at(TODAY + timedelta(hours=1, seconds=60), "/b", visitor="v1")
    page_view_at(TODAY + timedelta(hours=1, minutes=30), "/a", visitor="v2")
    page_view_at(TODAY + timedelta(hours=2), "/b", visitor="v3")
    page_view_at(TODAY + timedelta(hours=2, seconds=120), "/c", visitor="v3")
    page_view_at(TODAY + timedelta(hours=2, minutes=10), "/a", visitor="v1")


def csv_of(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode())))


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# --- 1. the busiest pages: Visitors, Entry and Exit -------------------------------------------


def test_busiest_pages_show_each_pages_visitors_beside_its_views(staff, visits_today):
    top = staff.get(reverse("dashboard:index"), {"range": "today"}).context["top"]
    assert [(row["identifier"], row["count"], row["visitors"].visitors) for row in top["rows"]] == [
        ("/a", 3, 2),
        ("/b", 2, 2),
        ("/c", 1, 1),
    ]
    rows = csv_of(staff.get(reverse("dashboard:panel", args=["top"]), {"range": "today", "format": "csv"}))
    assert rows[0] == ["Page views: page or item", "count", "visitors", "share of total (%)"]
    assert rows[1:] == [["/a", "3", "2", "50.0"], ["/b", "2", "2", "33.3"], ["/c", "1", "1", "16.7"]]


def test_dates_that_cut_a_day_show_a_dash_for_visitors_never_a_wider_periods_figure(staff, visits_today):
    page_view_at(TODAY - timedelta(hours=6), "/a", visitor="v9")  # yesterday 18:00: inside the last 24 hours
    page_view_at(TODAY - timedelta(hours=22), "/a", visitor="v8")  # yesterday 02:00: before them
    response = staff.get(reverse("dashboard:index"), {"range": "24h"})
    top = response.context["top"]
    assert [(row["identifier"], row["count"], row["visitors"]) for row in top["rows"]][:1] == [("/a", 4, None)]
    html = text_of(response.content.decode())
    assert "/a 4 – " in html
    assert "a page’s visitors are kept per day and these dates cut a day" in html
    rows = csv_of(staff.get(reverse("dashboard:panel", args=["top"]), {"range": "24h", "format": "csv"}))
    assert rows[0] == ["Page views: page or item", "count", "share of total (%)"]


def test_entry_tab_lists_visits_by_entry_page_with_bounce_rate_and_duration(staff, visits_today):
    response = staff.get(reverse("dashboard:index"), {"range": "today", "pages": "entry"})
    rows = response.context["top"]["rows"]
    assert [(r["identifier"], r["visits"], r["bounce_rate"], r["duration"]) for r in rows] == [
        ("/a", 3, 67, "20s"),
        ("/b", 1, 0, "2m 00s"),
    ]
    html = response.content.decode()
    assert 'aria-current="true">Entry pages</a>' in html
    assert '<th scope="col">Entry page</th>' in html
    # the tab stays in the filter form's URL, and in a row's link
    assert '<input type="hidden" name="pages" value="entry">' in html
    assert "pages=entry" in rows[0]["query"]
    table = csv_of(
        staff.get(reverse("dashboard:panel", args=["top"]), {"range": "today", "pages": "entry", "format": "csv"})
    )
    assert table == [
        ["entry page", "visits", "bounce rate (%)", "visit duration (seconds)"],
        ["/a", "3", "67", "20"],
        ["/b", "1", "0", "120"],
    ]


def test_exit_tab_lists_exits_with_the_share_of_the_pages_views_that_ended_a_visit(staff, visits_today):
    response = staff.get(reverse("dashboard:index"), {"range": "today", "pages": "exit"})
    rows = response.context["top"]["rows"]
    assert [(r["identifier"], r["exits"], r["page_views"], r["exit_rate"]) for r in rows] == [
        ("/a", 2, 3, 66.7),
        ("/b", 1, 2, 50.0),
        ("/c", 1, 1, 100.0),
    ]
    assert "/a 2 66.7%" in text_of(response.content.decode())
    table = csv_of(
        staff.get(reverse("dashboard:panel", args=["top"]), {"range": "today", "pages": "exit", "format": "csv"})
    )
    assert table[0] == ["exit page", "exits", "page views", "exit rate (%)"]
    assert table[1:] == [["/a", "2", "3", "66.7"], ["/b", "1", "2", "50.0"], ["/c", "1", "1", "100.0"]]


def test_entry_and_exit_tabs_page_through_their_rows(staff, visits_today):
    first = staff.get(reverse("dashboard:index"), {"range": "today", "pages": "exit", "rows": "10"}).context["top"]
    assert (first["first"], first["last"], first["next_query"]) == (1, 3, "")
    page_two = staff.get(reverse("dashboard:index"), {"range": "today", "pages": "exit", "page": "2"})
    assert page_two.context["top"]["rows"] == []


def test_a_type_that_is_not_page_views_has_no_tabs_and_ignores_a_tab_in_its_url(staff, clock, send):
    page_view_at(TODAY + timedelta(hours=1), "free", visitor="v1", event_type="signup")
    response = staff.get(reverse("dashboard:index"), {"type": "signup", "range": "today", "pages": "exit"})
    top = response.context["top"]
    assert (top["tabs"], top["tab"]) == ([], "views")
    assert [row["identifier"] for row in top["rows"]] == ["free"]
    assert "Visitors</th>" not in response.content.decode()


def test_hostile_page_names_are_escaped_in_every_tab(staff, clock):
    hostile = "<img src=x onerror=alert(1)>"
    page_view_at(TODAY + timedelta(hours=1), hostile, visitor="v1")
    for tab in ("", "entry", "exit"):
        html = staff.get(reverse("dashboard:index"), {"range": "today", "pages": tab}).content.decode()
        assert hostile not in html
        assert "&lt;img src=x onerror=alert(1)&gt;" in html


@pytest.mark.parametrize("tab,queries", [("", 7), ("entry", 6), ("exit", 6)])
def test_each_pages_tab_runs_a_pinned_number_of_queries(staff, visits_today, django_assert_num_queries, tab, queries):
    # session, user, sites, registry; then views: the pages, their total (shares), their visitors;
    # entry: the ranking by visits and the other visit figures; exit: the exits and the pages' views.
    with django_assert_num_queries(queries):
        staff.get(reverse("dashboard:panel", args=["top"]), {"range": "today", "pages": tab}, **HX)


# --- 3. a KPI card charts its metric ---------------------------------------------------------


def series_values(response) -> list:
    return [row["count"] for row in response.context["series"]["rows"]]


def previous_values(response) -> list:
    return [row.get("previous_count") for row in response.context["series"]["rows"]]


@pytest.fixture
def more_visits(visits_today):
    """Besides ``visits_today``: v4 at 02:20 on /c (a bounce), and yesterday at 01:15 v5 (a bounce)."""
    page_view_at(TODAY + timedelta(hours=2, minutes=20), "/c", visitor="v4")
    page_view_at(TODAY - timedelta(hours=22, minutes=45), "/a", visitor="v5")


@pytest.mark.parametrize(
    "metric,today",
    [
        ("", [0, 3, 4]),  # page views
        ("visitors", [0, 2, 3]),
        ("visits", [0, 2, 3]),
        # each hour's bounces ÷ its visits: 1 of 2, then 2 of 3 (not the mean of the hours' rates)
        ("bounce_rate", [None, 50.0, 66.7]),
        ("visit_duration", [None, 30, 40]),  # 60 s over 2 visits, 120 s over 3
        ("views_per_visit", [None, 1.5, 1.33]),  # 3 page views in 2 visits, 4 in 3
    ],
)
def test_a_card_charts_its_metric_per_hour_each_bucket_from_its_own_counts(staff, more_visits, metric, today):
    response = staff.get(reverse("dashboard:index"), {"range": "today", "metric": metric})
    assert series_values(response) == today


def test_the_comparison_line_of_a_metric_is_the_same_hours_of_yesterday(staff, more_visits):
    response = staff.get(reverse("dashboard:index"), {"range": "today", "metric": "bounce_rate", "compare": "on"})
    assert previous_values(response) == [None, 100.0, None]  # yesterday: v5's one visit, a bounce, at 01:15
    figure = response.context["series"]["figure"]
    assert [trace["name"] for trace in figure["data"]][-1] == "Period before"
    assert figure["layout"]["yaxis"]["ticksuffix"] == "%"
    visitors = staff.get(reverse("dashboard:index"), {"range": "today", "metric": "visitors", "compare": "on"})
    assert previous_values(visitors) == [0, 1, 0]


def test_the_chosen_card_is_marked_and_each_card_is_a_plain_link_and_an_htmx_one(staff, more_visits):
    page = staff.get(reverse("dashboard:index"), {"range": "today", "metric": "bounce_rate"})
    html = page.content.decode()
    current = re.findall(
        r'<a class="kpi kpi-link" [^>]*aria-current="true"[^>]*>\s*<div class="kpi-label">([^<]+)', html
    )
    assert current == ["Bounce rate"]
    links = re.findall(r'<a class="kpi kpi-link" href="([^"]+)" hx-get="([^"]+)"', html)
    assert len(links) == 6 and all(href == hx for href, hx in links)
    assert [href for href, _ in links if "metric=" not in href] == [links[0][0]]  # Total: page views, no metric
    assert "metric=visit_duration" in links[-1][0]
    assert page.context["state"].title == "Bounce rate per hour, 2 December 2026 (so far)"
    assert '<input type="hidden" name="metric" value="bounce_rate">' in html  # kept when a filter changes
    tabs = [tab["query"] for tab in page.context["top"]["tabs"]]
    assert len(tabs) == 3 and all("&metric=bounce_rate&" in f"&{query}&" for query in tabs)  # kept by other links
    default = staff.get(reverse("dashboard:index"), {"range": "today"}).content.decode()
    assert re.findall(r'aria-current="true"[^>]*>\s*<div class="kpi-label">([^<]+)', default) == ["Total"]
    swapped = staff.get(reverse("dashboard:index"), {"range": "today", "metric": "visits"}, **HX)
    assert swapped.content.decode().lstrip().startswith('<div id="dashboard"')
    figure = re.search(r'<script id="fig-series" type="application/json">(.*?)</script>', swapped.content.decode())
    assert json.loads(figure.group(1))["data"][0]["y"] == [0, 2, 3]


def test_a_metric_csv_is_the_charted_numbers_with_their_unit(staff, more_visits):
    response = staff.get(
        reverse("dashboard:panel", args=["series"]), {"range": "today", "metric": "bounce_rate", "format": "csv"}
    )
    assert csv_of(response) == [
        ["hour starting (UTC)", "Bounce rate (%)"],
        ["2026-12-02T00:00:00+00:00", ""],
        ["2026-12-02T01:00:00+00:00", "50.0"],
        ["2026-12-02T02:00:00+00:00", "66.7"],
    ]


def test_a_pages_visitors_per_hour_are_not_kept_and_the_panel_says_so_with_a_link_per_day(staff, more_visits):
    response = staff.get(reverse("dashboard:index"), {"range": "today", "metric": "visitors", "identifier": "/a"})
    html = text_of(response.content.decode())
    assert "Visitors of a page or a value are kept per day, not per hour." in html
    assert "Show one point per day" in html
    assert "granularity=D" in response.context["series"]["day_query"]
    week = staff.get(reverse("dashboard:index"), {"range": "7d", "metric": "visitors", "identifier": "/a"})
    assert [row["count"] for row in week.context["series"]["rows"]][-1] == 2


def test_a_type_that_is_not_page_views_ignores_a_metric(staff, clock):
    page_view_at(TODAY + timedelta(hours=1), "free", visitor="v1", event_type="signup")
    response = staff.get(reverse("dashboard:index"), {"type": "signup", "range": "today", "metric": "visitors"})
    assert response.context["state"].metric == "views"
    assert series_values(response) == [0, 1, 0]
    assert "kpi-link" not in response.content.decode()


@pytest.mark.parametrize("metric,queries", [("visitors", 5), ("bounce_rate", 5)])
def test_a_metric_series_runs_a_pinned_number_of_queries(
    staff, more_visits, django_assert_num_queries, metric, queries
):
    # session, user, sites, registry; the metric's series (one query); with Compare, one more.
    with django_assert_num_queries(queries):
        staff.get(reverse("dashboard:panel", args=["series"]), {"range": "today", "metric": metric}, **HX)
    with django_assert_num_queries(queries + 1):
        staff.get(
            reverse("dashboard:panel", args=["series"]), {"range": "today", "metric": metric, "compare": "on"}, **HX
        )


# --- 4. the Visitors panel: signed-in vs anonymous --------------------------------------------


def visit_at(at, *, visitor: str, signed_in: bool = False):
    """One page view of ``visitor`` at ``at``: a signed-in user (the same key every day) or anonymous."""
    from beacons.ingest.parsing import EventInput
    from beacons.ingest.recording import RequestContext, events_record

    from .conftest import first_site

    context = RequestContext(
        site_id=first_site().pk,
        received_at=at,
        user_agent="Mozilla/5.0 Chrome/131.0",
        referer="",
        source="beacon",
        tracked=True,
        signed_visitor=visitor if signed_in else "",
    )
    context.__dict__["visitor_hash"] = visitor
    return events_record(events=[EventInput(event_type="page_view", identifier="/")], context=context)


@pytest.fixture
def identified(clock, settings):
    """20 November: b1 anonymous, s3 signed in. 1 December: a1, a2 anonymous, s1 signed in.
    2 December (today, to 02:59): a3 anonymous, s1 and s2 signed in."""
    settings.BEACONS_IDENTIFY_USERS = True
    nov20, dec1 = datetime(2026, 11, 20, 10, tzinfo=UTC), TODAY - timedelta(hours=14)
    visit_at(nov20, visitor="b1")
    visit_at(nov20, visitor="s3", signed_in=True)
    for visitor in ("a1", "a2"):
        visit_at(dec1, visitor=visitor)
    visit_at(dec1, visitor="s1", signed_in=True)
    visit_at(TODAY + timedelta(hours=1), visitor="a3")
    for visitor in ("s1", "s2"):
        visit_at(TODAY + timedelta(hours=2), visitor=visitor, signed_in=True)


def test_visitors_panel_shows_signed_in_and_anonymous_visitors_per_day(staff, identified):
    panel = staff.get(reverse("dashboard:index"), {"range": "7d"}).context["visitors"]
    assert [values for _, _, values in panel["rows"]] == [[0, 0]] * 5 + [[1, 2], [2, 1]]
    assert [trace["name"] for trace in panel["figure"]["data"]] == ["Signed-in visitors", "Anonymous visitors"]
    # a signed-in user is the same visitor on both days; the anonymous ones are five others
    assert (panel["signed_in"].visitors, panel["all"].visitors, panel["share"]) == (2, 5, 40.0)


def test_conversion_rate_changes_on_the_same_whole_days_of_the_week_before(staff, identified):
    response = staff.get(reverse("dashboard:index"), {"range": "7d"})
    panel = response.context["visitors"]
    # 26 Nov–1 Dec: 1 signed in of 3 (33 %) against 19–24 Nov: 1 of 2 (50 %); today is not over
    assert panel["change_percent"] == -33
    html = text_of(response.content.decode())
    assert "40.0% 2 signed-in of 5 visitors, last 7 days; ▼ 33% vs " + panel["compared_label"] in html


def test_today_per_hour_shows_visitors_per_day_and_no_change_before_a_whole_day_is_counted(staff, identified):
    panel = staff.get(reverse("dashboard:index"), {"range": "today"}).context["visitors"]
    assert panel["per"] == "day"
    assert [values for _, _, values in panel["rows"]] == [[2, 1]]
    assert (panel["share"], panel["change_percent"]) == (66.7, None)


def test_dates_that_cut_a_day_give_no_conversion_rate_rather_than_a_wrong_one(staff, identified):
    response = staff.get(reverse("dashboard:index"), {"range": "24h"})
    assert response.context["visitors"]["share"] is None
    html = response.content.decode()
    assert "visitors are told apart per day, and these dates cut a day" in html
    # yesterday after 03:00 is inside the dates, but not all of yesterday: no bar rather than the whole day's
    assert [values for _, _, values in response.context["visitors"]["rows"]] == [[None, None], [2, 1]]
    assert "A day the dates cut has no bar" in html


def test_without_identified_users_the_panel_says_so_in_one_sentence(staff, clock, settings):
    settings.BEACONS_IDENTIFY_USERS = False
    visit_at(TODAY + timedelta(hours=1), visitor="a1")
    response = staff.get(reverse("dashboard:index"), {"range": "today"})
    assert response.context["visitors"]["not_identified"]
    html = response.content.decode()
    assert "Signed-in users are not told apart from anonymous visitors here" in html
    assert 'data-figure="fig-visitors"' not in html


def test_the_visitors_csv_has_each_days_signed_in_and_anonymous_visitors(staff, identified):
    rows = csv_of(staff.get(reverse("dashboard:panel", args=["visitors"]), {"range": "7d", "format": "csv"}))
    assert rows[0] == ["day starting (UTC)", "signed-in visitors", "anonymous visitors"]
    assert rows[-2:] == [["2026-12-01T00:00:00+00:00", "1", "2"], ["2026-12-02T00:00:00+00:00", "2", "1"]]


def test_a_type_that_is_not_page_views_has_no_visitors_panel(staff, clock):
    page_view_at(TODAY + timedelta(hours=1), "free", visitor="v1", event_type="signup")
    response = staff.get(reverse("dashboard:index"), {"type": "signup", "range": "today"})
    assert response.context["visitors"] is None
    assert 'id="visitors"' not in response.content.decode()


# --- the demo shows all of it ----------------------------------------------------------------


def test_the_demo_shows_page_and_value_visitors_entry_and_exit_pages_and_signed_in_visitors(staff, clock):
    # At 02:59: just after midnight today's row would hold no anonymous visitor yet.
    from django.core.management import call_command

    call_command("beacons_demo", hits=5000, identifiers=30, days=40, errors=0, seed=1)
    page = staff.get(reverse("dashboard:index"), {"range": "30d"})
    top = page.context["top"]["rows"]
    assert all(0 < row["visitors"].visitors <= row["count"] for row in top)
    all_visitors = int(page.context["visitors"]["all"].visitors)
    sources = page.context["sources"]["rows"]
    assert all(0 < row["visitors"].visitors < all_visitors for row in sources)
    panel = page.context["visitors"]
    assert not panel["not_identified"] and 5 < panel["share"] < 30  # about 14 % sign in
    assert all(signed is not None and anonymous for _, _, (signed, anonymous) in panel["rows"])
    entry = staff.get(reverse("dashboard:index"), {"range": "30d", "pages": "entry"}).context["top"]["rows"]
    assert entry and all(row["visits"] and row["bounce_rate"] is not None for row in entry)
    exits = staff.get(reverse("dashboard:index"), {"range": "30d", "pages": "exit"}).context["top"]["rows"]
    assert exits and all(0 < row["exit_rate"] <= 100 for row in exits)


def test_an_unknown_metric_or_tab_falls_back_to_page_views_never_an_error(staff, visits_today):
    response = staff.get(reverse("dashboard:index"), {"range": "today", "metric": "<b>x", "pages": "../etc"})
    assert response.status_code == 200
    state = response.context["state"]
    assert (state.metric, state.pages_tab) == ("views", "views")
    assert "<b>x" not in response.content.decode()
    for name in ("series", "top", "visitors"):
        panel = staff.get(
            reverse("dashboard:panel", args=[name]), {"metric": "x" * 5000, "pages": "exit", "format": "csv"}
        )
        assert panel.status_code == 200
