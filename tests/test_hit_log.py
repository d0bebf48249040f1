"""The redis sink's hit log (``beacons.ingest.hits``): a request logs its hits as ingest accepted
them, the drain counts them exactly once, into the same figures a request counting at once makes."""

import logging
from datetime import UTC, datetime, timedelta

import pytest
import redis
from django.core.cache import cache

from beacons.counting.drain import drain_pass
from beacons.counting.increments import Hit
from beacons.counting.redis_format import hit_log_batch_key, hit_log_keys, live_and_pending_keys
from beacons.counting.sinks import get_sink, sinks_reset
from beacons.counting.sketches import Merge
from beacons.dimensions import BUILT_IN
from beacons.ingest import hits as hit_log
from beacons.ingest.hits import hit_log_decode, hit_log_entry, hit_log_fold
from beacons.models import BeaconAggregate, BeaconDefinition, VisitorSketch

from .conftest import BROWSER_UA

pytestmark = [pytest.mark.redis, pytest.mark.django_db]

T0 = datetime(2026, 4, 10, 9, 59, 30, 250_001, tzinfo=UTC)  # half a minute before an hour ends
AGENTS = [
    BROWSER_UA,
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
]
# (seconds after T0, page, agent, referrer, client address, campaign): two visitors over an hour's edge.
VISITS = [
    (0, "/", 0, "https://www.google.com/", "81.2.69.142", {}),
    (20, "/pricing", 0, "", "81.2.69.142", {}),
    (45, "/", 1, "https://news.ycombinator.com/item?id=1", "2.125.160.216", {"utm_source": "newsletter"}),
    (95, "/signup", 0, "", "81.2.69.142", {}),
    (4000, "/", 1, "", "2.125.160.216", {}),  # past the visit gap: a second visit
]


@pytest.fixture
def page_view_with_breakdowns(db):
    return BeaconDefinition.objects.create(
        slug="article_view", name="Article view", dimensions=",".join(BUILT_IN), kind=BeaconDefinition.Kind.PAGE_VIEW
    )


def visits_send(send, clock, slug):
    for seconds, page, agent, referrer, address, campaign in VISITS:
        clock(T0 + timedelta(seconds=seconds))
        body = {"event_type": slug, "identifier": page, "referrer": referrer, **campaign}
        response = send(body, HTTP_USER_AGENT=AGENTS[agent], REMOTE_ADDR=address)
        assert response.status_code == 204


def visitors_in(sketch: bytes) -> int:
    """Its visitors (exact: a few visitors are listed, not estimated), whatever order they were added in."""
    merge = Merge()
    merge.add(sketch)
    assert not merge.is_estimate()
    return merge.estimate()


def counted():
    # A +1 and a -1 written apart leave a row of 0 where the drain, adding them first, writes none.
    counters = sorted(
        BeaconAggregate.objects.exclude(count=0).values_list(
            "site_id", "definition__slug", "dimension", "identifier", "granularity", "period_start", "count"
        )
    )
    sketches = sorted(
        (slug, dimension, identifier, granularity, start, visitors_in(sketch))
        for slug, dimension, identifier, granularity, start, sketch in VisitorSketch.objects.values_list(
            "definition__slug", "dimension", "identifier", "granularity", "period_start", "sketch"
        )
    )
    return counters, sketches


def test_the_drain_counts_logged_hits_as_a_request_counting_at_once_does(
    send, clock, settings, redis_sink, page_view_with_breakdowns
):
    settings.BEACONS_TIME_ZONE = "UTC"
    visits_send(send, clock, "article_view")
    assert BeaconAggregate.objects.count() == 0  # logged, not counted
    assert redis_sink.llen(hit_log_keys(settings.BEACONS_REDIS_PREFIX)[0]) == len(VISITS)
    result = drain_pass()
    assert (result.logged_hits_counted, result.page_views_folded) == (len(VISITS), len(VISITS))
    through_the_log = counted()
    assert through_the_log[0], "nothing was counted"
    BeaconAggregate.objects.all().delete()
    VisitorSketch.objects.all().delete()
    cache.clear()  # the direct sink keeps visits in Django's cache
    settings.BEACONS_SINK = "direct"
    sinks_reset()
    visits_send(send, clock, "article_view")
    assert counted() == through_the_log


def test_an_entry_keeps_every_field_of_its_hits_to_the_microsecond():
    hits = [
        Hit(3, 7, ("H", "D", "MO"), "/ünï|code/😀", {"browser": "Firefox", "prop:plan": "pro\ud800"}, ("D",)),
        Hit(3, 9, ("D",), "", {}, ()),
    ]
    received = datetime(2026, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    entry = hit_log_entry(hits=hits, site_id=3, received_at=received, visitor_key="abc", page_view_ids={7})
    assert entry.isascii()
    logged = hit_log_decode(entry)
    assert logged == (3, received, "abc", hits, hits[:1])


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[]",
        b'[2, 1, 0, "", []]',  # another version
        b'[1, 1, 0, "", [[1, ["H"], "/", ["not", "a mapping"], [], 0]]]',
        b'[1, 1, 0, "", [[1, ["H"], "/", {}, []]]]',  # a field missing
        b'[1, 1, 1e300, "", []]',  # a time out of range
        b'{"a": 1}',
    ],
)
def test_bytes_that_are_not_an_entry_decode_to_none(raw):
    assert hit_log_decode(raw) is None


