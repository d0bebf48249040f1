from datetime import UTC, datetime, timedelta

import pytest

from beacons.counting.increments import Hit, aggregates_add, increments_for
from beacons.models import BeaconDefinition
from beacons.models import Granularity as G
from beacons.queries import counters, error_groups

from .conftest import first_site, first_site_zone

pytestmark = pytest.mark.django_db
UTC = UTC


SITE = 0  # the first site's id, set for each test (a query inside a pinned block would count)


@pytest.fixture(autouse=True)
def _site_id(site):
    global SITE
    SITE = site.pk


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def record(definition, identifier, at, n=1, site=None):
    hits = [Hit((site or first_site()).pk, definition.pk, tuple(definition.granularity_codes), identifier)] * n
    aggregates_add(increments=increments_for(hits=hits, received_at=at))


@pytest.fixture
def page_view():
    return BeaconDefinition.objects.get(slug="page_view")


@pytest.fixture
def signup():
    return BeaconDefinition.objects.create(slug="signup", name="Sign-ups")


def test_series_is_gap_filled_with_zeros(page_view, django_assert_num_queries):
    record(page_view, "/a", utc(2026, 11, 2, 10), 3)
    record(page_view, "/b", utc(2026, 11, 4, 23), 2)
    with django_assert_num_queries(1):
        points = counters.series(
            site=SITE, definitions=[page_view], granularity=G.DAY, start=utc(2026, 11, 1), end=utc(2026, 11, 6)
        )
    assert points == [
        (utc(2026, 11, 1), 0),
        (utc(2026, 11, 2), 3),
        (utc(2026, 11, 3), 0),
        (utc(2026, 11, 4), 2),
        (utc(2026, 11, 5), 0),
    ]


def test_series_for_one_identifier(page_view):
    record(page_view, "/a", utc(2026, 11, 2, 10), 3)
    record(page_view, "/b", utc(2026, 11, 2, 11), 2)
    points = counters.series(
        site=SITE,
        definitions=[page_view],
        granularity=G.HOUR,
        start=utc(2026, 11, 2, 10),
        end=utc(2026, 11, 2, 12),
        identifier="/b",
    )
    assert points == [(utc(2026, 11, 2, 10), 0), (utc(2026, 11, 2, 11), 2)]


def test_series_buckets_follow_the_sites_time_zone(page_view):
    first_site_zone("America/New_York")
    record(page_view, "/", utc(2026, 11, 2, 3))  # still 1 November in New York
    points = counters.series(
        site=SITE, definitions=[page_view], granularity=G.DAY, start=utc(2026, 11, 1, 4), end=utc(2026, 11, 3, 5)
    )
    assert [count for _, count in points] == [1, 0]
    assert points[0][0] == utc(2026, 11, 1, 4)  # local midnight, EDT
    assert points[1][0] == utc(2026, 11, 2, 5)  # local midnight, EST after the change


def test_series_sums_several_definitions(page_view, signup):
    record(page_view, "/", utc(2026, 11, 2), 2)
    record(signup, "footer", utc(2026, 11, 2), 5)
    points = counters.series(
        site=SITE, definitions=[page_view, signup], granularity=G.DAY, start=utc(2026, 11, 2), end=utc(2026, 11, 3)
    )
    assert points == [(utc(2026, 11, 2), 7)]


def test_series_by_definition_splits_per_type(page_view, signup, django_assert_num_queries):
    record(page_view, "/", utc(2026, 11, 2), 2)
    record(signup, "footer", utc(2026, 11, 3), 5)
    with django_assert_num_queries(1):
        split = counters.series_by_definition(
            site=SITE, definitions=[page_view, signup], granularity=G.DAY, start=utc(2026, 11, 2), end=utc(2026, 11, 4)
        )
    assert split[page_view.pk] == [(utc(2026, 11, 2), 2), (utc(2026, 11, 3), 0)]
    assert split[signup.pk] == [(utc(2026, 11, 2), 0), (utc(2026, 11, 3), 5)]


