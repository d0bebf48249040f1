"""Unique visitors: sketch accuracy, ingest through every sink, the drain, signed-in identity, queries."""

import random
import secrets
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from beacons.counting import sketches
from beacons.counting.drain import drain_pass
from beacons.counting.redis_format import live_and_pending_keys
from beacons.counting.sinks import get_sink, sinks_flush
from beacons.counting.sketches import Merge, sketch_dump, sketch_of, sketches_add, visitor_token
from beacons.ingest import identity
from beacons.ingest.hits import hit_log_fold
from beacons.models import BeaconAggregate, BeaconDefinition, Granularity, VisitorSketch
from beacons.queries import visitors as q
from beacons.queries.counters import DimensionNotKept, totals
from tests.conftest import BROWSER_UA, first_site

pytestmark = pytest.mark.django_db
G = Granularity
NOON = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def random_keys(n: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    return [f"{rnd.getrandbits(128):032x}" for _ in range(n)]


# --- accuracy (fixed seeds) ---------------------------------------------------------------------


@pytest.mark.parametrize("n", [10_000, 100_000])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_estimate_is_within_two_percent_from_ten_thousand_visitors(n, seed):
    sketch = sketch_of(visitor_token(key) for key in random_keys(n, seed))
    assert abs(sketch.get_estimate() - n) / n <= 0.02


@pytest.mark.parametrize("n", [1, 2, 7, 42, 99])
def test_fewer_than_a_hundred_visitors_are_counted_exactly(n):
    merge = Merge()
    merge.add(sketch_dump(sketch_of(visitor_token(key) for key in random_keys(n, seed=n))))
    assert merge.estimate() == n
    assert not merge.is_estimate()


def test_a_hit_adds_its_visitor_to_the_sketches_of_its_page_and_values_unless_it_has_no_visitor():
    from beacons.counting.increments import Hit
    from beacons.counting.sketches import Visitors, visitor_keys_for

    site = first_site()
    hit = Hit(site.pk, 1, (G.HOUR, G.DAY), "/a", {"source": "Google"}, (G.DAY,))
    at = datetime(2026, 4, 7, 10, 30, tzinfo=UTC)
    untracked = visitor_keys_for(hits=[hit], received_at=at, visitor_key="")  # Do-Not-Track
    assert isinstance(untracked, Visitors) and not untracked.keys and not untracked.values
    tracked = visitor_keys_for(hits=[hit], received_at=at, visitor_key="v1")  # the site's own zones
    token = visitor_token("v1")
    day, hour = datetime(2026, 4, 7, tzinfo=UTC), datetime(2026, 4, 7, 10, tzinfo=UTC)
    assert tracked.keys == {
        (site.pk, 1, "", "", G.HOUR, hour): {token},
        (site.pk, 1, "", "", G.DAY, day): {token},
        (site.pk, 1, "", "/a", G.DAY, day): {token},
    }
    assert [(value.dimension, value.value, value.buckets) for value in tracked.values] == [
        ("source", "Google", ((G.DAY, day),))
    ]
    # A type that keeps no dimension counts keeps no value sketches either.
    plain = visitor_keys_for(hits=[hit._replace(dimension_granularities=())], received_at=at, visitor_key="v1")
    assert plain.keys == tracked.keys and not plain.values


def test_a_large_figure_says_it_is_an_estimate():
    merge = Merge()
    merge.add(sketch_dump(sketch_of(visitor_token(key) for key in random_keys(20_000, seed=5))))
    assert merge.is_estimate()


# --- storing and merging over periods -----------------------------------------------------------


def store_day_visitors(site, definition, day: datetime, keys: list[str], identifier: str = ""):
    tokens = {visitor_token(key) for key in keys}
    with transaction.atomic():
        sketches_add(
            tokens={
                (site.pk, definition.pk, "", identifier, G.DAY, day): tokens,
                (site.pk, definition.pk, "", identifier, G.MONTH, datetime(day.year, day.month, 1, tzinfo=UTC)): tokens,
            }
        )


def test_merging_a_month_of_day_sketches_gives_the_month_sketch_and_the_exact_count_within_two_percent(settings):
    settings.BEACONS_TIME_ZONE = "UTC"
    site, page_view = first_site(), BeaconDefinition.objects.get(slug="page_view")
    pool = random_keys(12_000, seed=11)
    rnd = random.Random(12)
    every_day = []
    for day in range(1, 31):
        keys = rnd.sample(pool, 900)  # visitors come back on several days
        every_day += keys
        store_day_visitors(site, page_view, datetime(2026, 4, day, tzinfo=UTC), keys)
    exact = len(set(every_day))
    days, month = Merge(), Merge()
    for granularity, sketch in VisitorSketch.objects.values_list("granularity", "sketch"):
        (days if granularity == G.DAY else month).add(sketch)

    april = q.visitors(
        site=site, definitions=[page_view], start=datetime(2026, 4, 1, tzinfo=UTC), end=datetime(2026, 5, 1, tzinfo=UTC)
    )
    assert days.registers() == month.registers() and len(month.registers()) == 1 << sketches.LG_K
    assert month.estimate() == april.visitors
    assert abs(days.estimate() - month.estimate()) <= 0.005 * month.estimate()
    assert abs(april.visitors - exact) / exact <= 0.02
    assert april.estimate
    # 2 to 30 April: the day sketches (the month is not whole)
    without_first = q.visitors(
        site=site, definitions=[page_view], start=datetime(2026, 4, 2, tzinfo=UTC), end=datetime(2026, 5, 1, tzinfo=UTC)
    )
    expected = len(set(every_day[900:]))
    assert abs(without_first.visitors - expected) / expected <= 0.02


def test_a_stored_sketch_takes_new_visitors_without_losing_old_ones():
    site, page_view = first_site(), BeaconDefinition.objects.get(slug="page_view")
    day = datetime(2026, 4, 2, tzinfo=UTC)
    store_day_visitors(site, page_view, day, random_keys(30, seed=1))
    store_day_visitors(site, page_view, day, random_keys(30, seed=1) + random_keys(20, seed=2))
    count = q.visitors(site=site, definitions=[page_view], start=day, end=day + timedelta(days=1))
    assert count == q.VisitorCount(50, estimate=False)


@pytest.mark.django_db(transaction=True)
def test_sketches_are_written_only_inside_a_transaction():
    with pytest.raises(RuntimeError):
        sketches_add(tokens={(1, 1, "", "", G.DAY, NOON): {1}})


# --- ingest ------------------------------------------------------------------------------------


@pytest.fixture
def clock(monkeypatch):
    """A settable ``timezone.now``."""
    moment = {"now": NOON}
    monkeypatch.setattr(timezone, "now", lambda: moment["now"])
    return moment


def page_view_definition():
    return BeaconDefinition.objects.get(slug="page_view")


def day_visitors(identifier="", dimension="", day=NOON):
    start = day.replace(hour=0)
    return q.visitors(
        site=first_site(),
        definitions=[page_view_definition()],
        start=start,
        end=start + timedelta(days=1),
        identifier=identifier,
        dimension=dimension,
    ).visitors


def test_visitors_are_counted_once_however_many_pages_they_view(send, clock, settings):
    settings.BEACONS_TIME_ZONE = "UTC"
    for page in ("/a", "/b", "/a"):
        assert send({"event_type": "page_view", "identifier": page}).status_code == 204
    assert (
        send({"event_type": "page_view", "identifier": "/a"}, HTTP_USER_AGENT=BROWSER_UA + " Other").status_code == 204
    )
    assert day_visitors() == 2
    assert day_visitors("/a") == 2
    assert day_visitors("/b") == 1
    assert day_visitors("anonymous", dimension="identity") == 2
    assert day_visitors("Chrome", dimension="browser") == 2


def test_do_not_track_page_views_count_as_views_but_not_visitors(send, clock, settings):
    settings.BEACONS_TIME_ZONE = "UTC"
    assert send({"event_type": "page_view", "identifier": "/a"}).status_code == 204
    for header in ({"HTTP_DNT": "1"}, {"HTTP_SEC_GPC": "1"}):
        assert send({"event_type": "page_view", "identifier": "/a"}, **header).status_code == 204
    definitions = [page_view_definition()]
    start, end = datetime(2026, 3, 10, tzinfo=UTC), datetime(2026, 3, 11, tzinfo=UTC)
    assert totals(site=first_site(), definitions=definitions, start=start, end=end).current == 3
    assert day_visitors() == 1
    assert q.untracked_views(site=first_site(), definitions=definitions, start=start, end=end) == 2
    assert not VisitorSketch.objects.filter(dimension="identity", identifier="untracked").exists()
    # Staff read the value as it is stored (the identity breakdown, its CSV, exports).
    identity_days = BeaconAggregate.objects.filter(dimension="identity", granularity=Granularity.DAY)
    assert {row.identifier: row.count for row in identity_days} == {"anonymous": 1, "untracked": 2}


def test_signed_in_visitor_is_the_same_visitor_on_two_days_and_an_anonymous_one_is_not(send, clock, settings):
    settings.BEACONS_TIME_ZONE = "UTC"
    settings.BEACONS_IDENTIFY_USERS = True
    uid = identity.user_token(7)
    for day in (10, 11):
        clock["now"] = datetime(2026, 3, day, 23, 59, 59, tzinfo=UTC)  # just before midnight: a new salt next
        assert send({"event_type": "page_view", "identifier": "/in", "uid": uid}).status_code == 204
        assert send({"event_type": "page_view", "identifier": "/out"}).status_code == 204
    definitions = [page_view_definition()]
    month = {"start": datetime(2026, 3, 1, tzinfo=UTC), "end": datetime(2026, 4, 1, tzinfo=UTC)}
    site = first_site()
    assert q.visitors(site=site, definitions=definitions, identifier="/in", **month).visitors == 1
    assert q.visitors(site=site, definitions=definitions, identifier="/out", **month).visitors == 2
    share = q.signed_in_share(site=site, definitions=definitions, **month)
    assert (share.signed_in.visitors, share.all.visitors, share.share) == (1, 3, 1 / 3)


@pytest.mark.parametrize(
    "uid",
    [
        "f" * 32 + ":" + "A" * 43,  # the right shape, a forged signature
        "not a token",
        "x" * 5000,
        12345,
        ["a"],
        {"id": 1},
        None,
        "",
    ],
)
def test_a_forged_or_malformed_uid_counts_an_anonymous_visitor_never_an_error(send, clock, settings, uid):
    settings.BEACONS_TIME_ZONE = "UTC"
    settings.BEACONS_IDENTIFY_USERS = True
    assert send({"event_type": "page_view", "identifier": "/x", "uid": uid}).status_code == 204
    assert day_visitors("signed_in", dimension="identity") == 0
    assert day_visitors("anonymous", dimension="identity") == 1


def test_a_token_of_another_secret_or_with_identification_off_is_not_signed_in(send, clock, settings):
    settings.BEACONS_TIME_ZONE = "UTC"
    settings.BEACONS_IDENTIFY_USERS = True
    settings.BEACONS_IDENTIFY_SECRET = "one secret"
    token = identity.user_token(7)
    settings.BEACONS_IDENTIFY_SECRET = "another secret"
    assert identity.signed_visitor(token) == ""
    settings.BEACONS_IDENTIFY_SECRET = "one secret"
    assert identity.signed_visitor(token) != ""
    settings.BEACONS_IDENTIFY_USERS = False
    assert identity.signed_visitor(token) == ""


def test_the_script_tag_carries_a_signed_uid_for_a_signed_in_user_only(rf, settings, django_user_model):
    from django.contrib.auth.models import AnonymousUser
    from django.template import Context, Template

    template = Template("{% load beacons %}{% beacon_script %}")
    request = rf.get("/")
    request.user = django_user_model.objects.create_user("ada", password="x" * 12)
    settings.BEACONS_IDENTIFY_USERS = False
    assert "data-uid" not in template.render(Context({"request": request}))
    settings.BEACONS_IDENTIFY_USERS = True
    html = template.render(Context({"request": request}))
    assert f'data-uid="{identity.user_token(request.user.pk)}"' in html
    assert f"{request.user.pk}:" not in html.split("data-uid=")[1][:3]
    request.user = AnonymousUser()
    assert "data-uid" not in template.render(Context({"request": request}))


# --- sinks and the drain -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_memory_sink_counts_visitors_at_its_flush(send, clock, settings):
    settings.BEACONS_TIME_ZONE = "UTC"
    settings.BEACONS_SINK = "memory"
    settings.BEACONS_FLUSH_SECONDS = 3600
    for agent in ("A", "B", "A"):
        assert (
            send({"event_type": "page_view", "identifier": "/m"}, HTTP_USER_AGENT=BROWSER_UA + agent).status_code == 204
        )
    assert day_visitors("/m") == 0
    sinks_flush()
    assert day_visitors("/m") == 2
    assert day_visitors() == 2


@pytest.mark.redis
def test_the_redis_sink_carries_visitors_and_draining_the_same_batch_twice_changes_nothing(
    send, clock, settings, redis_sink
):
    settings.BEACONS_TIME_ZONE = "UTC"
    for agent in ("A", "B", "C", "A"):
        assert (
            send({"event_type": "page_view", "identifier": "/r"}, HTTP_USER_AGENT=BROWSER_UA + agent).status_code == 204
        )
    hit_log_fold(sink=get_sink())  # the drain's first step: the logged hits join the live hash
    live, _ = live_and_pending_keys(settings.BEACONS_REDIS_PREFIX)
    batch = redis_sink.hgetall(live)
    assert day_visitors("/r") == 0  # still in Redis
    drain_pass()
    assert day_visitors("/r") == 3
    assert day_visitors("Chrome", dimension="browser") == 3
    redis_sink.hset(live, mapping=batch)  # the very same batch again, as a new one
    drain_pass()
    assert day_visitors("/r") == 3
    assert day_visitors() == 3


@pytest.mark.redis
def test_visitors_of_a_value_beyond_the_cap_count_under_other_like_its_hits(send, clock, settings, redis_sink):
    settings.BEACONS_TIME_ZONE = "UTC"
    settings.BEACONS_MAX_VALUES_PER_DIMENSION = 1
    for agent in ("Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0", BROWSER_UA):
        assert send({"event_type": "page_view", "identifier": "/c"}, HTTP_USER_AGENT=agent).status_code == 204
    drain_pass()
    assert day_visitors("Firefox", dimension="browser") == 1
    assert day_visitors("(other)", dimension="browser") == 1
    assert day_visitors("Chrome", dimension="browser") == 0


# --- queries ------------------------------------------------------------------------------------


def test_series_breakdown_and_live_visitors(send, clock, settings):
    settings.BEACONS_TIME_ZONE = "UTC"
    definitions = [page_view_definition()]
    site = first_site()
    for minute, agents in ((0, "AB"), (30, "BC"), (61, "D")):
        clock["now"] = NOON + timedelta(minutes=minute)
        for agent in agents:
            assert (
                send(
                    {"event_type": "page_view", "identifier": f"/{agent}"}, HTTP_USER_AGENT=BROWSER_UA + agent
                ).status_code
                == 204
            )
    series = q.visitors_series(
        site=site,
        definitions=definitions,
        granularity=G.HOUR,
        start=NOON - timedelta(hours=1),
        end=NOON + timedelta(hours=2),
    )
    assert [count.visitors for _, count in series] == [0, 3, 1]
    assert q.live_visitors(site=site, definitions=definitions, minutes=5, now=clock["now"]).visitors == 1
    assert q.live_visitors(site=site, definitions=definitions, minutes=35, now=clock["now"]).visitors == 3
    rows = q.visitors_by_value(
        site=site, definition=definitions[0], start=NOON.replace(hour=0), end=NOON.replace(hour=0) + timedelta(days=1)
    )
    assert [(row.value, row.views, row.visitors.visitors) for row in rows][:2] == [("/B", 2, 1), ("/A", 1, 1)]
    with pytest.raises(q.SketchesNotKept):
        q.visitors_series(site=site, definitions=definitions, granularity=G.HOUR, start=NOON, end=NOON, identifier="/A")
    assert q.visitors_series(site=site, definitions=definitions, granularity=G.HOUR, start=NOON, end=NOON) == []
    with CaptureQueriesContext(connection) as read:  # a sketch read is a query like any (pinned counts see it)
        q.visitors(site=site, definitions=definitions, start=NOON - timedelta(hours=1), end=NOON + timedelta(hours=2))
    assert len(read) == 1


# --- concurrency (PostgreSQL) --------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_of_the_same_sketches_lose_no_visitor():
    site, page_view = first_site(), BeaconDefinition.objects.get(slug="page_view")
    keys = [(site.pk, page_view.pk, "", identifier, G.DAY, NOON.replace(hour=0)) for identifier in ("", "/p")]
    errors = []

    def write(offset: int):
        try:
            for batch in range(40):
                tokens = {offset * 1000 + batch * 2, offset * 1000 + batch * 2 + 1}
                with transaction.atomic():
                    sketches_add(tokens={key: tokens for key in keys})
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(offset,)) for offset in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for identifier in ("", "/p"):
        assert day_visitors(identifier) == 160