def test_an_entry_that_is_not_one_is_skipped_and_the_others_counted(send, settings, redis_sink, caplog):
    assert send({"event_type": "page_view", "identifier": "/kept"}).status_code == 204
    redis_sink.rpush(hit_log_keys(settings.BEACONS_REDIS_PREFIX)[0], b"garbage" + b"x" * 500)
    assert send({"event_type": "page_view", "identifier": "/kept"}).status_code == 204
    with caplog.at_level(logging.WARNING, logger="beacons"):
        assert drain_pass().logged_hits_counted == 2
    assert day_total("/kept") == 2
    (warning,) = [record for record in caplog.records if "not one was skipped" in record.getMessage()]
    assert warning.name == "beacons"
    assert "garbage" + "x" * 193 + "'" in warning.getMessage()  # its first 200 bytes, no more


def day_total(page):
    return sum(
        BeaconAggregate.objects.filter(
            definition__slug="page_view", identifier=page, granularity="D", dimension=""
        ).values_list("count", flat=True)
    )


def test_a_log_longer_than_a_chunk_is_counted_whole_and_emptied(send, settings, redis_sink, monkeypatch):
    monkeypatch.setattr(hit_log, "HIT_LOG_CHUNK", 2)
    for _ in range(5):
        assert send({"event_type": "page_view", "identifier": "/many"}).status_code == 204
    assert drain_pass().logged_hits_counted == 5
    assert day_total("/many") == 5
    assert [key for key in redis_sink.scan_iter(f"*{settings.BEACONS_REDIS_PREFIX}*hits*")] == []


def test_a_drain_stopped_before_its_write_leaves_the_chunk_for_the_next_drain(send, settings, redis_sink, monkeypatch):
    for _ in range(3):
        assert send({"event_type": "page_view", "identifier": "/again"}).status_code == 204
    original = redis.client.Pipeline.execute

    def lost(self, *args, **kwargs):
        raise redis.ConnectionError("the drain lost Redis before its write")

    monkeypatch.setattr(redis.client.Pipeline, "execute", lost)
    with pytest.raises(redis.ConnectionError):
        hit_log_fold(sink=get_sink())
    monkeypatch.setattr(redis.client.Pipeline, "execute", original)
    live, _ = live_and_pending_keys(settings.BEACONS_REDIS_PREFIX)
    assert redis_sink.exists(live) == 0  # nothing of the chunk was counted
    assert drain_pass().logged_hits_counted == 3  # the leftover batch, once
    assert drain_pass().logged_hits_counted == 0
    assert day_total("/again") == 3


def test_a_chunk_another_drain_counted_first_is_not_counted_again(send, settings, redis_sink, monkeypatch):
    for _ in range(3):
        assert send({"event_type": "page_view", "identifier": "/raced"}).status_code == 204
    other_drain = {}
    count = hit_log.hits_count

    def beside_another_drain(*args, **kwargs):
        if not other_drain:  # while this drain counts its first chunk, another one counts it first
            sink = get_sink()
            _, pending = hit_log_keys(settings.BEACONS_REDIS_PREFIX)
            (batch_id,) = redis_sink.smembers(pending)
            key = hit_log_batch_key(settings.BEACONS_REDIS_PREFIX, batch_id.decode())
            monkeypatch.setattr(hit_log, "hits_count", count)
            other_drain["counted"] = hit_log._chunk_count(sink, key, zones=hit_log.SiteZones())
            monkeypatch.setattr(hit_log, "hits_count", beside_another_drain)
        return count(*args, **kwargs)

    monkeypatch.setattr(hit_log, "hits_count", beside_another_drain)
    assert hit_log_fold(sink=get_sink()) == 0  # its chunk was gone when it wrote: read again, empty
    assert other_drain["counted"] == 3
    drain_pass()
    assert day_total("/raced") == 3


def test_leftover_batches_are_counted_oldest_first_before_the_live_log(send, settings, redis_sink, clock):
    first = send({"event_type": "page_view", "identifier": "/old"})
    live, pending = hit_log_keys(settings.BEACONS_REDIS_PREFIX)
    redis_sink.rename(live, hit_log_batch_key(settings.BEACONS_REDIS_PREFIX, "20260101T000000-a"))
    redis_sink.sadd(pending, "20260101T000000-a")  # renamed by a drain that stopped
    second = send({"event_type": "page_view", "identifier": "/new"})
    assert (first.status_code, second.status_code) == (204, 204)
    assert drain_pass().logged_hits_counted == 2
    assert (day_total("/old"), day_total("/new")) == (1, 1)
    assert redis_sink.smembers(pending) == set()


def test_with_redis_down_a_request_counts_its_hits_in_the_database_at_once(send, settings, redis_sink):
    settings.BEACONS_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    assert send({"event_type": "page_view", "identifier": "/now"}).status_code == 204
    assert day_total("/now") == 1


def test_a_hit_log_the_drain_leaves_growing_is_warned_about_once_a_minute(send, redis_sink, monkeypatch, caplog):
    from beacons.counting import sinks

    monkeypatch.setattr(sinks, "HIT_LOG_WARN_ENTRIES", 2)
    with caplog.at_level(logging.WARNING, logger="beacons"):
        for _ in range(4):
            assert send({"event_type": "page_view", "identifier": "/waiting"}).status_code == 204
    warnings = [record.getMessage() for record in caplog.records if "wait in the hit log" in record.getMessage()]
    assert warnings == ["redis sink: 3 requests wait in the hit log: is beacons_drain running?"]
