"""The per-day cap on distinct dimension values, for the sinks that write to the database.

At most ``BEACONS_MAX_VALUES_PER_DIMENSION`` distinct values of one (site, definition,
dimension) count per day; a further value counts as ``OTHER_VALUE`` and is tallied in
``DroppedValues``. Without it, one script sending random property values fills the table.

The redis sink checks its Redis set in the same script as the write (``sinks.RedisSink``).
The direct and memory sinks ask a ``ValueCap``: it reads the values already stored for the
day once (one query per (site, definition, dimension) and day, in each process), then keeps
them in memory and adds what it admits. Processes that admit new values at the same moment
may each admit some before they see the others' (they only read the database once a day), so
with many processes the cap holds per process, the stored total staying within a small
multiple of it; the redis sink holds it exactly.
"""

import threading
from collections import Counter
from collections.abc import Mapping
from datetime import datetime

from django.conf import settings
from django.db import DatabaseError, connection

from beacons.counting.buckets import bucket_zone
from beacons.counting.increments import OTHER_VALUE, CounterKey, DimensionValue
from beacons.logs import outage_warning
from beacons.models import BeaconAggregate, DroppedValues, Granularity

# (site_id, definition_id, dimension, day start): what one cap counts distinct values of
CapKey = tuple[int, int, str, datetime]


def cap_key(value: DimensionValue) -> CapKey:
    return value.site_id, value.definition_id, value.dimension, value.day


def values_limit() -> int:
    return settings.BEACONS_MAX_VALUES_PER_DIMENSION


class ValueCap:
    """The distinct values each (site, definition, dimension) counted per day in this process,
    starting from those stored; thread-safe."""

    def __init__(self):
        self._seen: dict[CapKey, set[str]] = {}
        self._lock = threading.Lock()

    def admit(self, values: Mapping[DimensionValue, int]) -> tuple[Counter[CounterKey], Counter[CapKey]]:
        """The increments of ``values``, each under its own value or, beyond the cap, ``OTHER_VALUE``;
        and the hits that went to ``OTHER_VALUE`` per cap key."""
        increments: Counter[CounterKey] = Counter()
        over: Counter[CapKey] = Counter()
        for value, n in values.items():
            counted_as = self.value_for(value)
            if counted_as == OTHER_VALUE and value.value != OTHER_VALUE:
                over[cap_key(value)] += n
            for key in value.keys(counted_as):
                increments[key] += n
        return increments, over

    def value_for(self, value: DimensionValue) -> str:
        """What ``value`` counts as: itself, or ``OTHER_VALUE`` beyond the day's cap. Asked again
        for a value already decided, the same answer (its visitors follow its counter)."""
        if value.value == OTHER_VALUE or self._admitted(cap_key(value), value.value, values_limit()):
            return value.value
        return OTHER_VALUE

    def _admitted(self, key: CapKey, value: str, limit: int) -> bool:
        with self._lock:
            seen = self._seen.get(key)
        if seen is None:
            stored = _stored_values(key, limit)  # outside the lock: one query, once a day per key
            with self._lock:
                seen = self._seen.setdefault(key, stored)
                self._forget_before(key[3])
        with self._lock:
            if value in seen:
                return True
            if len(seen) >= limit:
                return False
            seen.add(value)
            return True

    def _forget_before(self, day: datetime) -> None:
        # Yesterday stays (a hit of its last second may still arrive), older days go.
        old = [key for key in self._seen if (day - key[3]).days > 1]
        for key in old:
            del self._seen[key]


def _stored_values(key: CapKey, limit: int) -> set[str]:
    site_id, definition_id, dimension, day = key
    rows = BeaconAggregate.objects.filter(
        site_id=site_id, definition_id=definition_id, dimension=dimension, granularity=Granularity.DAY, period_start=day
    ).exclude(identifier=OTHER_VALUE)
    try:
        return set(rows.values_list("identifier", flat=True)[:limit])
    except DatabaseError as exc:  # the memory sink counts on while the database is down: cap from what it sees
        outage_warning("values of a dimension not read, database unreachable; capping from this process only: %s", exc)
        return set()


def values_dropped_add(*, over: Mapping[CapKey, int]) -> None:
    """Add to the dropped-values tally: hits counted as ``OTHER_VALUE`` per cap key. One statement."""
    if not over:
        return
    table = DroppedValues._meta.db_table
    rows: Counter[tuple] = Counter()
    for (site_id, definition_id, dimension, day), n in over.items():
        local_day = day.astimezone(bucket_zone(site_id)).date()
        rows[(connection.ops.adapt_datefield_value(local_day), site_id, definition_id, dimension)] += n
    params: list = []
    for key, n in sorted(rows.items()):
        params += [*key, n]
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (day, site_id, definition_id, dimension, count) VALUES "
                + ",".join(["(%s, %s, %s, %s, %s)"] * len(rows))
                + f" ON CONFLICT (day, site_id, definition_id, dimension) DO UPDATE SET count = {table}.count + EXCLUDED.count",
                params,
            )
    except DatabaseError as exc:  # a tally of what was folded is not worth failing a request
        outage_warning("dropped-values tally (+%d) lost, database unreachable: %s", sum(over.values()), exc)
