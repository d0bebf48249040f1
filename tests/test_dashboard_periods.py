"""Dashboard numbers staff can trust: which dates a period covers, what it is compared with,
partial buckets, the busiest-pages table, live now, colours and axis labels.

Every date test runs on a fixed clock at an awkward moment (00:05, 02:59, 23:59, the last day
of a month, both DST changes), so it means the same thing whatever day the suite runs.
"""

import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone as django_timezone

from beacons.models import BeaconDefinition
from dashboard import charts
from dashboard.forms import dashboard_state

from .conftest import first_site_zone
from .test_dashboard import csv_rows, figure_in, hits_add, page_view

pytestmark = pytest.mark.django_db
UTC = timezone.utc  # noqa: UP017  (the suite's spelling)
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def utc(*args):
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def staff(client, make_staff):
    client.force_login(make_staff())
    return client


@pytest.fixture
def clock(monkeypatch):
    """Stop the clock at a chosen moment for the views and the queries."""

    def stop_at(moment: datetime) -> datetime:
        monkeypatch.setattr(django_timezone, "now", lambda: moment)
        return moment

    return stop_at


def dashboard(client, **params):
    return client.get(reverse("dashboard:index"), params)


def note_text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# --- 1. a running period is compared with the same elapsed part of the period before ----------


def test_today_at_0259_is_compared_with_yesterday_up_to_the_same_time(staff, clock):
    clock(utc(2026, 12, 2, 2, 59))
    definition = page_view()
    hits_add(definition, "/", utc(2026, 12, 1, 1, 10), 53)  # 00:00–02:59 yesterday
    hits_add(definition, "/", utc(2026, 12, 1, 22, 0), 140)  # later yesterday: not comparable yet
    hits_add(definition, "/", utc(2026, 12, 2, 1, 30), 50)
    response = dashboard(staff, range="today")
    kpis = response.context["kpis"]
    assert (kpis["total"], kpis["previous"], kpis["change_percent"]) == (50, 53, -6)
    assert "vs 00:00–02:59 yesterday (53)" in note_text(response.content.decode())
    assert response.context["state"].title == "Page views per hour, 2 December 2026 (so far)"


# Page views keep minute counters (for 2 days): the change compares both periods to the minute.
# A type without minutes compares both to the start of the current hour. Each case checks what
# the card says, the figures compared and the change.


def downloads():
    """A type that keeps no minute counters (hour, day, month, year)."""
    return BeaconDefinition.objects.get_or_create(
        slug="download", defaults={"name": "Downloads", "granularities": "H,D,MO,Y"}
    )[0]


def kpi_card(response) -> tuple:
    kpis = response.context["kpis"]
    return kpis["total"], kpis["previous"], kpis["change_percent"]


def test_today_at_0205_is_compared_with_yesterday_to_the_same_minute(staff, clock):
    clock(utc(2026, 12, 2, 2, 5))
    hits_add(page_view(), "/", utc(2026, 12, 1, 0, 30), 10)
    hits_add(page_view(), "/", utc(2026, 12, 1, 2, 4), 2)  # the last minute before 02:05
    hits_add(page_view(), "/", utc(2026, 12, 1, 2, 5), 100)  # 02:05 and later yesterday: not comparable yet
    hits_add(page_view(), "/", utc(2026, 12, 2, 1), 15)
    response = dashboard(staff, range="today")
    assert kpi_card(response) == (15, 12, 25)
    assert "▲ up 25% vs 00:00–02:05 yesterday (12)" in note_text(response.content.decode())


def test_today_at_0205_without_minutes_compares_both_days_to_0200(staff, clock):
    clock(utc(2026, 12, 2, 2, 5))
    hits_add(downloads(), "/", utc(2026, 12, 1, 1, 30), 10)
    hits_add(downloads(), "/", utc(2026, 12, 1, 2, 3), 100)  # yesterday's 02:00 hour: today's is not over
    hits_add(downloads(), "/", utc(2026, 12, 2, 1, 10), 12)
    hits_add(downloads(), "/", utc(2026, 12, 2, 2, 1), 5)  # counted in the total, not in the change
    response = dashboard(staff, type="download", range="today")
    assert kpi_card(response) == (17, 10, 20)
    assert "▲ up 20% vs yesterday, both to 02:00 (10)" in note_text(response.content.decode())


