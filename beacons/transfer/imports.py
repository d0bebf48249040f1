"""Importing counts: validating each row of a counts file, then the merge / replace writes,
all or nothing.

The rows come from ``beacons.transfer.formats`` (files) or the admin's dataset; event type and
identifier follow the registry's rules (``beacons.registry``), the same as at ingest.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from itertools import islice
from typing import Any

from django.db import DatabaseError, connection, transaction

from beacons.counting.buckets import bucket_start
from beacons.counting.increments import UPSERT_ROWS_PER_STATEMENT, CounterKey, aggregates_add, aggregates_set
from beacons.dimensions import InvalidDimension, dimension_check
from beacons.domains import InvalidDomain, domain_normalise
from beacons.models import BeaconAggregate, BeaconDefinition
from beacons.registry import UnknownEventType, definitions_resolve, event_type_normalise, identifier_check
from beacons.sites import sites_cache_clear, sites_cached
from beacons.transfer.formats import (
    AGGREGATE_COLUMNS,
    GRANULARITY_CODES,
    GRANULARITY_LABELS,
    aggregate_cells,
    period_start_text,
    site_zone_of_domain,
)

MODES = ("merge", "replace")
MAX_COUNT = 2**63 - 1  # BigIntegerField
# Period starts outside these years are row errors: the database and the admin's date
# drill-down handle them, but no real count starts there (and year 9999 breaks "next year").
PERIOD_START_YEARS = (1970, 2200)
_TABLE = BeaconAggregate._meta.db_table
CHUNK_ROWS = UPSERT_ROWS_PER_STATEMENT  # one lookup and one write statement per chunk
PROBLEMS_KEPT = 200  # failed rows reported in detail; the rest are only counted


@dataclass(frozen=True)
class AggregateRow:
    site: str  # domain; "" for the first site
    event_type: str
    identifier: str
    granularity: str  # code
    period_start: datetime  # aware, UTC
    count: int
    dimension: str = ""  # the identifier axis

    def cells(self) -> list:
        return aggregate_cells(
            site=self.site,
            event_type=self.event_type,
            dimension=self.dimension,
            identifier=self.identifier,
            granularity=self.granularity,
            period_start=self.period_start,
            count=self.count,
        )


@dataclass
class RowProblem:
    number: int  # rows are counted from 1, after the header
    values: dict
    errors: dict[str, list[str]]

    def __str__(self) -> str:
        return f"row {self.number}: " + "; ".join(f"{column}: {' '.join(msgs)}" for column, msgs in self.errors.items())


@dataclass
class RowOutcome:
    number: int
    kind: str  # "new", "update" or "skip"
    row: AggregateRow
    before: int | None  # the bucket's count before this row, None for a new bucket
    after: int | None


@dataclass
class ImportSummary:
    mode: str
    dry_run: bool
    new: int = 0
    updated: int = 0
    skipped: int = 0
    failed: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    preview: list[RowOutcome] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return self.new + self.updated + self.skipped + self.failed

    @property
    def written(self) -> bool:
        return not self.dry_run and not self.failed

    def fail(self, number: int, values: Mapping, errors: dict[str, list[str]]) -> None:
        self.failed += 1
        if len(self.problems) < PROBLEMS_KEPT:
            self.problems.append(RowProblem(number, dict(values), errors))

    def __str__(self) -> str:
        return f"{self.new:,} new, {self.updated:,} updated, {self.skipped:,} skipped, {self.failed:,} failed"


class RowInvalid(ValueError):
    def __init__(self, errors: dict[str, list[str]]):
        super().__init__(errors)
        self.errors = errors


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _parse_count(value: Any) -> int:
    if isinstance(value, bool) or _blank(value):
        raise ValueError("a whole number of hits is required")
    if isinstance(value, int):
        number = value
    else:
        try:
            exact = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueError(f"{_shown(value)} is not a whole number") from None
        if (
            exact.is_finite() and exact.adjusted() > 18
        ):  # checked before int(): int(Decimal("1e999999999")) takes minutes
            raise ValueError(f"{_shown(value)} is too large")
        if not exact.is_finite() or exact != exact.to_integral_value():
            raise ValueError(f"{_shown(value)} is not a whole number")
        number = int(exact)
    if number < 0:
        raise ValueError(f"{_shown(number)} is negative")
    if number > MAX_COUNT:
        raise ValueError(f"{_shown(number)} is too large")
    return number


def _shown(value: Any) -> str:
    """A cell's value for an error message, cut short."""
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _parse_identifier(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():  # a spreadsheet turned "42" into 42.0
        value = int(value)
    return identifier_check(str(value))


def _parse_dimension(value: Any) -> str:
    """A dimension code, or "" (blank: the identifier axis)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return ""
    try:
        return dimension_check(str(value).strip())
    except InvalidDimension as problem:
        raise ValueError(str(problem)) from None


def _parse_site(value: Any) -> str:
    """A site's domain, or "" (blank: the first site). Whether it exists is checked with the chunk."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return ""
    try:
        return domain_normalise(str(value))
    except InvalidDomain as problem:
        raise ValueError(str(problem)) from None


def _parse_event_type(value: Any) -> str:
    return event_type_normalise(str(value) if value is not None else "")


def _parse_granularity(value: Any) -> str:
    label = str(value).strip().lower() if value is not None else ""
    if label not in GRANULARITY_CODES:
        raise ValueError(f"{_shown(value)} is not a granularity; use one of {', '.join(GRANULARITY_CODES)}")
    return GRANULARITY_CODES[label]


def _parse_period_start(value: Any, granularity: str | None, site: str = "") -> datetime:
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value).strip() if value is not None else ""
        if not text:
            raise ValueError("a period start is required")
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"{_shown(text)} is not an ISO 8601 date and time, e.g. 2026-11-01T00:00:00+00:00"
            ) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment.isoformat()} has no UTC offset; write it like 2026-11-01T00:00:00+00:00")
    first, last = PERIOD_START_YEARS
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        moment = None
    if moment is None or not first <= moment.year <= last:
        raise ValueError(f"{_shown(str(value))} is outside the years {first}–{last}")
    if granularity is not None:
        zone = site_zone_of_domain(site)  # the site's buckets
        start = bucket_start(moment, granularity, zone)
        if start != moment:
            label = GRANULARITY_LABELS[granularity]
            raise ValueError(
                f"{period_start_text(moment, zone)} is not the start of its {label} in "
                f"{zone.key}; that {label} starts at {period_start_text(start, zone)}"
            )
    return moment


