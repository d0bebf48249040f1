"""Visits: the arithmetic of visits, bounces, visit seconds, visit pages and exits, the gap, bucket
edges, untracked visitors, a failing cache, reserved types, and every sink and the drain."""

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beacons.counting.drain import drain_pass
from beacons.counting.increments import Hit
from beacons.counting.sinks import get_sink
from beacons.logs import outage_warning
from beacons.models import BeaconAggregate, BeaconDefinition, Granularity
from beacons.registry import SYSTEM_DEFINITIONS, VisitSlug, auto_types_budget_left

from .conftest import first_site
from .conftest import page_view_at as page_view

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)
VISIT_SLUGS = (VisitSlug.VISITS, VisitSlug.BOUNCES, VisitSlug.SECONDS, VisitSlug.PAGES, VisitSlug.EXITS)


def counts(slug: str, granularity: str = Granularity.HOUR, dimension: str = "") -> dict[tuple[str, datetime], int]:
    """{(identifier or value, bucket start): count} of one type, rows of count 0 left out."""
    rows = BeaconAggregate.objects.filter(definition__slug=slug, granularity=granularity, dimension=dimension)
    return {(r.identifier, r.period_start): r.count for r in rows if r.count}


def total(slug: str, identifier: str = "", granularity: str = Granularity.DAY) -> int:
    rows = BeaconAggregate.objects.filter(
        definition__slug=slug, identifier=identifier, granularity=granularity, dimension=""
    )
    return rows.aggregate(n=Sum("count"))["n"] or 0


def test_a_visit_of_three_pages_counts_one_visit_no_bounce_its_seconds_and_its_exit():
    page_view(T0, "/a")
    page_view(T0 + timedelta(seconds=40), "/b")
    page_view(T0 + timedelta(seconds=100), "/c")
    assert total(VisitSlug.VISITS) == total(VisitSlug.VISITS, "/a") == 1
    assert total(VisitSlug.BOUNCES) == 0
    assert total(VisitSlug.SECONDS, "/a") == 100
    assert total(VisitSlug.PAGES, "/a") == 3
    assert {page: total(VisitSlug.EXITS, page) for page in ("/a", "/b", "/c")} == {"/a": 0, "/b": 0, "/c": 1}
    assert total(VisitSlug.EXITS) == 1


def test_a_single_page_view_is_a_bounce_and_its_own_exit():
    page_view(T0, "/only")
    assert (total(VisitSlug.VISITS), total(VisitSlug.BOUNCES, "/only"), total(VisitSlug.EXITS, "/only")) == (1, 1, 1)
    assert total(VisitSlug.SECONDS) == 0


def test_31_minutes_later_is_a_new_visit_and_30_minutes_is_the_same():
    page_view(T0, "/a")
    page_view(T0 + timedelta(minutes=30), "/b")  # a gap of exactly 30 minutes: the same visit
    page_view(T0 + timedelta(minutes=61), "/c")  # 31 minutes after /b: a new visit, a bounce
    assert total(VisitSlug.VISITS) == 2
    assert (total(VisitSlug.VISITS, "/a"), total(VisitSlug.VISITS, "/c")) == (1, 1)
    assert (total(VisitSlug.BOUNCES, "/a"), total(VisitSlug.BOUNCES, "/c")) == (0, 1)
    assert total(VisitSlug.SECONDS, "/a") == 30 * 60
    assert (total(VisitSlug.EXITS, "/b"), total(VisitSlug.EXITS, "/c"), total(VisitSlug.EXITS, "/a")) == (1, 1, 0)


