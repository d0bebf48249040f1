import logging
import threading
import time
import uuid
from datetime import UTC, datetime

import pytest
from django.db import OperationalError
from django.db.models import Sum

from beacons.counting import sinks
from beacons.counting.drain import drain_pass
from beacons.counting.redis_format import (
    counter_rows,
    field_decode,
    field_encode,
    hit_log_keys,
    live_and_pending_keys,
    visitor_tokens,
)
from beacons.counting.sinks import get_sink, sinks_flush
from beacons.counting.sketches import Visitors
from beacons.ingest.hits import hit_log_fold
from beacons.models import BeaconAggregate, BeaconDefinition, Granularity
from beacons.registry import VisitSlug

from .conftest import first_site

pytestmark = pytest.mark.django_db


def hour_total(slug, identifier=""):
    rows = BeaconAggregate.objects.filter(definition__slug=slug, identifier=identifier, granularity=Granularity.HOUR)
    return rows.aggregate(total=Sum("count"))["total"] or 0


def page_views(send, identifier, times, **headers):
    for _ in range(times):
        assert send({"event_type": "page_view", "identifier": identifier}, **headers).status_code == 204


@pytest.fixture
def memory_sink(settings):
    settings.BEACONS_SINK = "memory"
    settings.BEACONS_FLUSH_SECONDS = 3600  # only explicit flushes in these tests
    settings.BEACONS_FLUSH_MAX_KEYS = 10_000
    return get_sink


@pytest.fixture
def redis_prefix(settings):
    """A Redis key prefix of this test alone; its keys are deleted afterwards."""
    prefix = f"test-sinks-{uuid.uuid4().hex[:10]}"
    settings.BEACONS_REDIS_PREFIX = prefix
    client = sinks.redis_client(settings.BEACONS_REDIS_URL)
    yield prefix
    keys = list(client.scan_iter(match=f"{{{prefix}}}:*"))
    if keys:
        client.delete(*keys)


# --- memory ------------------------------------------------------------------------------


def test_memory_sink_buffers_until_flushed_then_writes_exact_counts(send, memory_sink):
    page_views(send, "/a", 3)
    page_views(send, "/b", 2)
    assert hour_total("page_view") == 0
    assert memory_sink().flush() > 0
    assert (hour_total("page_view"), hour_total("page_view", "/a"), hour_total("page_view", "/b")) == (5, 3, 2)
    assert memory_sink().flush() == 0  # nothing left to write twice


def test_memory_sink_merges_repeated_keys(send, memory_sink):
    page_views(send, "/same", 4, HTTP_DNT="1")  # no visitor key: no visit counters
    definition = BeaconDefinition.objects.get(slug="page_view")
    granularities, by_value = len(definition.granularity_codes), len(definition.dimension_granularity_codes)
    # "/same" and the total, and its source, browser, os, device, country and identity ("untracked"),
    # once each; no visitor sketch
    assert memory_sink().pending() == 2 * granularities + 6 * by_value