def test_top_identifiers_over_a_long_range_rank_by_hits(page_view, django_assert_num_queries):
    record(page_view, "/home", utc(2026, 1, 15), 10)
    record(page_view, "/pricing", utc(2026, 6, 30, 23), 12)
    record(page_view, "/docs", utc(2026, 11, 20, 8), 4)
    record(page_view, "/old", utc(2025, 12, 31, 23), 50)  # before the range
    with django_assert_num_queries(1):
        top = counters.top_identifiers(
            site=SITE, definitions=[page_view], start=utc(2026, 1, 1), end=utc(2026, 11, 23, 14)
        )
    assert top == [("/pricing", 12), ("/home", 10), ("/docs", 4)]


def test_top_identifiers_counts_ragged_edges_exactly_once(page_view):
    # Hits at the edges of an unaligned range are read from hour rows, the middle from months.
    record(page_view, "/x", utc(2026, 3, 31, 22))
    record(page_view, "/x", utc(2026, 4, 15))
    record(page_view, "/x", utc(2026, 6, 1, 5))
    record(page_view, "/x", utc(2026, 6, 1, 7))  # after the end
    top = counters.top_identifiers(
        site=SITE, definitions=[page_view], start=utc(2026, 3, 31, 22), end=utc(2026, 6, 1, 6)
    )
    assert top == [("/x", 3)]


def test_top_identifiers_filter_and_limit(page_view):
    for i in range(5):
        record(page_view, f"/docs/{i}", utc(2026, 11, 2), i + 1)
    record(page_view, "/blog", utc(2026, 11, 2), 9)
    top = counters.top_identifiers(
        site=SITE, definitions=[page_view], start=utc(2026, 11, 1), end=utc(2026, 11, 3), contains="docs", limit=2
    )
    assert top == [("/docs/4", 5), ("/docs/3", 4)]


def test_totals_compare_with_the_previous_period(page_view, django_assert_num_queries):
    record(page_view, "/", utc(2026, 11, 5), 30)  # previous week
    record(page_view, "/", utc(2026, 11, 12), 45)  # this week
    with django_assert_num_queries(1):
        result = counters.totals(site=SITE, definitions=[page_view], start=utc(2026, 11, 9), end=utc(2026, 11, 16))
    assert (result.current, result.previous) == (45, 30)
    assert result.change == pytest.approx(0.5)
    assert result.previous_start == utc(2026, 11, 2)


def test_totals_compare_both_periods_to_the_minute_in_one_query(page_view, django_assert_num_queries):
    record(page_view, "/", utc(2026, 12, 1, 2, 4), 2)  # yesterday before 02:05
    record(page_view, "/", utc(2026, 12, 1, 2, 5), 50)  # yesterday from 02:05
    record(page_view, "/", utc(2026, 12, 2, 1, 59), 3)
    record(page_view, "/", utc(2026, 12, 2, 2, 5), 7)  # today's running minute: in the total only
    with django_assert_num_queries(1):
        result = counters.totals(
            site=SITE,
            definitions=[page_view],
            start=utc(2026, 12, 2),
            end=utc(2026, 12, 2, 3),
            previous_period=(utc(2026, 12, 1), utc(2026, 12, 1, 2, 5)),
            compared_end=utc(2026, 12, 2, 2, 5),
            cut_granularity=G.MINUTE,
        )
    assert (result.current, result.compared, result.previous) == (10, 3, 2)
    assert result.change == pytest.approx(0.5)