def test_today_with_nothing_before_the_running_hour_is_down_100_percent(staff, clock):
    clock(utc(2026, 12, 2, 2, 5))
    hits_add(downloads(), "/", utc(2026, 12, 1, 1, 30), 10)
    hits_add(downloads(), "/", utc(2026, 12, 2, 2, 1), 5)  # the running hour: in the total, not in the change
    response = dashboard(staff, type="download", range="today")
    assert kpi_card(response) == (5, 10, -100)
    assert "▼ down 100% vs yesterday, both to 02:00 (10)" in note_text(response.content.decode())


def test_minutes_kept_for_less_than_the_comparison_reaches_back_compare_whole_hours(staff, clock):
    clock(utc(2026, 12, 2, 2, 5))
    BeaconDefinition.objects.filter(slug="page_view").update(fine_retention_days=1)
    hits_add(page_view(), "/", utc(2026, 12, 1, 1, 30), 10)
    hits_add(page_view(), "/", utc(2026, 12, 1, 2, 4), 100)  # its minute row may be purged already
    hits_add(page_view(), "/", utc(2026, 12, 2, 1), 15)
    response = dashboard(staff, range="today")
    assert kpi_card(response) == (15, 10, 50)
    assert "vs yesterday, both to 02:00 (10)" in note_text(response.content.decode())


def test_today_at_0005_is_compared_with_the_first_five_minutes_of_yesterday(staff, clock):
    clock(utc(2026, 12, 2, 0, 5))
    hits_add(page_view(), "/", utc(2026, 12, 1, 0, 3), 4)
    hits_add(page_view(), "/", utc(2026, 12, 1, 0, 30), 9)
    hits_add(page_view(), "/", utc(2026, 12, 2, 0, 1), 3)
    response = dashboard(staff, range="today")
    assert kpi_card(response) == (3, 4, -25)
    assert "▼ down 25% vs 00:00–00:05 yesterday (4)" in note_text(response.content.decode())


def test_today_at_0005_without_minutes_waits_for_the_first_whole_hour(staff, clock):
    clock(utc(2026, 12, 2, 0, 5))
    hits_add(downloads(), "/", utc(2026, 12, 1, 0, 30), 4)
    hits_add(downloads(), "/", utc(2026, 12, 2, 0, 1), 3)
    response = dashboard(staff, type="download", range="today")
    assert kpi_card(response) == (3, 0, None)
    assert "not yet compared from 01:00, when the first whole hour is counted" in note_text(response.content.decode())


def test_a_type_kept_per_day_compares_whole_days_only(staff, clock):
    clock(utc(2026, 12, 2, 14, 5))
    daily = BeaconDefinition.objects.create(slug="signup", name="Sign-ups", granularities="D,MO,Y")
    hits_add(daily, "", utc(2026, 11, 24, 9), 4)  # the 7 days before, their first 6 whole days
    hits_add(daily, "", utc(2026, 11, 25, 9), 50)  # their 7th day: today is not over
    hits_add(daily, "", utc(2026, 11, 26, 9), 2)
    hits_add(daily, "", utc(2026, 12, 2, 9), 5)  # today: in the total, not in the change
    response = dashboard(staff, type="signup", range="7d")
    assert kpi_card(response) == (7, 4, -50)
    assert "vs 19–24 November 2026, both in whole days (4)" in note_text(response.content.decode())
    response = dashboard(staff, type="signup", range="today")
    assert kpi_card(response) == (5, 0, None)
    assert "compared from 3 December 2026 00:00, when the first whole day is counted" in note_text(
        response.content.decode()
    )


def test_today_at_0001_is_compared_with_the_first_minute_of_yesterday(staff, clock):
    clock(utc(2026, 12, 2, 0, 1))
    hits_add(page_view(), "/", utc(2026, 12, 1, 0, 0, 30), 4)
    hits_add(page_view(), "/", utc(2026, 12, 1, 0, 1), 40)  # yesterday's second minute: not comparable yet
    hits_add(page_view(), "/", utc(2026, 12, 2, 0, 0, 10), 5)
    response = dashboard(staff, range="today")
    assert kpi_card(response) == (5, 4, 25)
    assert "vs 00:00–00:01 yesterday (4)" in note_text(response.content.decode())


def test_seven_days_with_minutes_kept_long_enough_are_compared_to_the_minute(staff, clock):
    clock(utc(2026, 12, 2, 2, 5))
    BeaconDefinition.objects.filter(slug="page_view").update(fine_retention_days=30)
    hits_add(page_view(), "/", utc(2026, 11, 25, 2, 4), 4)  # the last minute before 02:05, 7 days back
    hits_add(page_view(), "/", utc(2026, 11, 25, 2, 5), 40)
    hits_add(page_view(), "/", utc(2026, 12, 1, 9), 5)
    response = dashboard(staff, range="7d")
    assert kpi_card(response) == (5, 4, 25)
    assert "vs 19–25 November 2026, to 02:05 (4)" in note_text(response.content.decode())