def aggregate_row_parse(values: Mapping[str, Any]) -> AggregateRow:
    """Validate one file row; raises ``RowInvalid`` listing every bad column."""
    errors: dict[str, list[str]] = {}
    parsed: dict[str, Any] = {}
    steps: list[tuple[str, Callable[[Any], Any]]] = [
        ("site", _parse_site),
        ("event_type", _parse_event_type),
        ("dimension", _parse_dimension),
        ("identifier", _parse_identifier),
        ("granularity", _parse_granularity),
        ("period_start", lambda v: _parse_period_start(v, parsed.get("granularity"), parsed.get("site", ""))),
        ("count", _parse_count),
    ]
    for column, parse in steps:
        try:
            parsed[column] = parse(values.get(column))
        except ValueError as problem:
            errors[column] = [str(problem)]
    if errors:
        raise RowInvalid(errors)
    return AggregateRow(**parsed)


def _definitions_learn(known: dict[str, BeaconDefinition | None], slugs: set[str]) -> None:
    """Resolve new slugs as ingest does: auto-register, or (strict mode) leave them unknown."""
    missing = slugs - known.keys()
    if not missing:
        return
    try:
        found = definitions_resolve(slugs=missing)
    except UnknownEventType:  # strict mode: unknown event types become row errors
        found = {d.slug: d for d in BeaconDefinition.objects.filter(slug__in=missing)}
    for slug in missing:
        known[slug] = found.get(slug)


def _counts_stored(keys: Sequence[CounterKey]) -> dict[CounterKey, int]:
    """The stored count of each key that has a row, in one indexed query (raw SQL: the ORM
    spends longer compiling 500 OR-ed lookups than the database spends answering them)."""
    if not keys:
        return {}
    adapt = connection.ops.adapt_datetimefield_value
    params: list = []
    for n, (site_id, definition_id, dimension, identifier, granularity, start) in enumerate(keys):
        params += [n, site_id, definition_id, dimension, identifier, granularity, adapt(start)]
    values = ",".join(["(%s,%s,%s,%s,%s,%s,%s)"] * len(keys))
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH wanted(n, site, d, dim, i, g, s) AS (VALUES {values}) "
            f"SELECT wanted.n, a.count FROM wanted JOIN {_TABLE} a ON a.site_id = wanted.site "
            f"AND a.definition_id = wanted.d AND a.dimension = wanted.dim "
            f"AND a.identifier = wanted.i AND a.granularity = wanted.g AND a.period_start = wanted.s",
            params,
        )
        return {keys[n]: count for n, count in cursor.fetchall()}


