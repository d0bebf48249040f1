import io
import re
import threading
from collections import Counter
from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.db import OperationalError, connections
from django.db.models import Sum

from beacons.counting import drain, increments, redis_format
from beacons.counting.drain import drain_pass, drain_with_retries, hits_from_totals
from beacons.counting.increments import aggregates_add
from beacons.counting.redis_format import drain_batch_key, live_and_pending_keys
from beacons.counting.sinks import get_sink
from beacons.ingest.hits import hit_log_fold
from beacons.ingest.sessions import page_view_log_fold
from beacons.models import BeaconAggregate, BeaconDefinition, DrainBatch, Granularity

pytestmark = [pytest.mark.django_db, pytest.mark.redis]


def hour_total(identifier=""):
    rows = BeaconAggregate.objects.filter(
        definition__slug="page_view", identifier=identifier, granularity=Granularity.HOUR
    )
    return rows.aggregate(total=Sum("count"))["total"] or 0


@pytest.fixture
def page_views(send):
    def _send(identifier, times):
        for _ in range(times):
            assert send({"event_type": "page_view", "identifier": identifier}).status_code == 204

    return _send


def redis_leftovers(client, settings):
    """Counts not yet drained: every key but the day's value sets of the cap and the open visits, which
    stay until they expire, and the number the next logged page views take."""
    keys = client.scan_iter(match=f"{{{settings.BEACONS_REDIS_PREFIX}}}:*")
    kept = (b":values:", b":visit:", b":page-views:number")
    return [key for key in keys if not any(part in key for part in kept)]


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
    hit_log_fold(sink=get_sink())  # the drain's first step: the logged hits join the live hash
    live, pending = live_and_pending_keys(settings.BEACONS_REDIS_PREFIX)
    redis_sink.rename(live, drain_batch_key(settings.BEACONS_REDIS_PREFIX, "old"))
    redis_sink.sadd(pending, "old")
    DrainBatch.objects.create(batch_id="old")  # a drain committed it and died before deleting the key
    result = drain_pass()
    assert result.discarded == 1
    assert hour_total("/once") == 0
    assert redis_leftovers(redis_sink, settings) == []


def test_leftover_batch_not_yet_written_is_written(redis_sink, page_views, settings):
    page_views("/late", 2)
    hit_log_fold(sink=get_sink())  # the drain's first step: the logged hits join the live hash
    live, pending = live_and_pending_keys(settings.BEACONS_REDIS_PREFIX)
    redis_sink.rename(live, drain_batch_key(settings.BEACONS_REDIS_PREFIX, "interrupted"))
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

    monkeypatch.setattr(drain, "aggregates_add_stream", database_down)
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
    out = capsys.readouterr().out
    assert re.fullmatch(
        r"drained \d+ counters \(2 hits\) in 1 batch in \d+\.\d s; 2 page views folded into visits\n", out
    )
    assert hour_total("/cmd") == 2


def test_drain_command_shows_progress_lines_when_not_a_terminal(redis_sink, page_views, monkeypatch):
    from beacons.management.commands import beacons_drain

    page_views("/progress", 2)
    monkeypatch.setattr(drain, "SCAN_COUNT", 2)
    monkeypatch.setattr(beacons_drain, "PROGRESS_EVERY", 4)
    err = io.StringIO()
    call_command("beacons_drain", stdout=io.StringIO(), stderr=err)
    lines = err.getvalue().splitlines()
    assert lines and all(re.fullmatch(r"draining: … \d+ counters", line) for line in lines)
    assert hour_total("/progress") == 2


def test_drain_command_with_nothing_to_drain_says_so(redis_sink, capsys):
    call_command("beacons_drain")
    assert re.fullmatch(r"nothing to drain: Redis holds no new counts \(\d+\.\d s\)\n", capsys.readouterr().out)


def test_hits_from_totals_counts_each_hit_once_across_granularities():
    # Sums of the "" rows per (site, definition, granularity): 3 hits of type 1 kept hourly and daily,
    # 2 of type 2, and 4 of type 1 on site 2.
    assert hits_from_totals({(1, 1, "H"): 3, (1, 1, "D"): 3, (1, 2, "D"): 2, (2, 1, "H"): 4, (2, 1, "D"): 4}) == 9


def test_counts_of_a_type_deleted_before_the_drain_are_dropped_and_the_rest_drained(redis_sink, page_views, send):
    assert send({"event_type": "doomed", "identifier": "/d"}).status_code == 204
    page_views("/kept", 2)
    BeaconDefinition.objects.get(slug="doomed").delete()
    result = drain_pass()
    assert hour_total("/kept") == 2
    assert result.batches == 1
    assert not BeaconAggregate.objects.exclude(definition__in=BeaconDefinition.objects.all()).exists()


