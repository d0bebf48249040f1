from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone as dj_timezone

from beacons.counting.buckets import bucket_start
from beacons.counting.increments import Hit, aggregates_add, dimension_values_for, increments_for
from beacons.models import BeaconAggregate, BeaconDefinition, BeaconEvent
from beacons.models import Granularity as G

from .conftest import first_site

pytestmark = pytest.mark.django_db
UTC = UTC


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def keep_event(definition, identifier, at):
    """What ingest does for a kept hit: count it and store the single event."""
    hits = [Hit(first_site().pk, definition.pk, tuple(definition.granularity_codes), identifier)]
    aggregates_add(increments=increments_for(hits=hits, received_at=at))
    BeaconEvent.objects.create(
        site=first_site(), definition=definition, identifier=identifier, received_at=at, payload={}
    )


def snapshot(definition):
    return sorted(
        BeaconAggregate.objects.filter(definition=definition).values_list(
            "identifier", "granularity", "period_start", "count"
        )
    )


@pytest.fixture
def error_definition():
    return BeaconDefinition.objects.get(slug="error")


def test_purge_removes_old_single_events_and_fine_buckets_only(error_definition, capsys):
    now = dj_timezone.now()
    keep_event(error_definition, "/old", now - timedelta(days=40))
    keep_event(error_definition, "/new", now - timedelta(hours=1))
    call_command("beacons_purge")
    out = capsys.readouterr().out
    assert list(BeaconEvent.objects.values_list("identifier", flat=True)) == ["/new"]
    remaining = set(BeaconAggregate.objects.filter(identifier="/old").values_list("granularity", flat=True))
    assert remaining == {G.HOUR, G.DAY, G.MONTH}  # the old minute bucket is gone
    assert BeaconAggregate.objects.filter(identifier="/new", granularity=G.MINUTE).exists()
    assert "error: removed 1 single events row(s)" in out
    assert "error: removed 2 minute row(s)" in out  # "/old" and the total row


def test_purge_dry_run_deletes_nothing(error_definition, capsys):
    keep_event(error_definition, "/old", dj_timezone.now() - timedelta(days=40))
    before = BeaconAggregate.objects.count()
    call_command("beacons_purge", "--dry-run")
    assert "would remove 1 single events" in capsys.readouterr().out
    assert BeaconEvent.objects.count() == 1 and BeaconAggregate.objects.count() == before


def test_purge_twice_removes_nothing_more(error_definition, capsys):
    keep_event(error_definition, "/old", dj_timezone.now() - timedelta(days=40))
    call_command("beacons_purge")
    capsys.readouterr()
    call_command("beacons_purge")
    assert "nothing to remove: everything is within its retention" in capsys.readouterr().out


def test_rebuild_restores_counts_from_single_events(error_definition):
    for at, page in [(utc(2026, 10, 3, 10, 5), "/a"), (utc(2026, 10, 3, 10, 6), "/a"), (utc(2026, 10, 20, 1), "/b")]:
        keep_event(error_definition, page, at)
    expected = snapshot(error_definition)
    BeaconAggregate.objects.filter(definition=error_definition, identifier="/a").update(count=999)
    call_command("beacons_rebuild", "--start", "2026-10-01", "--end", "2026-11-01")
    assert snapshot(error_definition) == expected


def test_rebuild_twice_gives_the_same_counts(error_definition):
    keep_event(error_definition, "/a", utc(2026, 10, 3, 10, 5))
    call_command("beacons_rebuild", "--start", "2026-10-01", "--end", "2026-11-01")
    once = snapshot(error_definition)
    call_command("beacons_rebuild", "--start", "2026-10-01", "--end", "2026-11-01")
    assert snapshot(error_definition) == once


def test_rebuild_leaves_buckets_partly_outside_the_range_alone(error_definition):
    keep_event(error_definition, "/a", utc(2026, 10, 3, 10, 5))
    keep_event(error_definition, "/a", utc(2026, 10, 20, 10, 5))
    call_command("beacons_rebuild", "--start", "2026-10-10", "--end", "2026-10-25")
    october = BeaconAggregate.objects.get(definition=error_definition, identifier="/a", granularity=G.MONTH)
    assert october.count == 2  # the month is not wholly inside the range: untouched


def test_rebuild_refuses_a_type_without_single_events(capsys):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="does not keep single events"):
        call_command("beacons_rebuild", "--start", "2026-10-01", "--end", "2026-11-01", "--definition", "page_view")