def test_visitor_token_is_a_signed_64_bit_number_of_any_key():
    tokens = {visitor_token(key) for key in ["f" * 32, "0" * 32, "v1", "", "é" * 100]}
    assert len(tokens) == 5 and all(-(1 << 63) <= token < (1 << 63) for token in tokens)
    assert any(token < 0 for token in tokens) and visitor_token("v1") == visitor_token("v1")
    assert sketches.LG_K == 14
    assert visitor_token(secrets.token_hex(16)) != visitor_token(secrets.token_hex(16))


def test_purge_removes_old_minute_and_hour_visitor_sketches_and_keeps_days(send, clock, settings, capsys):
    from django.core.management import call_command

    settings.BEACONS_TIME_ZONE = "UTC"
    assert send({"event_type": "page_view", "identifier": "/old"}).status_code == 204
    clock["now"] = NOON + timedelta(days=400)
    assert send({"event_type": "page_view", "identifier": "/new"}).status_code == 204
    call_command("beacons_purge")
    old = set(
        VisitorSketch.objects.filter(period_start__lt=NOON + timedelta(days=1)).values_list("granularity", flat=True)
    )
    assert old == {G.DAY, G.MONTH}
    assert VisitorSketch.objects.filter(granularity=G.MINUTE, period_start__gte=NOON + timedelta(days=400)).exists()
    assert "page_view: removed 1 visitors per minute row(s)" in capsys.readouterr().out


