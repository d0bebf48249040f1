"""Counting under concurrency and the race on first registration (real PostgreSQL)."""

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from django.db import connection, connections, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from beacons.counting import increments
from beacons.counting.increments import (
    Hit,
    aggregates_add,
    aggregates_add_stream,
    aggregates_insert_new,
    aggregates_set,
    increments_add_hits,
    increments_for,
)
from beacons.models import BeaconAggregate, BeaconDefinition
from beacons.models import Granularity as G

from .conftest import BROWSER_UA, first_site


def test_upsert_adds_to_existing_counts(site):
    definition = BeaconDefinition.objects.get(slug="page_view")
    now = timezone.now()
    increments = increments_for(hits=[Hit(site.pk, definition.pk, (G.DAY,), "/a")] * 3, received_at=now)
    aggregates_add(increments=increments)
    aggregates_add(increments=increments)
    assert BeaconAggregate.objects.get(identifier="/a").count == 6
    assert BeaconAggregate.objects.get(identifier="").count == 6


def test_large_increment_sets_are_split_into_statements(site, django_assert_num_queries):
    definition = BeaconDefinition.objects.get(slug="page_view")
    hits = [Hit(site.pk, definition.pk, (G.DAY,), f"/{i}") for i in range(700)]
    increments = increments_for(hits=hits, received_at=timezone.now())
    with django_assert_num_queries(2):  # 701 keys, 500 per statement
        assert aggregates_add(increments=increments) == 701
    assert BeaconAggregate.objects.get(identifier="").count == 700


def test_hits_count_under_their_identifier_and_all_under_the_total():
    from collections import Counter
    from datetime import UTC, datetime

    hour, day = datetime(2026, 5, 1, 10, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC)
    increments = Counter()
    increments_add_hits(
        increments, site_id=2, definition_id=3, buckets=[(G.HOUR, hour), (G.DAY, day)], hits={"/a": 2, "/b": 1}
    )
    increments_add_hits(
        increments, site_id=2, definition_id=3, buckets=[(G.HOUR, hour)], hits={"": 4}
    )  # no identifier: total only
    increments_add_hits(increments, site_id=5, definition_id=3, buckets=[(G.HOUR, hour)], hits={"/a": 1})
    assert increments == {
        (2, 3, "", "", G.HOUR, hour): 7,
        (2, 3, "", "/a", G.HOUR, hour): 2,
        (2, 3, "", "/b", G.HOUR, hour): 1,
        (2, 3, "", "", G.DAY, day): 3,
        (2, 3, "", "/a", G.DAY, day): 2,
        (2, 3, "", "/b", G.DAY, day): 1,
        (5, 3, "", "", G.HOUR, hour): 1,
        (5, 3, "", "/a", G.HOUR, hour): 1,
    }


def test_inserting_new_counters_refuses_a_stored_key_instead_of_counting_it_twice(site):
    from django.db import IntegrityError, transaction

    definition = BeaconDefinition.objects.get(slug="page_view")
    increments = increments_for(
        hits=[Hit(site.pk, definition.pk, (G.DAY, G.MONTH), "/new")] * 2, received_at=timezone.now()
    )
    assert aggregates_insert_new(increments=increments) == 4
    assert sorted(BeaconAggregate.objects.values_list("identifier", "count")) == [
        ("", 2),
        ("", 2),
        ("/new", 2),
        ("/new", 2),
    ]
    with pytest.raises(IntegrityError), transaction.atomic():
        aggregates_insert_new(increments=increments)
    assert sorted(BeaconAggregate.objects.values_list("count", flat=True)) == [2, 2, 2, 2]


def _in_threads(worker, threads: int):
    barrier = threading.Barrier(threads)

    def run(index):
        barrier.wait()
        try:
            worker(index)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(run, range(threads)))