def test_this_month_on_its_first_day_is_compared_with_the_first_day_of_last_month_by_date(staff, clock):
    clock(utc(2026, 12, 1, 10, 5))
    hits_add(page_view(), "/", utc(2026, 11, 1, 9), 4)
    hits_add(page_view(), "/", utc(2026, 11, 1, 10, 1), 40)  # November's 10:00 hour: today's is not over
    hits_add(page_view(), "/", utc(2026, 12, 1, 9), 5)
    response = dashboard(staff, range="month")
    assert kpi_card(response) == (5, 4, 25)
    assert "vs 1 November 2026, both to 10:00 (4)" in note_text(response.content.decode())  # not "yesterday"


def test_this_month_of_a_type_kept_per_day_is_compared_with_the_same_whole_days_of_last_month(staff, clock):
    clock(utc(2026, 12, 3, 14, 5))
    daily = BeaconDefinition.objects.create(slug="signup", name="Sign-ups", granularities="D,MO,Y")
    hits_add(daily, "", utc(2026, 11, 2, 9), 4)
    hits_add(daily, "", utc(2026, 11, 3, 9), 40)  # the 3rd: today is not over
    hits_add(daily, "", utc(2026, 12, 1, 9), 5)
    response = dashboard(staff, type="signup", range="month")
    assert kpi_card(response) == (5, 4, 25)
    assert "vs 1–2 November 2026, both in whole days (4)" in note_text(response.content.decode())


def test_today_at_2359_is_compared_with_yesterday_to_2359(staff, clock):
    clock(utc(2026, 12, 2, 23, 59))
    hits_add(page_view(), "/", utc(2026, 12, 1, 23, 30), 5)
    hits_add(page_view(), "/", utc(2026, 12, 1, 23, 59), 50)  # yesterday's last minute: today's is running
    hits_add(page_view(), "/", utc(2026, 11, 30, 23, 30), 7)  # the day before yesterday
    hits_add(page_view(), "/", utc(2026, 12, 2, 12), 10)
    response = dashboard(staff, range="today")
    assert kpi_card(response) == (10, 5, 100)
    assert "vs 00:00–23:59 yesterday (5)" in note_text(response.content.decode())


def test_today_at_2359_without_minutes_compares_both_days_to_2300(staff, clock):
    clock(utc(2026, 12, 2, 23, 59))
    hits_add(downloads(), "/", utc(2026, 12, 1, 12), 10)
    hits_add(downloads(), "/", utc(2026, 12, 1, 23, 30), 5)  # yesterday's 23:00 hour
    hits_add(downloads(), "/", utc(2026, 12, 2, 12), 20)
    hits_add(downloads(), "/", utc(2026, 12, 2, 23, 10), 1)
    response = dashboard(staff, type="download", range="today")
    assert kpi_card(response) == (21, 10, 100)
    assert "vs yesterday, both to 23:00 (10)" in note_text(response.content.decode())


def test_this_month_so_far_is_compared_with_the_same_days_of_last_month_to_the_hour(staff, clock):
    clock(utc(2026, 12, 2, 2, 59))  # 2 November 02:59 is older than the 2 days of minute counters
    hits_add(page_view(), "/", utc(2026, 11, 1, 12), 10)
    hits_add(page_view(), "/", utc(2026, 11, 2, 2, 30), 1)  # November's 02:00 hour: today's is not over
    hits_add(page_view(), "/", utc(2026, 11, 15), 100)  # later in November: not comparable yet
    hits_add(page_view(), "/", utc(2026, 12, 1, 9), 20)
    response = dashboard(staff, range="month")
    assert kpi_card(response) == (20, 10, 100)
    assert "vs 1–2 November 2026, both to 02:00 (10)" in note_text(response.content.decode())


@pytest.mark.parametrize("with_minutes", [True, False])
def test_on_the_last_day_of_a_month_the_shorter_month_before_counts_whole_against_whole_hours(
    staff, clock, with_minutes
):
    clock(utc(2026, 3, 31, 23, 59))
    definition = page_view() if with_minutes else downloads()
    hits_add(definition, "/", utc(2026, 2, 28, 12), 7)
    hits_add(definition, "/", utc(2026, 3, 10), 14)
    hits_add(definition, "/", utc(2026, 3, 31, 23, 30), 3)  # the running hour: in the total, not the change
    response = dashboard(staff, type=definition.slug, range="month")
    assert kpi_card(response) == (17, 7, 100)
    assert "vs February 2026, this period to 23:00 (7)" in note_text(response.content.decode())