@pytest.mark.redis
def test_the_redis_sink_keeps_visitors_of_a_value_sent_without_its_counter(settings, redis_sink):
    from beacons.counting.increments import DimensionValue
    from beacons.counting.sinks import get_sink
    from beacons.counting.sketches import Visitors

    site, page_view = first_site(), page_view_definition()
    day = NOON.replace(hour=0)
    value = DimensionValue(site.pk, page_view.pk, "browser", "Lynx", day, ((G.DAY, day),))
    get_sink().add({}, {}, Visitors(values={value: {visitor_token("a" * 32), visitor_token("b" * 32)}}))
    drain_pass()
    assert day_visitors("Lynx", dimension="browser") == 2


def test_adding_no_visitors_writes_no_sketch():
    with transaction.atomic():
        assert sketches_add(tokens={}) == 0
        assert sketches_add(tokens={(first_site().pk, 1, "", "", G.DAY, datetime(2026, 4, 7, tzinfo=UTC)): set()}) == 0
    assert not VisitorSketch.objects.exists()


def test_types_keeping_no_day_or_month_have_no_page_or_value_sketches(db):
    hourly = BeaconDefinition.objects.create(slug="hourly", name="hourly", granularities="H")
    assert q.sketch_granularities([hourly], per_value=False) == [G.HOUR]
    with pytest.raises(q.SketchesNotKept, match="no visitor sketches"):
        q.sketch_granularities([hourly], per_value=True)
    with pytest.raises(DimensionNotKept):  # it keeps no breakdown either
        q.sketch_granularities([hourly], per_value=True, dimension="source")
    assert q.sketch_granularities([page_view_definition()], per_value=True, dimension="source") == [G.DAY, G.MONTH]