@pytest.mark.postgres
def test_concurrent_hits_on_the_same_bucket_give_the_exact_total(transactional_db):
    definition = BeaconDefinition.objects.get(slug="page_view")
    threads, per_thread = 8, 25

    def worker(_index):
        client = Client(HTTP_USER_AGENT=BROWSER_UA)
        for i in range(per_thread):
            response = client.post(
                "/beacon",
                data={"event_type": "page_view", "identifier": "/hot"},
                content_type="application/json",
                REMOTE_ADDR=f"10.0.{_index}.{i}",
            )
            assert response.status_code == 204

    _in_threads(worker, threads)
    day = BeaconAggregate.objects.get(definition=definition, identifier="/hot", granularity=G.DAY)
    total = BeaconAggregate.objects.get(definition=definition, identifier="", granularity=G.DAY)
    assert day.count == total.count == threads * per_thread


@pytest.mark.postgres
def test_two_first_hits_of_a_new_type_at_once_register_it_once(transactional_db):
    threads = 8

    def worker(index):
        response = Client(HTTP_USER_AGENT=BROWSER_UA).post(
            "/beacon", data={"event_type": "brand_new", "identifier": f"x{index}"}, content_type="application/json"
        )
        assert response.status_code == 204

    _in_threads(worker, threads)
    assert BeaconDefinition.objects.filter(slug="brand_new").count() == 1
    assert BeaconAggregate.objects.get(definition__slug="brand_new", identifier="", granularity=G.DAY).count == threads


def test_losing_the_first_registration_race_uses_the_winners_row(db, monkeypatch):
    from beacons.registry import definitions_resolve

    manager = BeaconDefinition.objects
    real_bulk_create = manager.bulk_create

    def another_process_wins_first(objs, **kwargs):
        BeaconDefinition.objects.create(slug="raced", name="Created by the winner")
        return real_bulk_create(objs, **kwargs)

    monkeypatch.setattr(manager, "bulk_create", another_process_wins_first)
    resolved = definitions_resolve(slugs={"raced"})
    assert resolved["raced"].pk == BeaconDefinition.objects.get(slug="raced").pk
    assert BeaconDefinition.objects.filter(slug="raced").count() == 1


def _day_hits(definition, identifiers):
    site_id = first_site().pk
    return increments_for(
        hits=[Hit(site_id, definition.pk, (G.DAY,), i) for i in identifiers], received_at=timezone.now()
    )


@pytest.mark.parametrize("keys, statements", [(500, 1), (501, 2)])
def test_500_keys_go_in_one_statement_and_501_in_two(db, django_assert_num_queries, keys, statements):
    definition = BeaconDefinition.objects.get(slug="page_view")
    increments = _day_hits(definition, [f"/{i}" for i in range(keys - 1)])  # plus the "" total row
    assert len(increments) == keys
    with django_assert_num_queries(statements):
        assert aggregates_add(increments=increments) == keys
    assert BeaconAggregate.objects.count() == keys
    assert BeaconAggregate.objects.get(identifier="").count == keys - 1


def test_a_hit_counts_once_per_granularity_under_its_identifier_and_the_total(db):
    received_at = datetime(2026, 3, 14, 15, 9, 26, 500000, tzinfo=UTC)
    hits = [Hit(1, 7, (G.MINUTE, G.DAY), "/a"), Hit(1, 7, (G.MINUTE, G.DAY), "/a"), Hit(1, 7, (G.MINUTE, G.DAY), "")]
    hits.append(Hit(2, 7, (G.DAY,), "/a"))  # another site: its own counters
    assert increments_for(hits=hits, received_at=received_at) == {
        (1, 7, "", "", G.MINUTE, datetime(2026, 3, 14, 15, 9, tzinfo=UTC)): 3,
        (1, 7, "", "", G.DAY, datetime(2026, 3, 14, tzinfo=UTC)): 3,
        (1, 7, "", "/a", G.MINUTE, datetime(2026, 3, 14, 15, 9, tzinfo=UTC)): 2,
        (1, 7, "", "/a", G.DAY, datetime(2026, 3, 14, tzinfo=UTC)): 2,
        (2, 7, "", "", G.DAY, datetime(2026, 3, 14, tzinfo=UTC)): 1,
        (2, 7, "", "/a", G.DAY, datetime(2026, 3, 14, tzinfo=UTC)): 1,
    }


