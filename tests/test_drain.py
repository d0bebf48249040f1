import threading

import pytest
from django.core.management import call_command
from django.db import OperationalError, connections
from django.db.models import Sum

from beacons import drain
from beacons.drain import drain_pass, drain_with_retries, hits_in
from beacons.models import BeaconAggregate, DrainBatch, Granularity
from beacons.sinks import get_sink, redis_batch_key, redis_keys

pytestmark = [pytest.mark.django_db, pytest.mark.redis]


def hour_total(identifier=""):
    rows = BeaconAggregate.objects.filter(definition__slug="page_view", identifier=identifier, granularity=Granularity.HOUR)
    return rows.aggregate(total=Sum("count"))["total"] or 0


@pytest.fixture
def page_views(send):
    def _send(identifier, times):
        for _ in range(times):
            assert send({"event_type": "page_view", "identifier": identifier}).status_code == 204

    return _send


def redis_leftovers(client, settings):
    return list(client.scan_iter(match=f"{{{settings.BEACONS_REDIS_PREFIX}}}:*"))


def test_drain_moves_every_count_into_the_database_once(redis_sink, page_views, settings):
    page_views("/a", 3)
    page_views("/b", 1)
    result = drain_pass()
    assert (hour_total(), hour_total("/a"), hour_total("/b")) == (4, 3, 1)
    assert (result.batches, result.hits) == (1, 4)
    assert DrainBatch.objects.get().hits == 4
    assert redis_leftovers(redis_sink, settings) == []
    assert drain_pass().batches == 0  # nothing left: a second drain writes nothing
    assert hour_total() == 4


def test_hits_during_a_drain_go_to_the_next_batch(redis_sink, page_views):
    page_views("/x", 2)
    drain_pass()
    page_views("/x", 5)
    drain_pass()
    assert hour_total("/x") == 7
    assert DrainBatch.objects.count() == 2


def test_leftover_batch_already_written_is_discarded_not_counted_again(redis_sink, page_views, settings):
    page_views("/once", 2)
    live, pending = redis_keys(settings.BEACONS_REDIS_PREFIX)
    redis_sink.rename(live, redis_batch_key(settings.BEACONS_REDIS_PREFIX, "old"))
    redis_sink.sadd(pending, "old")
    DrainBatch.objects.create(batch_id="old")  # a drain committed it and died before deleting the key
    result = drain_pass()
    assert result.discarded == 1
    assert hour_total("/once") == 0
    assert redis_leftovers(redis_sink, settings) == []


def test_leftover_batch_not_yet_written_is_written(redis_sink, page_views, settings):
    page_views("/late", 2)
    live, pending = redis_keys(settings.BEACONS_REDIS_PREFIX)
    redis_sink.rename(live, redis_batch_key(settings.BEACONS_REDIS_PREFIX, "interrupted"))
    redis_sink.sadd(pending, "interrupted")  # renamed, then the drain died
    page_views("/late", 1)
    result = drain_pass()
    assert (result.batches, hour_total("/late")) == (2, 3)
    assert redis_leftovers(redis_sink, settings) == []


@pytest.mark.django_db(transaction=True)  # the retry closes the broken connection
def test_database_down_while_draining_keeps_counts_in_redis(redis_sink, page_views, settings, monkeypatch):
    page_views("/kept", 3)

    def database_down(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(drain, "aggregates_add_bulk", database_down)
    waits = []
    with pytest.raises(OperationalError):
        drain_with_retries(attempts=3, sleep=waits.append)
    assert waits == [1.0, 2.0]  # backoff between attempts
    assert hour_total("/kept") == 0
    assert not DrainBatch.objects.exists()
    monkeypatch.undo()
    drain_pass()
    assert hour_total("/kept") == 3


def test_drain_command_reports_what_it_moved(redis_sink, page_views, capsys):
    page_views("/cmd", 2)
    call_command("beacons_drain")
    assert "1 batch(es), 2 hit(s)" in capsys.readouterr().out
    assert hour_total("/cmd") == 2


def test_hits_in_counts_each_hit_once_across_granularities():
    from datetime import UTC, datetime

    start = datetime(2026, 1, 1, tzinfo=UTC)
    increments = {(1, "", "H", start): 3, (1, "", "D", start): 3, (1, "/a", "H", start): 3, (2, "", "D", start): 2}
    assert hits_in(increments) == 5


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_drains_at_once_count_a_batch_once(redis_sink, page_views, settings):
    page_views("/race", 4)
    live, pending = redis_keys(settings.BEACONS_REDIS_PREFIX)
    redis_sink.rename(live, redis_batch_key(settings.BEACONS_REDIS_PREFIX, "shared"))
    redis_sink.sadd(pending, "shared")
    barrier = threading.Barrier(2)
    errors = []

    def run():
        try:
            barrier.wait()
            drain_pass()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert hour_total("/race") == 4
    assert DrainBatch.objects.count() == 1
    assert get_sink().name == "redis"


def test_identifiers_with_copy_special_characters_are_stored_exactly(redis_sink, send):
    awkward = "/a\\b\tc\nd\re|f ü"
    assert send({"event_type": "page_view", "identifier": awkward}).status_code == 204
    drain_pass()
    assert hour_total(awkward.strip()) == 1


def test_old_drain_records_are_purged_unless_their_batch_is_still_pending(redis_sink, settings):
    from datetime import timedelta

    from django.utils import timezone

    from beacons.drain import drain_batches_purge

    _, pending = redis_keys(settings.BEACONS_REDIS_PREFIX)
    for batch_id in ("old-done", "old-pending", "recent"):
        DrainBatch.objects.create(batch_id=batch_id)
    DrainBatch.objects.filter(batch_id__startswith="old").update(drained_at=timezone.now() - timedelta(days=8))
    redis_sink.sadd(pending, "old-pending")
    assert drain_batches_purge() == 1
    assert sorted(DrainBatch.objects.values_list("batch_id", flat=True)) == ["old-pending", "recent"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)  # the parts are written by other threads' connections
def test_a_large_batch_is_written_in_parallel_parts_each_exactly_once(redis_sink, page_views, settings, monkeypatch):
    from beacons.counting import aggregates_add
    from beacons.sinks import counter_key

    monkeypatch.setattr(drain, "PARALLEL_MIN_KEYS", 1)
    settings.BEACONS_DRAIN_WORKERS = 2
    pages = [f"/part/{i}" for i in range(12)]
    for page in pages:
        page_views(page, 2)
    live, pending = redis_keys(settings.BEACONS_REDIS_PREFIX)
    batch_key = redis_batch_key(settings.BEACONS_REDIS_PREFIX, "big")
    redis_sink.rename(live, batch_key)
    redis_sink.sadd(pending, "big")
    # A drain wrote the first part, then died before the second.
    increments = {counter_key(field): int(n) for field, n in redis_sink.hgetall(batch_key).items()}
    parts = drain.batch_parts("big", increments)
    assert [part_id for part_id, _ in parts] == ["big/1-of-2", "big/2-of-2"]
    assert all(part for _, part in parts)
    first_id, first = parts[0]
    aggregates_add(increments=first)
    DrainBatch.objects.create(batch_id=first_id)

    result = drain_pass()
    assert [hour_total(page) for page in pages] == [2] * len(pages)
    assert hour_total() == 2 * len(pages)
    assert sorted(DrainBatch.objects.values_list("batch_id", flat=True)) == ["big/1-of-2", "big/2-of-2"]
    assert result.batches == 1 and result.hits == sum(hits_in(part) for _, part in parts[1:])
    assert redis_leftovers(redis_sink, settings) == []