def test_sketches_cover_only_dates_on_their_bucket_edges():
    day = datetime(2026, 4, 7, tzinfo=UTC)
    assert q.sketches_cover(day, day + timedelta(days=2), G.DAY) is True
    assert q.sketches_cover(day + timedelta(hours=1), day + timedelta(days=2), G.DAY) is False
    assert q.sketches_cover(day, day + timedelta(days=1, hours=1), G.DAY) is False


def test_visitors_by_value_shows_ten_values_unless_asked(db):
    site, page_view = first_site(), page_view_definition()
    day = datetime(2026, 4, 7, tzinfo=UTC)
    keys = {(site.pk, page_view.pk, "", f"/p{i:02}", G.DAY, day): {i} for i in range(11)}
    sketches_add(tokens=keys)
    from beacons.counting.increments import aggregates_add

    aggregates_add(increments={key: 1 for key in keys})
    period = {"site": site, "definition": page_view, "start": day, "end": day + timedelta(days=1)}
    assert len(q.visitors_by_value(**period)) == 10
    assert len(q.visitors_by_value(**period, limit=11)) == 11


def test_without_exact_a_cut_bucket_is_read_whole_and_with_it_refused(db):
    site, page_view = first_site(), page_view_definition()
    day = datetime(2026, 4, 7, tzinfo=UTC)
    sketches_add(tokens={(site.pk, page_view.pk, "", "", G.HOUR, day + timedelta(hours=10)): {1, 2}})
    cut = {
        "site": site,
        "definitions": [page_view],
        "start": day + timedelta(hours=10, minutes=30),
        "end": day + timedelta(hours=11),
    }
    assert q.visitors(**cut).visitors == 2  # the stats API's reading: the 10:00 hour whole
    with pytest.raises(q.SketchesNotKept):
        q.visitors(**cut, exact=True)
    q.signed_in_share(**cut)  # read whole too
    with pytest.raises(q.SketchesNotKept):
        q.signed_in_share(**cut, exact=True)