def test_today_on_the_day_clocks_go_forward_compares_the_same_wall_clock_minute(staff, clock):
    first_site_zone("Europe/Berlin")
    clock(utc(2026, 3, 29, 8, 30))  # 10:30 CEST on the 23-hour day
    hits_add(page_view(), "/", utc(2026, 3, 28, 9, 20), 4)  # 10:20 CET yesterday
    hits_add(page_view(), "/", utc(2026, 3, 28, 9, 40), 6)  # 10:40 CET yesterday: later than now
    hits_add(page_view(), "/", utc(2026, 3, 29, 0, 30), 2)  # 01:30 CET today
    response = dashboard(staff, range="today")
    assert kpi_card(response) == (2, 4, -50)
    assert "vs 00:00–10:30 yesterday (4)" in note_text(response.content.decode())


def test_today_on_the_day_clocks_go_forward_without_minutes_compares_the_same_wall_clock_hours(staff, clock):
    first_site_zone("Europe/Berlin")
    clock(utc(2026, 3, 29, 8, 30))  # 10:30 CEST
    hits_add(downloads(), "/", utc(2026, 3, 28, 8, 30), 4)  # 09:30 CET yesterday
    hits_add(downloads(), "/", utc(2026, 3, 28, 9, 10), 6)  # 10:10 CET yesterday: today's 10:00 hour runs
    hits_add(downloads(), "/", utc(2026, 3, 29, 0, 30), 2)  # 01:30 CET today
    hits_add(downloads(), "/", utc(2026, 3, 29, 8, 10), 1)  # 10:10 CEST today: in the total only
    response = dashboard(staff, type="download", range="today")
    assert kpi_card(response) == (3, 4, -50)
    assert "vs yesterday, both to 10:00 (4)" in note_text(response.content.decode())


def test_today_on_the_day_clocks_go_forward_draws_the_hours_that_exist(staff, clock):
    first_site_zone("Europe/Berlin")
    clock(utc(2026, 3, 29, 8, 30))
    hits_add(page_view(), "/", utc(2026, 3, 29, 0, 30), 2)
    response = dashboard(staff, range="today")
    ticks = figure_in(response, "fig-series")["layout"]["xaxis"]["ticktext"]
    assert ticks == ["00:00", "01:00", "03:00", "04:00", "05:00", "06:00", "07:00", "08:00", "09:00", "10:00"]


def test_the_hour_repeated_when_clocks_go_back_gets_two_distinct_tick_labels(settings):
    settings.BEACONS_TIME_ZONE = "Europe/Berlin"
    moments = [utc(2026, 10, 24, 22) + timedelta(hours=h) for h in range(25)]  # 25 hours of 25 October
    labels = charts.tick_labels(moments, "H")
    assert labels[:5] == ["00:00", "01:00", "02:00 +02", "02:00 +01", "03:00"]
    assert len(set(labels)) == 25


def test_seven_days_compare_line_is_the_seven_days_before_to_the_same_time(staff, clock):
    clock(utc(2026, 12, 2, 2, 59))
    hits_add(page_view(), "/", utc(2026, 11, 19, 12), 8)  # first of the 7 days before
    hits_add(page_view(), "/", utc(2026, 11, 25, 2, 0), 3)  # their last day, before 03:00
    hits_add(page_view(), "/", utc(2026, 11, 25, 4, 0), 30)  # their last day, after 03:00
    hits_add(page_view(), "/", utc(2026, 12, 1), 1)
    response = dashboard(staff, range="7d", compare="on")
    previous = figure_in(response, "fig-series")["data"][-1]
    assert previous["name"] == "Period before"
    assert previous["customdata"][0] == "2026-11-19T00:00" and previous["y"] == [8, 0, 0, 0, 0, 0, 3]
    assert response.context["kpis"]["previous"] == 8  # both 7 days to 02:00: today's 02:00 hour runs


# --- 2. the chosen dates decide the totals, whatever the point size -------------------------


