"""The per-day cap on distinct dimension values, for the sinks that write to the database.

At most ``BEACONS_MAX_VALUES_PER_DIMENSION`` distinct values of one (site, definition,
dimension) count per day; a further value counts as ``OTHER_VALUE`` and is tallied in
``DroppedValues``. Without it, one script sending random property values fills the table.

The redis sink checks its Redis set in the same script as the write (``sinks.RedisSink``), and
remembers what the script admitted (``AdmittedValues``): a value is asked once per process and day.
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
        get = increments.get  # not +=: Counter's __missing__ is a Python call per new key
        for value, n in values.items():
            counted_as = self.value_for(value)
            if counted_as == OTHER_VALUE and value.value != OTHER_VALUE:
                over[cap_key(value)] += n
            for key in value.keys(counted_as):
                increments[key] = get(key, 0) + n
        return increments, over

    def value_for(self, value: DimensionValue) -> str:
        """What ``value`` counts as: itself, or ``OTHER_VALUE`` beyond the day's cap. Asked again
        for a value already decided, the same answer (its visitors follow its counter)."""
        text = value.value
        if text == OTHER_VALUE:
            return text
        key = cap_key(value)
        # The hot path, a value admitted before: one dict and one set lookup, no lock. Sets only
        # grow while their key lives, and a dict or set read is atomic under the GIL.
        seen = self._seen.get(key)
        if seen is not None and text in seen:
            return text
        return text if self._admitted(key, text, values_limit()) else OTHER_VALUE

    def _admitted(self, key: CapKey, value: str, limit: int) -> bool:
        with self._lock:
            seen = self._seen.get(key)
        if seen is None:
            stored = _stored_values(key, limit)  # outside the lock: one query, once a day per key
            with self._lock:
                seen = self._seen.setdefault(key, stored)
                _days_forget(self._seen, before=key[3])
        with self._lock:
            if value in seen:
                return True
            if len(seen) >= limit:
                return False
            seen.add(value)
            return True


class AdmittedValues:
    """Dimension values some cap admitted, remembered in this process: a value admitted for its day
    stays admitted that day, so it need not be asked again. Lookups take no lock; days older than
    the day before the newest one added are forgotten. Thread-safe."""

    def __init__(self):
        # (site_id, definition_id, dimension, value, day): a DimensionValue's first five fields,
        # sliced in C, so a lookup is one set test.
        self._values: set[tuple[int, int, str, str, datetime]] = set()
        self._days: set[datetime] = set()
        self._lock = threading.Lock()

    def __contains__(self, value: DimensionValue) -> bool:
        return value[:5] in self._values  # a set test is atomic under the GIL

    def add(self, value: DimensionValue) -> None:
        with self._lock:
            if value.day not in self._days:
                self._days.add(value.day)
                if not all(_day_kept(day, newest=value.day) for day in self._days):  # a new day: older ones go
                    self._days = {day for day in self._days if _day_kept(day, newest=value.day)}
                    self._values = {kept for kept in self._values if kept[4] in self._days}
            self._values.add(value[:5])


def _days_forget(by_key: dict[CapKey, set[str]], *, before: datetime) -> None:
    for key in [key for key in by_key if not _day_kept(key[3], newest=before)]:
        del by_key[key]


def _day_kept(day: datetime, *, newest: datetime) -> bool:
    """Whether values of ``day`` are still remembered once ``newest`` is seen: the day before stays
    (a hit of its last second may still arrive), older days go."""
    return (newest - day).days <= 1


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
    try:
        rows: Counter[tuple] = Counter()
        for (site_id, definition_id, dimension, day), n in over.items():
            local_day = day.astimezone(bucket_zone(site_id)).date()  # may read the sites: inside the try
            rows[(connection.ops.adapt_datefield_value(local_day), site_id, definition_id, dimension)] += n
        params: list = []
        for key, n in sorted(rows.items()):
            params += [*key, n]
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (day, site_id, definition_id, dimension, count) VALUES "
                + ",".join(["(%s, %s, %s, %s, %s)"] * len(rows))
                + f" ON CONFLICT (day, site_id, definition_id, dimension) DO UPDATE SET count = {table}.count + EXCLUDED.count",
                params,
            )
    except DatabaseError as exc:  # a tally of what was folded is not worth failing a request
        outage_warning("dropped-values tally (+%d) lost, database unreachable: %s", sum(over.values()), exc)