def test_a_batch_is_read_in_chunks_and_every_count_lands(redis_sink, page_views, monkeypatch):
    monkeypatch.setattr(drain, "SCAN_COUNT", 2)
    monkeypatch.setattr(increments, "STREAM_ROWS_PER_STATEMENT", 3)
    pages = [f"/chunk/{i}" for i in range(200)]  # past Redis's small-hash encoding, which HSCAN returns whole
    for page in pages:
        page_views(page, 1)
    result = drain_pass()
    assert [hour_total(page) for page in pages] == [1] * len(pages)
    assert (hour_total(), result.hits) == (len(pages), len(pages))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_drains_at_once_count_a_batch_once(redis_sink, page_views, settings):
    page_views("/race", 4)
    hit_log_fold(sink=get_sink())  # the logged hits join the live hash first, as a drain does
    page_view_log_fold(sink=get_sink())  # then their visits
    live, pending = live_and_pending_keys(settings.BEACONS_REDIS_PREFIX)
    redis_sink.rename(live, drain_batch_key(settings.BEACONS_REDIS_PREFIX, "shared"))
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
    awkward = "/a\\b\tc\nd\re|f ü|"
    assert send({"event_type": "page_view", "identifier": awkward}).status_code == 204
    result = drain_pass()
    assert hour_total(awkward.strip()) == 1
    assert result.hits == 1


def test_old_drain_records_are_purged_unless_their_batch_is_still_pending(redis_sink, settings):
    from datetime import timedelta

    from django.utils import timezone

    from beacons.counting.drain import drain_batches_purge

    _, pending = live_and_pending_keys(settings.BEACONS_REDIS_PREFIX)
    for batch_id in ("old-done", "old-pending", "recent"):
        DrainBatch.objects.create(batch_id=batch_id)
    DrainBatch.objects.filter(batch_id__startswith="old").update(drained_at=timezone.now() - timedelta(days=8))
    redis_sink.sadd(pending, "old-pending")
    assert drain_batches_purge() == 1
    assert sorted(DrainBatch.objects.values_list("batch_id", flat=True)) == ["old-pending", "recent"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)  # the parts are written by other threads' connections
def test_a_large_batch_is_written_in_parallel_parts_each_exactly_once(redis_sink, page_views, settings, monkeypatch):
    from beacons.counting.redis_format import field_decode

    monkeypatch.setattr(drain, "PARALLEL_MIN_KEYS", 1)
    settings.BEACONS_DRAIN_WORKERS = 2
    pages = [f"/part/{i}" for i in range(12)]
    for page in pages:
        page_views(page, 2)
    hit_log_fold(sink=get_sink())  # the logged hits join the live hash first, as a drain does
    page_view_log_fold(sink=get_sink())  # then their visits
    live, pending = live_and_pending_keys(settings.BEACONS_REDIS_PREFIX)
    batch_key = drain_batch_key(settings.BEACONS_REDIS_PREFIX, "big")
    redis_sink.rename(live, batch_key)
    redis_sink.sadd(pending, "big")
    # A drain wrote the first part, then died before the second.
    counters = redis_format.chunk_split(list(redis_sink.hgetall(batch_key).items()))[0]
    fields = dict(redis_format.fields_expand(counters))  # its counters, one field per bucket as the drain reads them
    assert drain.batch_part_ids("big", len(fields)) == ["big/1-of-2", "big/2-of-2"]
    first = Counter()
    for (field, n), part in zip(fields.items(), redis_format.part_indexes(fields, 2)):
        if part == 0:
            site_id, definition_id, dimension, identifier, granularity, epoch, n = field_decode(field, n)
            first[(site_id, definition_id, dimension, identifier, granularity, datetime.fromtimestamp(epoch, UTC))] += n
    assert 0 < len(first) < len(fields)
    aggregates_add(increments=first)
    DrainBatch.objects.create(batch_id="big/1-of-2")
    page_view = BeaconDefinition.objects.get(slug="page_view").pk
    first_hits = sum(  # the page views' (visit counters are no hits)
        n
        for (_, definition_id, _, identifier, granularity, _), n in first.items()
        if identifier == "" and granularity == "H" and definition_id == page_view
    )

    result = drain_pass()
    assert [hour_total(page) for page in pages] == [2] * len(pages)
    assert hour_total() == 2 * len(pages)
    assert sorted(DrainBatch.objects.values_list("batch_id", flat=True)) == ["big/1-of-2", "big/2-of-2"]
    assert result.batches == 1 and result.hits == 2 * len(pages) - first_hits
    assert redis_leftovers(redis_sink, settings) == []


def test_undecodable_bytes_in_the_live_hash_never_block_a_drain(redis_sink, page_views, settings, site):
    from django.utils import timezone

    from beacons.counting.buckets import bucket_start
    from beacons.counting.redis_format import field_encode

    page_views("/fine", 1)
    definition_id = BeaconDefinition.objects.get(slug="page_view").pk
    live, _ = live_and_pending_keys(settings.BEACONS_REDIS_PREFIX)
    field = field_encode((site.pk, definition_id, "", "/bad", "H", bucket_start(timezone.now(), "H")))
    redis_sink.hset(live, mapping={field.replace(b"/bad", b"/b\xffa\x00d"): 2})  # not what ingest writes
    drain_pass()
    assert hour_total("/fine") == 1
    assert hour_total("/b\ufffda\ufffdd") == 2
    assert redis_leftovers(redis_sink, settings) == []
