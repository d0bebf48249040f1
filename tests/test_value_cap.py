"""The per-day cap on distinct dimension values: one script cannot fill the counter table."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import Sum

from beacons.counting.drain import drain_pass
from beacons.counting.increments import OTHER_VALUE, DimensionValue, Hit, dimension_values_for
from beacons.counting.sinks import RedisSink, sinks_reset
from beacons.counting.value_cap import AdmittedValues, ValueCap
from beacons.ingest.hits import hit_log_entry
from beacons.models import BeaconAggregate, BeaconDefinition, DroppedValues, Granularity

from .conftest import first_site

G = Granularity
BATCH = 50  # BEACONS_MAX_BATCH


@pytest.fixture
def signup(db, settings):
    settings.BEACONS_RATE_LIMIT = settings.BEACONS_NETWORK_RATE_LIMIT = 0  # one script sends it all
    return BeaconDefinition.objects.create(
        slug="signup", name="Sign-ups", granularities="H,D,MO,Y", property_keys="plan"
    )


def send_plans(send, plans):
    for offset in range(0, len(plans), BATCH):
        events = [{"event_type": "signup", "meta": {"plan": plan}} for plan in plans[offset : offset + BATCH]]
        assert send({"events": events}).status_code == 204


def day_values(definition, dimension="prop:plan"):
    rows = BeaconAggregate.objects.filter(definition=definition, dimension=dimension, granularity=G.DAY)
    return dict(rows.values_list("identifier", "count"))


def day_total(definition):
    rows = BeaconAggregate.objects.filter(definition=definition, dimension="", identifier="", granularity=G.DAY)
    return rows.aggregate(n=Sum("count"))["n"]


def dropped(definition):
    return DroppedValues.objects.filter(definition=definition).aggregate(n=Sum("count"))["n"] or 0


def test_a_script_sending_50000_distinct_values_leaves_1000_values_and_other(send, signup):
    send_plans(send, [f"plan-{i}" for i in range(50_000)])
    values = day_values(signup)
    assert len(values) == 1_001 and values[OTHER_VALUE] == 49_000
    assert sum(values.values()) == 50_000
    assert day_total(signup) == 50_000  # the total counts every hit
    assert dropped(signup) == 49_000
    month = BeaconAggregate.objects.filter(definition=signup, dimension="prop:plan", granularity=G.MONTH)
    assert month.count() == 1_001  # every granularity of a value follows the day's decision


@pytest.mark.redis
def test_the_redis_sink_holds_the_cap_and_the_drain_stores_it(send, redis_sink, signup):
    send_plans(send, [f"plan-{i}" for i in range(50_000)])
    drain_pass()
    values = day_values(signup)
    assert len(values) == 1_001 and values[OTHER_VALUE] == 49_000
    assert day_total(signup) == 50_000
    assert dropped(signup) == 49_000


def test_values_already_counted_today_keep_counting_under_their_name_after_the_cap(send, signup, settings):
    settings.BEACONS_MAX_VALUES_PER_DIMENSION = 2
    send_plans(send, ["free", "pro", "team", "free", "pro", OTHER_VALUE])
    assert day_values(signup) == {"free": 2, "pro": 2, OTHER_VALUE: 2}  # "(other)" itself takes no place
    assert dropped(signup) == 1


def test_a_new_process_reads_the_values_stored_today_and_keeps_the_cap(send, signup, settings):
    settings.BEACONS_MAX_VALUES_PER_DIMENSION = 3
    send_plans(send, ["a", "b", "c"])
    sinks_reset()  # another process: it knows nothing but what is stored
    send_plans(send, ["d", "a"])
    assert day_values(signup) == {"a": 2, "b": 1, "c": 1, OTHER_VALUE: 1}


@pytest.mark.redis
def test_two_processes_share_one_cap_through_redis(send, redis_sink, signup, settings):
    settings.BEACONS_MAX_VALUES_PER_DIMENSION = 3
    send_plans(send, ["a", "b"])
    other_process = RedisSink(url=settings.BEACONS_REDIS_URL, prefix=settings.BEACONS_REDIS_PREFIX)
    hits = [Hit(first_site().pk, signup.pk, (), "", {"prop:plan": plan}, (G.DAY,)) for plan in ("c", "d", "e")]
    entry = hit_log_entry(
        hits=hits, site_id=first_site().pk, received_at=datetime.now(UTC), visitor_key="", page_view_ids=()
    )
    other_process.hits_log(entry)
    other_process.close()
    send_plans(send, ["f", "a"])
    drain_pass()
    assert day_values(signup) == {"a": 2, "b": 1, "c": 1, OTHER_VALUE: 3}


@pytest.mark.redis
def test_the_redis_sink_asks_the_set_once_for_a_value_it_saw_admitted(send, redis_sink, signup, settings, monkeypatch):
    settings.BEACONS_MAX_VALUES_PER_DIMENSION = 2
    send_plans(send, ["a", "b"])
    drain_pass()  # the drain counts the logged hits: "a" and "b" take the cap
    sink = RedisSink(url=settings.BEACONS_REDIS_URL, prefix=settings.BEACONS_REDIS_PREFIX)
    asked = []
    original = sink._send
    # The script's keys after the first three are the value sets it is asked about.
    monkeypatch.setattr(sink, "_send", lambda commands: (asked.append(commands[-1][2] - 3), original(commands))[1])
    hits = [Hit(first_site().pk, signup.pk, (), "", {"prop:plan": plan}, (G.DAY,)) for plan in ("a", "c")]
    for _ in range(2):
        sink.add({}, dimension_values_for(hits=hits, received_at=datetime.now(UTC)))
    sink.close()
    assert asked == [2, 1]  # then "a" is known admitted; "c", refused, is asked again
    drain_pass()
    assert day_values(signup) == {"a": 3, "b": 1, OTHER_VALUE: 2}


def test_admitted_values_are_remembered_for_their_day_and_the_next_only():
    admitted = AdmittedValues()
    day = datetime(2026, 3, 14, tzinfo=UTC)

    def firefox(on):
        return DimensionValue(1, 2, "browser", "Firefox", on, ((G.DAY, on),))

    admitted.add(firefox(day))
    admitted.add(DimensionValue(1, 2, "browser", "Safari", day + timedelta(days=1), ()))
    assert firefox(day) in admitted and firefox(day + timedelta(days=1)) not in admitted
    admitted.add(DimensionValue(1, 2, "browser", "Safari", day + timedelta(days=2), ()))
    assert firefox(day) not in admitted


def test_the_cap_counts_each_day_apart(settings):
    settings.BEACONS_MAX_VALUES_PER_DIMENSION = 3
    cap = ValueCap()
    today = datetime(2026, 3, 14, tzinfo=UTC)
    admitted = []
    for day, names in ((today, ["v0", "v1", "v2", "v3"]), (today + timedelta(days=1), ["v4", "v5", "v6"])):
        cap._seen[(1, 2, "prop:plan", day)] = set()  # nothing stored that day (no query)
        values = {DimensionValue(1, 2, "prop:plan", name, day, ((G.DAY, day),)): 1 for name in names}
        counts, over = cap.admit(values)
        admitted.append((sorted(key[3] for key in counts), sum(over.values())))
    assert admitted == [(["(other)", "v0", "v1", "v2"], 1), (["v4", "v5", "v6"], 0)]


@pytest.mark.redis
def test_with_redis_down_values_go_to_the_database_under_the_same_cap(send, signup, settings, redis_sink):
    settings.BEACONS_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    settings.BEACONS_MAX_VALUES_PER_DIMENSION = 2
    send_plans(send, ["a", "b", "c"])
    assert day_values(signup) == {"a": 1, "b": 1, OTHER_VALUE: 1}
    assert dropped(signup) == 1


def test_a_hit_whose_type_keeps_no_day_month_or_year_gives_no_value_to_cap(db):
    # Values count in days, months and years only: with none of them there is no counter a
    # value could take a place under the cap for.
    site_id = first_site().pk
    hour_only = Hit(site_id, 7, (G.HOUR,), "/a", {"prop:plan": "pro"}, ())
    day_kept = Hit(site_id, 7, (G.HOUR, G.DAY), "/a", {"prop:plan": "pro"}, (G.DAY,))
    moment = datetime(2026, 5, 1, 12, tzinfo=UTC)
    assert dimension_values_for(hits=[hour_only], received_at=moment) == {}
    assert [v.value for v in dimension_values_for(hits=[hour_only, day_kept], received_at=moment)] == ["pro"]


class _Unreachable:
    """A manager whose rows cannot be read: the database is down."""

    def filter(self, **kwargs):
        return self

    def exclude(self, **kwargs):
        return self

    def values_list(self, *args, **kwargs):
        from django.db import OperationalError

        raise OperationalError("the database is down")


def test_a_cap_that_cannot_read_the_days_values_caps_from_what_this_process_saw(settings, monkeypatch):
    """The memory sink counts on while the database is down: its cap starts from no stored value."""
    settings.BEACONS_MAX_VALUES_PER_DIMENSION = 2
    monkeypatch.setattr(BeaconAggregate, "objects", _Unreachable())
    cap = ValueCap()
    day = datetime(2026, 4, 7, tzinfo=UTC)
    plans = [DimensionValue(1, 1, "prop:plan", plan, day, ((Granularity.DAY, day),)) for plan in ("a", "b", "c", "a")]
    assert [cap.value_for(plan) for plan in plans] == ["a", "b", OTHER_VALUE, "a"]


def test_a_dropped_values_tally_that_cannot_be_written_does_not_fail_the_request(db, monkeypatch):
    from django.db import OperationalError, connection

    from beacons.counting.value_cap import values_dropped_add

    def down(*args, **kwargs):
        raise OperationalError("the database is down")

    site_id = first_site().pk
    monkeypatch.setattr(connection, "cursor", down)
    values_dropped_add(over={(site_id, 1, "prop:plan", datetime(2026, 4, 7, tzinfo=UTC)): 3})
    monkeypatch.undo()
    assert not DroppedValues.objects.exists()
