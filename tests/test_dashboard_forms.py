"""What the dashboard's filters resolve to, as staff read it: the exact dates each preset
covers at a fixed clock, each form of the period title, the automatic point size at its
edges, the notices, and unreadable parameters each falling back on their own.

The clock is stopped at Wednesday 2 December 2026 02:59 UTC (bucket time zone UTC unless a
test says otherwise), so the dates mean the same whatever day the suite runs.
"""

from datetime import datetime, timezone

import pytest

from beacons.models import IDENTIFIER_MAX_LENGTH, BeaconDefinition
from dashboard.forms import dashboard_state

pytestmark = pytest.mark.django_db
UTC = timezone.utc  # noqa: UP017  (the suite's spelling)
NOW = datetime(2026, 12, 2, 2, 59, tzinfo=UTC)
REPLACED = "Part of this address was not understood and has been reset."


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def resolve(now=NOW, **params):
    definitions = list(BeaconDefinition.objects.order_by("pk"))
    return dashboard_state(params=params, definitions=definitions, now=now)


def dates(**params):
    _, state = resolve(**params)
    return state.start, state.end


def daily_type():
    """A type that keeps no hour counters."""
    return BeaconDefinition.objects.create(slug="signup", name="Sign-ups", granularities="D,MO,Y")


# --- the dates each preset stands for ---------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "start", "end"),
    [
        ({"range": "today"}, utc(2026, 12, 2), utc(2026, 12, 3)),
        ({"range": "24h"}, utc(2026, 12, 1, 3), utc(2026, 12, 2, 3)),  # to the end of the running hour
        ({"range": "7d"}, utc(2026, 11, 26), utc(2026, 12, 3)),  # today and the 6 days before
        ({"range": "30d"}, utc(2026, 11, 3), utc(2026, 12, 3)),
        ({}, utc(2026, 11, 3), utc(2026, 12, 3)),  # no parameters: the last 30 days
        ({"range": "month"}, utc(2026, 12, 1), utc(2027, 1, 1)),
        ({"range": "12m"}, utc(2026, 1, 1), utc(2027, 1, 1)),  # this month and the 11 before
        ({"range": "custom", "start": "2026-10-05", "end": "2026-10-07"}, utc(2026, 10, 5), utc(2026, 10, 8)),
        ({"range": "custom"}, utc(2026, 11, 3), utc(2026, 12, 3)),  # the custom default: the last 30 days
        ({"range": "custom", "start": "2026-10-05"}, utc(2026, 10, 5), utc(2026, 12, 3)),  # to today
        (
            {"range": "custom", "start": "2026-12-03", "end": "2026-12-03"},
            utc(2026, 12, 3),
            utc(2026, 12, 4),
        ),  # tomorrow
        (
            {"range": "custom", "start": "2026-10-07", "end": "2026-10-05"},
            utc(2026, 10, 5),
            utc(2026, 10, 8),
        ),  # swapped
        (
            {"range": "custom", "start": "1999-12-31", "end": "2000-01-01"},
            utc(2000, 1, 1),
            utc(2000, 1, 2),
        ),  # earliest day
        (
            {"range": "custom", "start": "2027-12-03", "end": "2027-12-31"},
            utc(2027, 12, 3),
            utc(2027, 12, 4),
        ),  # a year ahead at most
        ({"range": "custom", "start": "2028-06-01", "end": "2028-06-01"}, utc(2027, 12, 3), utc(2027, 12, 4)),
        (
            {"range": "custom", "start": "2000-01-01", "end": "2026-12-02"},
            utc(2016, 11, 24),
            utc(2026, 12, 3),
        ),  # 3,660 days before the last at most
    ],
)
def test_each_preset_resolves_to_exact_dates_at_a_fixed_clock(params, start, end):
    assert dates(**params) == (start, end)


@pytest.mark.parametrize(
    ("now", "range_", "start", "end"),
    [
        (utc(2026, 12, 2, 0, 0), "24h", utc(2026, 12, 1, 1), utc(2026, 12, 2, 1)),
        (utc(2026, 12, 31, 23, 59), "today", utc(2026, 12, 31), utc(2027, 1, 1)),
        (utc(2026, 12, 31, 23, 59), "7d", utc(2026, 12, 25), utc(2027, 1, 1)),
        (utc(2026, 3, 1, 0, 0), "30d", utc(2026, 1, 31), utc(2026, 3, 2)),
        (utc(2026, 3, 1, 0, 0), "month", utc(2026, 3, 1), utc(2026, 4, 1)),
        (utc(2026, 3, 1, 0, 0), "12m", utc(2025, 4, 1), utc(2026, 4, 1)),
    ],
)
def test_presets_at_the_edges_of_a_day_a_month_and_a_year(now, range_, start, end):
    _, state = resolve(now=now, range=range_)
    assert (state.start, state.end) == (start, end)