def _chunk_write(
    rows: list[tuple[int, AggregateRow, int, int]], *, mode: str, summary: ImportSummary, preview_limit: int
) -> None:
    """Classify and write one chunk of (row number, row, site id, definition id): one lookup query
    and one upsert statement."""
    keys = list(
        {
            (site_id, definition_id, r.dimension, r.identifier, r.granularity, r.period_start): None
            for _, r, site_id, definition_id in rows
        }
    )
    stored = _counts_stored(keys)
    after: dict[CounterKey, int] = dict(stored)
    for number, row, site_id, definition_id in rows:
        key = (site_id, definition_id, row.dimension, row.identifier, row.granularity, row.period_start)
        before = after.get(key)
        if mode == "merge":
            if (before or 0) + row.count > MAX_COUNT:
                merged = f"{before:,} + {row.count:,} is more than the largest count, {MAX_COUNT:,}"
                summary.fail(number, dict(zip(AGGREGATE_COLUMNS, row.cells(), strict=True)), {"count": [merged]})
                continue
            kind = "skip" if row.count == 0 else ("new" if before is None else "update")
            if kind != "skip":
                after[key] = (before or 0) + row.count
        else:
            kind = "skip" if before == row.count else ("new" if before is None else "update")
            after[key] = row.count
        if len(summary.preview) < preview_limit:
            summary.preview.append(RowOutcome(number, kind, row, before, after.get(key)))
        if kind == "new":
            summary.new += 1
        elif kind == "update":
            summary.updated += 1
        else:
            summary.skipped += 1
    changed = {key: count for key, count in after.items() if stored.get(key) != count}
    if not changed:
        return
    if mode == "merge":
        aggregates_add(increments={key: count - stored.get(key, 0) for key, count in changed.items()})
    else:
        aggregates_set(counts=changed)


def aggregates_import(
    *,
    rows: Iterable[Mapping[str, Any]],
    mode: str,
    dry_run: bool = False,
    preview_limit: int = 0,
    on_progress: Callable[[ImportSummary], None] | None = None,
) -> ImportSummary:
    """Import counter rows (dicts keyed by ``AGGREGATE_COLUMNS``) all or nothing.

    A row's ``site`` is a site's domain (blank or left out: the first site); an unknown site is
    a row error. ``merge`` adds each row's count to its bucket (with the ingest upsert); ``replace``
    sets the bucket to the row's count (the last row wins when a bucket repeats). Buckets
    not in the file are untouched. Unknown event types are registered as at ingest, or
    are row errors in strict mode.

    Everything runs in one transaction, chunk by chunk (memory stays flat), and every row
    is checked and counted as new / updated / skipped / failed; when any row fails, or on
    ``dry_run``, the transaction is rolled back at the end, so nothing is written. Blank
    rows are skipped.
    The first ``preview_limit`` valid rows are kept in ``summary.preview``.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    summary = ImportSummary(mode=mode, dry_run=dry_run)
    definitions: dict[str, BeaconDefinition | None] = {}
    sites_cache_clear()  # a site added a moment ago in another process counts too
    sites = sites_cached()
    site_ids = {domain: entry.id for domain, entry in sites.by_domain.items()}
    if sites.default is not None:
        site_ids[""] = sites.default.id
    numbered = enumerate(rows, 1)
    with transaction.atomic():
        while chunk := list(islice(numbered, CHUNK_ROWS)):
            parsed: list[tuple[int, Mapping, AggregateRow]] = []
            for number, values in chunk:
                if all(_blank(v) for v in values.values()):
                    summary.skipped += 1
                    continue
                try:
                    parsed.append((number, values, aggregate_row_parse(values)))
                except RowInvalid as invalid:
                    summary.fail(number, values, invalid.errors)
            _definitions_learn(definitions, {row.event_type for _, _, row in parsed})
            valid: list[tuple[int, AggregateRow, int, int]] = []
            for number, values, row in parsed:
                definition = definitions[row.event_type]
                site_id = site_ids.get(row.site)
                if site_id is None:
                    summary.fail(number, values, {"site": [f"unknown site {row.site!r}: add it in the admin first"]})
                elif definition is None:
                    unknown = (
                        f"unknown event type {row.event_type!r}: strict mode is on, register it in the admin first"
                    )
                    summary.fail(number, values, {"event_type": [unknown]})
                else:
                    valid.append((number, row, site_id, definition.id))
            try:
                with transaction.atomic():
                    _chunk_write(valid, mode=mode, summary=summary, preview_limit=preview_limit)
            except DatabaseError as problem:
                # e.g. a merged count beyond the 64-bit limit: name the rows, write nothing.
                first, last = chunk[0][0], chunk[-1][0]
                summary.fail(first, {}, {"count": [f"rows {first}–{last} could not be written: {problem}"]})
                break
            if on_progress:
                on_progress(summary)
        if not summary.written:
            transaction.set_rollback(True)
    return summary
