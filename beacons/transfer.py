"""The file contract for moving counts and beacon types between installations.

Used by the admin (through ``beacons.resources``) and by ``beacons_export`` /
``beacons_import``, so both read and write the same files.

Counts are identified by their natural key, never by a database id:

    event_type, identifier, granularity, period_start, count

``granularity`` is the readable name (``hour``, ``day``, …), ``period_start`` is ISO 8601
with its UTC offset, written in ``BEACONS_TIME_ZONE``. The empty identifier is the total
over all identifiers of that event type.

Spreadsheet formulas: in CSV and XLSX files a text cell that would start with
``= + - @``, a tab or a carriage return (after any leading apostrophes) gets one ``'``
in front, so a spreadsheet shows it as text; reading a CSV or XLSX file removes that one
apostrophe again. Every text survives the round trip exactly, including one that really
starts with ``'=``. JSON files hold the text as it is.
"""

import csv
import io
import json
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from itertools import islice
from typing import IO, Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import QuerySet

from .buckets import bucket_start, bucket_zone
from .counting import UPSERT_ROWS_PER_STATEMENT, CounterKey, aggregates_add, aggregates_set
from .models import IDENTIFIER_MAX_LENGTH, BeaconAggregate, BeaconDefinition, Granularity
from .parsing import SLUG_RE, Rejected, _storable
from .services import definitions_resolve

FORMATS = ("csv", "json", "xlsx")
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
AGGREGATE_COLUMNS = ("event_type", "identifier", "granularity", "period_start", "count")
REQUIRED_AGGREGATE_COLUMNS = ("event_type", "granularity", "period_start", "count")  # identifier may be left out
MODES = ("merge", "replace")
GRANULARITY_LABELS = dict(Granularity.choices)  # code -> "hour"
GRANULARITY_CODES = {label: code for code, label in Granularity.choices}  # "hour" -> code
MAX_COUNT = 2**63 - 1  # BigIntegerField
# Period starts outside these years are row errors: the database and the admin's date
# drill-down handle them, but no real count starts there (and year 9999 breaks "next year").
PERIOD_START_YEARS = (1970, 2200)
_TABLE = BeaconAggregate._meta.db_table
CHUNK_ROWS = UPSERT_ROWS_PER_STATEMENT  # one lookup and one write statement per chunk
PROBLEMS_KEPT = 200  # failed rows reported in detail; the rest are only counted

_FORMULA_START = re.compile(r"'*[=+\-@\t\r]")
_QUOTED_FORMULA = re.compile(r"'+[=+\-@\t\r]")


class FileProblem(ValueError):
    """The file as a whole cannot be read (wrong format, missing columns): nothing is imported."""


# --- cells ------------------------------------------------------------------------------


def cell_neutralise(text: str) -> str:
    """Prefix one ``'`` to text a spreadsheet would run as a formula (CSV and XLSX cells)."""
    return "'" + text if _FORMULA_START.match(text) else text


def cell_restore(value: Any) -> Any:
    """Undo ``cell_neutralise`` on a cell read from a CSV or XLSX file."""
    if isinstance(value, str) and _QUOTED_FORMULA.match(value):
        return value[1:]
    return value


def period_start_text(moment: datetime) -> str:
    return moment.astimezone(bucket_zone()).isoformat()


def aggregate_cells(*, event_type: str, identifier: str, granularity: str, period_start: datetime, count: int) -> list:
    """One file row for a counter, in ``AGGREGATE_COLUMNS`` order."""
    return [event_type, identifier, GRANULARITY_LABELS[granularity], period_start_text(period_start), count]


# --- writing ----------------------------------------------------------------------------


def aggregates_rows(*, queryset: QuerySet[BeaconAggregate]) -> Iterator[list]:
    """File rows for ``queryset`` in storage order, read in chunks (memory stays flat)."""
    slugs = dict(BeaconDefinition.objects.values_list("id", "slug"))
    values = queryset.order_by("pk").values_list("definition_id", "identifier", "granularity", "period_start", "count")
    for definition_id, identifier, granularity, start, count in values.iterator(chunk_size=2000):
        yield aggregate_cells(
            event_type=slugs[definition_id], identifier=identifier, granularity=granularity, period_start=start, count=count
        )


def aggregates_export(*, queryset: QuerySet[BeaconAggregate], file_format: str) -> Iterator[bytes]:
    """The export file for ``queryset``, as a stream of byte chunks."""
    return rows_write(headers=AGGREGATE_COLUMNS, rows=aggregates_rows(queryset=queryset), file_format=file_format)


