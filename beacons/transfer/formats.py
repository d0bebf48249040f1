"""File formats for moving counts and beacon types between installations: CSV, JSON and XLSX
codecs, the counts file's columns, formula neutralising and the XLSX size check.

Used by the admin (through ``beacons.transfer.resources``) and by ``beacons_export`` /
``beacons_import``, so both read and write the same files; ``beacons.transfer.imports`` validates
and writes the rows read here.

Counts are identified by their natural key, never by a database id:

    site, event_type, dimension, identifier, granularity, period_start, count

``site`` is the site's domain; a file without the column (or an empty cell) imports into the
first site. ``dimension`` is a dimension code (``source``, ``prop:plan``, …; see
``beacons.dimensions``) whose value is in ``identifier``; a file without the column (or an empty
cell) holds identifiers (the dimension ""). ``granularity`` is the readable name (``hour``, ``day``, …), ``period_start`` is ISO 8601
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
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import IO, Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import QuerySet

from beacons.counting.buckets import bucket_zone
from beacons.models import BeaconAggregate, Granularity
from beacons.queries.exports import aggregates_by_natural_key
from beacons.sites import sites_cached

FORMATS = ("csv", "json", "xlsx")
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
AGGREGATE_COLUMNS = ("site", "event_type", "dimension", "identifier", "granularity", "period_start", "count")
# site, dimension and identifier may be left out (the first site, the identifier axis, the total)
REQUIRED_AGGREGATE_COLUMNS = ("event_type", "granularity", "period_start", "count")
GRANULARITY_LABELS = dict(Granularity.choices)  # code -> "hour"
GRANULARITY_CODES = {label: code for code, label in Granularity.choices}  # "hour" -> code

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


def site_zone_of_domain(domain: str) -> ZoneInfo:
    """The bucket zone of the site a file row names ("": the first site; an unknown one: BEACONS_TIME_ZONE)."""
    sites = sites_cached()
    entry = sites.by_domain.get(domain) if domain else sites.default
    return bucket_zone(entry.id) if entry is not None else bucket_zone()


def period_start_text(moment: datetime, tz: ZoneInfo | None = None) -> str:
    """A bucket start with its local offset, in ``tz`` (that of the counter's site)."""
    return moment.astimezone(tz or bucket_zone()).isoformat()


def aggregate_cells(
    *,
    site: str,
    event_type: str,
    dimension: str = "",
    identifier: str,
    granularity: str,
    period_start: datetime,
    count: int,
) -> list:
    """One file row for a counter, in ``AGGREGATE_COLUMNS`` order."""
    return [
        site,
        event_type,
        dimension,
        identifier,
        GRANULARITY_LABELS[granularity],
        period_start_text(period_start, site_zone_of_domain(site)),
        count,
    ]


# --- writing ----------------------------------------------------------------------------


def aggregates_rows(*, queryset: QuerySet[BeaconAggregate]) -> Iterator[list]:
    """File rows for the counters of ``queryset``, in storage order (memory stays flat)."""
    for site, event_type, dimension, identifier, granularity, start, count in aggregates_by_natural_key(
        queryset=queryset
    ):
        yield aggregate_cells(
            site=site,
            event_type=event_type,
            dimension=dimension,
            identifier=identifier,
            granularity=granularity,
            period_start=start,
            count=count,
        )


def aggregates_export(*, queryset: QuerySet[BeaconAggregate], file_format: str) -> Iterator[bytes]:
    """The export file for ``queryset``, as a stream of byte chunks."""
    return rows_write(headers=AGGREGATE_COLUMNS, rows=aggregates_rows(queryset=queryset), file_format=file_format)


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
    """Items of a top-level JSON list, decoded one at a time (a large file never sits in memory).

    Kept instead of ijson (bench/import_json.py, 1 M rows: flat memory either way, ijson's C
    backend 1.5–6x faster): the C backend reads a lone surrogate escape as ``?`` (a row that
    must be refused would be imported under another identifier) and refuses the whole file
    at a count past 64 bits; the Python backend reads both right but is ~6x slower than ours."""
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