def test_a_visit_from_2350_past_midnight_adjusts_only_the_buckets_of_its_start():
    start = datetime(2026, 11, 3, 23, 50, tzinfo=UTC)
    page_view(start, "/late")
    page_view(start + timedelta(minutes=20), "/after-midnight")  # 00:10 the next day, same visitor key
    day_before, day_after = datetime(2026, 11, 3, tzinfo=UTC), datetime(2026, 11, 4, tzinfo=UTC)
    for slug in VISIT_SLUGS:
        assert all(moment < day_after for _, moment in counts(slug, Granularity.DAY)), slug
        assert all(moment == start.replace(minute=0) for _, moment in counts(slug, Granularity.HOUR)), slug
    assert counts(VisitSlug.VISITS, Granularity.DAY) == {("", day_before): 1, ("/late", day_before): 1}
    assert counts(VisitSlug.BOUNCES, Granularity.DAY) == {}
    assert counts(VisitSlug.SECONDS, Granularity.DAY) == {("", day_before): 1200, ("/late", day_before): 1200}
    assert counts(VisitSlug.EXITS, Granularity.DAY) == {("", day_before): 1, ("/after-midnight", day_before): 1}
    # the page views themselves count where they happened
    assert total("page_view", "/after-midnight", Granularity.DAY) == 1
    assert (
        BeaconAggregate.objects.get(
            definition__slug="page_view", identifier="/after-midnight", granularity=Granularity.DAY
        ).period_start
        == day_after
    )


def test_two_visitors_have_their_own_visits():
    page_view(T0, "/a", visitor="one")
    page_view(T0 + timedelta(seconds=5), "/b", visitor="two")
    page_view(T0 + timedelta(seconds=9), "/c", visitor="one")
    assert total(VisitSlug.VISITS) == 2
    assert (total(VisitSlug.BOUNCES, "/a"), total(VisitSlug.BOUNCES, "/b")) == (0, 1)
    assert total(VisitSlug.SECONDS) == 9


def test_a_visitor_without_a_visitor_key_counts_page_views_but_no_visit():
    assert page_view(T0, "/dnt", visitor="") == 1
    assert total("page_view", "/dnt") == 1
    assert not BeaconAggregate.objects.filter(definition__slug__in=VISIT_SLUGS).exists()


@pytest.mark.redis
def test_a_visitor_without_a_visitor_key_counts_page_views_but_no_visit_in_the_redis_sink(redis_sink):
    page_view(T0, "/dnt", visitor="")
    drain_pass()
    assert total("page_view", "/dnt") == 1
    assert not BeaconAggregate.objects.filter(definition__slug__in=VISIT_SLUGS).exists()


def test_unreadable_visit_types_count_the_page_view_without_a_visit(monkeypatch, caplog):
    from django.db import OperationalError

    from beacons.ingest import sessions

    def unreachable():
        raise OperationalError("database down")

    monkeypatch.setattr(sessions, "system_definitions_resolve", unreachable)
    monkeypatch.setattr(outage_warning, "_last", float("-inf"))
    with caplog.at_level("WARNING", logger="beacons"):
        page_view(T0, "/a")
    assert (total("page_view", "/a"), total(VisitSlug.VISITS)) == (1, 0)
    assert "visits not counted, visit types not readable: database down" in caplog.text


class RacingCache:
    """Django's cache as another process leaves it a moment after this one read nothing: the visit
    was started (``add`` refused) and holds ``state``, or has gone again (None)."""

    def __init__(self, state):
        self.state, self.reads, self.written = state, 0, []

    def get(self, key):
        self.reads += 1
        return None if self.reads == 1 else self.state  # the first read: nothing there yet

    def add(self, key, value, timeout):
        return False

    def set(self, key, value, timeout):
        self.written.append(value)


def test_a_visit_started_by_another_process_at_once_is_continued_not_started_again(monkeypatch):
    from beacons.ingest import sessions

    other = (int(T0.timestamp()) - 10, "/a", "/a", 1, int(T0.timestamp()) - 10, ())
    racing = RacingCache(other)
    monkeypatch.setattr(sessions, "cache", racing)
    page_view(T0, "/b")
    assert (total(VisitSlug.VISITS), total(VisitSlug.PAGES), total(VisitSlug.SECONDS)) == (0, 1, 10)
    assert racing.written[-1][1:4] == ("/a", "/b", 2)  # entry, last page, page views


def test_a_visit_started_and_gone_at_once_counts_no_visit(monkeypatch):
    from beacons.ingest import sessions

    monkeypatch.setattr(sessions, "cache", RacingCache(None))
    page_view(T0, "/b")
    assert (total("page_view", "/b"), total(VisitSlug.VISITS), total(VisitSlug.PAGES)) == (1, 0, 0)