def test_presets_are_local_days_in_the_bucket_time_zone(settings):
    settings.BEACONS_TIME_ZONE = "Europe/Berlin"  # UTC+1 in December
    assert dates(range="today") == (utc(2026, 12, 1, 23), utc(2026, 12, 2, 23))
    assert dates(range="7d") == (utc(2026, 11, 25, 23), utc(2026, 12, 2, 23))
    assert dates(range="custom", start="2026-10-05", end="2026-10-05") == (utc(2026, 10, 4, 22), utc(2026, 10, 5, 22))


def test_a_link_with_only_start_or_only_end_is_read_as_custom_dates():
    _, state = resolve(start="2026-10-05")
    assert (state.preset, state.start, state.end) == ("custom", utc(2026, 10, 5), utc(2026, 12, 3))
    assert state.params == {"type": "page_view", "range": "custom", "start": "2026-10-05", "end": "2026-12-02"}
    _, state = resolve(end="2026-10-05")  # before the default start: the two are swapped
    assert (state.preset, state.start, state.end) == ("custom", utc(2026, 10, 5), utc(2026, 11, 4))


def test_the_form_shows_the_dates_a_preset_stands_for():
    form, _ = resolve(range="7d")
    assert (form["start"].value(), form["end"].value()) == ("2026-11-26", "2026-12-02")
    assert form["range"].value() == "7d"


# --- period titles ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "title"),
    [
        ({"start": "2024-01-01", "end": "2025-12-31", "granularity": "Y"}, "Page views per year, 2024–2025"),
        ({"start": "2025-01-01", "end": "2025-12-31", "granularity": "Y"}, "Page views per year, 2025"),
        ({"start": "2026-03-01", "end": "2026-03-31", "granularity": "MO"}, "Page views per month, March 2026"),
        ({"start": "2026-03-01", "end": "2026-05-31", "granularity": "MO"}, "Page views per month, March – May 2026"),
        (
            {"start": "2025-11-01", "end": "2026-02-28", "granularity": "MO"},
            "Page views per month, November 2025 – February 2026",
        ),
        ({"start": "2026-10-05", "end": "2026-10-05"}, "Page views per hour, 5 October 2026"),
        ({"start": "2026-10-01", "end": "2026-10-31"}, "Page views per day, 1–31 October 2026"),
        ({"start": "2026-09-28", "end": "2026-10-03"}, "Page views per day, 28 September – 3 October 2026"),
        ({"start": "2025-12-31", "end": "2026-01-02"}, "Page views per hour, 31 December 2025 – 2 January 2026"),
        ({"start": "2025-12-20", "end": "2026-01-02"}, "Page views per day, 20 December 2025 – 2 January 2026"),
        # months not whole: said in days
        (
            {"start": "2026-03-15", "end": "2026-05-31", "granularity": "MO"},
            "Page views per month, 15 March – 31 May 2026",
        ),
    ],
)
def test_each_period_title_form(params, title):
    _, state = resolve(range="custom", **params)
    assert state.title == title


@pytest.mark.parametrize(
    ("range_", "title"),
    [
        ("today", "Page views per hour, 2 December 2026 (so far)"),
        ("24h", "Page views per hour, 1–2 December 2026"),
        ("7d", "Page views per day, 26 November – 2 December 2026 (today so far)"),
        ("month", "Page views per day, 1–2 December 2026 (so far)"),
        ("30d", "Page views per day, 3 November – 2 December 2026 (today so far)"),
        ("12m", "Page views per month, January – December 2026 (this month so far and the 11 whole months before)"),
    ],
)
def test_running_periods_stop_the_title_at_the_running_bucket(range_, title):
    _, state = resolve(range=range_)
    assert state.title == title


def test_custom_dates_up_to_today_say_today_so_far():
    _, state = resolve(range="custom", start="2026-11-30", end="2026-12-02")
    assert state.title == "Page views per hour, 30 November – 2 December 2026 (today so far)"