def test_rows_by_definition_compare_both_periods_to_the_minute(page_view):
    record(page_view, "/a", utc(2026, 12, 1, 2, 4), 2)  # yesterday before 02:05
    record(page_view, "/a", utc(2026, 12, 1, 2, 5), 50)  # yesterday from 02:05
    record(page_view, "/a", utc(2026, 12, 2, 1, 59), 3)
    record(page_view, "/a", utc(2026, 12, 2, 2, 3), 1)  # today, in a minute row of the running hour
    record(page_view, "/a", utc(2026, 12, 2, 2, 5), 7)  # today's running minute: in the total only
    record(page_view, "/b", utc(2026, 12, 1, 1))  # yesterday only
    rows = counters.identifiers_by_definition(
        site=SITE,
        definitions=[page_view],
        identifiers=["/a", "/b"],
        start=utc(2026, 12, 2),
        end=utc(2026, 12, 2, 3),
        previous_period=(utc(2026, 12, 1), utc(2026, 12, 1, 2, 5)),
        compared_end=utc(2026, 12, 2, 2, 5),
        cut_granularity=G.MINUTE,
    )
    row = rows[(page_view.pk, "/a")]
    assert (row.count, row.compared, row.previous) == (11, 4, 2)
    row = rows[(page_view.pk, "/b")]
    assert (row.count, row.compared, row.previous) == (0, 0, 1)


def test_totals_without_previous_data_has_no_change(page_view):
    record(page_view, "/", utc(2026, 11, 12), 4)
    result = counters.totals(site=SITE, definitions=[page_view], start=utc(2026, 11, 9), end=utc(2026, 11, 16))
    assert result.current == 4 and result.change is None


def test_totals_for_an_unaligned_range_up_to_now_include_the_current_hour(page_view):
    record(page_view, "/", utc(2026, 11, 23, 14, 5))
    result = counters.totals(
        site=SITE, definitions=[page_view], start=utc(2026, 11, 22, 14, 30), end=utc(2026, 11, 23, 14, 30)
    )
    assert result.current == 1


def test_live_count_reads_the_last_five_minutes(page_view, django_assert_num_queries):
    now = utc(2026, 11, 23, 14, 30, 20)
    record(page_view, "/", now - timedelta(minutes=2), 3)
    record(page_view, "/", now - timedelta(minutes=4, seconds=10), 1)
    record(page_view, "/", now - timedelta(minutes=6), 7)
    with django_assert_num_queries(1):
        assert counters.live_count(site=SITE, definitions=[page_view], now=now) == 4


def test_live_count_is_none_without_minute_buckets(signup):
    assert counters.live_count(site=SITE, definitions=[signup]) is None


def test_series_counts_only_the_part_of_an_edge_bucket_inside_the_range(page_view, django_assert_num_queries):
    record(page_view, "/", utc(2026, 1, 10, 12), 100)  # January, before the range
    record(page_view, "/", utc(2026, 1, 20, 12), 1)
    record(page_view, "/", utc(2026, 2, 14, 12), 2)
    record(page_view, "/", utc(2026, 3, 20, 5), 4)
    record(page_view, "/", utc(2026, 3, 21, 12), 200)  # March, after the range
    with django_assert_num_queries(1):
        points = counters.series(
            site=SITE, definitions=[page_view], granularity=G.MONTH, start=utc(2026, 1, 15), end=utc(2026, 3, 21)
        )
    assert points == [(utc(2026, 1, 1), 1), (utc(2026, 2, 1), 2), (utc(2026, 3, 1), 4)]
    with django_assert_num_queries(1):
        split = counters.series_by_definition(
            site=SITE, definitions=[page_view], granularity=G.MONTH, start=utc(2026, 1, 15), end=utc(2026, 3, 21)
        )
    assert split[page_view.pk] == points