def test_a_visit_state_counts_its_page_views():
    from beacons.ingest.sessions import visit_fold
    from beacons.registry import system_definitions_resolve

    hits = [Hit(first_site().pk, 1, ("H",), page, {}, ()) for page in ("/a", "/b", "/b")]
    fold = dict(site_id=first_site().pk, gap=1800, definitions=system_definitions_resolve())
    state, _ = visit_fold(None, hits[:1], now=100, **fold)
    state, _ = visit_fold(state, hits[1:], now=160, **fold)
    assert state == (100, "/a", "/b", 3, 160, ())


@pytest.mark.redis
def test_a_page_with_a_lone_surrogate_counts_its_visit_in_the_redis_sink(redis_sink):
    page_view(T0, "/a\ud800")
    page_view(T0 + timedelta(seconds=3), "/b")
    drain_pass()
    assert (total(VisitSlug.VISITS), total(VisitSlug.PAGES), total(VisitSlug.SECONDS)) == (1, 2, 3)


def test_custom_events_neither_start_nor_extend_nor_unbounce_a_visit():
    page_view(T0, "/a", event_type="signup")
    assert total(VisitSlug.VISITS) == 0
    page_view(T0 + timedelta(seconds=1), "/a")
    page_view(T0 + timedelta(seconds=20), "/a", event_type="signup")
    assert (total(VisitSlug.VISITS), total(VisitSlug.BOUNCES), total(VisitSlug.SECONDS)) == (1, 1, 0)


def test_visits_count_under_the_dimension_values_of_the_entry_page_view():
    page_view(T0, "/landing", source="newsletter")
    page_view(T0 + timedelta(seconds=30), "/next")  # no source of its own: the visit keeps its entry's
    page_view(T0 + timedelta(hours=2), "/again", source="google")  # a new visit, a bounce
    day = datetime(2026, 11, 3, tzinfo=UTC)
    assert counts(VisitSlug.VISITS, Granularity.DAY, "source") == {("newsletter", day): 1, ("Google", day): 1}
    assert counts(VisitSlug.BOUNCES, Granularity.DAY, "source") == {("Google", day): 1}
    assert counts(VisitSlug.SECONDS, Granularity.DAY, "source") == {("newsletter", day): 30}
    assert counts(VisitSlug.PAGES, Granularity.DAY, "source") == {("newsletter", day): 2, ("Google", day): 1}
    assert counts(VisitSlug.EXITS, Granularity.DAY, "source") == {}  # exits are per page only


class BrokenCache:
    def __getattr__(self, name):
        def fail(*args, **kwargs):
            raise ConnectionError("cache down")

        return fail


def test_a_failing_cache_still_answers_204_and_counts_the_page_view_and_visits_resume(send, monkeypatch, caplog):
    from beacons.ingest import sessions

    monkeypatch.setattr(sessions, "cache", BrokenCache())
    monkeypatch.setattr(outage_warning, "_last", float("-inf"))
    with caplog.at_level("WARNING", logger="beacons"):
        assert send({"event_type": "page_view", "identifier": "/down"}).status_code == 204
    assert "visits not counted, cache unreachable: cache down" in caplog.text
    assert total("page_view", "/down") == 1
    assert total(VisitSlug.VISITS) == 0
    monkeypatch.undo()
    assert send({"event_type": "page_view", "identifier": "/back"}).status_code == 204
    assert total(VisitSlug.VISITS, "/back") == 1


@pytest.mark.redis
def test_visits_kept_in_redis_as_production_keeps_them_count_the_same(settings):
    import uuid

    from django.core.cache import caches

    settings.CACHES = {
        "default": {
            "BACKEND": "beacon_site.cache.RedisCache",  # what CACHE_URL configures
            "LOCATION": settings.BEACONS_REDIS_URL,
            "KEY_PREFIX": f"test-visits-{uuid.uuid4().hex[:8]}",
        }
    }
    page_view(T0, "/a")
    page_view(T0 + timedelta(seconds=40), "/b")
    page_view(T0 + timedelta(minutes=45), "/a")  # over the gap: a second visit, a bounce
    assert (total(VisitSlug.VISITS), total(VisitSlug.BOUNCES), total(VisitSlug.SECONDS, "/a")) == (2, 1, 40)
    assert {page: total(VisitSlug.EXITS, page) for page in ("/a", "/b")} == {"/a": 1, "/b": 1}
    # One redis-py client for every call (Django's builds one per call: ~225 µs of CPU each).
    backend = caches["default"]._cache
    assert backend.get_client() is backend.get_client(write=True)  # the keys expire with the visit gap


