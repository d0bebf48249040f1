from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from beacons.counting.buckets import (
    bucket_after,
    bucket_before,
    bucket_ceiling,
    bucket_end,
    bucket_start,
    bucket_zone,
    buckets_back,
    buckets_between,
    covering_buckets,
    elapsed_cut,
    is_aligned,
    site_zone_active,
)
from beacons.models import Granularity as G
from beacons.models import Site

UTC = UTC
NY = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
KOLKATA = ZoneInfo("Asia/Kolkata")


def utc(*args):
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    "granularity, expected",
    [
        (G.SECOND, utc(2026, 3, 14, 15, 9, 26)),
        (G.MINUTE, utc(2026, 3, 14, 15, 9)),
        (G.HOUR, utc(2026, 3, 14, 15)),
        (G.DAY, utc(2026, 3, 14)),
        (G.MONTH, utc(2026, 3, 1)),
        (G.YEAR, utc(2026, 1, 1)),
    ],
)
def test_bucket_start_in_utc(granularity, expected):
    assert bucket_start(utc(2026, 3, 14, 15, 9, 26, 535000), granularity, UTC) == expected


def test_day_starts_at_local_midnight():
    # 03:00 UTC on 2 Nov is still 1 Nov in New York (UTC-4 before the change).
    assert bucket_start(utc(2026, 11, 2, 3), G.DAY, NY) == datetime(2026, 11, 1, tzinfo=NY)


def test_day_of_clocks_going_back_lasts_25_hours():
    day = bucket_start(utc(2026, 11, 1, 12), G.DAY, NY)
    assert bucket_after(day, G.DAY, NY) - day == timedelta(hours=25)


def test_day_of_clocks_going_forward_lasts_23_hours():
    day = bucket_start(utc(2026, 3, 8, 12), G.DAY, NY)
    assert bucket_after(day, G.DAY, NY) - day == timedelta(hours=23)


def test_repeated_hour_when_clocks_go_back_is_two_buckets():
    first = datetime(2026, 11, 1, 1, 30, tzinfo=NY)  # EDT
    second = datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=NY)  # EST, an hour later
    assert second.astimezone(UTC) - first.astimezone(UTC) == timedelta(hours=1)
    assert bucket_start(first, G.HOUR, NY) != bucket_start(second, G.HOUR, NY)
    assert bucket_start(second, G.HOUR, NY) - bucket_start(first, G.HOUR, NY) == timedelta(hours=1)


def test_hours_of_a_dst_day_are_gap_free():
    day = datetime(2026, 3, 8, tzinfo=NY)
    hours = list(buckets_between(day, bucket_after(day, G.DAY, NY), G.HOUR, NY))
    assert len(hours) == 23
    assert all(b - a == timedelta(hours=1) for a, b in zip(hours, hours[1:]))


def test_half_hour_offset_zone_aligns_hours_locally():
    start = bucket_start(utc(2026, 5, 1, 5, 10), G.HOUR, KOLKATA)
    assert start.astimezone(KOLKATA).minute == 0
    assert start == utc(2026, 5, 1, 4, 30)


def test_month_and_year_ends_roll_over():
    december = bucket_start(utc(2026, 12, 31, 23, 59, 59), G.MONTH, UTC)
    assert december == utc(2026, 12, 1)
    assert bucket_after(december, G.MONTH, UTC) == utc(2027, 1, 1)
    assert bucket_after(utc(2026, 1, 1), G.YEAR, UTC) == utc(2027, 1, 1)
    assert bucket_after(utc(2028, 2, 28), G.DAY, UTC) == utc(2028, 2, 29)
    assert bucket_after(utc(2026, 1, 31), G.DAY, UTC) == utc(2026, 2, 1)


def test_new_year_in_london_winter_and_summer_months():
    assert bucket_start(utc(2026, 12, 31, 23, 30), G.YEAR, LONDON) == utc(2026, 1, 1)
    # 23:30 UTC on 31 July is already 1 August in London (BST, UTC+1).
    assert bucket_start(utc(2026, 7, 31, 23, 30), G.MONTH, LONDON) == utc(2026, 7, 31, 23)


def test_buckets_between_covers_partial_edges():
    days = list(buckets_between(utc(2026, 1, 1, 12), utc(2026, 1, 3, 1), G.DAY, UTC))
    assert days == [utc(2026, 1, 1), utc(2026, 1, 2), utc(2026, 1, 3)]