def test_live_visitors_are_those_of_the_last_five_minutes_by_default(db):
    site, page_view = first_site(), page_view_definition()
    now = datetime(2026, 4, 7, 10, 30, 20, tzinfo=UTC)
    sketches_add(tokens={(site.pk, page_view.pk, "", "", G.MINUTE, now.replace(minute=25, second=0)): {1}})
    sketches_add(tokens={(site.pk, page_view.pk, "", "", G.MINUTE, now.replace(minute=26, second=0)): {2}})
    assert q.live_visitors(site=site, definitions=[page_view], now=now).visitors == 1  # 10:26 to 10:30
    assert q.live_visitors(site=site, definitions=[page_view], now=now, minutes=6).visitors == 2


def test_sketches_cover_a_period_ending_now_inside_the_running_bucket(monkeypatch):
    now = datetime(2026, 4, 7, 10, 30, tzinfo=UTC)
    monkeypatch.setattr(timezone, "now", lambda: now)
    assert q.sketches_cover(now.replace(hour=0, minute=0), now, G.DAY) is True
    assert q.sketches_cover(now.replace(hour=0, minute=0), now - timedelta(seconds=1), G.DAY) is False


# --- the kept merge of the days that are over ---------------------------------------------------

APRIL = {day: datetime(2026, 4, day, tzinfo=UTC) for day in range(1, 31)}