@pytest.mark.parametrize("slug", [*SYSTEM_DEFINITIONS, "beacons:anything", "BEACONS:VISITS"])
def test_clients_cannot_send_reserved_types(send, slug):
    response = send({"event_type": slug, "identifier": "/x"})
    assert response.status_code == 400
    assert response.json()["field"] == "event_type"
    batch = send({"events": [{"event_type": "page_view"}, {"event_type": slug}]})
    assert batch.status_code == 400
    assert not BeaconAggregate.objects.exists()


def test_visit_types_are_registered_on_first_use_outside_the_budget_and_in_strict_mode(settings):
    settings.BEACONS_STRICT = True
    budget = auto_types_budget_left()
    page_view(T0, "/a")
    registered = BeaconDefinition.objects.filter(slug__in=VISIT_SLUGS)
    assert registered.count() == len(VISIT_SLUGS)
    assert not registered.filter(auto_registered=True).exists()
    assert auto_types_budget_left() == budget


# --- never negative, and equal to a direct computation ---------------------------------------------

steps = st.lists(
    st.tuples(st.sampled_from(["v1", "v2"]), st.integers(0, 2500), st.sampled_from(["/a", "/b", "/c"])),
    min_size=1,
    max_size=14,
)


def expected_counts(sequence: list[tuple[str, datetime, str]]) -> dict[str, Counter]:
    """Hour counters computed from whole visits (split by the gap), not step by step as ingest does."""
    visits: list[list[tuple[datetime, str]]] = []
    open_visit: dict[str, list] = {}
    for visitor, at, page in sequence:
        current = open_visit.get(visitor)
        if current is None or (at - current[-1][0]).total_seconds() > 1800:
            current = open_visit[visitor] = []
            visits.append(current)
        current.append((at, page))
    expected = {slug: Counter() for slug in VISIT_SLUGS}
    for visit in visits:
        hour, entry, exit_page = visit[0][0].replace(minute=0, second=0), visit[0][1], visit[-1][1]
        seconds = int((visit[-1][0] - visit[0][0]).total_seconds())
        for slug, identifier, n in (
            (VisitSlug.VISITS, entry, 1),
            (VisitSlug.BOUNCES, entry, int(len(visit) == 1)),
            (VisitSlug.SECONDS, entry, seconds),
            (VisitSlug.PAGES, entry, len(visit)),
            (VisitSlug.EXITS, exit_page, 1),
        ):
            expected[slug][(identifier, hour)] += n
            expected[slug][("", hour)] += n
    return {slug: {key: n for key, n in c.items() if n} for slug, c in expected.items()}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=steps)
def test_visit_counters_are_never_negative_and_add_up_to_the_visits(sequence):
    BeaconAggregate.objects.all().delete()
    cache.clear()
    at = T0 + timedelta(minutes=50)  # visits cross the 11:00 hour edge
    done = []
    for visitor, seconds, page in sequence:
        at += timedelta(seconds=seconds)
        page_view(at, page, visitor=visitor)
        done.append((visitor, at, page))
        assert not BeaconAggregate.objects.filter(count__lt=0).exists()
        assert {slug: counts(slug) for slug in VISIT_SLUGS} == expected_counts(done)


# --- through the buffered sinks and the drain ----------------------------------------------------


@pytest.mark.redis
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=steps)
def test_visits_kept_by_the_redis_sink_add_up_to_the_visits(redis_sink, sequence):
    """The redis sink keeps visit states itself, written with the counts (compare-and-set)."""
    BeaconAggregate.objects.all().delete()
    for key in redis_sink.scan_iter(match=f"{{{get_sink().prefix}}}:*"):  # each example from nothing
        redis_sink.delete(key)
    at = T0 + timedelta(minutes=50)
    done = []
    for visitor, seconds, page in sequence:
        at += timedelta(seconds=seconds)
        page_view(at, page, visitor=visitor)
        done.append((visitor, at, page))
    drain_pass()
    assert not BeaconAggregate.objects.filter(count__lt=0).exists()
    assert {slug: counts(slug) for slug in VISIT_SLUGS} == expected_counts(done)


