"""The dashboard's visitor and visit views of issue 15: the busiest pages' Visitors column and
Entry / Exit tabs, visitors beside each breakdown value, the KPI cards that chart their metric,
and the Visitors panel (signed-in vs anonymous). Every test runs on a fixed clock."""

import csv
import io
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