def store_page_visitors(day: int, tokens: set[int], page: str = "/a"):
    site, page_view = first_site(), page_view_definition()
    with transaction.atomic():
        sketches_add(tokens={(site.pk, page_view.pk, "", page, G.DAY, APRIL[day]): tokens})


@pytest.fixture
def april_10(clock):
    """Visitors of /a on 7, 8 and 9 April (over) and the 10th (today, at noon): five in all.
    Returns a read of the visitors of pages from the 7th (until now, or ``end``)."""
    clock["now"] = APRIL[10] + timedelta(hours=12)
    for day, tokens in {7: {1, 2}, 8: {2, 3}, 9: {4}, 10: {5}}.items():
        store_page_visitors(day, tokens)

    site, page_view = first_site(), page_view_definition()

    def read(pages=("/a",), end=None) -> dict[str, int]:
        found = q.visitors_of_values(
            site=site,
            definitions=[page_view],
            start=APRIL[7],
            end=end or clock["now"],
            values=pages,
        )
        return {page: count.visitors for page, count in found.items()}

    return read


def test_a_second_read_takes_the_days_that_are_over_from_their_kept_merge_and_today_afresh(april_10):
    assert april_10() == {"/a": 5}
    store_page_visitors(10, {6})  # today goes on
    # A day that is over changed behind its stamp (never done: every write goes through sketches_add)
    # is not read again: the kept merge answers for it.
    VisitorSketch.objects.filter(granularity=G.DAY, period_start=APRIL[8]).update(
        sketch=sketch_dump(sketch_of([98, 99]))
    )
    with CaptureQueriesContext(connection) as queries:
        assert april_10() == {"/a": 6}
    assert len(queries) == 1