@pytest.mark.redis
def test_page_views_of_one_visitor_through_two_processes_make_one_visit(redis_sink, settings):
    """Each process only logs its page views; the drain folds them in the order Redis received them."""
    from beacons.counting.sinks import RedisSink

    other_process = RedisSink(url=settings.BEACONS_REDIS_URL, prefix=get_sink().prefix)
    page_view(T0, "/a")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("beacons.ingest.recording.get_sink", lambda: other_process)
        page_view(T0 + timedelta(seconds=5), "/b")
    page_view(T0 + timedelta(seconds=9), "/c")
    assert total(VisitSlug.VISITS) == 0  # nothing is folded before the drain
    result = drain_pass()
    assert result.page_views_folded == 3
    assert (total(VisitSlug.VISITS), total(VisitSlug.BOUNCES), total(VisitSlug.PAGES)) == (1, 0, 3)
    assert (total(VisitSlug.SECONDS), total("page_view")) == (9, 3)
    assert {page: total(VisitSlug.EXITS, page) for page in ("/a", "/b", "/c")} == {"/a": 0, "/b": 0, "/c": 1}
    other_process.close()


@pytest.mark.redis
def test_a_drain_stopped_while_folding_page_views_folds_the_rest_once(redis_sink, monkeypatch):
    """A drain stopped after writing some visits: the next one folds the same batch again, and
    each visit's state says which page views it holds already."""
    from beacons.counting import sinks
    from beacons.ingest import sessions

    for second, (visitor, page) in enumerate([("v1", "/a"), ("v2", "/x"), ("v1", "/b"), ("v3", "/y")]):
        page_view(T0 + timedelta(seconds=second), page, visitor=visitor)
    write = sinks.RedisSink.visits_write

    def write_then_stop(self, writes):
        write(self, writes)
        raise SystemExit("drain killed")

    monkeypatch.setattr(sessions, "VISITS_PER_WRITE", 2)  # v1 and v2 written, then stopped
    monkeypatch.setattr(sinks.RedisSink, "visits_write", write_then_stop)
    with pytest.raises(SystemExit):
        drain_pass()
    monkeypatch.setattr(sinks.RedisSink, "visits_write", write)
    page_view(T0 + timedelta(seconds=20), "/c")  # v1 again, logged after the stopped drain renamed the log
    assert drain_pass().page_views_folded == 5  # the stopped batch's four again, and the new one
    assert (total(VisitSlug.VISITS), total(VisitSlug.BOUNCES), total(VisitSlug.PAGES)) == (3, 2, 5)
    assert (total(VisitSlug.SECONDS), total(VisitSlug.EXITS, "/c"), total(VisitSlug.EXITS, "/a")) == (20, 1, 0)
    assert drain_pass().page_views_folded == 0


@pytest.mark.redis
def test_two_drains_folding_the_same_page_views_at_once_count_them_once(redis_sink, monkeypatch):
    from beacons.counting import sinks

    page_view(T0, "/a")
    page_view(T0 + timedelta(seconds=30), "/b")
    write = sinks.RedisSink.visits_write
    raced = []

    def another_drain_first(self, writes):
        if not raced:  # another drain folds the same pending batch and writes first
            raced.append(1)
            drain_pass()
        return write(self, writes)

    monkeypatch.setattr(sinks.RedisSink, "visits_write", another_drain_first)
    drain_pass()
    assert (total(VisitSlug.VISITS), total(VisitSlug.PAGES), total(VisitSlug.SECONDS)) == (1, 2, 30)


@pytest.mark.redis
def test_a_log_entry_that_is_not_one_is_skipped_and_the_rest_fold(redis_sink):
    from beacons.counting.redis_format import page_view_log_keys

    page_view(T0, "/a")
    redis_sink.rpush(page_view_log_keys(get_sink().prefix)[0], b"7 not json", b"no number")
    page_view(T0 + timedelta(seconds=10), "/b")
    assert drain_pass().page_views_folded == 2
    assert (total(VisitSlug.VISITS), total(VisitSlug.PAGES), total(VisitSlug.SECONDS)) == (1, 2, 10)


