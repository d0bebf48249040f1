"""Breakdown reads: the values of a dimension over a period, a value's series, and page filters."""

from datetime import UTC, datetime, timedelta

import pytest

from beacons.counting.increments import Hit, dimension_values_for, increments_for
from beacons.counting.sinks import DirectSink
from beacons.models import BeaconDefinition, Granularity
from beacons.queries import counters
from dashboard.forms import Comparison

from .conftest import first_site

pytestmark = pytest.mark.django_db
G = Granularity
MARCH = datetime(2026, 3, 1, tzinfo=UTC)


def record(definition, at, n, *, page="/", **dimensions):
    hit = Hit(
        first_site().pk,
        definition.pk,
        tuple(definition.granularity_codes),
        page,
        dimensions,
        tuple(definition.dimension_granularity_codes),
    )
    DirectSink().add(
        increments_for(hits=[hit] * n, received_at=at), dimension_values_for(hits=[hit] * n, received_at=at)
    )


@pytest.fixture
def page_view():
    page_view = BeaconDefinition.objects.get(slug="page_view")
    day = MARCH + timedelta(days=1, hours=10)
    record(page_view, day, 6, page="/pricing", source="google.com", browser="Firefox")
    record(page_view, day, 3, page="/", source="news.ycombinator.com", browser="Firefox")
    record(page_view, day + timedelta(days=1), 1, page="/", source="Direct / none", browser="Safari")
    record(page_view, day - timedelta(days=7), 2, page="/", source="news.ycombinator.com", browser="Safari")
    record(page_view, day - timedelta(days=7), 4, page="/", source="t.co", browser="Safari")
    return page_view


def test_a_breakdown_lists_values_by_hits_with_their_share_of_the_period_in_two_queries(
    page_view, django_assert_num_queries
):
    site = first_site()
    with django_assert_num_queries(2):
        rows = counters.breakdown(
            site=site, definition=page_view, dimension="source", start=MARCH, end=MARCH + timedelta(days=7), limit=10
        )
    assert [(row.value, row.count, round(row.share, 2)) for row in rows] == [
        ("google.com", 6, 0.6),
        ("news.ycombinator.com", 3, 0.3),
        ("Direct / none", 1, 0.1),
    ]
    assert rows[0].change is None  # nothing compared


def test_a_breakdown_keeps_the_busiest_values_up_to_its_limit(page_view):
    rows = counters.breakdown(
        site=first_site(),
        definition=page_view,
        dimension="browser",
        start=MARCH,
        end=MARCH + timedelta(days=7),
        limit=1,
    )
    assert [(row.value, row.count) for row in rows] == [("Firefox", 9)]


def test_a_breakdown_compares_with_the_period_the_dashboard_compares_with(page_view, django_assert_num_queries):
    week = MARCH - timedelta(days=7)
    previous = Comparison(week, MARCH, None, G.HOUR, "the week before")  # what DashboardState.kpi_comparison gives
    site = first_site()
    with django_assert_num_queries(2):
        rows = counters.breakdown(
            site=site,
            definition=page_view,
            dimension="source",
            start=MARCH,
            end=MARCH + timedelta(days=7),
            limit=None,
            compare=previous,
        )
    assert [(row.value, row.count, row.previous, row.change) for row in rows] == [
        ("google.com", 6, 0, 6),
        ("news.ycombinator.com", 3, 2, 1),
        ("Direct / none", 1, 0, 1),
        ("t.co", 0, 4, -4),  # a source that stopped
    ]


def test_a_breakdown_of_a_dimension_the_type_does_not_keep_says_so(page_view):
    error = BeaconDefinition.objects.get(slug="error")
    with pytest.raises(counters.DimensionNotKept):
        counters.breakdown(site=first_site(), definition=error, dimension="source", start=MARCH, end=MARCH, limit=10)
    with pytest.raises(counters.DimensionNotKept):
        counters.breakdown(
            site=first_site(), definition=page_view, dimension="prop:plan", start=MARCH, end=MARCH, limit=10
        )


def test_the_series_of_one_value_counts_page_views_from_it_per_day_in_one_query(page_view, django_assert_num_queries):
    site = first_site()
    with django_assert_num_queries(1):
        days = counters.series(
            site=site,
            definitions=[page_view],
            granularity=G.DAY,
            start=MARCH,
            end=MARCH + timedelta(days=4),
            dimension="source",
            identifier="news.ycombinator.com",
        )
    assert [n for _, n in days] == [0, 3, 0, 0]


def test_totals_of_one_value_compare_with_the_period_before(page_view):
    result = counters.totals(
        site=first_site(),
        definitions=[page_view],
        start=MARCH,
        end=MARCH + timedelta(days=7),
        dimension="browser",
        identifier="Safari",
    )
    assert (result.current, result.previous) == (1, 6)


@pytest.mark.parametrize(
    "asked, read",
    [
        ({"identifier": "/pricing"}, counters.CounterFilter("", "/pricing")),
        ({"dimension": "source", "value": "google.com"}, counters.CounterFilter("source", "google.com")),
        (
            {"identifier": "/pricing", "dimension": "source", "value": "google.com"},
            counters.CounterFilter("source", "google.com", pages_ignored=True),
        ),
        ({"dimension": "source"}, counters.CounterFilter("", "")),  # no value: no filter
    ],
)
def test_a_page_and_a_dimension_value_together_read_the_value_over_all_pages_and_say_so(page_view, asked, read):
    assert counters.counter_filter(definition=page_view, **asked) == read


def test_a_filter_on_a_dimension_the_type_does_not_keep_says_so():
    error = BeaconDefinition.objects.get(slug="error")
    with pytest.raises(counters.DimensionNotKept):
        counters.counter_filter(definition=error, dimension="country", value="DE")