def test_identifiers_compared_gives_each_page_its_change_in_one_query(page_view, django_assert_num_queries):
    record(page_view, "/a", utc(2026, 11, 12), 10)
    record(page_view, "/a", utc(2026, 11, 5), 4)
    record(page_view, "/b", utc(2026, 11, 12), 3)
    record(page_view, "/gone", utc(2026, 11, 5), 6)
    with django_assert_num_queries(1):
        rows = counters.identifiers_compared(
            site=SITE,
            definitions=[page_view],
            start=utc(2026, 11, 9),
            end=utc(2026, 11, 16),
            previous_period=(utc(2026, 11, 2), utc(2026, 11, 9)),
            order="change",
            limit=None,
        )
    assert [(r.identifier, r.count, r.previous, r.change) for r in rows] == [
        ("/a", 10, 4, 6),
        ("/b", 3, 0, 3),
        ("/gone", 0, 6, -6),
    ]
    assert rows[0].change_ratio == pytest.approx(1.5) and rows[1].change_ratio is None


def test_totals_compare_with_the_previous_period_given(page_view):
    record(page_view, "/", utc(2026, 12, 1, 1), 53)
    record(page_view, "/", utc(2026, 12, 1, 22), 140)
    record(page_view, "/", utc(2026, 12, 2, 1), 50)
    result = counters.totals(
        site=SITE,
        definitions=[page_view],
        start=utc(2026, 12, 2),
        end=utc(2026, 12, 2, 3),
        previous_period=(utc(2026, 12, 1), utc(2026, 12, 1, 3)),
    )
    assert (result.current, result.previous) == (50, 53)


def test_live_count_of_one_identifier(page_view):
    now = utc(2026, 11, 23, 14, 30, 20)
    record(page_view, "/a", now, 2)
    record(page_view, "/b", now, 3)
    assert counters.live_count(site=SITE, definitions=[page_view], identifier="/a", now=now) == 2


def test_totals_of_an_empty_period_are_zero_with_no_change(page_view):
    result = counters.totals(site=SITE, definitions=[page_view], start=utc(2026, 11, 9), end=utc(2026, 11, 16))
    assert (result.current, result.previous, result.change) == (0, 0, None)
    assert (result.previous_start, result.previous_end) == (utc(2026, 11, 2), utc(2026, 11, 9))


def test_totals_change_is_relative_to_the_previous_period(page_view):
    record(page_view, "/", utc(2026, 11, 5), 40)
    record(page_view, "/", utc(2026, 11, 12), 30)
    result = counters.totals(site=SITE, definitions=[page_view], start=utc(2026, 11, 9), end=utc(2026, 11, 16))
    assert result.change == pytest.approx(-0.25)


def test_totals_for_one_identifier(page_view):
    record(page_view, "/a", utc(2026, 11, 12), 3)
    record(page_view, "/b", utc(2026, 11, 12), 5)
    result = counters.totals(
        site=SITE, definitions=[page_view], start=utc(2026, 11, 9), end=utc(2026, 11, 16), identifier="/b"
    )
    assert (result.current, result.previous) == (5, 0)


@pytest.fixture
def daily_only():
    """A type that keeps day counts only: no hours, months or years to sum."""
    return BeaconDefinition.objects.create(slug="daily", name="Daily", granularities="D")


def test_a_type_keeping_only_days_is_summed_over_months_through_totals(daily_only):
    record(daily_only, "/", utc(2026, 8, 31, 23), 100)  # the day before: left out
    record(daily_only, "/", utc(2026, 9, 1), 2)
    record(daily_only, "/", utc(2026, 10, 15, 12), 3)
    record(daily_only, "/", utc(2026, 11, 30, 23), 4)
    record(daily_only, "/", utc(2026, 12, 1), 100)  # the day after: left out
    result = counters.totals(site=SITE, definitions=[daily_only], start=utc(2026, 9, 1), end=utc(2026, 12, 1))
    assert (result.current, result.previous) == (9, 100)


def test_a_type_keeping_only_days_is_summed_through_top_identifiers(daily_only):
    record(daily_only, "/a", utc(2026, 9, 1), 2)
    record(daily_only, "/b", utc(2026, 10, 15, 12), 3)
    record(daily_only, "/a", utc(2026, 11, 30, 23), 4)
    record(daily_only, "/a", utc(2026, 12, 1), 100)
    top = counters.top_identifiers(site=SITE, definitions=[daily_only], start=utc(2026, 9, 1), end=utc(2026, 12, 1))
    assert top == [("/a", 6), ("/b", 3)]