def test_a_custom_period_that_ended_at_midnight_is_not_running():
    _, state = resolve(now=utc(2026, 12, 2, 0, 0), range="custom", start="2026-11-30", end="2026-12-01")
    assert (state.running, state.title) == (False, "Page views per hour, 30 November – 1 December 2026")
    _, state = resolve(now=utc(2026, 12, 2, 0, 0), range="today")
    assert (state.running, state.title) == (True, "Page views per hour, 2 December 2026 (so far)")


def test_dates_not_begun_yet_draw_nothing_and_their_title_names_the_day_they_begin():
    _, state = resolve(range="custom", start="2026-12-10", end="2026-12-12")
    assert (state.running, state.chart_end) == (False, utc(2026, 12, 10))
    assert state.title == "Page views per hour, 10 December 2026"


def test_the_dates_in_words_for_the_picker_and_inside_sentences():
    _, state = resolve(range="today", identifier="/pricing")
    assert (state.range_label, state.range_phrase) == ("Today", "today so far")
    assert state.title == "Page views of /pricing per hour, 2 December 2026 (so far)"
    _, state = resolve(range="7d")
    assert (state.range_label, state.range_phrase) == ("Last 7 days", "last 7 days")
    _, state = resolve(range="month")
    assert (state.range_label, state.range_phrase) == ("This month", "this month so far")
    _, state = resolve(range="custom", start="2026-10-01", end="2026-10-31")
    assert (state.range_label, state.range_phrase) == ("1–31 October 2026", "1–31 October 2026")


# --- which event type --------------------------------------------------------------------------


def test_without_a_type_page_views_are_shown_whatever_the_order_of_types():
    signups = daily_type()
    page_views = BeaconDefinition.objects.get(slug="page_view")
    _, state = dashboard_state(params={}, definitions=[signups, page_views], now=NOW)
    assert state.definition == page_views
    _, state = dashboard_state(params={}, definitions=[signups], now=NOW)
    assert state.definition == signups


def test_with_no_event_types_at_all_the_dashboard_still_resolves():
    _, state = dashboard_state(params={"range": "today"}, definitions=[], now=NOW)
    assert (state.definition, state.title) == (None, "Events per hour, 2 December 2026 (so far)")


@pytest.mark.parametrize(
    ("granularities", "per", "offered"),
    [("Y", "year", ("Y",)), ("MO,Y", "month", ("MO",))],
)
def test_a_type_whose_finest_size_is_longer_than_the_dates_shows_that_one(granularities, per, offered):
    BeaconDefinition.objects.create(slug="coarse", name="Coarse", granularities=granularities)
    _, state = resolve(type="coarse", range="today")
    assert (state.per, state.granularities, state.notice) == (per, offered, "")


# --- the automatic point size -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "per"),
    [
        ("2026-10-01", "2026-10-03", "hour"),  # 3 days
        ("2026-10-01", "2026-10-04", "day"),  # 4 days
        ("2026-01-01", "2026-04-03", "day"),  # 93 days
        ("2026-01-01", "2026-04-04", "month"),  # 94 days
        ("2020-01-01", "2024-01-03", "month"),  # 1,464 days (4 × 366)
        ("2020-01-01", "2024-01-04", "year"),  # 1,465 days
    ],
)
def test_automatic_point_size_at_each_threshold(start, end, per):
    _, state = resolve(range="custom", start=start, end=end)
    assert (state.per, state.chosen_granularity, state.notice) == (per, "", "")


def test_automatic_mode_picks_the_next_kept_size_without_a_notice():
    signups = daily_type()
    _, state = resolve(type="signup", range="today")
    assert (state.definition, state.per, state.notice) == (signups, "day", "")


def test_a_chosen_size_the_type_does_not_keep_says_so_and_shows_the_next_kept_one():
    daily_type()
    _, state = resolve(type="signup", range="7d", granularity="H")
    assert state.per == "day"
    assert state.notice == "Sign-ups keeps no counts per hour: showing one point per day."
    assert state.params["granularity"] == "H"  # the choice stays in the link


def test_a_size_longer_than_the_dates_says_so():
    _, state = resolve(range="today", granularity="MO")
    assert state.per == "day"
    assert state.notice == "One point per month is longer than these dates: showing one per day."


def test_too_many_points_step_to_a_coarser_size_with_a_notice():
    _, state = resolve(range="12m", granularity="H")
    assert state.per == "day"
    assert state.notice == "One point per hour would be too many to read: showing one per day."


