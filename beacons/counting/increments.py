"""Counter increments and the statements that write them (every counter write goes through here).

A hit becomes one increment per granularity its definition keeps (buckets in its site's time
zone), for its identifier and
for the "" total row of its site (``increments_add_hits``), and one per granularity its
definition keeps dimensions in for each dimension value it carries (``dimension_values_for``:
those go through the per-day cap of ``beacons.counting.value_cap`` first). Increments of a request (or a drained batch)
are merged by key and written with the database's native upsert, adding to the stored count:
never read-modify-write, so concurrent writers cannot lose counts.
"""

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from types import MappingProxyType
from typing import NamedTuple, Protocol

from django.db import connection, connections, transaction

from beacons.counting.buckets import SiteZones, bucket_start
from beacons.models import BeaconAggregate, BeaconDefinition, Granularity, Site

# (site_id, definition_id, dimension, identifier or value, granularity, period_start as aware UTC datetime):
# the order of the table's unique key. Dimension "" is the identifier axis.
CounterKey = tuple[int, int, str, str, str, datetime]
_COLUMNS = "site_id, definition_id, dimension, identifier, granularity, period_start, count"
_KEY_COLUMNS = "site_id, definition_id, dimension, identifier, granularity, period_start"

_TABLE = BeaconAggregate._meta.db_table
UPSERT_ROWS_PER_STATEMENT = 500  # keeps parameters (7 a row) under SQLite's 32,766-variable limit
OTHER_VALUE = "(other)"  # what a dimension value beyond the day's cap counts as


_NO_DIMENSIONS: Mapping[str, str] = MappingProxyType({})


class Hit(NamedTuple):
    """What one accepted event (or one visit adjustment) counts. A named tuple: a frozen dataclass
    costs several times as much to build (one ``object.__setattr__`` per field), and a request
    with visits builds several."""

    site_id: int
    definition_id: int
    granularities: tuple[str, ...]
    identifier: str
    dimensions: Mapping[str, str] = _NO_DIMENSIONS  # dimension code -> value (never "")
    dimension_granularities: tuple[str, ...] = ()  # where its dimension values count
    count: int = 1  # what it adds: a visit adjustment may add more than one, or take away (see ``aggregates_add``)


class DimensionValue(NamedTuple):
    """One dimension value of hits received in one second, counted in each of ``buckets`` unless
    the (site, definition, dimension, ``day``) already holds the most distinct values allowed:
    then it counts as ``OTHER_VALUE``. ``day`` is the start of the day bucket it falls in.

    A named tuple: a request with visits makes ~30 of them and hashes each a few times; a tuple
    hashes in C, where a frozen dataclass runs Python code to build and to hash."""

    site_id: int
    definition_id: int
    dimension: str
    value: str
    day: datetime
    buckets: tuple[tuple[str, datetime], ...]

    def keys(self, value: str | None = None) -> list[CounterKey]:
        """Its counter keys, under its own value or ``value``."""
        value = self.value if value is None else value
        return [(self.site_id, self.definition_id, self.dimension, value, g, start) for g, start in self.buckets]


def increments_for(
    *, hits: Iterable[Hit], received_at: datetime, zones: SiteZones | None = None
) -> Counter[CounterKey]:
    """Fold hits received at one moment into merged counter increments of the identifier axis
    (their dimension values: ``dimension_values_for``). ``zones``: the sites' zones as read for
    this request, when the caller has them."""
    second = int(received_at.timestamp())
    increments: Counter[CounterKey] = Counter()
    zones = zones or SiteZones()
    for hit in hits:
        increments_add_hits(
            increments,
            site_id=hit.site_id,
            definition_id=hit.definition_id,
            buckets=bucket_starts_of_second(second, hit.granularities, zones.of(hit.site_id)),
            hits={hit.identifier: hit.count},
        )
    return increments


def dimension_values_for(
    *, hits: Iterable[Hit], received_at: datetime, zones: SiteZones | None = None
) -> Counter[DimensionValue]:
    """The dimension values of hits received at one moment, merged: {value: hits}. Values of
    ``OTHER_VALUE`` itself are included (they pass the cap as they are)."""
    second = int(received_at.timestamp())
    values: Counter[DimensionValue] = Counter()
    get = values.get
    zones = zones or SiteZones()
    for hit in hits:
        if not hit.dimensions or not hit.dimension_granularities:
            continue
        day, buckets = day_and_buckets_of_second(second, hit.dimension_granularities, zones.of(hit.site_id))
        site_id, definition_id, n = hit.site_id, hit.definition_id, hit.count
        for dimension, text in hit.dimensions.items():
            value = DimensionValue(site_id, definition_id, dimension, text, day, buckets)
            values[value] = get(value, 0) + n  # not +=: Counter's __missing__ is a Python call per new key
    return values