@pytest.mark.redis
def test_unreadable_visit_types_leave_the_page_views_for_the_next_drain(redis_sink, monkeypatch):
    from django.db import OperationalError

    from beacons.ingest import sessions

    page_view(T0, "/a")
    resolve = sessions.system_definitions_resolve

    def unreachable():
        raise OperationalError("database down")

    monkeypatch.setattr(sessions, "system_definitions_resolve", unreachable)
    with pytest.raises(OperationalError):
        drain_pass()
    monkeypatch.setattr(sessions, "system_definitions_resolve", resolve)
    assert drain_pass().page_views_folded == 1
    assert (total("page_view", "/a"), total(VisitSlug.VISITS, "/a")) == (1, 1)


@pytest.mark.redis
def test_the_drain_keeps_a_visit_an_hour_past_its_gap_and_replaces_a_state_it_cannot_read(redis_sink, settings):
    from beacons.counting.redis_format import visit_state_key

    settings.BEACONS_VISIT_GAP_SECONDS = 600
    key = visit_state_key(get_sink().prefix, site_id=first_site().pk, visitor_key="v1")
    redis_sink.set(key, b"\xff not a state")
    page_view(T0, "/a")
    drain_pass()
    assert 600 + 3600 - 10 < redis_sink.ttl(key) <= 600 + 3600
    page_view(T0 + timedelta(seconds=30), "/b")
    drain_pass()
    assert (total(VisitSlug.VISITS), total(VisitSlug.PAGES), total(VisitSlug.SECONDS)) == (1, 2, 30)


@pytest.mark.redis
def test_redis_down_counts_page_views_without_visits_and_visits_resume(redis_sink, settings):
    from beacons.counting import sinks

    url = settings.BEACONS_REDIS_URL
    settings.BEACONS_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    page_view(T0, "/down")
    assert (total("page_view", "/down"), total(VisitSlug.VISITS)) == (1, 0)  # in the database at once
    settings.BEACONS_REDIS_URL = url
    sinks.sinks_reset()
    page_view(T0 + timedelta(seconds=10), "/back")
    drain_pass()
    assert (total("page_view"), total(VisitSlug.VISITS, "/back")) == (2, 1)


@pytest.mark.parametrize(
    "state",
    [
        (1762164000, "/a|b", "/ü", 2, 1762164030, (("browser", "Firefox"), ("prop:plan", 'pro "x"'))),
        (0, "", "", 1, 0, ()),
    ],
)
def test_a_visit_state_reads_back_as_written(state):
    from beacons.ingest.sessions import state_decode, state_encode

    assert state_decode(state_encode(state, 41)) == (state, 41)
    assert state_encode(state, 41) == state_encode(*state_decode(state_encode(state, 41)))  # compared as bytes


@pytest.mark.parametrize(
    "raw",
    [
        None,
        b"",
        b"[1,2]",
        b"{}",
        b"\xff",
        b'[3,1,"a","b","many",5,[]]',
        b"[3,1,2,3,4,5,[[1]]]",
        b'["x",1,"a","b",1,5,[]]',
    ],
)
def test_a_stored_state_that_is_not_a_state_reads_as_none(raw):
    from beacons.ingest.sessions import state_decode

    assert state_decode(raw) == (None, 0)


def a_visit_of_two_pages_and_a_bounce():
    page_view(T0, "/a")
    page_view(T0 + timedelta(seconds=50), "/b")
    page_view(T0 + timedelta(seconds=60), "/z", visitor="v2")


def assert_the_visit_of_two_pages_and_a_bounce():
    assert (total(VisitSlug.VISITS), total(VisitSlug.BOUNCES), total(VisitSlug.BOUNCES, "/a")) == (2, 1, 0)
    assert (total(VisitSlug.EXITS, "/a"), total(VisitSlug.EXITS, "/b"), total(VisitSlug.EXITS, "/z")) == (0, 1, 1)
    assert total(VisitSlug.SECONDS) == 50
    assert not BeaconAggregate.objects.filter(count__lt=0).exists()


def test_memory_sink_writes_the_negative_adjustments_of_a_later_flush(settings):
    settings.BEACONS_SINK = "memory"
    settings.BEACONS_FLUSH_SECONDS = 3600
    page_view(T0, "/a")
    page_view(T0 + timedelta(seconds=60), "/z", visitor="v2")
    get_sink().flush()  # the bounce and exit of /a are stored before they are taken back
    assert total(VisitSlug.BOUNCES, "/a") == 1
    page_view(T0 + timedelta(seconds=50), "/b")
    get_sink().flush()
    assert_the_visit_of_two_pages_and_a_bounce()