@pytest.mark.parametrize(
    ("end", "granularity", "per", "offered", "notice"),
    [
        ("2026-03-10", "D", "day", ("D", "MO", "Y"), ""),  # 800 days: 800 points
        (
            "2026-03-11",
            "D",
            "month",
            ("MO", "Y"),
            "One point per day would be too many to read: showing one per month.",
        ),
    ],
)
def test_at_most_800_points_per_day(end, granularity, per, offered, notice):
    _, state = resolve(range="custom", start="2024-01-01", end=end, granularity=granularity)
    assert (state.per, state.granularities, state.notice) == (per, offered, notice)


@pytest.mark.parametrize(
    ("end", "per", "offered", "notice"),
    [
        ("2026-11-02", "hour", ("H", "D", "MO"), ""),  # 33 days: 792 hours
        ("2026-11-03", "day", ("D", "MO"), "One point per hour would be too many to read: showing one per day."),  # 816
    ],
)
def test_at_most_800_points_per_hour(end, per, offered, notice):
    _, state = resolve(range="custom", start="2026-10-01", end=end, granularity="H")
    assert (state.per, state.granularities, state.notice) == (per, offered, notice)


def test_over_ten_years_a_type_keeping_hours_and_days_offers_days_too_many_points_or_not():
    BeaconDefinition.objects.create(slug="hourly", name="Hourly", granularities="H,D")
    _, state = resolve(type="hourly", range="custom", start="2017-01-01", end="2026-12-01")
    assert (state.per, state.granularities, state.notice) == ("day", ("D",), "")


@pytest.mark.parametrize(
    ("params", "offered"),
    [
        ({"range": "today"}, ("H", "D")),
        ({"range": "24h"}, ("H",)),  # 03:00 to 03:00 holds no whole day
        ({"range": "30d"}, ("H", "D")),
        ({"range": "month"}, ("H", "D", "MO")),
        ({"range": "12m"}, ("D", "MO", "Y")),  # 8,760 hours are too many
    ],
)
def test_the_sizes_offered_are_those_a_whole_point_fits_in(params, offered):
    form, state = resolve(**params)
    assert state.granularities == offered
    assert [code for code, _ in form.fields["granularity"].choices] == ["", *offered]


# --- unreadable parameters fall back one by one -----------------------------------------------


@pytest.mark.parametrize(
    ("bad", "kept"),
    [
        ({"range": "fortnight"}, {"preset": "30d", "granularity": "D", "compare": True}),
        ({"granularity": "W"}, {"preset": "7d", "granularity": "D", "chosen_granularity": "", "compare": True}),
        ({"type": "deleted_type"}, {"preset": "7d", "granularity": "D", "compare": True}),
        ({"start": "2026-02-30"}, {"preset": "7d", "granularity": "D", "compare": True}),
        ({"rows": "7"}, {"preset": "7d", "rows": 10, "sort": "change"}),
        ({"page": "0"}, {"preset": "7d", "page": 1, "scale": "own"}),
        ({"page": "10001"}, {"preset": "7d", "page": 1, "rows": 50}),
        ({"sort": "random"}, {"preset": "7d", "sort": "views", "rows": 50}),
        ({"scale": "log"}, {"preset": "7d", "scale": "stacked", "page": 3}),
        ({"identifier": "x" * (IDENTIFIER_MAX_LENGTH + 1)}, {"preset": "7d", "identifier": "", "granularity": "D"}),
    ],
)
def test_an_unreadable_parameter_falls_back_alone_and_the_rest_is_kept(bad, kept):
    good = {"type": "page_view", "range": "7d", "granularity": "D", "compare": "on", "rows": "50", "sort": "change",
            "page": "3", "scale": "own"}  # fmt: skip
    if "granularity" in bad or "range" in bad:
        good.pop("granularity")  # automatic then: per day for 7 or 30 days
    _, state = resolve(**{**good, **bad})
    assert state.notice == REPLACED
    assert state.definition.slug == "page_view"
    assert {name: getattr(state, name) for name in kept} == kept


def test_the_defaults_written_out_are_read_without_a_notice():
    _, state = resolve(range="7d", sort="views", rows="10", page="1", scale="stacked")
    assert (state.sort, state.rows, state.page, state.scale, state.notice) == ("views", 10, 1, "stacked", "")
    assert state.params == {"type": "page_view", "range": "7d"}