def increments_add_hits(
    increments: Counter[CounterKey],
    *,
    site_id: int,
    definition_id: int,
    buckets: Iterable[tuple[str, datetime]],
    hits: Mapping[str, int],
) -> None:
    """Add ``hits`` ({identifier: hits}) of one site and definition to ``increments`` in each of ``buckets``
    ((granularity, bucket start) pairs): each identifier's counter gets its hits, and the ""
    total gets them all (hits without an identifier count only there)."""
    total = sum(hits.values())
    get = increments.get  # not +=: Counter's __missing__ is a Python call per new key
    for granularity, start in buckets:
        key = (site_id, definition_id, "", "", granularity, start)
        increments[key] = get(key, 0) + total
        for identifier, n in hits.items():
            if identifier:
                key = (site_id, definition_id, "", identifier, granularity, start)
                increments[key] = get(key, 0) + n


def increments_add_values(
    increments: Counter[CounterKey],
    *,
    site_id: int,
    definition_id: int,
    buckets: Iterable[tuple[str, datetime]],
    values: Mapping[tuple[str, str], int],
) -> None:
    """Add ``values`` ({(dimension, value): hits}) of one site and definition to ``increments`` in each of
    ``buckets``, with no cap (the demo's own values, imports)."""
    for granularity, start in buckets:
        for (dimension, value), n in values.items():
            increments[(site_id, definition_id, dimension, value, granularity, start)] += n


@lru_cache(maxsize=256)
def bucket_starts_of_second(second: int, granularities: tuple[str, ...], zone) -> tuple[tuple[str, datetime], ...]:
    # Every request within one second shares its bucket starts: worth a cache on the hot path.
    moment = datetime.fromtimestamp(second, UTC)
    return tuple((granularity, bucket_start(moment, granularity, zone)) for granularity in granularities)


@lru_cache(maxsize=256)
def day_and_buckets_of_second(
    second: int, granularities: tuple[str, ...], zone
) -> tuple[datetime, tuple[tuple[str, datetime], ...]]:
    """(start of the day bucket, bucket starts in ``granularities``) of a second: what a
    ``DimensionValue`` of it holds."""
    return bucket_start(datetime.fromtimestamp(second, UTC), Granularity.DAY, zone), bucket_starts_of_second(
        second, granularities, zone
    )


def aggregates_add(*, increments: Mapping[CounterKey, int], using: str | None = None) -> int:
    """Add ``increments`` to the stored counters; returns the number of keys written.

    Keys are written in sorted order so concurrent writers take row locks in the same
    order (no deadlocks). Up to 500 keys go in one statement; a request's increments
    always fit in one.

    A negative increment (a visit adjustment taking back what an earlier one added) is written
    by a second statement that never takes a counter below 0 and never creates one: it
    follows its positive increment in time, so it only finds nothing to take from when the
    two were reordered on the way (``beacons.ingest.sessions`` says when); then that much is
    lost rather than a whole write refused by the ``count >= 0`` check.
    """
    items = sorted((key, n) for key, n in increments.items() if n > 0)
    taken = sorted((key, n) for key, n in increments.items() if n < 0)
    if not taken:
        return _upsert(items, f"count = {_TABLE}.count + EXCLUDED.count", using)
    with transaction.atomic(using=using):
        written = _upsert(items, f"count = {_TABLE}.count + EXCLUDED.count", using)
        return written + _subtract(taken, using)


def aggregates_set(*, counts: Mapping[CounterKey, int], using: str | None = None) -> int:
    """Set counters to ``counts``, inserting missing ones (imports in replace mode)."""
    return _upsert(sorted(counts.items()), "count = EXCLUDED.count", using)