def test_point_size_never_changes_the_totals_and_a_coarser_one_than_the_dates_is_not_offered(staff, clock):
    clock(utc(2026, 12, 2, 10))
    hits_add(page_view(), "/", utc(2026, 1, 5), 1000)  # same year, long before the 30 days
    hits_add(page_view(), "/", utc(2026, 11, 1), 300)  # same month as the first day, before it
    hits_add(page_view(), "/", utc(2026, 11, 10), 40)
    hits_add(page_view(), "/", utc(2026, 12, 2, 9), 2)
    totals = {}
    for granularity in ["", "H", "D", "MO", "Y"]:
        response = dashboard(staff, range="30d", granularity=granularity)
        totals[granularity] = response.context["kpis"]["total"]
        assert response.context["state"].granularity in ("H", "D")
    assert set(totals.values()) == {42}
    response = dashboard(staff, range="30d", granularity="Y")
    assert "One point per year is longer than these dates" in response.content.decode()
    offered = [value for value, _ in response.context["form"].fields["granularity"].choices]
    assert offered == ["", "H", "D"]


def test_buckets_cut_by_the_dates_count_only_their_part_and_are_drawn_lighter(staff, clock):
    clock(utc(2026, 12, 2, 10))
    for day, n in [
        ((2026, 1, 10), 100),
        ((2026, 1, 20), 1),
        ((2026, 2, 14), 2),
        ((2026, 3, 20), 4),
        ((2026, 3, 25), 200),
    ]:
        hits_add(page_view(), "/", utc(*day, 12), n)
    response = dashboard(staff, range="custom", start="2026-01-15", end="2026-03-20", granularity="MO")
    assert response.context["kpis"]["total"] == 7
    trace = figure_in(response, "fig-series")["data"][0]
    assert trace["y"] == [1, 2, 4]
    assert trace["marker"]["opacity"] == [0.4, 1, 0.4]
    assert trace["customdata"] == [" (part inside the dates)", "", " (part inside the dates)"]
    assert response.context["state"].title == "Page views per month, 15 January – 20 March 2026"


def test_the_unfinished_last_day_is_drawn_as_so_far(staff, clock):
    clock(utc(2026, 12, 2, 2, 59))
    response = dashboard(staff, range="7d")
    hits_add(page_view(), "/", utc(2026, 12, 2, 1), 1)
    trace = figure_in(dashboard(staff, range="7d"), "fig-series")["data"][0]
    assert trace["customdata"] == [""] * 6 + [" so far"]
    assert trace["marker"]["opacity"] == [1] * 6 + [0.4]
    assert response.context["state"].title == "Page views per day, 26 November – 2 December 2026 (today so far)"


def test_a_long_line_draws_its_running_end_dotted_with_a_so_far_marker(staff, clock):
    clock(utc(2026, 12, 2, 2, 59))
    hits_add(page_view(), "/", utc(2026, 12, 1, 12), 5)
    data = figure_in(dashboard(staff, range="30d"), "fig-series")["data"]
    whole, dotted, marker = data[:3]
    assert whole["y"][-1] is None and whole["y"][-2] == 5
    assert dotted["line"]["dash"] == "dot" and dotted["y"][-2:] == [5, 0]
    assert marker["customdata"] == [" so far"] and marker["x"] == ["2026-12-02T00:00"]


# --- 3. last 12 months ---------------------------------------------------------------------


def test_last_12_months_is_this_month_so_far_and_11_whole_months_compared_a_year_earlier(staff, clock):
    clock(utc(2026, 12, 2, 2, 59))
    hits_add(page_view(), "/", utc(2025, 2, 1), 10)
    hits_add(page_view(), "/", utc(2025, 12, 15), 100)  # after 2 December 2025: not comparable yet
    hits_add(page_view(), "/", utc(2026, 1, 1), 30)
    response = dashboard(staff, range="12m")
    state = response.context["state"]
    assert (state.start, state.end) == (utc(2026, 1, 1), utc(2027, 1, 1))
    assert state.previous_period == (utc(2025, 1, 1), utc(2025, 12, 2, 3))
    assert (
        state.title
        == "Page views per month, January – December 2026 (this month so far and the 11 whole months before)"
    )
    assert (response.context["kpis"]["total"], response.context["kpis"]["previous"]) == (30, 10)
    assert "vs 1 January – 2 December 2025, both to 02:00 (10)" in note_text(response.content.decode())
    layout = figure_in(response, "fig-series")["layout"]["xaxis"]
    assert layout["ticktext"] == [f"{month} 2026" for month in MONTHS]
    assert len(layout["tickvals"]) == 12