def test_a_link_without_dates_shows_the_last_30_days_without_a_notice():
    _, state = resolve(type="page_view", compare="on")
    assert (state.preset, state.compare, state.notice) == ("30d", True, "")


def test_readable_parameters_are_all_kept_and_give_no_notice():
    _, state = resolve(type="page_view", identifier=" /pricing ", range="7d", granularity="D", compare="on", rows="50",
                       sort="change", page="3", scale="own")  # fmt: skip
    assert (state.identifier, state.preset, state.granularity, state.compare) == ("/pricing", "7d", "D", True)
    assert (state.rows, state.sort, state.page, state.scale, state.notice) == (50, "change", 3, "own", "")
    assert state.params == {"type": "page_view", "identifier": "/pricing", "range": "7d", "granularity": "D",
                            "sort": "change", "rows": "50", "scale": "own", "compare": "on"}  # fmt: skip


# --- what each period is compared with --------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "card", "previous_start", "previous_end", "current_end"),
    [
        ({"range": "today"}, "00:00–02:59 yesterday", utc(2026, 12, 1), utc(2026, 12, 1, 2, 59), utc(2026, 12, 2, 2, 59)),
        (
            {"range": "24h"}, "30 November 03:00 – 1 December 2026, to 02:59",
            utc(2026, 11, 30, 3), utc(2026, 12, 1, 2, 59), utc(2026, 12, 2, 2, 59),
        ),
        ({"range": "7d"}, "19–25 November 2026, both to 02:00", utc(2026, 11, 19), utc(2026, 11, 25, 2), utc(2026, 12, 2, 2)),
        ({"range": "30d"}, "4 October – 2 November 2026, both to 02:00", utc(2026, 10, 4), utc(2026, 11, 2, 2), utc(2026, 12, 2, 2)),
        ({"range": "month"}, "1–2 November 2026, both to 02:00", utc(2026, 11, 1), utc(2026, 11, 2, 2), utc(2026, 12, 2, 2)),
        ({"range": "12m"}, "1 January – 2 December 2025, both to 02:00", utc(2025, 1, 1), utc(2025, 12, 2, 2), utc(2026, 12, 2, 2)),
        ({"range": "custom", "start": "2026-10-01", "end": "2026-10-31"}, "31 August – 30 September 2026", utc(2026, 8, 31), utc(2026, 10, 1), None),
        ({"range": "custom", "start": "2026-09-01", "end": "2026-10-31"}, "2 July – 31 August 2026", utc(2026, 7, 2), utc(2026, 9, 1), None),
        ({"range": "custom", "start": "2026-12-03", "end": "2026-12-03"}, "the period before", utc(2026, 12, 2), utc(2026, 12, 2), None),
    ],
)  # fmt: skip
def test_each_period_is_compared_with_the_same_span_before_it(params, card, previous_start, previous_end, current_end):
    _, state = resolve(**params)
    kpi = state.kpi_comparison
    assert (kpi.label, kpi.previous_start, kpi.previous_end, kpi.current_end) == (
        card,
        previous_start,
        previous_end,
        current_end,
    )


def test_the_last_24_hours_are_compared_with_the_24_hours_before_across_a_clock_change(settings):
    settings.BEACONS_TIME_ZONE = "Europe/Berlin"
    _, state = resolve(now=utc(2026, 3, 30, 8, 30), range="24h")  # 10:30 CEST, the day after clocks went forward
    assert (state.start, state.end) == (utc(2026, 3, 29, 9), utc(2026, 3, 30, 9))
    assert state.previous_period == (utc(2026, 3, 28, 9), utc(2026, 3, 29, 9))  # 10:00 CET: 24 hours, not a day
    assert state.kpi_comparison.label == "28 March 10:00 – 29 March 2026, to 10:30"


def test_the_last_12_months_over_a_leap_day_are_compared_with_the_same_months_a_year_before():
    _, state = resolve(now=utc(2028, 3, 2, 2, 59), range="12m")
    assert (state.start, state.end) == (utc(2027, 4, 1), utc(2028, 4, 1))  # 366 days
    assert state.previous_period[0] == utc(2026, 4, 1)
    assert state.kpi_comparison.label == "1 April 2026 – 2 March 2027, both to 02:00"