def aggregates_insert_new(*, increments: Mapping[CounterKey, int]) -> int:
    """Insert counters whose keys are not stored yet (a first fill, such as the demo's); returns
    the keys written. A plain insert (``COPY`` on PostgreSQL) is about twice as fast as the upsert
    for millions of keys; a key already stored fails the unique constraint instead of being
    counted twice."""
    columns = _COLUMNS
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # psycopg's own COPY, so Django's error wrapping is added here (a stored key raises IntegrityError).
            with connection.wrap_database_errors, cursor.cursor.copy(f"COPY {_TABLE} ({columns}) FROM STDIN") as copy:
                for key, n in increments.items():
                    copy.write_row((*key, n))
        else:
            adapted: dict = {}  # a day has few distinct bucket starts: adapt each once
            for *_, start in increments:
                if start not in adapted:
                    adapted[start] = connection.ops.adapt_datetimefield_value(start)
            cursor.executemany(
                f"INSERT INTO {_TABLE} ({columns}) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                sorted((*key, adapted[start], n) for (*key, start), n in increments.items()),
            )
    return len(increments)


# A drained counter: (site_id, definition_id, dimension, identifier, granularity, period_start as epoch seconds, n)
CounterRow = tuple[int, int, str, str, str, int, int]
# One sorted statement walks the aggregate indexes once, in order; several smaller ones each
# walk the whole key range again: 100,000-row statements made a 1M-key drain 10-25% slower.
STREAM_ROWS_PER_STATEMENT = 1_000_000
# A negative count in COPY text: the last column (tabs inside text are escaped as "\\t").
_NEGATIVE_COUNT = re.compile(rb"\t-\d+\n")


class CounterChunk(Protocol):
    """Counters in two shapes: rows, or the lines of a text ``COPY`` of (site_id, definition_id,
    granularity, epoch, identifier, count), which PostgreSQL takes far faster. The granularity
    column of a dimension's counter is ``<granularity>/<dimension>`` (see ``redis_format``)."""

    def __len__(self) -> int: ...
    def rows(self) -> Iterable[CounterRow]: ...
    def copy_text(self) -> bytes: ...


def aggregates_add_stream(*, chunks: Iterable[CounterChunk]) -> int:
    """Add a large stream of increments (a drain), arriving in chunks; returns the rows read.
    Call inside a transaction.

    On PostgreSQL the rows are streamed with ``COPY`` into a temporary table as they arrive
    and added every ``STREAM_ROWS_PER_STATEMENT`` rows (and at the end) by one
    ``INSERT … SELECT … GROUP BY … ORDER BY … ON CONFLICT DO UPDATE``. ``GROUP BY`` makes the keys
    of one statement unique (PostgreSQL refuses to update a row twice in one statement) and
    ``ORDER BY`` sorts them (one row-lock order between concurrent writers). Counts of a
    definition or site that no longer exists are dropped. COPY measured ~20% faster than batches of
    ``unnest`` arrays. Elsewhere each chunk is one ``aggregates_add``.
    """
    existing = set(BeaconDefinition.objects.values_list("pk", flat=True))
    sites = set(Site.objects.values_list("pk", flat=True))
    if connection.vendor != "postgresql":
        rows = 0
        for chunk in chunks:
            increments: Counter[CounterKey] = Counter()
            for site_id, definition_id, dimension, identifier, granularity, epoch, n in chunk.rows():
                rows += 1
                if definition_id in existing and site_id in sites:
                    increments[(site_id, definition_id, dimension, identifier, granularity, _moment(epoch))] += n
            aggregates_add(increments=increments)
        return rows
    with connection.cursor() as cursor:
        # temp_buffers is session-wide and takes effect only before this session's first
        # temporary table; work_mem lets the sort of one statement stay in memory.
        cursor.execute("SET temp_buffers = '256MB'")
        cursor.execute("SET LOCAL work_mem = '256MB'")
        # COLLATE "C": keys sorted in code-point order, as ``aggregates_add`` sorts in Python.
        cursor.execute(
            'CREATE TEMP TABLE beacons_stream_rows (site_id bigint, definition_id bigint, granularity text COLLATE "C", '
            'epoch bigint, identifier text COLLATE "C", count bigint) ON COMMIT DROP'
        )

        def add_copied(negative: bool) -> None:
            # The granularity column holds "<granularity>/<dimension>" for a dimension's counter.
            # Keys whose sum is negative (visit adjustments) are subtracted as ``aggregates_add`` does.
            selected = (
                "SELECT site_id, definition_id, split_part(granularity, '/', 2) AS dimension, identifier, "
                "split_part(granularity, '/', 1) AS granularity, to_timestamp(epoch) AS period_start, "
                "sum(count)::bigint AS count "
                "FROM beacons_stream_rows WHERE definition_id = ANY(%s) AND site_id = ANY(%s) "
                "GROUP BY site_id, definition_id, identifier, beacons_stream_rows.granularity, epoch "
            )
            cursor.execute(
                f"INSERT INTO {_TABLE} ({_COLUMNS}) {selected} HAVING sum(count) > 0 "
                "ORDER BY 1, 2, 3, 4, 5, 6 "
                f"ON CONFLICT ({_KEY_COLUMNS}) "
                f"DO UPDATE SET count = {_TABLE}.count + EXCLUDED.count",
                [sorted(existing), sorted(sites)],
            )
            if not negative:
                cursor.execute("TRUNCATE beacons_stream_rows")
                return
            cursor.execute(
                f"UPDATE {_TABLE} t SET count = GREATEST(t.count + v.count, 0) "
                f"FROM ({selected} HAVING sum(count) < 0) v "
                "WHERE t.site_id = v.site_id AND t.definition_id = v.definition_id AND t.dimension = v.dimension "
                "AND t.identifier = v.identifier AND t.granularity = v.granularity AND t.period_start = v.period_start",
                [sorted(existing), sorted(sites)],
            )
            cursor.execute("TRUNCATE beacons_stream_rows")

        rows = copied = 0
        negative = False  # a negative count was copied: only then is the subtracting statement run
        for chunk in chunks:
            text = chunk.copy_text()
            negative = negative or _NEGATIVE_COUNT.search(text) is not None
            with cursor.cursor.copy("COPY beacons_stream_rows FROM STDIN") as copy:
                copy.write(text)
            copied += len(chunk)
            if copied >= STREAM_ROWS_PER_STATEMENT:
                add_copied(negative)
                rows, copied, negative = rows + copied, 0, False
        if copied:
            add_copied(negative)
        cursor.execute("DROP TABLE beacons_stream_rows")  # ON COMMIT DROP is too late for a second batch
    return rows + copied