def test_a_late_write_to_a_day_that_is_over_is_seen_at_the_next_read(april_10):
    assert april_10() == {"/a": 5}
    store_page_visitors(8, {7})  # a drain after midnight brings yesterday's last visitor
    with CaptureQueriesContext(connection) as queries:
        assert april_10() == {"/a": 6}
    assert len(queries) == 2  # the stamps changed: the days that are over read again
    with CaptureQueriesContext(connection) as queries:
        assert april_10() == {"/a": 6}
    assert len(queries) == 1


def test_a_day_purged_or_added_after_the_merge_was_kept_changes_the_next_read(april_10):
    assert april_10() == {"/a": 5}
    VisitorSketch.objects.filter(period_start=APRIL[7]).delete()  # {1, 2}: 2 stays on the 8th
    assert april_10() == {"/a": 4}
    store_page_visitors(9, {8}, page="/b")  # a row of another page changes nothing of /a's
    assert april_10() == {"/a": 4}
    assert april_10(pages=("/a", "/b")) == {"/a": 4, "/b": 1}


def test_a_period_over_before_today_is_kept_whole_and_one_of_other_pages_apart(april_10):
    assert april_10(end=APRIL[9]) == {"/a": 3}
    store_page_visitors(9, {9})
    store_page_visitors(8, {10}, page="/b")
    assert april_10(end=APRIL[9]) == {"/a": 3}  # the 9th is not in it
    assert april_10(end=APRIL[10]) == {"/a": 5}
    assert april_10(pages=("/b",)) == {"/b": 1}
    assert april_10(pages=("/a", "/b")) == {"/a": 6, "/b": 1}


