"""Counter increments and the one statement that writes them.

A hit becomes one increment per granularity its definition keeps, for its identifier and
for the "" total row. Increments of a request (or a drained batch) are merged by key and
written with the database's native upsert, adding to the stored count: never
read-modify-write, so concurrent writers cannot lose counts.
"""

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache

from django.db import connection, connections

from .buckets import bucket_start, bucket_zone
from .models import BeaconAggregate

# (definition_id, identifier, granularity, period_start as aware UTC datetime)
CounterKey = tuple[int, str, str, datetime]

_TABLE = BeaconAggregate._meta.db_table
UPSERT_ROWS_PER_STATEMENT = 500  # keeps parameters under SQLite's 32,766-variable limit


@dataclass(frozen=True, slots=True)
class Hit:
    definition_id: int
    granularities: tuple[str, ...]
    identifier: str


def increments_for(*, hits: Iterable[Hit], received_at: datetime) -> Counter[CounterKey]:
    """Fold hits received at one moment into merged counter increments."""
    second = int(received_at.timestamp())
    zone = bucket_zone()
    increments: Counter[CounterKey] = Counter()
    for hit in hits:
        for granularity in hit.granularities:
            start = _bucket_start_of_second(second, granularity, zone)
            increments[(hit.definition_id, "", granularity, start)] += 1
            if hit.identifier:
                increments[(hit.definition_id, hit.identifier, granularity, start)] += 1
    return increments


@lru_cache(maxsize=256)
def _bucket_start_of_second(second: int, granularity: str, zone) -> datetime:
    # Every request within one second shares its bucket starts: worth a cache on the hot path.
    return bucket_start(datetime.fromtimestamp(second, timezone.utc), granularity, zone)


def aggregates_add(*, increments: Mapping[CounterKey, int], using: str | None = None) -> int:
    """Add ``increments`` to the stored counters; returns the number of keys written.

    Keys are written in sorted order so concurrent writers take row locks in the same
    order (no deadlocks). Up to 500 keys go in one statement; a request's increments
    always fit in one.
    """
    items = sorted((key, n) for key, n in increments.items() if n)
    return _upsert(items, f"count = {_TABLE}.count + EXCLUDED.count", using)


def aggregates_set(*, counts: Mapping[CounterKey, int], using: str | None = None) -> int:
    """Set counters to ``counts``, inserting missing ones (imports in replace mode)."""
    return _upsert(sorted(counts.items()), "count = EXCLUDED.count", using)


def aggregates_add_bulk(*, increments: Mapping[CounterKey, int]) -> int:
    """Like ``aggregates_add`` but for large batches (a drain). Call inside a transaction.

    On PostgreSQL the keys are streamed with binary ``COPY`` into a temporary table, then
    added with one ``INSERT … SELECT … ORDER BY … ON CONFLICT DO UPDATE``: keys are unique
    (they come from one mapping) and sorted (a stable row-lock order between concurrent writers).
    Measured ~20% faster than batches of ``unnest`` arrays (bench/drain.py).
    Elsewhere it is ``aggregates_add``.
    """
    if connection.vendor != "postgresql":
        return aggregates_add(increments=increments)
    rows = 0
    with connection.cursor() as cursor:
        # Session-wide, effective only before this session's first temporary table: keeps a
        # large batch in memory instead of spilling it to temporary files.
        cursor.execute("SET temp_buffers = '256MB'")
        cursor.execute(
            "CREATE TEMP TABLE beacons_bulk_rows (definition_id bigint, identifier text, granularity text, "
            "period_start timestamptz, count bigint) ON COMMIT DROP"
        )
        with cursor.cursor.copy("COPY beacons_bulk_rows FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["int8", "text", "text", "timestamptz", "int8"])
            for (definition_id, identifier, granularity, start), n in increments.items():
                if n:
                    copy.write_row((definition_id, identifier, granularity, start, n))
                    rows += 1
        # PostgreSQL sorts the rows (in C: sorting a million tuples in Python took seconds)
        # into the order ``aggregates_add`` uses, code-point order for text, so concurrent
        # writers take row locks in one order.
        cursor.execute(
            f"INSERT INTO {_TABLE} (definition_id, identifier, granularity, period_start, count) "
            "SELECT definition_id, identifier, granularity, period_start, count FROM beacons_bulk_rows "
            'ORDER BY definition_id, identifier COLLATE "C", granularity COLLATE "C", period_start '
            "ON CONFLICT (definition_id, identifier, granularity, period_start) "
            f"DO UPDATE SET count = {_TABLE}.count + EXCLUDED.count"
        )
        cursor.execute("DROP TABLE beacons_bulk_rows")  # ON COMMIT DROP is too late for a second batch
    return rows


def _upsert(items: list[tuple[CounterKey, int]], on_conflict: str, using: str | None) -> int:
    conn = connections[using] if using else connection
    adapt = conn.ops.adapt_datetimefield_value
    with conn.cursor() as cursor:
        for offset in range(0, len(items), UPSERT_ROWS_PER_STATEMENT):
            chunk = items[offset : offset + UPSERT_ROWS_PER_STATEMENT]
            params: list = []
            for (definition_id, identifier, granularity, start), n in chunk:
                params += [definition_id, identifier, granularity, adapt(start), n]
            values = ",".join(["(%s,%s,%s,%s,%s)"] * len(chunk))
            cursor.execute(
                f"INSERT INTO {_TABLE} (definition_id, identifier, granularity, period_start, count) "
                f"VALUES {values} "
                f"ON CONFLICT (definition_id, identifier, granularity, period_start) DO UPDATE SET {on_conflict}",
                params,
            )
    return len(items)
