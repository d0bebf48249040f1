"""Ingest while the database is unreachable, simulated in-process (the real outage is in
test_faults.py): counts keep flowing to Redis, single events and tallies are dropped, and
nothing answers 500."""

from datetime import date

import pytest
from django.db import OperationalError

from beacons import registry
from beacons.counting.redis_format import counter_rows, hit_log_keys, live_and_pending_keys
from beacons.counting.sinks import get_sink
from beacons.ingest import privacy, recording
from beacons.ingest.hits import hit_log_decode
from beacons.models import BeaconAggregate, BeaconDefinition, BeaconEvent

pytestmark = pytest.mark.django_db


def database_down(*args, **kwargs):
    raise OperationalError("could not connect to server: Connection refused")


def live_hits(client, settings, identifier, page_view):
    """Page views (definition id ``page_view``) of ``identifier`` in Redis: in the hit log the drain
    counts, and in the live hash (visit counters left out)."""
    hit_log, _ = hit_log_keys(settings.BEACONS_REDIS_PREFIX)
    logged = (hit_log_decode(raw) for raw in client.lrange(hit_log, 0, -1))
    in_log = sum(hit.identifier == identifier and hit.definition_id == page_view for e in logged for hit in e.hits)
    live, _ = live_and_pending_keys(settings.BEACONS_REDIS_PREFIX)
    stored = counter_rows(client.hgetall(live))
    return in_log + sum(
        n
        for _, definition_id, _, ident, granularity, _, n in stored
        if ident == identifier and granularity == "H" and definition_id == page_view
    )


@pytest.mark.redis
def test_known_type_is_counted_from_the_cache_while_the_database_is_down(send, redis_sink, settings, monkeypatch):
    assert send({"event_type": "page_view", "identifier": "/up"}).status_code == 204
    page_view = BeaconDefinition.objects.get(slug="page_view").pk
    monkeypatch.setattr(registry, "DEFINITIONS_CACHE_SECONDS", 0)  # cached entry is stale: the database is asked
    monkeypatch.setattr(registry, "_definitions_load_or_register", database_down)
    monkeypatch.setattr(privacy, "_salt_load_or_create", database_down)
    monkeypatch.setattr(recording.connection, "cursor", database_down)  # dropped-hits tally
    privacy._salt_cache.clear()
    assert send({"event_type": "page_view", "identifier": "/down"}).status_code == 204
    assert send({"event_type": "page_view", "identifier": "/down", "id": "1"}).status_code == 204
    assert (
        send({"event_type": "page_view", "identifier": "/down", "id": "1"}).status_code == 204
    )  # duplicate: tally lost
    assert live_hits(redis_sink, settings, "/down", page_view) == 2


@pytest.mark.redis
def test_type_never_seen_while_the_database_is_down_gets_503_not_500(send, redis_sink, monkeypatch):
    monkeypatch.setattr(registry, "_definitions_load_or_register", database_down)
    response = send({"event_type": "brand_new", "identifier": "/x"})
    assert response.status_code == 503
    assert response.json()["error"]


def test_direct_sink_with_the_database_down_answers_503(send, monkeypatch):
    from beacons.counting import sinks

    assert send({"event_type": "page_view", "identifier": "/warm"}).status_code == 204
    monkeypatch.setattr(sinks, "aggregates_add", database_down)
    response = send({"event_type": "page_view", "identifier": "/lost"})
    assert response.status_code == 503
    assert response["Retry-After"]


def test_single_events_are_dropped_first_when_their_write_fails(send, monkeypatch):
    monkeypatch.setattr(recording, "raw_events_keep", database_down)
    response = send({"event_type": "error", "identifier": "/page", "meta": {"message": "boom"}})
    assert response.status_code == 204
    assert not BeaconEvent.objects.exists()
    assert BeaconAggregate.objects.filter(definition__slug="error", identifier="", granularity="H").get().count == 1


def test_visitor_key_keeps_the_last_known_salt_while_the_database_is_down(monkeypatch):
    privacy._salt_cache.clear()
    privacy._salt_cache[date(2000, 1, 1)] = "yesterday"
    monkeypatch.setattr(privacy, "_salt_load_or_create", database_down)
    assert privacy.salt_for_today() == "yesterday"
    privacy._salt_cache.clear()
    temporary = privacy.salt_for_today()
    assert temporary and privacy.salt_for_today() == temporary  # one temporary salt, not one per request


def test_sink_is_rebuilt_after_a_fork(settings, monkeypatch):
    from beacons.counting import sinks

    settings.BEACONS_SINK = "memory"
    parent = get_sink()
    monkeypatch.setattr(sinks, "_SINKS_PID", -1)  # as seen from a forked child
    assert get_sink() is not parent