def test_this_month_has_one_distinct_tick_label_per_day(staff, clock):
    clock(utc(2026, 12, 2, 10))
    hits_add(page_view(), "/", utc(2026, 12, 1, 10), 3)
    layout = figure_in(dashboard(staff, range="month"), "fig-series")["layout"]["xaxis"]
    assert (layout["tickmode"], layout["tickvals"], layout["ticktext"]) == (
        "array",
        ["2026-12-01T00:00", "2026-12-02T00:00"],
        ["1 Dec", "2 Dec"],
    )


# --- 4. busiest pages: change, sort, paging, CSV of every row -------------------------------


@pytest.fixture
def sixty_pages(clock):
    clock(utc(2026, 12, 2, 12))
    definition = page_view()
    for i in range(60):
        hits_add(definition, f"/p{i:02}", utc(2026, 11, 30), 100 - i)  # this week
    hits_add(definition, "/p00", utc(2026, 11, 20), 150)  # the week before: /p00 fell by 50
    hits_add(definition, "/p59", utc(2026, 11, 20), 1)  # /p59 grew from 1 to 41
    hits_add(definition, "/gone", utc(2026, 11, 20), 9)  # counted only the week before
    return definition


def test_busiest_pages_show_their_change_when_compare_is_on(staff, sixty_pages):
    response = dashboard(staff, range="7d", compare="on")
    rows = {row["identifier"]: row for row in response.context["top"]["rows"]}
    assert (rows["/p00"]["count"], rows["/p00"]["change"], rows["/p00"]["change_percent"]) == (100, -50, -33)
    assert (rows["/p01"]["change"], rows["/p01"]["change_percent"]) == (99, None)
    html = note_text(response.content.decode())
    # counters only, no visitor sketches: each page's Visitors is 0
    assert "/p00 100 0 2.4% ▼ −50 -33%" in html and "/p01 99 0 2.3% ▲ +99 new" in html


def test_busiest_pages_change_compares_the_same_elapsed_minutes_as_the_kpi_card(staff, clock):
    clock(utc(2026, 12, 2, 2, 5))
    hits_add(page_view(), "/a", utc(2026, 12, 1, 0, 30), 10)
    hits_add(page_view(), "/a", utc(2026, 12, 1, 2, 30), 100)  # yesterday after 02:05: not comparable yet
    hits_add(page_view(), "/a", utc(2026, 12, 2, 1), 15)
    response = dashboard(staff, range="today", compare="on")
    (row,) = response.context["top"]["rows"]
    assert (row["count"], row["previous"], row["change"], row["change_percent"]) == (15, 10, 5, 50)
    assert "change vs 00:00–02:05 yesterday." in note_text(response.content.decode())
    header, csv_row = csv_rows(
        staff.get(reverse("dashboard:panel", args=["top"]), {"range": "today", "compare": "on", "format": "csv"})
    )
    assert csv_row[1:] == ["15", "0", "100.0", "10", "5", "50"]  # no visitor sketches: 0 visitors


def test_busiest_pages_change_without_minutes_compares_both_days_to_the_hour_as_the_kpi_card(staff, clock):
    clock(utc(2026, 12, 2, 2, 5))
    hits_add(downloads(), "/a", utc(2026, 12, 1, 1, 30), 10)
    hits_add(downloads(), "/a", utc(2026, 12, 1, 2, 3), 100)  # yesterday's 02:00 hour: today's is not over
    hits_add(downloads(), "/a", utc(2026, 12, 2, 1, 10), 12)
    hits_add(downloads(), "/a", utc(2026, 12, 2, 2, 1), 5)  # counted, not compared
    response = dashboard(staff, type="download", range="today", compare="on")
    (row,) = response.context["top"]["rows"]
    assert (row["count"], row["previous"], row["change"], row["change_percent"]) == (17, 10, 2, 20)
    assert kpi_card(response) == (17, 10, 20)


def test_busiest_pages_sort_by_change_and_page_through_10_50_100(staff, sixty_pages):
    by_change = dashboard(staff, range="7d", compare="on", sort="change").context["top"]["rows"]
    assert [row["identifier"] for row in by_change[:2]] == ["/p01", "/p02"]
    assert by_change[-1]["identifier"] == "/p10"
    last_page = dashboard(staff, range="7d", compare="on", sort="change", rows=50, page=2).context["top"]["rows"]
    assert [row["identifier"] for row in last_page][-2:] == ["/gone", "/p00"] and len(last_page) == 11
    first = dashboard(staff, range="7d", rows=50)
    assert len(first.context["top"]["rows"]) == 50
    assert "Show 50 more" in first.content.decode() and "rows=50&amp;page=2" in first.content.decode()
    assert len(dashboard(staff, range="7d", rows=100).context["top"]["rows"]) == 60