def test_zero_increments_write_no_row(site):
    definition = BeaconDefinition.objects.get(slug="page_view")
    start = datetime(2026, 3, 14, tzinfo=UTC)
    increments = {
        (site.pk, definition.pk, "", "/a", G.DAY, start): 0,
        (site.pk, definition.pk, "", "", G.DAY, start): 2,
    }
    assert aggregates_add(increments=increments) == 1
    assert list(BeaconAggregate.objects.values_list("identifier", "count")) == [("", 2)]


def test_aggregates_set_replaces_stored_counts_and_inserts_missing_ones(site):
    definition = BeaconDefinition.objects.get(slug="page_view")
    start = datetime(2026, 3, 14, tzinfo=UTC)
    aggregates_add(increments={(site.pk, definition.pk, "", "/a", G.DAY, start): 5})
    counts = {(site.pk, definition.pk, "", "/a", G.DAY, start): 2, (site.pk, definition.pk, "", "/b", G.DAY, start): 3}
    assert aggregates_set(counts=counts) == 2
    assert dict(BeaconAggregate.objects.values_list("identifier", "count")) == {"/a": 2, "/b": 3}


@dataclass
class _Chunk:
    """A ``increments.CounterChunk`` of (site_id, definition_id, dimension, identifier, granularity, epoch, n) rows."""

    counter_rows: list

    def __len__(self):
        return len(self.counter_rows)

    def rows(self):
        return self.counter_rows

    def copy_text(self):
        return "".join(
            f"{s}\t{d}\t{g}{'/' + dim if dim else ''}\t{e}\t{i}\t{n}\n" for s, d, dim, i, g, e, n in self.counter_rows
        ).encode()


def _stream_chunks(definition_id, gone_id):
    """Six rows of the first site, one of a deleted type and one of a deleted site (both dropped)."""
    day = int(datetime(2026, 3, 14, tzinfo=UTC).timestamp())
    site_id = first_site().pk
    return [
        _Chunk([(site_id, definition_id, "", "", G.DAY, day, 2), (site_id, definition_id, "", "/a", G.DAY, day, 2)]),
        _Chunk(
            [
                (site_id, definition_id, "", "", G.DAY, day, 1),
                (site_id, gone_id, "", "", G.DAY, day, 9),
                (site_id + 1000, definition_id, "", "", G.DAY, day, 7),
            ]
        ),
        _Chunk([(site_id, definition_id, "", "/b", G.DAY, day, 1), (site_id, definition_id, "", "", G.DAY, day, 1)]),
    ]


def test_a_stream_adds_every_chunk_drops_deleted_types_and_sites_and_returns_the_rows_read(site):
    definition = BeaconDefinition.objects.get(slug="page_view")
    aggregates_add(increments={(site.pk, definition.pk, "", "/a", G.DAY, datetime(2026, 3, 14, tzinfo=UTC)): 10})
    with transaction.atomic():
        assert aggregates_add_stream(chunks=_stream_chunks(definition.pk, definition.pk + 1000)) == 7
    assert dict(BeaconAggregate.objects.values_list("identifier", "count")) == {"": 4, "/a": 12, "/b": 1}
    start = BeaconAggregate.objects.get(identifier="").period_start
    assert start == datetime(2026, 3, 14, tzinfo=UTC)


@pytest.mark.postgres
@pytest.mark.parametrize("per_statement, statements", [(4, 2), (5, 2), (6, 1), (7, 1), (2, 3)])
def test_the_postgresql_stream_adds_its_rows_every_rows_per_statement_and_at_the_end(
    db, monkeypatch, per_statement, statements
):
    definition = BeaconDefinition.objects.get(slug="page_view")
    monkeypatch.setattr(increments, "STREAM_ROWS_PER_STATEMENT", per_statement)
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        assert aggregates_add_stream(chunks=_stream_chunks(definition.pk, definition.pk + 1000)) == 7
    inserts = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith(f"INSERT INTO {BeaconAggregate._meta.db_table}")
    ]
    assert len(inserts) == statements
    assert not [q for q in queries.captured_queries if q["sql"].startswith("UPDATE")]  # nothing to take back
    assert dict(BeaconAggregate.objects.values_list("identifier", "count")) == {"": 4, "/a": 2, "/b": 1}