def test_types_with_different_granularities_are_summed_over_what_both_keep(page_view, daily_only):
    # page_view keeps hours too; days are what both keep, so a day range of both sums whole days.
    record(page_view, "/a", utc(2026, 9, 2, 5), 2)
    record(daily_only, "/a", utc(2026, 9, 3, 7), 3)
    definitions = [page_view, daily_only]
    assert counters.totals(site=SITE, definitions=definitions, start=utc(2026, 9, 1), end=utc(2026, 10, 1)).current == 5
    assert counters.top_identifiers(
        site=SITE, definitions=definitions, start=utc(2026, 9, 1), end=utc(2026, 10, 1)
    ) == [("/a", 5)]


def test_top_identifiers_lists_ten_by_default_most_first_ties_by_name(page_view):
    for i in range(12):
        record(page_view, f"/p{i:02}", utc(2026, 11, 2), 1 + i // 2)
    top = counters.top_identifiers(site=SITE, definitions=[page_view], start=utc(2026, 11, 1), end=utc(2026, 11, 3))
    assert top == [
        ("/p10", 6),
        ("/p11", 6),
        ("/p08", 5),
        ("/p09", 5),
        ("/p06", 4),
        ("/p07", 4),
        ("/p04", 3),
        ("/p05", 3),
        ("/p02", 2),
        ("/p03", 2),
    ]


def test_top_identifiers_filter_is_case_insensitive_and_leaves_out_the_total_row(page_view):
    record(page_view, "/Docs/a", utc(2026, 11, 2), 2)
    record(page_view, "/blog", utc(2026, 11, 2), 1)
    assert counters.top_identifiers(
        site=SITE, definitions=[page_view], start=utc(2026, 11, 1), end=utc(2026, 11, 3), contains="docs"
    ) == [("/Docs/a", 2)]
    assert counters.top_identifiers(
        site=SITE, definitions=[page_view], start=utc(2026, 11, 1), end=utc(2026, 11, 3)
    ) == [
        ("/Docs/a", 2),
        ("/blog", 1),
    ]


def test_top_identifiers_up_to_a_future_end_count_this_years_hits(page_view, monkeypatch):
    now = utc(2026, 11, 23, 14, 30)
    monkeypatch.setattr(counters.timezone, "now", lambda: now)
    record(page_view, "/a", utc(2026, 10, 24, 9), 2)
    record(page_view, "/a", utc(2026, 11, 23, 14, 5), 1)
    record(page_view, "/a", utc(2026, 10, 23, 23), 50)  # before the range
    top = counters.top_identifiers(site=SITE, definitions=[page_view], start=utc(2026, 10, 24), end=utc(2026, 11, 24))
    assert top == [("/a", 3)]


def test_live_count_is_zero_when_nothing_happened(page_view):
    assert counters.live_count(site=SITE, definitions=[page_view], now=utc(2026, 11, 23, 14, 30)) == 0


@pytest.fixture
def minutely():
    return BeaconDefinition.objects.create(slug="minutely", name="Minutely", granularities="M,H,D,MO,Y")


def test_live_window_starts_at_the_minute_four_minutes_before_now(minutely):
    now = utc(2026, 11, 23, 14, 30, 20)
    record(minutely, "/", utc(2026, 11, 23, 14, 26), 3)  # first second of the window
    record(minutely, "/", utc(2026, 11, 23, 14, 25, 59), 7)  # last second before it
    record(minutely, "/", utc(2026, 11, 23, 14, 30, 19), 1)
    assert counters.live_count(site=SITE, definitions=[minutely], now=now) == 4
    assert counters.live_count(site=SITE, definitions=[minutely], now=now, minutes=1) == 1
    assert counters.live_count(site=SITE, definitions=[minutely], now=now, minutes=6) == 11


def test_live_count_sums_only_the_types_keeping_minutes_now(minutely, signup, monkeypatch):
    now = utc(2026, 11, 23, 14, 30, 20)
    monkeypatch.setattr(counters.timezone, "now", lambda: now)
    record(minutely, "/", utc(2026, 11, 23, 14, 29), 2)
    # minute rows left from when sign-ups kept minutes: no longer part of "live now"
    aggregates_add(
        increments=increments_for(hits=[Hit(first_site().pk, signup.pk, (G.MINUTE,), "")] * 5, received_at=now)
    )
    assert counters.live_count(site=SITE, definitions=[signup, minutely]) == 2


def test_series_starts_at_the_bucket_holding_start_counts_only_its_part_inside_and_leaves_out_end(page_view):
    record(page_view, "/", utc(2026, 11, 1, 23, 10), 2)  # in the first bucket, before start
    record(page_view, "/", utc(2026, 11, 1, 23, 40), 3)
    record(page_view, "/", utc(2026, 11, 2, 1), 5)
    record(page_view, "/", utc(2026, 11, 2, 2), 9)
    got = counters.series(
        site=SITE, definitions=[page_view], granularity=G.HOUR, start=utc(2026, 11, 1, 23, 30), end=utc(2026, 11, 2, 2)
    )
    assert got == [(utc(2026, 11, 1, 23), 3), (utc(2026, 11, 2), 0), (utc(2026, 11, 2, 1), 5)]


def test_browser_list_is_most_first_ties_by_name_and_merges_versions_of_one_label(page_view):
    from beacons.models import BeaconEvent, ErrorGroup

    firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
    firefox_other_os = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
    at = utc(2026, 11, 2)
    group = ErrorGroup.objects.create(
        site_id=SITE, definition=page_view, fingerprint="f", title="E", first_seen=at, last_seen=at
    )
    for user_agent, n in [("curl/8.0", 2), (firefox, 1), (firefox_other_os, 1), ("Opera/9.80", 2), ("", 1)]:
        BeaconEvent.objects.bulk_create(
            [BeaconEvent(site_id=SITE, definition=page_view, error_group=group, received_at=at, user_agent=user_agent)]
            * n
        )
    assert error_groups.error_browsers(group=group, limit=10) == [
        ("Firefox 133", 2),
        ("Opera 9", 2),
        ("curl 8", 2),
        ("Unknown browser", 1),
    ]
    assert error_groups.error_browsers(group=group, limit=2) == [("Firefox 133", 2), ("Opera 9", 2)]


def test_browser_list_reads_only_the_200_most_frequent_user_agents(page_view):
    from beacons.models import BeaconEvent, ErrorGroup

    at = utc(2026, 11, 2)
    group = ErrorGroup.objects.create(
        site_id=SITE, definition=page_view, fingerprint="f", title="E", first_seen=at, last_seen=at
    )
    frequent = [f"Mozilla/5.0 (X11; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0" for v in range(100, 300)]
    BeaconEvent.objects.bulk_create(
        BeaconEvent(site_id=SITE, definition=page_view, error_group=group, received_at=at, user_agent=user_agent)
        for user_agent in [*frequent, *frequent, "Opera/9.80"]  # 200 agents twice, the 201st once
    )
    browsers = error_groups.error_browsers(group=group, limit=300)
    assert len(browsers) == 200 and ("Opera 9", 1) not in browsers
    assert browsers[:2] == [("Firefox 100", 2), ("Firefox 101", 2)]


def test_totals_and_top_identifiers_take_definition_ids(page_view):
    record(page_view, "/a", utc(2026, 11, 12), 3)
    ids = [page_view.pk]
    assert counters.totals(site=SITE, definitions=ids, start=utc(2026, 11, 9), end=utc(2026, 11, 16)).current == 3
    assert counters.top_identifiers(site=SITE, definitions=ids, start=utc(2026, 11, 9), end=utc(2026, 11, 16)) == [
        ("/a", 3)
    ]


def test_definition_ids_read_the_hours_of_pages(page_view):
    """A bare id says nothing of what its type keeps: its pages are read per hour."""
    record(page_view, "/a", utc(2026, 11, 12, 14), 3)
    record(page_view, "/a", utc(2026, 11, 12, 20), 2)  # the same day, after the hours asked
    hours = counters.totals(
        site=SITE, definitions=[page_view.pk], start=utc(2026, 11, 12, 12), end=utc(2026, 11, 12, 18)
    )
    assert hours.current == 3


def test_totals_of_a_type_keeping_minutes_are_read_in_whole_hours(minutely):
    record(minutely, "/", utc(2026, 11, 22, 14, 5), 2)  # in the hour the range starts within
    record(minutely, "/", utc(2026, 11, 22, 13, 59), 7)  # the hour before: left out
    result = counters.totals(
        site=SITE, definitions=[minutely], start=utc(2026, 11, 22, 14, 30), end=utc(2026, 11, 23, 14)
    )
    assert result.current == 2


def test_every_read_counts_only_its_own_sites_counters(page_view):
    from beacons.models import Site

    other = Site.objects.create(domain="other.example.com", name="Other")
    record(page_view, "/a", utc(2026, 11, 12, 10), 3)
    record(page_view, "/a", utc(2026, 11, 12, 10), 5, site=other)
    record(page_view, "/b", utc(2026, 11, 12, 10), 7, site=other)
    span = {"start": utc(2026, 11, 9), "end": utc(2026, 11, 16)}
    for site, total, pages in ((SITE, 3, [("/a", 3)]), (other, 12, [("/b", 7), ("/a", 5)])):
        assert counters.totals(site=site, definitions=[page_view], **span).current == total
        assert counters.top_identifiers(site=site, definitions=[page_view], **span) == pages
        assert (
            sum(n for _, n in counters.series(site=site, definitions=[page_view], granularity=G.DAY, **span)) == total
        )
        [(_, _, points)] = counters.series_of_top_definitions(site=site, granularity=G.DAY, limit=5, **span)
        assert sum(n for _, n in points) == total


def test_first_counted_is_the_earliest_day_else_the_earliest_bucket_of_any_size(page_view):
    assert counters.first_counted(site=SITE) is None
    hours_only = BeaconDefinition.objects.create(slug="ping", name="Pings", granularities="H")
    record(hours_only, "", utc(2026, 11, 20, 14, 30))
    assert counters.first_counted(site=SITE) == utc(2026, 11, 20, 14)  # no type keeps days
    record(page_view, "/", utc(2026, 11, 21, 9))
    assert counters.first_counted(site=SITE) == utc(2026, 11, 21)  # days win: "all" starts on a whole day


def test_a_counter_read_refuses_a_scope_that_is_not_a_column():
    with pytest.raises(ValueError, match="not a scope column: colour"):
        counters.Covering([], {"site_id": 1, "colour__in": ["red"]})


def test_totals_by_definition_give_a_type_counted_nowhere_zeros_in_every_period(page_view, signup):
    record(page_view, "/", utc(2026, 12, 1, 1))
    record(page_view, "/", utc(2026, 12, 2, 1))
    found = counters.totals_by_definition(
        site=SITE,
        definitions=[page_view, signup],
        start=utc(2026, 12, 2),
        end=utc(2026, 12, 2, 3),
        previous_period=(utc(2026, 12, 1), utc(2026, 12, 1, 2)),
        compared_end=utc(2026, 12, 2, 2),
    )
    assert (found[page_view.pk].current, found[page_view.pk].compared, found[page_view.pk].previous) == (1, 1, 1)
    assert (found[signup.pk].current, found[signup.pk].compared, found[signup.pk].previous) == (0, 0, 0)