def test_purge_removes_counts_left_by_a_deleted_type(capsys):
    gone = BeaconDefinition.objects.create(slug="gone", name="Gone")
    kept = BeaconDefinition.objects.get(slug="page_view")
    for definition in (gone, kept):
        aggregates_add(
            increments=increments_for(
                hits=[Hit(first_site().pk, definition.pk, ("H",), "/x")], received_at=dj_timezone.now()
            )
        )
    gone_id = gone.pk
    gone.delete()
    # What the direct sink can write in the moment a type is deleted (it read the type from its cache).
    aggregates_add(
        increments=increments_for(hits=[Hit(first_site().pk, gone_id, ("H",), "/x")], received_at=dj_timezone.now())
    )
    call_command("beacons_purge")
    assert "(deleted types): removed 2 counts row(s)" in capsys.readouterr().out
    assert not BeaconAggregate.objects.filter(definition_id=gone_id).exists()
    assert BeaconAggregate.objects.filter(definition=kept).count() == 2


def test_purging_deletes_rows_in_one_statement_without_loading_them(error_definition, django_assert_num_queries):
    from beacons.counting.retention import rows_delete

    now = dj_timezone.now()
    for page in ("/a", "/b", "/c"):
        keep_event(error_definition, page, now - timedelta(days=40))
    old_minutes = BeaconAggregate.objects.filter(definition=error_definition, granularity=G.MINUTE)
    with django_assert_num_queries(1) as captured:
        assert rows_delete(old_minutes) == 4  # three pages and the total
    assert captured.captured_queries[0]["sql"].startswith("DELETE")
    assert not old_minutes.exists()
    assert BeaconAggregate.objects.filter(definition=error_definition, granularity=G.HOUR).count() == 4


def test_rebuild_windows_are_the_whole_buckets_inside_the_range():
    from beacons.counting.retention import whole_buckets

    assert whole_buckets(utc(2026, 10, 10), utc(2026, 11, 1), G.MONTH) == (utc(2026, 11, 1), utc(2026, 11, 1))
    assert whole_buckets(utc(2026, 10, 1), utc(2026, 11, 15), G.MONTH) == (utc(2026, 10, 1), utc(2026, 11, 1))
    assert whole_buckets(utc(2026, 10, 1, 0, 30), utc(2026, 10, 1, 3), G.HOUR) == (
        utc(2026, 10, 1, 1),
        utc(2026, 10, 1, 3),
    )


def test_purge_deletes_visitor_salts_older_than_two_days_but_a_dry_run_keeps_them():
    from beacons.models import DailySalt

    today = dj_timezone.now().date()
    for age in (0, 2, 3):
        DailySalt.objects.create(day=today - timedelta(days=age), salt=f"salt-{age}")
    call_command("beacons_purge", "--dry-run")
    assert DailySalt.objects.count() == 3
    call_command("beacons_purge")
    assert sorted(DailySalt.objects.values_list("day", flat=True)) == [today - timedelta(days=2), today]


def _counted(definition, at, *, identifier="/page", dimensions=None):
    hit = Hit(
        first_site().pk,
        definition.pk,
        tuple(definition.granularity_codes),
        identifier,
        dimensions or {},
        tuple(definition.granularity_codes),
    )
    increments = increments_for(hits=[hit], received_at=at)
    for value in dimension_values_for(hits=[hit], received_at=at):
        for key in value.keys():
            increments[key] += 1
    aggregates_add(increments=increments)


def test_purge_removes_hour_rows_of_pages_and_values_past_their_retention_keeping_totals_and_days(capsys):
    page_view = BeaconDefinition.objects.get(slug="page_view")
    page_view.hour_retention_days = 30
    page_view.save()
    now = dj_timezone.now()
    _counted(page_view, now - timedelta(days=31), dimensions={"browser": "Firefox"})
    _counted(page_view, now - timedelta(days=29), dimensions={"browser": "Firefox"})

    call_command("beacons_purge")

    hours = BeaconAggregate.objects.filter(definition=page_view, granularity=G.HOUR)
    assert sorted(hours.values_list("dimension", "identifier", "period_start")) == sorted(
        [
            ("", "", bucket_start(now - timedelta(days=31), G.HOUR)),  # the hour total stays
            ("", "", bucket_start(now - timedelta(days=29), G.HOUR)),
            ("", "/page", bucket_start(now - timedelta(days=29), G.HOUR)),
            ("browser", "Firefox", bucket_start(now - timedelta(days=29), G.HOUR)),
        ]
    )
    days = BeaconAggregate.objects.filter(definition=page_view, granularity=G.DAY, identifier="/page")
    assert sum(days.values_list("count", flat=True)) == 2  # the old hour lives on in its day
    assert "page_view: removed 2 hour (per page or value) row(s)" in capsys.readouterr().out


def test_rebuild_leaves_dimension_counts_alone(error_definition):
    at = utc(2026, 10, 3, 10, 5)
    keep_event(error_definition, "/a", at)
    _counted(error_definition, at, identifier="", dimensions={"browser": "Firefox"})
    call_command("beacons_rebuild", "--start", "2026-10-01", "--end", "2026-11-01")
    assert (
        BeaconAggregate.objects.filter(definition=error_definition, dimension="browser", granularity=G.DAY)
        .get(identifier="Firefox")
        .count
        == 1
    )