def test_the_next_day_the_merge_of_days_over_includes_yesterday(april_10, clock):
    assert april_10() == {"/a": 5}
    clock["now"] = APRIL[11] + timedelta(hours=1)
    store_page_visitors(11, {5, 11})
    assert april_10() == {"/a": 6}
    store_page_visitors(10, {12})  # yesterday's late visitor
    assert april_10() == {"/a": 7}


def test_many_visitors_kept_as_a_merge_give_the_figure_read_afresh(april_10):
    keys = random_keys(30_000, seed=21)
    for day, part in zip((7, 8, 9), (keys[:12_000], keys[8_000:20_000], keys[18_000:])):
        store_page_visitors(day, {visitor_token(key) for key in part})
    first = april_10()
    assert first == april_10()
    assert abs(first["/a"] - 30_000) <= 0.02 * 30_000


def test_a_merge_over_its_size_limit_is_not_kept_but_read_afresh(april_10, monkeypatch):
    def dumped(tokens):
        merge = Merge()
        merge.add(sketch_dump(sketch_of(tokens)))
        return len(merge.dump())

    monkeypatch.setattr(q, "OVER_MERGES_MAX_BYTES", dumped([1, 2, 3, 4]) - 1)  # /a's days that are over
    assert april_10() == {"/a": 5}
    VisitorSketch.objects.filter(period_start=APRIL[8]).update(sketch=sketch_dump(sketch_of([96, 97, 98])))
    assert april_10() == {"/a": 7}  # 1, 2, 96, 97, 98, 4 and 5: read afresh
    monkeypatch.setattr(q, "OVER_MERGES_MAX_BYTES", dumped([1, 2, 96, 97, 98, 4]))  # at the limit: kept
    assert april_10() == {"/a": 7}
    VisitorSketch.objects.filter(period_start=APRIL[9]).update(sketch=sketch_dump(sketch_of([94, 95])))
    assert april_10() == {"/a": 7}  # kept: the 9th's change behind its stamp is not seen


def test_two_periods_read_in_turn_are_each_kept(april_10):
    assert (april_10(), april_10(end=APRIL[9])) == ({"/a": 5}, {"/a": 3})
    with CaptureQueriesContext(connection) as queries:
        assert (april_10(), april_10(end=APRIL[9])) == ({"/a": 5}, {"/a": 3})
    assert len(queries) == 2  # one each: neither read again the days of the other


def test_visitors_of_no_values_are_none_and_read_nothing(april_10):
    with CaptureQueriesContext(connection) as queries:
        assert april_10(pages=()) == {}
    assert len(queries) == 0


def test_reading_every_values_rows_keeps_only_the_values_asked(april_10, monkeypatch):
    monkeypatch.setattr(q, "VALUES_LISTED", 1)  # two values: every value's rows are read
    store_page_visitors(8, {20, 21}, page="/b")
    store_page_visitors(8, {22}, page="/c")
    assert april_10(pages=("/a", "/b")) == {"/a": 5, "/b": 2}
    store_page_visitors(9, {23}, page="/c")  # changes the rows read: read again
    assert april_10(pages=("/a", "/b")) == {"/a": 5, "/b": 2}


def test_with_the_cache_down_the_days_that_are_over_are_merged_afresh(april_10, monkeypatch, caplog):
    from django.core.cache import cache

    from beacons.logs import outage_warning

    def down(*args, **kwargs):
        raise ConnectionError("cache unreachable")

    monkeypatch.setattr(outage_warning, "_last", float("-inf"))
    monkeypatch.setattr(cache, "set", down)  # kept merges are not written: read afresh each time
    assert april_10() == {"/a": 5}
    assert "visitor merges not kept: cache unreachable" in caplog.text and "ConnectionError" in caplog.text
    store_page_visitors(8, {7})
    assert april_10() == {"/a": 6}

    caplog.clear()
    monkeypatch.setattr(outage_warning, "_last", float("-inf"))
    monkeypatch.setattr(cache, "get", down)
    assert april_10() == {"/a": 6}
    assert "kept visitor merges not read: cache unreachable" in caplog.text and "ConnectionError" in caplog.text