def test_covering_buckets_uses_months_in_the_middle_and_days_at_the_edges():
    pieces = covering_buckets(utc(2026, 1, 30), utc(2026, 4, 2), [G.HOUR, G.DAY, G.MONTH], UTC)
    assert pieces[G.MONTH] == [(utc(2026, 2, 1), utc(2026, 4, 1))]
    assert sorted(pieces[G.DAY]) == [(utc(2026, 1, 30), utc(2026, 2, 1)), (utc(2026, 4, 1), utc(2026, 4, 2))]
    assert G.HOUR not in pieces


def test_covering_buckets_pieces_tile_the_range_exactly():
    start, end = utc(2025, 11, 17, 5), utc(2026, 11, 23, 14)
    pieces = covering_buckets(start, end, [G.HOUR, G.DAY, G.MONTH, G.YEAR], LONDON)
    spans = []
    for granularity, ranges in pieces.items():
        for lo, hi in ranges:
            spans += [(b, bucket_after(b, granularity, LONDON)) for b in buckets_between(lo, hi, granularity, LONDON)]
    spans.sort()
    assert spans[0][0] == start and spans[-1][1] == end
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert len(spans) < 100  # a year in a few dozen rows, not 8,760 hours


def test_is_aligned():
    assert is_aligned(utc(2026, 5, 1), G.MONTH, UTC)
    assert not is_aligned(utc(2026, 5, 2), G.MONTH, UTC)


def test_bucket_ceiling_is_the_moment_itself_when_aligned_else_the_next_start():
    assert bucket_ceiling(utc(2026, 5, 1), G.MONTH, UTC) == utc(2026, 5, 1)
    assert bucket_ceiling(utc(2026, 5, 1, 0, 0, 0, 1), G.MONTH, UTC) == utc(2026, 6, 1)
    assert bucket_ceiling(utc(2026, 12, 31, 23), G.YEAR, UTC) == utc(2027, 1, 1)
    # New York's 1 November 2026 lasts 25 hours: its end is 05:00 UTC on the 2nd.
    assert bucket_ceiling(utc(2026, 11, 1, 12), G.DAY, NY) == utc(2026, 11, 2, 5)


def test_bucket_end_is_the_next_start_even_on_a_boundary():
    assert bucket_end(utc(2026, 5, 1), G.MONTH, UTC) == utc(2026, 6, 1)
    assert bucket_end(utc(2026, 5, 17, 8, 30), G.HOUR, UTC) == utc(2026, 5, 17, 9)
    assert bucket_end(utc(2026, 3, 8, 12), G.DAY, NY) == utc(2026, 3, 9, 4)  # a 23-hour day


def test_bucket_before_steps_back_one_whole_bucket_across_dst_and_month_lengths():
    assert bucket_before(utc(2026, 3, 1), G.MONTH, UTC) == utc(2026, 2, 1)
    assert bucket_before(utc(2026, 1, 1), G.YEAR, UTC) == utc(2025, 1, 1)
    assert bucket_before(utc(2026, 11, 2, 5), G.DAY, NY) == utc(2026, 11, 1, 4)  # the 25-hour day


def test_elapsed_cut_is_the_minute_while_minute_counters_reach_back_else_the_hour():
    now = utc(2026, 12, 2, 2, 5, 40)
    kept_two_days = now - timedelta(days=2)
    assert elapsed_cut(now=now, unit=G.DAY, n=1, minutes_since=kept_two_days, tz=UTC) == (
        utc(2026, 12, 2, 2, 5),
        utc(2026, 12, 1, 2, 5),
        G.MINUTE,
    )
    # Kept one day: yesterday's 02:00–02:05 minutes may be purged already, so whole hours on both sides.
    kept_one_day = now - timedelta(days=1)
    assert elapsed_cut(now=now, unit=G.DAY, n=1, minutes_since=kept_one_day, tz=UTC) == (
        utc(2026, 12, 2, 2),
        utc(2026, 12, 1, 2),
        G.HOUR,
    )
    assert elapsed_cut(now=now, unit=G.DAY, n=1, minutes_since=None, tz=UTC)[2] == G.HOUR
    assert elapsed_cut(now=now, unit=G.MONTH, n=1, minutes_since=kept_two_days, tz=UTC) == (
        utc(2026, 12, 2, 2),
        utc(2026, 11, 2, 2),
        G.HOUR,
    )