def test_memory_sink_keeps_counts_when_a_flush_fails(send, memory_sink, monkeypatch):
    page_views(send, "/kept", 2)
    sink = memory_sink()

    def database_down(**kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(sinks, "aggregates_add", database_down)
    with pytest.raises(OperationalError):
        sink.flush()
    monkeypatch.undo()
    page_views(send, "/kept", 1)
    sink.flush()
    assert hour_total("page_view", "/kept") == 3


def test_memory_sink_is_flushed_at_shutdown(send, memory_sink):
    page_views(send, "/bye", 2)
    sinks_flush()  # what atexit and the worker's exit hook call
    assert hour_total("page_view", "/bye") == 2


def test_a_granian_worker_stopped_cleanly_writes_what_its_memory_sink_buffered(tmp_path):
    """Through the real server: granian imports the project in its main process, and its worker
    processes start with multiprocessing's exit hooks cleared and leave skipping atexit. The hook
    registered at import never ran there, and these 20 hits counted 0."""
    import json
    import urllib.request

    from bench.servers import BROWSER_UA, Server, hits_counted, manage

    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    manage("migrate", "--noinput", env={"DATABASE_URL": url})
    env = {"DATABASE_URL": url, "BEACONS_SINK": "memory", "BEACONS_FLUSH_SECONDS": "3600", "ALLOWED_HOSTS": "127.0.0.1"}
    server = Server(env=env, workers=1, log_path=tmp_path / "server.log").start()
    try:
        for _ in range(20):
            request = urllib.request.Request(
                f"{server.url}/beacon",
                data=json.dumps({"event_type": "page_view", "identifier": "/flushed"}).encode(),
                headers={"Content-Type": "application/json", "User-Agent": BROWSER_UA},
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 204
        assert hits_counted(url, "page_view") == 0  # buffered, an hour before its flush
    finally:
        server.stop()
    assert hits_counted(url, "page_view") == 20


def test_memory_sink_counts_every_increment_from_many_threads(memory_sink):
    sink = memory_sink()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    key = (1, 1, "", "/t", "H", start)

    def add_many():
        for _ in range(2000):
            sink.add({key: 1})

    threads = [threading.Thread(target=add_many) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sink._pending[key] == 16_000


@pytest.mark.django_db(transaction=True)
def test_memory_sink_writes_when_the_key_limit_is_reached(send, settings):
    settings.BEACONS_SINK = "memory"
    settings.BEACONS_FLUSH_SECONDS = 3600
    settings.BEACONS_FLUSH_MAX_KEYS = 2 * len(BeaconDefinition.objects.get(slug="page_view").granularity_codes)
    page_views(send, "/one", 1)  # that many keys: each granularity for "/one" and for the total
    deadline = time.monotonic() + 10
    while hour_total("page_view", "/one") == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hour_total("page_view", "/one") == 1
    assert get_sink().pending() == 0


@pytest.mark.django_db(transaction=True)
def test_memory_sink_writes_every_flush_interval(send, settings):
    settings.BEACONS_SINK = "memory"
    settings.BEACONS_FLUSH_SECONDS = 0.2
    page_views(send, "/tick", 2)
    deadline = time.monotonic() + 10
    while hour_total("page_view", "/tick") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hour_total("page_view", "/tick") == 2


# --- redis -------------------------------------------------------------------------------


def test_counter_field_round_trips_identifiers_with_separators_and_unicode():
    key = (3, 42, "", "/a|b|c/ünï/😀", "MO", datetime(2026, 3, 1, tzinfo=UTC))
    assert field_decode(field_encode(key), b"7") == (3, 42, "", "/a|b|c/ünï/😀", "MO", int(key[5].timestamp()), 7)


@pytest.mark.redis
def test_redis_sink_logs_hits_the_drain_counts_into_the_live_hash_not_the_database(send, settings, redis_prefix):
    settings.BEACONS_SINK = "redis"
    page_views(send, "/r", 3)
    assert hour_total("page_view", "/r") == 0
    hit_log, _ = hit_log_keys(redis_prefix)
    live, _ = live_and_pending_keys(redis_prefix)
    assert (get_sink().client.llen(hit_log), get_sink().client.exists(live)) == (3, 0)  # logged, not counted yet
    assert hit_log_fold(sink=get_sink()) == 3
    assert get_sink().client.exists(hit_log) == 0
    stored = counter_rows(get_sink().client.hgetall(live))
    page_view = BeaconDefinition.objects.get(slug="page_view").pk
    hour_counts = {
        identifier: n
        for _, definition_id, _, identifier, granularity, _, n in stored
        if granularity == Granularity.HOUR and definition_id == page_view
    }
    assert hour_counts == {"": 3, "/r": 3}


@pytest.mark.redis
def test_redis_sink_uses_one_round_trip_per_request_with_its_visit(send, settings, redis_prefix, monkeypatch):
    """A request's hits (counts, visitors, capped values and page views to fold into visits, all
    counted by the drain) go in one round trip, whichever process served the visitor before."""
    settings.BEACONS_SINK = "redis"
    assert send({"event_type": "page_view", "identifier": "/warm-up"}).status_code == 204  # loads the script
    sink = get_sink()
    sent = []
    connection = sink.client.connection_pool.get_connection()
    sink.client.connection_pool.release(connection)
    original = type(connection).send_packed_command
    monkeypatch.setattr(
        type(connection), "send_packed_command", lambda self, *a, **k: (sent.append(1), original(self, *a, **k))[1]
    )
    response = send({"events": [{"event_type": "signup", "identifier": f"/{i}"} for i in range(20)]})
    assert (response.status_code, len(sent)) == (204, 1)
    response = send({"events": [{"event_type": "page_view", "identifier": f"/{i}"} for i in range(20)]})
    assert (response.status_code, len(sent)) == (204, 2)
    assert (send({"event_type": "page_view", "identifier": "/last"}).status_code, len(sent)) == (204, 3)
    drain_pass()
    assert (hour_total(VisitSlug.VISITS), hour_total(VisitSlug.PAGES)) == (1, 22)  # one visitor


@pytest.mark.redis
def test_unreachable_redis_falls_back_to_the_database_and_warns_once(send, settings, redis_prefix, caplog):
    settings.BEACONS_SINK = "redis"
    settings.BEACONS_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    with caplog.at_level(logging.WARNING, logger="beacons"):
        for _ in range(3):
            assert send({"event_type": "page_view", "identifier": "/fallback"}).status_code == 204
            sinks.get_sink()._skip_until = 0  # try Redis again at every request
    assert hour_total("page_view", "/fallback") == 3
    assert sum("Redis unreachable" in record.getMessage() for record in caplog.records) == 1


@pytest.mark.redis
def test_redis_sink_counts_every_increment_from_many_threads(settings, redis_prefix):
    settings.BEACONS_SINK = "redis"
    sink = get_sink()
    key = (1, 1, "", "/threads", "H", datetime(2026, 1, 1, tzinfo=UTC))
    errors = []

    def add_many():
        try:
            for _ in range(200):
                sink.add({key: 1})
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=add_many) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    live, _ = live_and_pending_keys(redis_prefix)
    assert errors == []
    assert int(sink.client.hget(live, field_encode(key))) == 1600


def _in_flight_write(sink, monkeypatch, *, fail_combined: bool):
    """Make the next Redis write slow, so other threads queue behind it; optionally fail the
    combined write that follows."""
    write = sink._write
    calls = []

    def slow_write(increments, values, visitors, visits, hit_entries):
        calls.append(dict(increments))
        if len(calls) == 1:
            time.sleep(0.3)
        elif fail_combined:
            raise RuntimeError("storage down")
        return write(increments, values, visitors, visits, hit_entries)

    monkeypatch.setattr(sink, "_write", slow_write)
    return calls


def _add_from_threads(sink, keys):
    outcomes = {}

    def add(key):
        try:
            sink.add({key: 1})
            outcomes[key] = "written"
        except RuntimeError:
            outcomes[key] = "failed"

    first = threading.Thread(target=add, args=(keys[0],))
    first.start()
    time.sleep(0.1)  # the first write is in flight
    others = [threading.Thread(target=add, args=(key,)) for key in keys[1:]]
    for thread in others:
        thread.start()
    for thread in [first, *others]:
        thread.join()
    return outcomes


@pytest.mark.redis
def test_requests_waiting_on_a_redis_write_are_combined_into_one_round_trip(settings, redis_prefix, monkeypatch):
    settings.BEACONS_SINK = "redis"
    sink = get_sink()
    calls = _in_flight_write(sink, monkeypatch, fail_combined=False)
    keys = [(1, 1, "", f"/combined/{i}", "H", datetime(2026, 1, 1, tzinfo=UTC)) for i in range(6)]
    outcomes = _add_from_threads(sink, keys)
    live, _ = live_and_pending_keys(redis_prefix)
    assert outcomes == {key: "written" for key in keys}
    assert [int(sink.client.hget(live, field_encode(key))) for key in keys] == [1] * 6
    assert len(calls) == 2  # the slow first write, then one write for the five that waited
    assert len(calls[1]) == 5


@pytest.mark.redis
def test_a_failed_combined_write_fails_every_request_in_it(settings, redis_prefix, monkeypatch):
    settings.BEACONS_SINK = "redis"
    sink = get_sink()
    _in_flight_write(sink, monkeypatch, fail_combined=True)
    keys = [(1, 1, "", f"/lost/{i}", "H", datetime(2026, 1, 1, tzinfo=UTC)) for i in range(4)]
    outcomes = _add_from_threads(sink, keys)
    live, _ = live_and_pending_keys(redis_prefix)
    assert outcomes[keys[0]] == "written"
    assert [outcomes[key] for key in keys[1:]] == ["failed"] * 3  # none of them may answer 204
    assert [sink.client.hget(live, field_encode(key)) for key in keys[1:]] == [None] * 3


@pytest.mark.redis
def test_redis_sink_writes_every_visitor_of_a_write_larger_than_one_hset(settings, redis_prefix):
    settings.BEACONS_SINK = "redis"
    key = (1, 1, "", "", Granularity.DAY, datetime(2026, 1, 1, tzinfo=UTC))
    tokens = set(range(2 * sinks.VISITOR_FIELDS_PER_HSET + 500))
    get_sink().add({key: 1}, visitors=Visitors(keys={key: tokens}))
    live, _ = live_and_pending_keys(redis_prefix)
    assert visitor_tokens(f for f in get_sink().client.hkeys(live) if f.startswith(b"~")) == {key: tokens}


@pytest.mark.redis
def test_redis_sink_counts_on_after_redis_forgets_its_script(send, settings, redis_prefix):
    settings.BEACONS_SINK = "redis"
    assert send({"event_type": "page_view", "identifier": "/before"}).status_code == 204
    drain_pass()
    page_view = BeaconDefinition.objects.get(slug="page_view").pk
    key = (first_site().pk, page_view, "", "/direct", "H", datetime(2026, 1, 1, tzinfo=UTC))
    get_sink().client.script_flush()  # what a Redis restart does
    get_sink().add({key: 1})  # counts handed to the sink go through the script
    assert send({"event_type": "page_view", "identifier": "/after"}).status_code == 204
    assert hour_total("page_view", "/after") == 0  # logged in Redis, not counted through the database fallback
    drain_pass()  # the drain counts logged hits with the script too
    assert [hour_total("page_view", page) for page in ("/before", "/after", "/direct")] == [1, 1, 1]