@lru_cache(maxsize=4096)
def _moment(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _subtract(items: list[tuple[CounterKey, int]], using: str | None) -> int:
    """Add negative increments to stored counters, each floored at 0; missing counters stay missing."""
    conn = connections[using] if using else connection
    adapt = conn.ops.adapt_datetimefield_value
    floor = "GREATEST" if conn.vendor == "postgresql" else "MAX"
    with conn.cursor() as cursor:
        for offset in range(0, len(items), UPSERT_ROWS_PER_STATEMENT):
            statement_items = items[offset : offset + UPSERT_ROWS_PER_STATEMENT]
            params: list = []
            for (site_id, definition_id, dimension, identifier, granularity, start), n in statement_items:
                params += [site_id, definition_id, dimension, identifier, granularity, adapt(start), n]
            values = ",".join(["(%s,%s,%s,%s,%s,%s,%s)"] * len(statement_items))
            cursor.execute(
                f"UPDATE {_TABLE} SET count = {floor}({_TABLE}.count + v.column7, 0) FROM (VALUES {values}) AS v "
                f"WHERE {_TABLE}.site_id = v.column1 AND {_TABLE}.definition_id = v.column2 "
                f"AND {_TABLE}.dimension = v.column3 AND {_TABLE}.identifier = v.column4 "
                f"AND {_TABLE}.granularity = v.column5 AND {_TABLE}.period_start = v.column6",
                params,
            )
    return len(items)


def _upsert(items: list[tuple[CounterKey, int]], on_conflict: str, using: str | None) -> int:
    conn = connections[using] if using else connection
    adapt = conn.ops.adapt_datetimefield_value
    with conn.cursor() as cursor:
        for offset in range(0, len(items), UPSERT_ROWS_PER_STATEMENT):
            statement_items = items[offset : offset + UPSERT_ROWS_PER_STATEMENT]
            params: list = []
            for (site_id, definition_id, dimension, identifier, granularity, start), n in statement_items:
                params += [site_id, definition_id, dimension, identifier, granularity, adapt(start), n]
            values = ",".join(["(%s,%s,%s,%s,%s,%s,%s)"] * len(statement_items))
            cursor.execute(
                f"INSERT INTO {_TABLE} ({_COLUMNS}) VALUES {values} "
                f"ON CONFLICT ({_KEY_COLUMNS}) DO UPDATE SET {on_conflict}",
                params,
            )
    return len(items)