def test_busiest_pages_csv_has_every_row_of_the_period_with_the_change(staff, sixty_pages):
    header, *rows = csv_rows(
        staff.get(reverse("dashboard:panel", args=["top"]), {"range": "7d", "compare": "on", "format": "csv"})
    )
    assert header == [
        "Page views: page or item",
        "count",
        "visitors",
        "share of total (%)",
        "period before",
        "change",
        "change (%)",
    ]
    assert len(rows) == 61
    assert rows[0] == ["/p00", "100", "0", "2.4", "150", "-50", "-33"]
    assert ["/gone", "0", "0", "0.0", "9", "-9", "-100"] in rows
    assert len(csv_rows(staff.get(reverse("dashboard:panel", args=["top"]), {"range": "7d", "format": "csv"}))) == 61


# --- 5. live now follows the page filter ---------------------------------------------------


def test_live_now_counts_only_the_filtered_page_and_says_so(staff):
    now = datetime.now(UTC)
    hits_add(page_view(), "/a", now, 2)
    hits_add(page_view(), "/b", now, 3)
    response = dashboard(staff, identifier="/a")
    assert response.context["live"]["count"] == 2
    assert "page views of /a in the last 5 minutes" in note_text(response.content.decode())
    assert dashboard(staff).context["live"]["count"] == 5


# --- 6. one colour per type, and each type on its own scale ------------------------------------


def test_each_type_keeps_its_colour_whatever_else_is_registered(staff, clock):
    clock(utc(2026, 12, 2, 12))
    hits_add(page_view(), "/", utc(2026, 12, 1), 1500)
    colour = charts.type_colour("page_view")
    series = figure_in(dashboard(staff, range="7d"), "fig-series")["data"][0]
    breakdown = {
        t["name"]: t["marker"]["color"] for t in figure_in(dashboard(staff, range="7d"), "fig-breakdown")["data"]
    }
    assert series["marker"]["color"] == colour and breakdown["Page views"] == colour
    ads = BeaconDefinition.objects.create(slug="ad_click", name="Ad clicks")  # sorts before "Page views"
    hits_add(ads, "banner", utc(2026, 12, 1), 10)
    breakdown = {
        t["name"]: t["marker"]["color"] for t in figure_in(dashboard(staff, range="7d"), "fig-breakdown")["data"]
    }
    assert breakdown == {"Ad clicks": charts.type_colour("ad_click"), "Page views": colour}
    assert charts.type_colour("ad_click") != colour


def test_each_type_on_its_own_scale_gives_a_small_type_its_own_axis(staff, clock):
    clock(utc(2026, 12, 2, 12))
    hits_add(page_view(), "/", utc(2026, 12, 1), 1500)
    signups = BeaconDefinition.objects.create(slug="signup", name="Sign-ups")
    hits_add(signups, "footer", utc(2026, 12, 1), 10)
    response = dashboard(staff, range="7d", scale="own")
    figure = figure_in(response, "fig-breakdown")
    assert {(t["name"], t["yaxis"], max(t["y"])) for t in figure["data"]} == {
        ("Page views", "y", 1500),
        ("Sign-ups", "y2", 10),
    }
    assert "yaxis2" in figure["layout"] and [a["text"] for a in figure["layout"]["annotations"]] == [
        "Page views",
        "Sign-ups",
    ]
    assert "scale=own" in response.context["state"].query


# --- 7. the page filter: substrings, and an empty result that says why ----------------------


def test_a_page_name_without_exact_counts_lists_the_pages_containing_it_not_the_install_snippet(staff, clock):
    clock(utc(2026, 12, 2, 12))
    hits_add(page_view(), "/pricing", utc(2026, 12, 1), 3258)
    hits_add(page_view(), "/Pricing/Team", utc(2026, 12, 1), 4)
    response = dashboard(staff, range="7d", identifier="pricing")
    html = note_text(response.content.decode())
    assert "No page called “pricing” was counted in 26 November – 2 December 2026." in html
    assert "/pricing (3,258)" in html and "/Pricing/Team (4)" in html
    assert "Paste this before" not in html
    suggestions = staff.get(reverse("dashboard:panel", args=["identifiers"]), {"range": "7d", "identifier": "TEAM"})
    assert suggestions.content.decode() == '<option value="/Pricing/Team">'
    nothing = note_text(dashboard(staff, range="7d", identifier="nowhere").content.decode())
    assert "No page called “nowhere” was counted" in nothing and "Paste this before" not in nothing


