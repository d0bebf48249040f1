"""Visit metrics read through ``beacons.queries.visits``: totals with the previous period, series,
entry pages, dimension values and exit pages."""

from datetime import UTC, datetime, timedelta

import pytest

from beacons.models import BeaconDefinition, Granularity
from beacons.queries import visits

from .conftest import first_site, page_view_at

pytestmark = pytest.mark.django_db

NOV3, NOV4, NOV5 = (datetime(2026, 11, d, tzinfo=UTC) for d in (3, 4, 5))


@pytest.fixture
def two_days_of_visits():
    """3 November: v1 /a → /b after 60 s; v2 /a (a bounce); v3 from the newsletter /c → /a after
    120 s. 4 November: v4 /a (a bounce)."""
    at = NOV3 + timedelta(hours=10)
    page_view_at(at, "/a", visitor="v1")
    page_view_at(at + timedelta(seconds=60), "/b", visitor="v1")
    page_view_at(at + timedelta(hours=1), "/a", visitor="v2")
    page_view_at(at + timedelta(hours=2), "/c", visitor="v3", source="newsletter")
    page_view_at(at + timedelta(hours=2, seconds=120), "/a", visitor="v3")
    page_view_at(NOV4 + timedelta(hours=9), "/a", visitor="v4")
    return first_site()


def test_totals_give_visits_bounce_rate_duration_and_views_per_visit_with_the_change(two_days_of_visits):
    found = visits.visits_totals(site=two_days_of_visits, start=NOV3, end=NOV4, previous_period=(NOV4, NOV5))
    assert found.current == visits.VisitFigures(visits=3, bounces=1, seconds=180, pages=5)
    assert found.current.bounce_rate == pytest.approx(1 / 3)
    assert found.current.duration == 60
    assert found.current.views_per_visit == pytest.approx(5 / 3)
    assert found.previous == visits.VisitFigures(visits=1, bounces=1, seconds=0, pages=1)
    assert found.change("visits") == 2.0
    assert found.change("bounce_rate") == pytest.approx(-2 / 3)
    assert found.change("duration") is None  # no seconds before: no relative change


def test_totals_of_an_entry_page_and_of_a_dimension_value(two_days_of_visits):
    entry_a = visits.visits_totals(site=two_days_of_visits, start=NOV3, end=NOV4, identifier="/a").current
    assert entry_a == visits.VisitFigures(visits=2, bounces=1, seconds=60, pages=3)
    newsletter = visits.visits_totals(
        site=two_days_of_visits, start=NOV3, end=NOV4, dimension="source", identifier="newsletter"
    ).current
    assert newsletter == visits.VisitFigures(visits=1, bounces=0, seconds=120, pages=2)


def test_no_visits_give_no_rates_rather_than_zero(site):
    found = visits.visits_totals(site=site, start=NOV3, end=NOV4)
    assert found.current.visits == 0
    assert (found.current.bounce_rate, found.current.duration, found.current.views_per_visit) == (None, None, None)


def test_series_counts_visits_in_the_bucket_they_started(two_days_of_visits):
    points = visits.visits_series(
        site=two_days_of_visits, granularity=Granularity.DAY, start=NOV3, end=NOV5 + timedelta(days=1)
    )
    assert [(moment, figures.visits, figures.bounces) for moment, figures in points] == [
        (NOV3, 3, 1),
        (NOV4, 1, 1),
        (NOV5, 0, 0),
    ]
    by_hour = visits.visits_series(
        site=two_days_of_visits,
        granularity=Granularity.HOUR,
        start=NOV3 + timedelta(hours=10),
        end=NOV3 + timedelta(hours=13),
    )
    assert [figures.seconds for _, figures in by_hour] == [60, 0, 120]


def test_entry_pages_rank_by_visits_with_their_own_figures(two_days_of_visits, django_assert_num_queries):
    visits.visit_definitions()  # registered and cached
    with django_assert_num_queries(2):
        rows = visits.visits_by_entry(site=two_days_of_visits, start=NOV3, end=NOV4, previous_period=(NOV4, NOV5))
    assert [(row.identifier, row.current.visits, row.current.bounce_rate, row.current.duration) for row in rows] == [
        ("/a", 2, 0.5, 30),
        ("/c", 1, 0.0, 120),
    ]
    assert rows[0].previous == visits.VisitFigures(visits=1, bounces=1, seconds=0, pages=1)
    assert rows[0].compared is None  # no running period given: nothing to compare its elapsed part with
    assert rows[0].change("visits") == 1.0
    sources = visits.visits_by_entry(site=two_days_of_visits, start=NOV3, end=NOV4, dimension="source")
    assert [(row.identifier, row.current.visits) for row in sources][0] == ("Direct / none", 2)
    assert ("newsletter", 1) in [(row.identifier, row.current.visits) for row in sources]


def test_exit_pages_rank_by_exits_with_their_exit_rate(two_days_of_visits):
    page_views = BeaconDefinition.objects.filter(kind=BeaconDefinition.Kind.PAGE_VIEW)
    rows = visits.exits_by_page(site=two_days_of_visits, page_views=page_views, start=NOV3, end=NOV4)
    assert [(row.identifier, row.exits, row.page_views) for row in rows] == [("/a", 2, 3), ("/b", 1, 1)]
    assert rows[0].exit_rate == pytest.approx(2 / 3)


def test_an_unknown_metric_is_refused():
    with pytest.raises(ValueError, match="unknown visit metric"):
        visits.NO_VISITS.metric("revenue")


def test_an_entry_page_of_bounces_alone_has_no_seconds_and_a_duration_of_0(two_days_of_visits):
    rows = visits.visits_by_entry(site=two_days_of_visits, start=NOV4, end=NOV5)  # v4's bounce: no seconds row
    assert [(row.identifier, row.current) for row in rows] == [("/a", visits.VisitFigures(1, 1, 0, 1))]
    assert rows[0].current.duration == 0


def test_entry_pages_of_a_running_period_give_the_figures_of_its_elapsed_part(two_days_of_visits):
    rows = visits.visits_by_entry(
        site=two_days_of_visits,
        start=NOV3,
        end=NOV4,
        previous_period=(NOV3 - timedelta(days=1), NOV3),
        compared_end=NOV3 + timedelta(hours=11),  # 3 November until 11:00: v1's visit only
    )
    assert [(row.identifier, row.compared) for row in rows] == [
        ("/a", visits.VisitFigures(visits=1, bounces=0, seconds=60, pages=2)),
        ("/c", visits.NO_VISITS),
    ]


def test_entry_and_exit_pages_show_ten_rows_unless_asked(site):
    at = NOV3 + timedelta(hours=10)
    for i in range(11):
        page_view_at(at + timedelta(minutes=i), f"/p{i:02}", visitor=f"v{i}")
    assert len(visits.visits_by_entry(site=site, start=NOV3, end=NOV4)) == 10
    assert len(visits.visits_by_entry(site=site, start=NOV3, end=NOV4, limit=None)) == 11
    page_views = BeaconDefinition.objects.filter(kind=BeaconDefinition.Kind.PAGE_VIEW)
    assert len(visits.exits_by_page(site=site, page_views=page_views, start=NOV3, end=NOV4)) == 10


def test_an_exit_page_without_views_of_the_types_asked_has_no_exit_rate(two_days_of_visits):
    rows = visits.exits_by_page(site=two_days_of_visits, page_views=[], start=NOV3, end=NOV4)
    assert [(row.identifier, row.exits, row.page_views, row.exit_rate) for row in rows] == [
        ("/a", 2, 0, None),
        ("/b", 1, 0, None),
    ]