@pytest.mark.postgres
@pytest.mark.parametrize("per_statement", [2, 100])
def test_the_postgresql_stream_takes_back_negative_counts_floored_at_zero(db, monkeypatch, per_statement):
    # Visit adjustments drained from Redis: a bounce taken back, an exit moved. Taken back in the
    # statement that reads them, never again in the next one.
    definition = BeaconDefinition.objects.get(slug="page_view")
    site_id = first_site().pk
    day = datetime(2026, 3, 14, tzinfo=UTC)
    aggregates_add(
        increments={
            (site_id, definition.pk, "", "/a", G.DAY, day): 5,
            (site_id, definition.pk, "", "/b", G.DAY, day): 1,
        }
    )
    epoch = int(day.timestamp())
    chunks = [
        _Chunk(
            [(site_id, definition.pk, "", "/a", G.DAY, epoch, -2), (site_id, definition.pk, "", "/b", G.DAY, epoch, -3)]
        ),
        _Chunk(
            [(site_id, definition.pk, "", "/c", G.DAY, epoch, 4), (site_id, definition.pk, "", "/a", G.DAY, epoch, 1)]
        ),
    ]
    monkeypatch.setattr(increments, "STREAM_ROWS_PER_STATEMENT", per_statement)
    with transaction.atomic():
        assert aggregates_add_stream(chunks=chunks) == 4
    assert dict(BeaconAggregate.objects.values_list("identifier", "count")) == {"/a": 4, "/b": 0, "/c": 4}


def test_adding_and_taking_back_in_one_write_returns_every_key_written(site):
    definition = BeaconDefinition.objects.get(slug="page_view")
    day = datetime(2026, 3, 14, tzinfo=UTC)
    aggregates_add(increments={(site.pk, definition.pk, "", "/a", G.DAY, day): 2})
    taken_and_added = {
        (site.pk, definition.pk, "", "/a", G.DAY, day): -1,
        (site.pk, definition.pk, "", "/b", G.DAY, day): 3,
    }
    assert aggregates_add(increments=taken_and_added) == 2
    assert dict(BeaconAggregate.objects.values_list("identifier", "count")) == {"/a": 1, "/b": 3}


@pytest.mark.postgres
def test_the_postgresql_stream_can_run_twice_in_one_transaction(db):
    definition = BeaconDefinition.objects.get(slug="page_view")
    with transaction.atomic():
        assert aggregates_add_stream(chunks=_stream_chunks(definition.pk, definition.pk + 1000)) == 7
        assert aggregates_add_stream(chunks=_stream_chunks(definition.pk, definition.pk + 1000)) == 7
    assert dict(BeaconAggregate.objects.values_list("identifier", "count")) == {"": 8, "/a": 4, "/b": 2}


def test_a_stream_carries_dimension_rows_under_their_dimension(site):
    """Both paths: COPY on PostgreSQL ("<granularity>/<dimension>" split in SQL), rows elsewhere."""
    definition = BeaconDefinition.objects.get(slug="page_view")
    day = int(datetime(2026, 3, 14, tzinfo=UTC).timestamp())
    chunks = [
        _Chunk(
            [
                (site.pk, definition.pk, "", "", G.DAY, day, 3),
                (site.pk, definition.pk, "prop:plan", "pro", G.DAY, day, 2),
                (site.pk, definition.pk, "country", "DE", G.MONTH, day, 1),
            ]
        ),
        _Chunk([(site.pk, definition.pk, "prop:plan", "pro", G.DAY, day, 1)]),
    ]
    with transaction.atomic():
        assert aggregates_add_stream(chunks=chunks) == 4
    stored = BeaconAggregate.objects.values_list("dimension", "identifier", "granularity", "count")
    assert sorted(stored) == [("", "", G.DAY, 3), ("country", "DE", G.MONTH, 1), ("prop:plan", "pro", G.DAY, 3)]