# --- 8 and words: axes and labels ----------------------------------------------------------


@pytest.mark.parametrize("scale", ["stacked", "own"])
def test_every_chart_keeps_its_axis_titles_clear_of_the_tick_labels(staff, clock, scale):
    clock(utc(2026, 12, 2, 12))
    hits_add(page_view(), "/", utc(2026, 6, 1), 20_000)
    response = dashboard(staff, range="12m", compare="on", scale=scale)
    for figure_id in ["fig-series", "fig-breakdown"]:
        layout = figure_in(response, figure_id)["layout"]
        for name, axis in layout.items():
            if name.startswith("yaxis"):
                assert axis["automargin"] is True
            if name.startswith("xaxis"):
                assert axis["tickangle"] == 0 and len(set(axis["ticktext"])) == len(axis["ticktext"]) == 12


def test_custom_dates_keep_their_capitals_in_the_total_card(staff, clock):
    clock(utc(2026, 12, 2, 12))
    hits_add(page_view(), "/", utc(2026, 7, 1), 1)
    html = note_text(dashboard(staff, range="custom", start="2026-06-01", end="2026-08-31").content.decode())
    assert "page views, 1 June – 31 August 2026" in html


def test_buckets_back_moves_on_the_local_calendar():
    from beacons.counting.buckets import buckets_back

    berlin = ZoneInfo("Europe/Berlin")
    after_change = datetime(2026, 3, 30, 10, 59, tzinfo=berlin)
    assert buckets_back(after_change, "D", 2, berlin) == datetime(2026, 3, 28, 10, 59, tzinfo=berlin)
    assert buckets_back(utc(2026, 3, 31, 14), "MO", 1, ZoneInfo("UTC")) == utc(2026, 3, 1)
    assert buckets_back(utc(2026, 12, 2, 3), "Y", 1, ZoneInfo("UTC")) == utc(2025, 12, 2, 3)


def test_dashboard_state_periods_at_midnight_and_just_before():
    definitions = list(BeaconDefinition.objects.order_by("name"))
    _, state = dashboard_state(params={"range": "today"}, definitions=definitions, now=utc(2026, 12, 2, 0, 0))
    assert (state.start, state.totals_end, state.previous_period) == (
        utc(2026, 12, 2),
        utc(2026, 12, 2, 1),
        (utc(2026, 12, 1), utc(2026, 12, 1, 1)),
    )
    _, state = dashboard_state(params={"range": "month"}, definitions=definitions, now=utc(2026, 11, 30, 23, 59))
    assert state.previous_period == (utc(2026, 10, 1), utc(2026, 11, 1))  # to 23:59 is the whole month
    assert state.comparison_label == "October 2026"


# --- presets and point sizes from beacons.counting.buckets and beacons.models.Granularity ---------------


@pytest.mark.parametrize(
    "preset, now, start, end, last_day",
    [
        ("24h", utc(2026, 12, 2, 2, 59), utc(2026, 12, 1, 3), utc(2026, 12, 2, 3), "2026-12-02"),
        ("month", utc(2026, 2, 14, 12), utc(2026, 2, 1), utc(2026, 3, 1), "2026-02-28"),
        ("12m", utc(2026, 2, 14, 12), utc(2025, 3, 1), utc(2026, 3, 1), "2026-02-28"),
        ("12m", utc(2026, 12, 31, 23, 59), utc(2026, 1, 1), utc(2027, 1, 1), "2026-12-31"),
    ],
)
def test_presets_cover_whole_buckets_and_the_form_shows_their_last_day(settings, preset, now, start, end, last_day):
    settings.BEACONS_TIME_ZONE = "UTC"
    form, state = dashboard_state(params={"range": preset}, definitions=list(BeaconDefinition.objects.all()), now=now)
    assert (state.start, state.end) == (start, end)
    assert form["end"].value() == last_day


def test_the_point_size_choices_are_the_model_granularities_in_words():
    form, state = dashboard_state(
        params={"range": "12m"}, definitions=list(BeaconDefinition.objects.all()), now=utc(2026, 12, 2, 12)
    )
    assert form.fields["granularity"].choices == [("", "Automatic"), ("D", "Day"), ("MO", "Month"), ("Y", "Year")]
    assert (state.granularity, state.per) == ("MO", "month")  # automatic for a year