def test_elapsed_cut_reads_minutes_when_they_are_kept_from_exactly_the_previous_cuts_hour():
    now = utc(2026, 12, 2, 2, 5, 40)
    kept_from_that_hour = utc(2026, 12, 1, 2)  # yesterday 02:00: yesterday's 02:00–02:05 minutes are all kept
    assert elapsed_cut(now=now, unit=G.DAY, n=1, minutes_since=kept_from_that_hour, tz=UTC)[2] == G.MINUTE
    assert (
        elapsed_cut(now=now, unit=G.DAY, n=1, minutes_since=kept_from_that_hour + timedelta(seconds=1), tz=UTC)[2]
        == G.HOUR
    )


def test_elapsed_cut_cuts_at_the_hour_of_the_zone_it_is_given(settings):
    settings.BEACONS_TIME_ZONE = "UTC"
    now = utc(2026, 12, 2, 10, 40)  # 16:10 in Kolkata (+05:30): its hour began at 10:30 UTC
    cut, previous, granularity = elapsed_cut(now=now, unit=G.DAY, n=1, minutes_since=None, tz=KOLKATA)
    assert (cut, previous, granularity) == (utc(2026, 12, 2, 10, 30), utc(2026, 12, 1, 10, 30), G.HOUR)


@pytest.mark.parametrize(
    "moment, granularity, n, earlier",
    [
        (utc(2026, 12, 31, 14), G.MONTH, 1, utc(2026, 12, 1)),  # 30-day November ends where December begins
        (utc(2026, 1, 31, 14), G.MONTH, 1, utc(2025, 12, 31, 14)),  # across the year, no cut needed
        (utc(2026, 3, 31, 14), G.MONTH, 1, utc(2026, 3, 1)),
        (utc(2028, 2, 29, 9), G.YEAR, 1, utc(2027, 3, 1)),  # 29 February a year back: the end of February
        (utc(2026, 12, 2, 3, 4), G.HOUR, 2, utc(2026, 12, 2, 1, 4)),
        (utc(2026, 12, 2, 3, 4, 5), G.MINUTE, 5, utc(2026, 12, 2, 2, 59, 5)),
    ],
)
def test_buckets_back_is_the_same_wall_time_n_buckets_earlier_cut_at_a_shorter_months_end(
    moment, granularity, n, earlier
):
    assert buckets_back(moment, granularity, n, UTC) == earlier


def test_buckets_back_refuses_an_unknown_granularity():
    with pytest.raises(ValueError, match="unknown granularity"):
        buckets_back(utc(2026, 12, 2), "W", 1, UTC)


@pytest.mark.parametrize(
    "start, granularity, following",
    [
        (utc(2026, 3, 14, 15, 9, 59), G.SECOND, utc(2026, 3, 14, 15, 10)),
        (utc(2026, 12, 31, 23, 59, 59), G.SECOND, utc(2027, 1, 1)),
        (utc(2026, 3, 14, 15, 59), G.MINUTE, utc(2026, 3, 14, 16)),
        (utc(2026, 3, 14, 23), G.HOUR, utc(2026, 3, 15)),
    ],
)
def test_next_second_minute_and_hour_bucket(start, granularity, following):
    assert bucket_after(start, granularity, UTC) == following


def test_next_day_after_clocks_go_back_is_25_hours_later_in_the_configured_zone(settings):
    settings.BEACONS_TIME_ZONE = "America/New_York"
    day = bucket_start(utc(2026, 11, 1, 12), G.DAY)
    assert bucket_after(day, G.DAY) == utc(2026, 11, 2, 5)
    assert bucket_after(day, G.DAY) - day == timedelta(hours=25)


@pytest.mark.parametrize(
    "start, granularity, previous",
    [
        (utc(2026, 3, 14, 15, 10), G.SECOND, utc(2026, 3, 14, 15, 9, 59)),
        (utc(2026, 3, 14, 16), G.MINUTE, utc(2026, 3, 14, 15, 59)),
        (utc(2026, 3, 15), G.HOUR, utc(2026, 3, 14, 23)),
        (utc(2026, 3, 1), G.DAY, utc(2026, 2, 28)),
        (utc(2026, 1, 1), G.MONTH, utc(2025, 12, 1)),
        (utc(2026, 1, 1), G.YEAR, utc(2025, 1, 1)),
    ],
)
def test_bucket_before_is_the_start_of_the_previous_bucket(start, granularity, previous):
    assert bucket_before(start, granularity, UTC) == previous
    assert bucket_after(previous, granularity, UTC) == start