@pytest.mark.redis
def test_redis_sink_and_the_drain_keep_negative_adjustments(redis_sink):
    page_view(T0, "/a")
    page_view(T0 + timedelta(seconds=60), "/z", visitor="v2")
    drain_pass()
    assert total(VisitSlug.BOUNCES, "/a") == 1
    page_view(T0 + timedelta(seconds=50), "/b")  # its -1s land in the next batch
    result = drain_pass()
    assert_the_visit_of_two_pages_and_a_bounce()
    assert result.hits == 1  # the page view; visit adjustments are no hits


def test_a_negative_adjustment_whose_counter_is_missing_is_floored_at_zero_not_refused():
    from beacons.counting.increments import aggregates_add

    definition = BeaconDefinition.objects.get(slug="page_view")
    key = (first_site().pk, definition.pk, "", "/gone", Granularity.DAY, datetime(2026, 11, 3, tzinfo=UTC))
    aggregates_add(increments={key: 2})
    aggregates_add(increments={key: -5, key[:3] + ("/never",) + key[4:]: -1})
    assert total("page_view", "/gone") == 0
    assert not BeaconAggregate.objects.filter(identifier="/never").exists()


# --- staff cannot break the reserved types ----------------------------------------------------------


def test_the_admin_hides_reserved_types_and_refuses_their_slugs(admin_client):
    page_view(T0, "/a")
    visits = BeaconDefinition.objects.get(slug=VisitSlug.VISITS)
    listing = admin_client.get("/admin/beacons/beacondefinition/")
    assert listing.status_code == 200 and VisitSlug.VISITS not in listing.content.decode()
    assert admin_client.get(f"/admin/beacons/beacondefinition/{visits.pk}/change/").status_code == 302  # not found
    delete = admin_client.post(f"/admin/beacons/beacondefinition/{visits.pk}/delete/", {"post": "yes"})
    assert delete.status_code == 302 and BeaconDefinition.objects.filter(pk=visits.pk).exists()
    admin_client.post(
        "/admin/beacons/beacondefinition/",
        {"action": "deactivate", "_selected_action": [visits.pk]},
    )
    assert BeaconDefinition.objects.get(pk=visits.pk).is_active
    added = admin_client.post(
        "/admin/beacons/beacondefinition/add/",
        {
            "name": "Fake",
            "slug": "beacons:fake",
            "kind": "custom",
            "identifier_rule": "payload",
            "granularities": ["D"],
        },
    )
    assert "are Beacons' own" in added.context["adminform"].form.errors["slug"][0]
    assert not BeaconDefinition.objects.filter(slug="beacons:fake").exists()


def test_registry_files_neither_export_nor_import_reserved_types():
    from beacons.transfer.resources import BeaconDefinitionResource, definitions_import

    page_view(T0, "/a")
    exported = [row[0] for row in BeaconDefinitionResource().rows(queryset=BeaconDefinition.objects.all())]
    assert "page_view" in exported and not [slug for slug in exported if slug.startswith("beacons:")]
    result = definitions_import(
        rows=iter([{"slug": VisitSlug.VISITS, "name": "Hacked", "granularities": "day"}]),
        headers=["slug", "name", "granularities"],
        dry_run=False,
    )
    assert result.has_validation_errors() or result.has_errors()
    assert BeaconDefinition.objects.get(slug=VisitSlug.VISITS).name == "Visits"


def test_the_dashboard_lists_no_reserved_type(site):
    from beacons.queries import counters, event_types

    page_view(T0, "/a")
    assert not [d for d in event_types.definitions_listed() if d.slug.startswith("beacons:")]
    assert not event_types.definitions_matching(text="visit", limit=10)
    assert event_types.definition_chosen(slug=VisitSlug.VISITS, listed=10).slug == "page_view"
    top = counters.series_of_top_definitions(
        site=site,
        granularity=Granularity.DAY,
        start=T0.replace(hour=0),
        end=T0.replace(hour=0) + timedelta(days=1),
        limit=12,
    )
    assert [slug for _, slug, _ in top] == ["page_view"]