def aggregates_filter(
    *,
    definition: str | None = None,
    granularity: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> QuerySet[BeaconAggregate]:
    """Counters of one event type (slug) and granularity (code) with period_start in [start, end)."""
    rows = BeaconAggregate.objects.all()
    if definition:
        rows = rows.filter(definition__slug=definition)
    if granularity:
        rows = rows.filter(granularity=granularity)
    if start:
        rows = rows.filter(period_start__gte=start)
    if end:
        rows = rows.filter(period_start__lt=end)
    return rows


def _csv_text(cell: Any) -> str:
    if cell is None:
        return ""
    if isinstance(cell, bool):
        return "true" if cell else "false"
    if isinstance(cell, str):
        return cell_neutralise(cell)
    return str(cell)


def _csv_chunks(headers: Sequence[str], rows: Iterable[Sequence]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(headers)
    for row in rows:
        writer.writerow([_csv_text(cell) for cell in row])
        if buffer.tell() > 65536:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def _json_chunks(headers: Sequence[str], rows: Iterable[Sequence]) -> Iterator[bytes]:
    pieces, size, separator = ["["], 1, "\n"
    for row in rows:
        piece = separator + json.dumps(dict(zip(headers, row)), ensure_ascii=False)
        separator = ",\n"
        pieces.append(piece)
        size += len(piece)
        if size > 65536:
            yield "".join(pieces).encode()
            pieces, size = [], 0
    pieces.append("\n]\n")
    yield "".join(pieces).encode()


def _xlsx_chunks(headers: Sequence[str], rows: Iterable[Sequence]) -> Iterator[bytes]:
    # write_only keeps rows on disk as they come; the zip is then streamed from a temp file.
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    def xlsx_cell(cell: Any) -> Any:
        if isinstance(cell, str):
            # XLSX cannot hold most control characters: they become U+FFFD (CSV and JSON keep them).
            return ILLEGAL_CHARACTERS_RE.sub("\N{REPLACEMENT CHARACTER}", cell_neutralise(cell)) or None
        return cell

    book = Workbook(write_only=True)
    sheet = book.create_sheet("beacons")
    sheet.append(list(headers))
    for row in rows:
        sheet.append([xlsx_cell(cell) for cell in row])
    with tempfile.TemporaryFile() as file:
        book.save(file)
        file.seek(0)
        while chunk := file.read(65536):
            yield chunk


def rows_write(*, headers: Sequence[str], rows: Iterable[Sequence], file_format: str) -> Iterator[bytes]:
    """Encode rows as a CSV (UTF-8), JSON (a list of objects) or XLSX file, chunk by chunk."""
    writers = {"csv": _csv_chunks, "json": _json_chunks, "xlsx": _xlsx_chunks}
    if file_format not in writers:
        raise ValueError(f"unknown format {file_format!r}; use one of {', '.join(FORMATS)}")
    return writers[file_format](headers, rows)


# --- reading ----------------------------------------------------------------------------


def header_normalise(value: Any) -> str:
    return str(value).strip().lower() if value is not None else ""


def rows_as_dicts(*, headers: list[str], rows: Iterable[Sequence], restore: bool) -> Iterator[dict]:
    """Rows as dicts keyed by ``headers``; ``restore`` undoes formula neutralising (CSV, XLSX)."""
    for row in rows:
        if not row:
            continue
        values = [cell_restore(v) for v in row] if restore else list(row)
        values += [None] * (len(headers) - len(values))
        yield dict(zip(headers, values))


def _json_items(text: IO[str]) -> Iterator[Any]:
    """Items of a top-level JSON list, decoded one at a time (a large file never sits in memory)."""
    decoder = json.JSONDecoder()
    buffer, position, eof = "", 0, False

    def next_char() -> str:
        nonlocal buffer, position, eof
        while True:
            while position < len(buffer) and buffer[position].isspace():
                position += 1
            if position < len(buffer) or eof:
                return buffer[position] if position < len(buffer) else ""
            more = text.read(65536)
            eof = not more
            buffer, position = buffer[position:] + more, 0

    if next_char() != "[":
        raise FileProblem("a JSON file must hold a list of objects, one per row")
    position += 1
    first = True
    while True:
        char = next_char()
        if char == "]":
            return
        if not first:
            if char != ",":
                raise FileProblem("the JSON file is not valid: expected ',' or ']' between rows")
            position += 1
            next_char()
        while True:
            try:
                item, end = decoder.raw_decode(buffer, position)
                break
            except ValueError:  # a JSONDecodeError, or a number beyond Python's digit limit
                if eof:
                    raise FileProblem("the JSON file is not valid JSON") from None
                more = text.read(65536)
                eof = not more
                buffer, position = buffer[position:] + more, 0
        position, first = end, False
        yield item


def xlsx_size_check(*, stream: IO[bytes]) -> None:
    """Refuse an XLSX file that unpacks to more than ``BEACONS_IMPORT_MAX_UNCOMPRESSED_BYTES``.

    The sizes come from the zip's central directory, read before any member is opened, and
    ``zipfile`` never unpacks a member past its declared size: a 1 MB upload can hold a
    1 GiB sheet. Raises ``FileProblem``; leaves ``stream`` at its start.
    """
    limit = settings.BEACONS_IMPORT_MAX_UNCOMPRESSED_BYTES
    try:
        with zipfile.ZipFile(stream) as archive:
            unpacked = sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise FileProblem("the file is not an XLSX workbook") from None
    finally:
        stream.seek(0)
    if unpacked > limit:
        raise FileProblem(
            f"the XLSX file unpacks to {unpacked:,} bytes, more than the {limit:,} allowed "
            "(BEACONS_IMPORT_MAX_UNCOMPRESSED_BYTES): split it, or import it as CSV"
        )


def rows_read(*, stream: IO[bytes], file_format: str) -> tuple[list[str], Iterator[dict]]:
    """Headers and rows (dicts keyed by lower-cased header) of a CSV, JSON or XLSX file.

    Rows are read lazily. CSV and XLSX cells come back with ``cell_restore`` applied.
    Raises ``FileProblem`` when the file cannot be read as that format.
    """
    if file_format == "csv":
        try:
            text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
            reader = csv.reader(text)
            headers = [header_normalise(h) for h in next(reader, [])]
        except (UnicodeDecodeError, csv.Error) as problem:
            raise FileProblem(f"the file is not a UTF-8 CSV file ({problem})") from None
        return headers, _csv_rows(headers, reader)
    if file_format == "json":
        text = io.TextIOWrapper(stream, encoding="utf-8-sig")
        try:
            items = _json_items(text)
            first = next(items, None)
        except UnicodeDecodeError:
            raise FileProblem("the file is not UTF-8 text") from None
        if first is None:
            return [], iter(())
        if not isinstance(first, dict):
            raise FileProblem("a JSON file must hold a list of objects, one per row")
        headers = [header_normalise(h) for h in first]
        return headers, _json_rows(first, items)
    if file_format == "xlsx":
        from openpyxl import load_workbook

        xlsx_size_check(stream=stream)
        try:
            book = load_workbook(stream, read_only=True, data_only=True)
        except Exception:  # openpyxl raises many types for a file that is not a workbook
            raise FileProblem("the file is not an XLSX workbook") from None
        sheet_rows = book.active.iter_rows(values_only=True)
        headers = [header_normalise(h) for h in next(sheet_rows, ())]
        while headers and not headers[-1]:
            headers.pop()
        return headers, rows_as_dicts(headers=headers, rows=sheet_rows, restore=True)
    raise FileProblem(f"unknown format {file_format!r}; use one of {', '.join(FORMATS)}")


def _csv_rows(headers: list[str], reader: Iterator[list[str]]) -> Iterator[dict]:
    try:
        yield from rows_as_dicts(headers=headers, rows=reader, restore=True)
    except (UnicodeDecodeError, csv.Error) as problem:
        raise FileProblem(f"the file is not a UTF-8 CSV file ({problem})") from None


def _json_rows(first: dict, items: Iterator[Any]) -> Iterator[dict]:
    yield {header_normalise(k): v for k, v in first.items()}
    try:
        for item in items:
            if not isinstance(item, dict):
                raise FileProblem("a JSON file must hold a list of objects, one per row")
            yield {header_normalise(k): v for k, v in item.items()}
    except UnicodeDecodeError:
        raise FileProblem("the file is not UTF-8 text") from None


def columns_check(*, headers: Iterable[str], required: Sequence[str], columns: Sequence[str]) -> None:
    missing = [column for column in required if column not in set(headers)]
    if missing:
        raise FileProblem(f"the file has no {', '.join(missing)} column; the columns are: {', '.join(columns)}")


# --- importing counts -------------------------------------------------------------------


@dataclass(frozen=True)
class AggregateRow:
    event_type: str
    identifier: str
    granularity: str  # code
    period_start: datetime  # aware, UTC
    count: int

    def cells(self) -> list:
        return aggregate_cells(
            event_type=self.event_type,
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
        if exact.is_finite() and exact.adjusted() > 18:  # checked before int(): int(Decimal("1e999999999")) takes minutes
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
    text = str(value)
    if len(text) > IDENTIFIER_MAX_LENGTH:
        raise ValueError(f"longer than {IDENTIFIER_MAX_LENGTH} characters ({len(text)})")
    if not _storable(text):
        raise ValueError("contains a NUL character or invalid Unicode (a lone surrogate)")
    return text


def _parse_event_type(value: Any) -> str:
    slug = str(value).strip().lower() if value is not None else ""
    if not slug:
        raise ValueError("an event type is required")
    if not SLUG_RE.match(slug):
        raise ValueError(f"{_shown(slug)} is not an event type: use 1–64 of a-z 0-9 _ . : -")
    return slug


def _parse_granularity(value: Any) -> str:
    label = str(value).strip().lower() if value is not None else ""
    if label not in GRANULARITY_CODES:
        raise ValueError(f"{_shown(value)} is not a granularity; use one of {', '.join(GRANULARITY_CODES)}")
    return GRANULARITY_CODES[label]


def _parse_period_start(value: Any, granularity: str | None) -> datetime:
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value).strip() if value is not None else ""
        if not text:
            raise ValueError("a period start is required")
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{_shown(text)} is not an ISO 8601 date and time, e.g. 2026-11-01T00:00:00+00:00") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment.isoformat()} has no UTC offset; write it like 2026-11-01T00:00:00+00:00")
    first, last = PERIOD_START_YEARS
    try:
        moment = moment.astimezone(timezone.utc)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        moment = None
    if moment is None or not first <= moment.year <= last:
        raise ValueError(f"{_shown(str(value))} is outside the years {first}–{last}")
    if granularity is not None:
        start = bucket_start(moment, granularity)
        if start != moment:
            label = GRANULARITY_LABELS[granularity]
            raise ValueError(
                f"{moment.astimezone(bucket_zone()).isoformat()} is not the start of its {label} in "
                f"{settings.BEACONS_TIME_ZONE}; that {label} starts at {period_start_text(start)}"
            )
    return moment


def aggregate_row_parse(values: Mapping[str, Any]) -> AggregateRow:
    """Validate one file row; raises ``RowInvalid`` listing every bad column."""
    errors: dict[str, list[str]] = {}
    parsed: dict[str, Any] = {}
    steps: list[tuple[str, Callable[[Any], Any]]] = [
        ("event_type", _parse_event_type),
        ("identifier", _parse_identifier),
        ("granularity", _parse_granularity),
        ("period_start", lambda v: _parse_period_start(v, parsed.get("granularity"))),
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
    except Rejected:  # strict mode: unknown event types become row errors
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
    for n, (definition_id, identifier, granularity, start) in enumerate(keys):
        params += [n, definition_id, identifier, granularity, adapt(start)]
    values = ",".join(["(%s,%s,%s,%s,%s)"] * len(keys))
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH wanted(n, d, i, g, s) AS (VALUES {values}) "
            f"SELECT wanted.n, a.count FROM wanted JOIN {_TABLE} a ON a.definition_id = wanted.d "
            f"AND a.identifier = wanted.i AND a.granularity = wanted.g AND a.period_start = wanted.s",
            params,
        )
        return {keys[n]: count for n, count in cursor.fetchall()}


def _chunk_write(
    rows: list[tuple[int, AggregateRow, int]], *, mode: str, summary: ImportSummary, preview_limit: int
) -> None:
    """Classify and write one chunk: one lookup query and one upsert statement."""
    keys = list({(definition_id, r.identifier, r.granularity, r.period_start): None for _, r, definition_id in rows})
    stored = _counts_stored(keys)
    after: dict[CounterKey, int] = dict(stored)
    for number, row, definition_id in rows:
        key = (definition_id, row.identifier, row.granularity, row.period_start)
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

    ``merge`` adds each row's count to its bucket (with the ingest upsert); ``replace``
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
            valid: list[tuple[int, AggregateRow, int]] = []
            for number, values, row in parsed:
                definition = definitions[row.event_type]
                if definition is None:
                    unknown = f"unknown event type {row.event_type!r}: strict mode is on, register it in the admin first"
                    summary.fail(number, values, {"event_type": [unknown]})
                else:
                    valid.append((number, row, definition.id))
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