@pytest.mark.parametrize(
    ("range_", "label"),
    [
        ("today", "00:00–02:59 yesterday"),
        ("7d", "19–25 November 2026, to 02:59"),
        ("24h", "30 November – 1 December 2026, to 02:59"),
        ("12m", "1 January – 2 December 2025, to 02:59"),
    ],
)
def test_the_previous_period_of_a_running_one_in_words(range_, label):
    _, state = resolve(range=range_)
    assert state.comparison_label == label


# --- the breakdown tabs and the dimension filter in the address ------------------------------


def typed_with_properties():
    return BeaconDefinition.objects.create(
        slug="signup", name="Sign-ups", property_keys="plan,method", dimensions="source,browser,os"
    )


def test_the_tabs_and_a_filter_chosen_are_kept_in_the_address():
    typed_with_properties()
    _, state = resolve(type="signup", sources="utm_campaign", devices="os", property="method", dim="source",
                       value=" Google ")  # fmt: skip
    assert (state.sources_tab, state.devices_tab, state.property_tab) == ("utm_campaign", "os", "method")
    assert (state.dimension, state.value, state.notice) == ("source", "Google", "")
    assert state.params == {"type": "signup", "range": "30d", "sources": "utm_campaign", "devices": "os",
                            "property": "method", "dim": "source", "value": "Google"}  # fmt: skip


def test_the_first_tabs_are_left_out_of_the_address():
    typed_with_properties()
    _, state = resolve(type="signup", sources="source", devices="browser", property="plan")
    assert (state.sources_tab, state.devices_tab, state.property_tab) == ("source", "browser", "plan")
    assert state.params == {"type": "signup", "range": "30d"}


@pytest.mark.parametrize("asked", ["nonsense", "x" * 5000, ""])
def test_a_property_the_type_does_not_declare_shows_its_first_without_a_notice(asked):
    typed_with_properties()
    _, state = resolve(type="signup", property=asked)
    assert (state.property_tab, state.notice) == ("plan", "")


@pytest.mark.parametrize(
    "params",
    [{"dim": "source"}, {"value": "Google"}, {"dim": "source", "value": "   "}, {"dim": "", "value": "Google"}],
)
def test_half_a_filter_is_no_filter_and_no_notice(params):
    _, state = resolve(type="page_view", **params)
    assert (state.dimension, state.value, state.notice, state.pages_ignored) == ("", "", "", False)
    assert "dim" not in state.params and "value" not in state.params


def test_a_filter_without_any_event_type_is_no_filter():
    BeaconDefinition.objects.all().delete()
    _, state = resolve(dim="source", value="Google")
    assert (state.definition, state.dimension, state.value) == (None, "", "")


@pytest.mark.parametrize(("dim", "notice"), [("prop:" + "k" * 5000, True), ("source", False)])
def test_an_overlong_dimension_is_not_read(dim, notice):
    _, state = resolve(type="page_view", dim=dim, value="Google")
    assert state.dimension == ("" if notice else "source") and state.pages_ignored is False
    assert bool(state.notice) == notice


@pytest.mark.parametrize(
    "params, title",
    [
        ({}, "Page views"),
        ({"identifier": "/pricing"}, "Page views of /pricing"),
        ({"metric": "visitors"}, "Unique visitors"),
        ({"metric": "visitors", "identifier": "/pricing"}, "Unique visitors of /pricing"),
        ({"metric": "visits"}, "Visits"),
        ({"metric": "visits", "identifier": "/pricing"}, "Visits entering at /pricing"),
        ({"metric": "bounce_rate", "identifier": "/pricing"}, "Bounce rate of visits entering at /pricing"),
        ({"metric": "visit_duration", "dim": "source", "value": "Google"}, "Visit duration with Source: Google"),
    ],
)
def test_the_chart_title_names_the_metric_and_what_it_is_of(params, title):
    _, state = resolve(type="page_view", **params)
    assert state.chart_subject == title


def test_a_filter_on_a_dimension_the_type_does_not_keep_is_dropped_with_its_page_kept():
    signups = BeaconDefinition.objects.create(slug="signup", name="Sign-ups", dimensions="")
    _, state = resolve(type=signups.slug, identifier="/pricing", dim="source", value="Google")
    assert (state.dimension, state.value, state.identifier, state.pages_ignored) == ("", "", "/pricing", False)
    assert state.notice == "Sign-ups keeps no Source counts: showing all of them."


@pytest.mark.parametrize("preset", ["today", "24h", "7d", "30d", "month", "12m"])
def test_each_preset_is_read_as_itself(preset):
    _, state = resolve(range=preset)
    assert state.period.preset == preset