def test_bucket_before_a_day_after_clocks_go_forward_is_23_hours_earlier():
    assert bucket_before(utc(2026, 3, 9, 4), G.DAY, NY) == utc(2026, 3, 8, 5)


@pytest.mark.parametrize("function", [bucket_start, bucket_after])
def test_an_unknown_granularity_is_a_value_error(function):
    with pytest.raises(ValueError, match="unknown granularity 'W'"):
        function(utc(2026, 3, 14), "W", UTC)


def test_buckets_between_leaves_out_the_bucket_starting_at_the_end():
    hours = list(buckets_between(utc(2026, 1, 1, 22, 30), utc(2026, 1, 2, 0), G.HOUR, UTC))
    assert hours == [utc(2026, 1, 1, 22), utc(2026, 1, 1, 23)]


def test_covering_buckets_leaves_out_what_the_finest_granularity_cannot_cover():
    # 12:00 on 15 Jan to 06:00 on 10 Mar with days and months: the half days at each end are left out.
    pieces = covering_buckets(utc(2026, 1, 15, 12), utc(2026, 3, 10, 6), [G.DAY, G.MONTH], UTC)
    assert pieces == {
        G.MONTH: [(utc(2026, 2, 1), utc(2026, 3, 1))],
        G.DAY: [(utc(2026, 1, 16), utc(2026, 2, 1)), (utc(2026, 3, 1), utc(2026, 3, 10))],
    }


def test_covering_buckets_of_an_empty_range_or_no_granularity_is_empty():
    assert covering_buckets(utc(2026, 1, 2), utc(2026, 1, 2), [G.DAY], UTC) == {}
    assert covering_buckets(utc(2026, 1, 3), utc(2026, 1, 2), [G.DAY], UTC) == {}
    assert covering_buckets(utc(2026, 1, 1), utc(2026, 2, 1), [], UTC) == {}


def test_covering_buckets_uses_a_whole_month_alone_when_the_range_is_exactly_one():
    assert covering_buckets(utc(2026, 2, 1), utc(2026, 3, 1), [G.HOUR, G.DAY, G.MONTH], UTC) == {
        G.MONTH: [(utc(2026, 2, 1), utc(2026, 3, 1))]
    }


def test_covering_buckets_falls_to_days_when_no_whole_month_fits():
    assert covering_buckets(utc(2026, 2, 3), utc(2026, 2, 27), [G.DAY, G.MONTH, G.YEAR], UTC) == {
        G.DAY: [(utc(2026, 2, 3), utc(2026, 2, 27))]
    }


def test_bucket_zone_follows_the_setting(settings):
    settings.BEACONS_TIME_ZONE = "Asia/Kolkata"
    assert bucket_zone() == KOLKATA
    assert bucket_start(utc(2026, 5, 1, 20), G.DAY) == utc(2026, 5, 1, 18, 30)


def test_a_site_zone_applies_only_inside_its_block(settings):
    settings.BEACONS_TIME_ZONE = "Asia/Kolkata"
    with site_zone_active(Site(time_zone="America/New_York")) as zone:
        assert zone == NY
        assert bucket_start(utc(2026, 5, 1, 20), G.DAY) == utc(2026, 5, 1, 4)
    assert bucket_zone() == KOLKATA  # the next request, or the next site of a loop, is not in New York
    assert bucket_start(utc(2026, 5, 1, 20), G.DAY) == utc(2026, 5, 1, 18, 30)


def test_covering_buckets_splits_in_the_configured_zone_unless_given_one(settings):
    settings.BEACONS_TIME_ZONE = "America/New_York"
    start, end = datetime(2026, 1, 31, tzinfo=NY), datetime(2026, 3, 2, tzinfo=NY)
    expected = {
        G.MONTH: [(utc(2026, 2, 1, 5), utc(2026, 3, 1, 5))],
        G.DAY: [(utc(2026, 1, 31, 5), utc(2026, 2, 1, 5)), (utc(2026, 3, 1, 5), utc(2026, 3, 2, 5))],
    }
    assert covering_buckets(start, end, [G.DAY, G.MONTH]) == expected
    settings.BEACONS_TIME_ZONE = "UTC"
    assert covering_buckets(start, end, [G.DAY, G.MONTH], NY) == expected


def test_covering_buckets_across_a_month_edge_without_a_whole_month_is_one_run_of_days():
    assert covering_buckets(utc(2026, 1, 15), utc(2026, 2, 10), [G.DAY, G.MONTH], UTC) == {
        G.DAY: [(utc(2026, 1, 15), utc(2026, 2, 10))]
    }
