"""Importing another analytics tool's export (Plausible, Umami, GoatCounter) into counters, each day once.

What each export becomes (columns are read by their header, in any order; others are ignored):

- Plausible's CSV export, a zip of ``imported_<table>[_<first>_<last>].csv`` files (or one of them):
  daily figures, written in the day, month and year counters the types keep (no hours: the files
  have none). ``imported_visitors``: the page-view total, the visits, bounces, visit seconds and
  pages of visits totals, and the day's unique visitors as an imported figure. ``imported_pages``:
  page views per page (the total comes from ``imported_visitors``). ``imported_entry_pages`` /
  ``imported_exit_pages``: visits, bounces, seconds and pages per entry page, exits per exit page.
  ``imported_sources`` / ``_browsers`` / ``_operating_systems`` / ``_devices`` / ``_locations``: page
  views and visit figures per source (and utm_medium, utm_campaign), browser, os, device, country.
  ``imported_custom_events``: each goal's events, under the event type the drop-in endpoints count
  that name under (``event_type_named``), per page where the goal exports one (``path``).
- GoatCounter's CSV export, format 2 (``2Path,Title,Event,UserAgent,Browser,System,Session,Bot,
  Referrer,Referrer scheme,Screen size,Location,FirstVisit,Date``), gzipped or not; format 1
  (a user agent in ``Browser``) is read too: one row per hit.
- Umami's data export (``website_id, session_id, visit_id, …, url_path, …, event_type,
  event_name, created_at``): one row per event.

Per-hit exports count like live hits: page views (``Event`` false, ``event_type`` 1) and custom
events (``Event`` true: named by the path; ``event_type`` 2: by ``event_name``) in every
granularity their type keeps (seconds and minutes only within the type's fine retention), their
dimension values, and the visits their sessions make (``beacons.ingest.sessions.visit_fold``,
split at ``BEACONS_VISIT_GAP_SECONDS``). GoatCounter's bot rows and Umami's other event kinds are
skipped. Unique visitors (distinct sessions of a day) are kept as imported figures.

Contract:

- Each (site, kind of file, local day) is imported once (``PeerImportDay``): rows of a day an
  earlier import of that kind of file holds are skipped, so the same file twice adds nothing
  and an overlapping export adds only its new days.
- All or nothing per upload: one transaction; a bad row is a problem named by its file and line
  (the header is line 1), every row is checked, and any problem writes nothing; so does a dry run.
- Unique visitors never become visitor sketches: they are ``ImportedVisitors`` rows, labelled
  imported wherever they are shown.
- Limits: the upload and everything it unpacks to (zip members, gzip) stay within
  ``BEACONS_IMPORT_MAX_UNCOMPRESSED_BYTES``, checked before and while reading; a zip holds at
  most ``ZIP_MEMBERS_MAX`` files; one upload registers at most ``NEW_TYPES_MAX`` event types;
  dimension values go through the per-day cap (``beacons.counting.value_cap``). Counts are
  gathered in memory before they are written: the size limit bounds them.
"""

import csv
import gzip
import io
import re
import zipfile
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from itertools import groupby
from pathlib import PurePosixPath
from typing import IO

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Count, Max, Min, Sum
from django.utils import timezone

from beacons.counting.buckets import SiteZones, bucket_start, bucket_zone
from beacons.counting.increments import (
    CounterKey,
    DimensionValue,
    Hit,
    aggregates_add,
    dimension_values_for,
    increments_add_hits,
    increments_for,
)
from beacons.counting.value_cap import ValueCap, values_dropped_add
from beacons.ingest import extraction
from beacons.ingest.compat import event_type_named
from beacons.ingest.parsing import Rejected
from beacons.ingest.sessions import PageView, visit_fold
from beacons.models import (
    FINE_GRANULARITIES,
    PEER_SOURCE_MAX_LENGTH,
    BeaconDefinition,
    Granularity,
    ImportedVisitors,
    PeerImportDay,
    Site,
)
from beacons.registry import (
    InvalidName,
    UnknownEventType,
    VisitSlug,
    definitions_cache_clear,
    definitions_resolve,
    event_type_normalise,
    identifier_resolve,
    is_reserved,
    system_definitions_resolve,
)
from beacons.sites import sites_cache_clear
from beacons.text import is_storable_text
from beacons.transfer.formats import FileProblem
from beacons.transfer.imports import MAX_COUNT, PERIOD_START_YEARS

G = Granularity
PEERS = {"plausible": "Plausible", "umami": "Umami", "goatcounter": "GoatCounter"}
PROBLEMS_LISTED = 20  # problems named one by one; the rest are counted
ZIP_MEMBERS_MAX = 64
NEW_TYPES_MAX = 50  # event types one upload may register: a file of random names must not fill the registry
PROGRESS_ROWS = 10_000  # rows between two progress reports
DAY_GRANULARITIES = (G.DAY, G.MONTH, G.YEAR)  # what daily figures can fill
PAGE_VIEW = "page_view"
QUARTER_HOUR = 900
PER_HIT_TABLE = "export"  # GoatCounter and Umami export one file: its kind is the tool's export
_PLAUSIBLE_NAME = re.compile(r"(?:imported_)?([a-z_]+?)(?:_\d{8}_\d{8})?")
_VERSION_PREFIX = re.compile(r"(\d+)(\D.*)")
_TRAILING_VERSION = re.compile(r"\s+v?\d[\w.]*$")


# --- what an import reports --------------------------------------------------------------


@dataclass
class FileSummary:
    """What one file of an upload holds and what of it is (or would be) imported."""

    name: str
    source: str = ""  # the kind of file its days are imported under; "" when it is not imported
    rows: int = 0
    days: set[date] = field(default_factory=set)
    skipped_days: set[date] = field(default_factory=set)  # already imported by an earlier upload
    skipped_rows: int = 0  # rows of skipped days, bots, kinds of event not counted
    page_views: int = 0
    visits: int = 0
    events: Counter[str] = field(default_factory=Counter)
    visitors: dict[date, int] = field(default_factory=dict)  # imported unique visitors per day
    notes: list[str] = field(default_factory=list)

    def describe(self, *, tool: str) -> str:
        """One line for people: what the file counts."""
        if not self.source:
            return f"{self.name}: not imported ({'; '.join(self.notes)})"
        parts = [f"{self.rows:,} rows"]
        if self.days:
            parts.append(f"{len(self.days):,} days ({min(self.days):%Y-%m-%d} – {max(self.days):%Y-%m-%d})")
        else:
            parts.append("no new days")
        if self.page_views:
            parts.append(f"{self.page_views:,} page views")
        if self.visits:
            parts.append(f"{self.visits:,} visits")
        for slug, n in sorted(self.events.items()):
            parts.append(f"{n:,} {slug} events")
        if self.visitors:
            parts.append(
                f"{sum(self.visitors.values()):,} unique visitors over {len(self.visitors):,} days "
                f"(imported: {tool}'s own daily figures, kept apart from Beacons' visitors)"
            )
        if self.skipped_days:
            parts.append(f"{len(self.skipped_days):,} days skipped (already imported)")
        if self.skipped_rows:
            parts.append(f"{self.skipped_rows:,} rows skipped")
        parts.extend(self.notes)
        return f"{self.name}: " + ", ".join(parts)


@dataclass
class PeerImportSummary:
    peer: str
    site: str  # its domain
    dry_run: bool
    files: list[FileSummary] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # the first PROBLEMS_LISTED
    problem_count: int = 0
    new_types: list[str] = field(default_factory=list)  # event types the import registers
    page_views: int = 0  # counted into the page-view total (a page's views in Plausible's pages file are not)

    @property
    def tool(self) -> str:
        return PEERS[self.peer]

    @property
    def days(self) -> int:
        return len(set().union(*(f.days for f in self.files)))

    def lines(self) -> list[str]:
        """What was imported (or would be, or why nothing was), one line per file."""
        lines = [f.describe(tool=self.tool) for f in self.files]
        if self.new_types:
            registered = "event types it would register: " if self.dry_run else "event types registered: "
            lines.append(registered + ", ".join(sorted(self.new_types)))
        if self.problem_count:
            lines.append(f"nothing imported: {self.problem_count:,} problems")
        elif self.dry_run:
            lines.append("dry run: nothing written")
        return lines

    def problem(self, text: str) -> None:
        self.problem_count += 1
        if len(self.problems) < PROBLEMS_LISTED:
            self.problems.append(text)


# --- reading files ---------------------------------------------------------------------------


class _Budget:
    """The bytes an upload may still unpack to, shared by its members."""

    def __init__(self, limit: int):
        self.limit, self.left = limit, limit

    def spend(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise FileProblem(self.refusal("more than"))

    def refusal(self, amount: str) -> str:
        return (
            f"the file unpacks to {amount} the {self.limit:,} bytes allowed "
            "(BEACONS_IMPORT_MAX_UNCOMPRESSED_BYTES): export a shorter period, or split it"
        )


class _BoundedReader(io.RawIOBase):
    """A binary stream that refuses to read past its budget (a gzip or zip member cannot unpack
    to more than the limit whatever its header claims) and says ``FileProblem`` for a member
    that cannot be unpacked (a bad CRC, a truncated gzip)."""

    def __init__(self, raw: IO[bytes], budget: _Budget, *, name: str):
        self.raw, self.budget, self.name = raw, budget, name

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            data = self.raw.read(len(buffer))
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as problem:  # gzip.BadGzipFile is an OSError
            raise FileProblem(f"{self.name} cannot be unpacked ({problem})") from None
        self.budget.spend(len(data))
        buffer[: len(data)] = data
        return len(data)


@dataclass
class _PeerFile:
    name: str
    table: str  # the kind of file: "imported_pages", "export"; "" when not one the tool exports
    text: IO[str] | None


def _text(raw: IO[bytes], budget: _Budget, *, name: str) -> IO[str]:
    return io.TextIOWrapper(io.BufferedReader(_BoundedReader(raw, budget, name=name)), encoding="utf-8-sig", newline="")


def _table_of(peer: str, name: str) -> str:
    """What kind of file ``name`` is for ``peer``: Plausible's table, or the per-hit export."""
    base = PurePosixPath(name).name.lower()
    if not base.endswith(".csv"):
        return ""
    if peer != "plausible":
        return PER_HIT_TABLE
    match = _PLAUSIBLE_NAME.fullmatch(base.removesuffix(".csv"))
    table = f"imported_{match.group(1)}" if match else ""
    return table if table in PLAUSIBLE_TABLES else ""


def _files_open(*, peer: str, stream: IO[bytes], filename: str, budget: _Budget) -> Iterator[_PeerFile]:
    """The CSV files of an upload: a zip's members, a gzipped file, or the file itself."""
    head = stream.read(4)
    stream.seek(0)
    if head in (b"PK\x03\x04", b"PK\x05\x06"):
        try:
            archive = zipfile.ZipFile(stream)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError):
            raise FileProblem("the file is not a readable zip file") from None
        with archive:
            members = [m for m in archive.infolist() if not m.is_dir() and not m.filename.startswith("__MACOSX/")]
            if len(members) > ZIP_MEMBERS_MAX:
                raise FileProblem(f"the zip holds {len(members):,} files, more than the {ZIP_MEMBERS_MAX} allowed")
            # The sizes the zip declares are checked before any member is opened (a bomb is
            # refused unread); the reader counts what it really unpacks too.
            if sum(member.file_size for member in members) > budget.limit:
                raise FileProblem(budget.refusal("more than"))
            for member in members:
                table = _table_of(peer, member.filename)
                if not table:
                    yield _PeerFile(member.filename, "", None)
                    continue
                try:
                    raw = archive.open(member)
                except (zipfile.BadZipFile, NotImplementedError, OSError) as problem:  # damaged, or encrypted
                    raise FileProblem(f"{member.filename} cannot be unpacked ({problem})") from None
                with raw:
                    yield _PeerFile(member.filename, table, _text(raw, budget, name=member.filename))
        return
    name = filename.removesuffix(".gz")
    table = _table_of(peer, name if name.lower().endswith(".csv") else f"{name}.csv")
    if peer == "plausible" and not table:
        raise FileProblem(
            f"{filename!r} is not one of Plausible's export files: upload the zip, or a file named like "
            "imported_pages_20240101_20241231.csv"
        )
    if head.startswith(b"\x1f\x8b"):
        with gzip.GzipFile(fileobj=stream) as raw:
            yield _PeerFile(name, table, _text(raw, budget, name=filename))
        return
    yield _PeerFile(filename, table, _text(stream, budget, name=filename))


def _header_name(cell: str) -> str:
    """A column name as compared: lower case, spaces and dashes as "_" ("Referrer scheme" → "referrer_scheme")."""
    return re.sub(r"[\s\-]+", "_", cell.strip().lower())


_BAD_SHAPE = ""  # the key of a row whose cell count is not the header's: its value says so


def _csv_rows(text: IO[str], *, name: str) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """The header (compared names) and the rows of a CSV file, each with its line number (the
    line it ends on: the header is line 1), keyed by the header as it is when the rows are read
    (a caller may rename a column first). Blank lines are skipped; a row whose cell count is not
    the header's comes as ``{_BAD_SHAPE: what is wrong}``."""
    reader = csv.reader(text)
    try:
        header = [_header_name(cell) for cell in next(reader, [])]
    except (UnicodeDecodeError, csv.Error) as problem:
        raise FileProblem(f"{name} is not a UTF-8 CSV file ({problem})") from None

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        try:
            for cells in reader:
                if not any(cell.strip() for cell in cells):
                    continue
                if len(cells) != len(header):
                    yield reader.line_num, {_BAD_SHAPE: f"{len(cells)} cells where the header has {len(header)}"}
                    continue
                yield reader.line_num, dict(zip(header, cells))
        except (UnicodeDecodeError, csv.Error) as problem:
            raise FileProblem(f"{name} line {reader.line_num + 1} cannot be read as UTF-8 CSV ({problem})") from None

    return header, rows()


def _columns_check(header: list[str], required: tuple[str, ...], *, name: str) -> None:
    missing = [column for column in required if column not in header]
    if missing:
        found = ", ".join(header) or "none"
        raise FileProblem(f"{name} has no {', '.join(missing)} column (its columns: {found[:300]})")


# --- cells --------------------------------------------------------------------------------------


class _RowInvalid(ValueError):
    """A row that cannot be counted; the message names the column and what is wrong with it."""


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:39] + "…")


def _whole_number(row: Mapping[str, str], column: str) -> int:
    text = row[column].strip()
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(MAX_COUNT)) or int(text) > MAX_COUNT:
        raise _RowInvalid(f"{column}: {_shown(text)} is not a whole number from 0 to {MAX_COUNT:,}")
    return int(text)


def _boolean(row: Mapping[str, str], column: str) -> bool:
    text = row[column].strip().lower()
    if text in ("true", "1", "t", "yes"):
        return True
    if text in ("false", "0", "f", "no", ""):
        return False
    raise _RowInvalid(f"{column}: {_shown(text)} is not true or false")


def _year_check(year: int, column: str, text: str) -> None:
    first, last = PERIOD_START_YEARS
    if not first <= year <= last:
        raise _RowInvalid(f"{column}: {_shown(text)} is outside the years {first}–{last}")


def _date(row: Mapping[str, str], column: str, *, latest: date) -> date:
    text = row[column].strip()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise _RowInvalid(f"{column}: {_shown(text)} is not a date like 2024-01-31") from None
    _year_check(day.year, column, text)
    if day > latest:
        raise _RowInvalid(f"{column}: {text} is in the future")
    return day


def _moment(row: Mapping[str, str], column: str, *, latest: datetime) -> datetime:
    """A date and time; without an offset it is UTC (what Umami and GoatCounter write)."""
    text = row[column].strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _RowInvalid(f"{column}: {_shown(text)} is not a date and time like 2024-01-31T09:30:00Z") from None
    _year_check(moment.year, column, text)
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if moment > latest:
        raise _RowInvalid(f"{column}: {text} is in the future")
    return moment


# --- names: what other tools write, as Beacons names it (``beacons.ingest.extraction``) ----------

# Browser names as ua-parser gives them (what Beacons counts under): Umami's detect-browser
# codes and Plausible's own names, looked up in lower case without a version.
_BROWSER_NAMES = {
    "chrome": "Chrome",
    "crios": "Chrome Mobile iOS",
    "chromium-webview": "Chrome Mobile WebView",
    "firefox": "Firefox",
    "fxios": "Firefox iOS",
    "safari": "Safari",
    "ios": "Mobile Safari",
    "ios-webview": "Mobile Safari UI/WKWebView",
    "edge": "Edge",
    "edge-chromium": "Edge",
    "edge-ios": "Edge Mobile",
    "microsoft edge": "Edge",
    "samsung": "Samsung Internet",
    "samsung browser": "Samsung Internet",
    "opera": "Opera",
    "opera-mini": "Opera Mini",
    "yandexbrowser": "Yandex Browser",
    "facebook": "Facebook",
    "instagram": "Instagram",
    "android": "Android",
    "silk": "Amazon Silk",
    "ie": "IE",
}
_OS_NAMES = {
    "mac": "Mac OS X",
    "mac os": "Mac OS X",
    "macos": "Mac OS X",
    "os x": "Mac OS X",
    "gnu/linux": "Linux",
    "android os": "Android",
    "windows server": "Windows",
    "chromeos": "Chrome OS",
}
_DEVICES = {
    "desktop": extraction.DESKTOP,
    "laptop": extraction.DESKTOP,
    "mobile": extraction.MOBILE,
    "phone": extraction.MOBILE,
    "tablet": extraction.TABLET,
}
_NOT_SET = {"", "(not set)", "(none)", "unknown", "(unknown)"}
_DIRECT_NAMES = {"direct / none", "direct", "(direct)", "(none)"}
_PHONE_WIDTH, _TABLET_WIDTH = 768, 1024  # CSS pixels: below the first a phone, below the second a tablet


def _without_version(text: str) -> str:
    """ "Chrome 120" → "Chrome", "Mac OS X 10.15" → "Mac OS X"."""
    previous = None
    while previous != text:
        previous, text = text, _TRAILING_VERSION.sub("", text)
    return text


def _named(text: str, names: Mapping[str, str]) -> str:
    name = _without_version(extraction.clean_text(text))
    if name.lower() in _NOT_SET:
        return extraction.UNKNOWN
    return names.get(name.lower(), name)


@lru_cache(maxsize=4096)  # a file repeats few names: the cleaning runs once per name
def browser_name(text: str) -> str:
    return _named(text, _BROWSER_NAMES)


@lru_cache(maxsize=4096)
def os_name(text: str) -> str:
    return _named(text, _OS_NAMES)


def device_kind(text: str) -> str:
    return _DEVICES.get(extraction.clean_text(text).lower(), extraction.UNKNOWN)


def device_of_screen(size: str) -> str:
    """GoatCounter's ``Screen size`` (``width,height,scale``) as a device kind, by width."""
    try:
        width = float(size.split(",")[0])
    except ValueError:
        return extraction.UNKNOWN
    if not 0 < width < 100_000:
        return extraction.UNKNOWN
    return (
        extraction.MOBILE
        if width < _PHONE_WIDTH
        else extraction.TABLET
        if width < _TABLET_WIDTH
        else extraction.DESKTOP
    )


def country_code(text: str) -> str:
    """An ISO 3166 code ("DE", or GoatCounter's "US-TX") as Beacons' country value."""
    code = text.strip()[:2].upper()
    if len(code) == 2 and code.isascii() and code.isalpha() and code not in ("ZZ", "XX"):
        return code
    return extraction.UNKNOWN


@lru_cache(maxsize=4096)
def source_named(name: str, *, site_domain: str) -> str:
    """A source another tool named ("Google", "Direct / None", "news.ycombinator.com"), under
    Beacons' name for it (a tag, as ``extraction.source_of`` names ``utm_source``)."""
    text = extraction.clean_text(name)
    if text.lower() in _DIRECT_NAMES or not text:
        return extraction.DIRECT
    return extraction.source_of("", site_domain=site_domain, campaign={"utm_source": text})


def event_type_of(name: str) -> str:
    """The event type an event another tool named ``name`` counts under: the drop-in endpoints'
    rule (``event_type_named``: "Outbound Link: Click" → "outbound_link:click"), so imported and
    live events of one name land on one type. Raises ``_RowInvalid``."""
    try:
        slug = event_type_normalise(event_type_named(name, field="name"))
    except (Rejected, InvalidName) as problem:
        raise _RowInvalid(f"event name {_shown(name)}: {problem}") from None
    if is_reserved(slug):
        raise _RowInvalid(f"event name {_shown(name)} names one of Beacons' own types")
    return slug


def _dimension_value(text: str) -> str | None:
    return extraction.property_value(text)


# --- Plausible's tables ----------------------------------------------------------------------


@dataclass(frozen=True)
class _PlausibleTable:
    """One of Plausible's export files: the column naming what a row is about (None: the day),
    where that goes (``TOTAL``, ``IDENTIFIER``, ``IDENTIFIER_AND_TOTAL``, or a dimension code), and
    the types each count column counts for."""

    key: str | None
    axis: str
    counts: Mapping[str, tuple[str, ...]]


TOTAL, IDENTIFIER, IDENTIFIER_AND_TOTAL, EVENTS = "total", "identifier", "identifier+total", "events"
_VISIT_COUNTS = {
    "visits": (VisitSlug.VISITS,),
    "bounces": (VisitSlug.BOUNCES,),
    "visit_duration": (VisitSlug.SECONDS,),
    "pageviews": (PAGE_VIEW, VisitSlug.PAGES),
}
PLAUSIBLE_TABLES = {
    "imported_visitors": _PlausibleTable(None, TOTAL, _VISIT_COUNTS),
    # The page-view total is imported_visitors': a page's counter only.
    "imported_pages": _PlausibleTable("page", IDENTIFIER, {"pageviews": (PAGE_VIEW,)}),
    "imported_entry_pages": _PlausibleTable(
        "entry_page",
        IDENTIFIER,
        {
            "entrances": (VisitSlug.VISITS,),
            "bounces": (VisitSlug.BOUNCES,),
            "visit_duration": (VisitSlug.SECONDS,),
            "pageviews": (VisitSlug.PAGES,),
        },
    ),
    # Exits are counted only here, so their total too.
    "imported_exit_pages": _PlausibleTable("exit_page", IDENTIFIER_AND_TOTAL, {"exits": (VisitSlug.EXITS,)}),
    "imported_sources": _PlausibleTable("source", "source", _VISIT_COUNTS),
    "imported_browsers": _PlausibleTable("browser", "browser", _VISIT_COUNTS),
    "imported_operating_systems": _PlausibleTable("operating_system", "os", _VISIT_COUNTS),
    "imported_devices": _PlausibleTable("device", "device", _VISIT_COUNTS),
    "imported_locations": _PlausibleTable("country", "country", _VISIT_COUNTS),
    "imported_custom_events": _PlausibleTable("name", EVENTS, {"events": ()}),
}
_PLAUSIBLE_INTERNAL_EVENTS = {"engagement", "pageleave", "pageview"}  # Plausible's own, not goals
_COLUMN_ALIASES = {"entrances": "visits"}  # what some exports call a column instead
_CAMPAIGN_COLUMNS = ("utm_medium", "utm_campaign")


# --- counting ----------------------------------------------------------------------------------


class _Import:
    """The counts of one upload into one site, gathered in memory (the size limit bounds them),
    then written in one go."""

    def __init__(self, *, site: Site, summary: PeerImportSummary, on_progress: Callable[[int], None] | None):
        self.site, self.summary, self.on_progress = site, summary, on_progress
        self.zone = bucket_zone(site)
        self.zones = SiteZones()
        self.now = timezone.now()
        self.latest_moment = self.now + timedelta(days=1)  # clocks of the exporting server may run ahead
        self.latest_day = self.latest_moment.astimezone(self.zone).date()
        self.increments: Counter[CounterKey] = Counter()
        self.values: Counter[DimensionValue] = Counter()
        self.visitors: dict[date, int] = {}
        self.done_days: dict[str, set[date]] = {}
        self.new_days: dict[str, set[date]] = defaultdict(set)
        self.definitions: dict[str, BeaconDefinition] = dict(system_definitions_resolve())
        page_view = BeaconDefinition.objects.filter(slug=PAGE_VIEW, kind=BeaconDefinition.Kind.PAGE_VIEW).first()
        if page_view is None:
            raise FileProblem("there is no page_view event type of kind page view: register it in the admin first")
        self.definitions[PAGE_VIEW] = page_view
        self._fine_since: dict[int, datetime] = {}
        self._held: Counter[tuple] = Counter()  # (second, type, granularities, identifier) -> hits
        self._held_values: Counter[tuple] = Counter()  # (second, type, granularities, dimension, value) -> hits
        self._day_starts: dict[date, datetime] = {}
        self._buckets: dict[tuple[date, tuple[str, ...]], tuple[tuple[str, datetime], ...]] = {}
        self._unreported = 0

    # --- bookkeeping

    def progress(self, rows: int = 1) -> None:
        self._unreported += rows
        if self.on_progress and self._unreported >= PROGRESS_ROWS:
            self.on_progress(self._unreported)
            self._unreported = 0

    def progress_flush(self) -> None:
        if self.on_progress and self._unreported:  # once, at the end
            self.on_progress(self._unreported)

    def day_taken(self, file: FileSummary, day: date) -> bool:
        """True (and noted) for a day an earlier upload of this kind of file imported."""
        done = self.done_days.get(file.source)
        if done is None:
            rows = PeerImportDay.objects.filter(site=self.site, source=file.source).values_list("day", flat=True)
            done = self.done_days[file.source] = set(rows)
        if day in done:
            file.skipped_days.add(day)
            file.skipped_rows += 1
            return True
        file.days.add(day)
        self.new_days[file.source].add(day)
        return False

    def local_day(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()

    def visitors_add(self, file: FileSummary, day: date, visitors: int) -> None:
        """A day's unique visitors as the tool counted them: an imported figure, never a sketch."""
        self.visitors[day] = self.visitors.get(day, 0) + visitors
        file.visitors[day] = file.visitors.get(day, 0) + visitors

    def event_type(self, slug: str) -> BeaconDefinition:
        """The custom event type ``slug``, registered as an import registers (``definitions_resolve``)."""
        definition = self.definitions.get(slug)
        if definition is not None:
            return definition
        existed = BeaconDefinition.objects.filter(slug=slug).exists()
        if not existed and len(self.summary.new_types) >= NEW_TYPES_MAX:
            raise FileProblem(
                f"the file names more than {NEW_TYPES_MAX} new event types: register them in the admin first"
            )
        try:
            definition = definitions_resolve(slugs=[slug])[slug]
        except UnknownEventType:
            raise _RowInvalid(
                f"event type {slug!r} is not registered and strict mode is on: register it first"
            ) from None
        if definition.kind in (BeaconDefinition.Kind.PAGE_VIEW, BeaconDefinition.Kind.ERROR):
            raise _RowInvalid(f"event type {slug!r} is a {definition.get_kind_display().lower()} type, not an event")
        if not existed:
            self.summary.new_types.append(slug)
        self.definitions[slug] = definition
        return definition

    # --- daily figures

    def _day_start(self, day: date) -> datetime:
        start = self._day_starts.get(day)
        if start is None:
            start = self._day_starts[day] = bucket_start(
                datetime(day.year, day.month, day.day, tzinfo=self.zone), G.DAY, self.zone
            )
        return start

    def day_buckets(self, day: date, granularities: tuple[str, ...] | list[str]) -> tuple[tuple[str, datetime], ...]:
        """The day, month and year buckets (of ``granularities``) a day's figures count in."""
        key = (day, tuple(granularities))
        buckets = self._buckets.get(key)
        if buckets is None:
            start = self._day_start(day)
            buckets = tuple((g, bucket_start(start, g, self.zone)) for g in granularities if g in DAY_GRANULARITIES)
            self._buckets[key] = buckets
        return buckets

    def day_count(self, definition: BeaconDefinition, day: date, *, axis: str, identifier: str, n: int) -> None:
        buckets = self.day_buckets(day, definition.granularity_codes)
        if axis == IDENTIFIER:
            # A page's counter without the total: the file holding the total adds that.
            for granularity, start in buckets:
                key = (self.site.pk, definition.pk, "", identifier, granularity, start)
                self.increments[key] += n
            return
        hits = {"": n} if axis == TOTAL else {identifier: n}
        increments_add_hits(
            self.increments, site_id=self.site.pk, definition_id=definition.pk, buckets=buckets, hits=hits
        )

    def day_value(self, definition: BeaconDefinition, day: date, *, dimension: str, value: str, n: int) -> None:
        """``n`` for a dimension's value on ``day``, where the type keeps that dimension."""
        if dimension not in definition.dimension_codes:
            return
        buckets = self.day_buckets(day, definition.dimension_granularity_codes)
        if buckets:
            self.values[
                DimensionValue(self.site.pk, definition.pk, dimension, value, self._day_start(day), buckets)
            ] += n

    # --- hits

    def hit_count(self, definition: BeaconDefinition, moment: datetime, *, identifier: str, dimensions: dict) -> None:
        """One hit at ``moment``, counted as ingest counts it (seconds and minutes only while the
        type keeps them: older ones would only wait for the purge)."""
        granularities = tuple(definition.granularity_codes)
        fine_since = self._fine_since.get(definition.pk)
        if fine_since is None:  # registry definitions defer the field: read it once per type
            fine_since = self._fine_since[definition.pk] = self.now - timedelta(days=definition.fine_retention_days)
        if moment < fine_since:
            granularities = tuple(g for g in granularities if g not in FINE_GRANULARITIES)
        kept = definition.dimension_codes
        values = {code: value for code, value in dimensions.items() if code in kept}
        self._hit_add(
            Hit(
                self.site.pk,
                definition.pk,
                granularities,
                identifier,
                values,
                tuple(definition.dimension_granularity_codes) if values else (),
            ),
            int(moment.timestamp()),
        )

    def _hit_add(self, hit: Hit, second: int) -> None:
        """Hold ``hit`` (its count may be negative: a visit adjustment) until ``hits_fold``. Hits of
        types without second and minute buckets are held per quarter hour (every hour and day
        starts on one, in every time zone), so the bucket math runs once per quarter hour, page
        and value instead of once per hit."""
        if FINE_GRANULARITIES.isdisjoint(hit.granularities):
            second -= second % QUARTER_HOUR
        self._held[(second, hit.definition_id, hit.granularities, hit.identifier)] += hit.count
        for dimension, value in hit.dimensions.items():
            self._held_values[(second, hit.definition_id, hit.dimension_granularities, dimension, value)] += hit.count

    def hits_fold(self) -> None:
        """Fold the hits held into counter increments and dimension values, a moment at a time
        (``increments_for`` / ``dimension_values_for``: the same buckets as live counting)."""
        site_id = self.site.pk
        for second, held in groupby(sorted(self._held.items()), key=lambda item: item[0][0]):
            hits = [
                Hit(site_id, pk, granularities, identifier, count=n)
                for (_, pk, granularities, identifier), n in held
                if n
            ]
            moment = datetime.fromtimestamp(second, UTC)
            self.increments.update(increments_for(hits=hits, received_at=moment, zones=self.zones))
        for second, held in groupby(sorted(self._held_values.items()), key=lambda item: item[0][0]):
            hits = [
                Hit(site_id, pk, (), "", {dimension: value}, granularities, n)
                for (_, pk, granularities, dimension, value), n in held
                if n
            ]
            moment = datetime.fromtimestamp(second, UTC)
            self.values.update(dimension_values_for(hits=hits, received_at=moment, zones=self.zones))

    def visits_count(self, file: FileSummary, page_views: Mapping[str, list[tuple[int, str, tuple]]]) -> None:
        """The visits of each session's page views ((epoch second, page, dimension values)), by
        the rules of live counting (``visit_fold``), in the buckets where each visit started; a
        visit that started on a skipped day is left out."""
        gap = settings.BEACONS_VISIT_GAP_SECONDS
        visits_id = self.definitions[VisitSlug.VISITS].pk
        page_view_codes = set(self.definitions[PAGE_VIEW].dimension_codes)
        skipped: dict[int, bool] = {}  # visit start -> whether its day was imported before
        for views in page_views.values():
            views.sort(key=lambda view: view[0])
            state = None
            for second, identifier, dimensions in views:
                entry = {code: value for code, value in dimensions if code in page_view_codes}
                state, adjustments = visit_fold(
                    state,
                    [PageView(identifier, entry)],
                    site_id=self.site.pk,
                    now=second,
                    gap=gap,
                    definitions=self.definitions,
                )
                for start, hit in adjustments:
                    if start not in skipped:
                        skipped[start] = self.local_day(datetime.fromtimestamp(start, UTC)) in file.skipped_days
                    if skipped[start]:
                        continue
                    self._hit_add(hit, start)
                    if hit.definition_id == visits_id:
                        file.visits += hit.count

    # --- writing

    def write(self) -> None:
        """Everything gathered, in the caller's transaction: the days and the imported visitors first
        (a concurrent import of the same file fails here), then the counters and the capped values."""
        self.hits_fold()
        days = [PeerImportDay(site=self.site, source=s, day=d) for s, ds in self.new_days.items() for d in sorted(ds)]
        visitors = [
            ImportedVisitors(site=self.site, source=self.summary.peer, day=day, visitors=n)
            for day, n in sorted(self.visitors.items())
        ]
        try:
            with transaction.atomic():
                PeerImportDay.objects.bulk_create(days)
                ImportedVisitors.objects.bulk_create(visitors)
        except IntegrityError:
            raise FileProblem(
                "another import of this file was running at the same time: nothing imported; import it "
                "again to add the days the other did not"
            ) from None
        aggregates_add(increments={key: n for key, n in self.increments.items() if n > 0})
        cap = ValueCap()
        admitted: Counter[CounterKey] = Counter()
        over: Counter = Counter()
        # Day by day: the cap remembers only the latest days, and each day is asked once.
        counted = sorted(((value, n) for value, n in self.values.items() if n > 0), key=lambda item: item[0].day)
        for _, same_day in groupby(counted, key=lambda item: item[0].day):
            increments, dropped = cap.admit(dict(same_day))
            admitted.update(increments)
            over.update(dropped)
        aggregates_add(increments={key: n for key, n in admitted.items() if n > 0})
        # A savepoint: the tally swallows a database error, and on PostgreSQL releasing the savepoint
        # then fails loudly, where a commit would roll the whole import back unseen.
        with transaction.atomic():
            values_dropped_add(over=over)


# --- the three tools ---------------------------------------------------------------------------


def _plausible_read(counting: _Import, file: FileSummary, peer_file: _PeerFile) -> None:
    table = PLAUSIBLE_TABLES[peer_file.table]
    name = PurePosixPath(peer_file.name).name
    header, rows = _csv_rows(peer_file.text, name=name)
    _columns_check(header, ("date",) + ((table.key,) if table.key else ()), name=name)
    # {count column: the column it is read from}: the column itself, or what some exports call it
    columns = {}
    for column in table.counts:
        found = column if column in header else _COLUMN_ALIASES.get(column)
        if found in header:
            columns[column] = found
        else:
            file.notes.append(f"no {column} column: not imported")
    if not columns:
        raise FileProblem(f"{name} has none of the columns {', '.join(table.counts)}")
    visitors_column = table.axis == TOTAL and "visitors" in header
    campaign_columns = [column for column in _CAMPAIGN_COLUMNS if column in header] if table.axis == "source" else []
    page_view = counting.definitions[PAGE_VIEW]
    for line, row in rows:
        counting.progress()
        file.rows += 1
        identifier, definition = "", page_view
        try:
            if _BAD_SHAPE in row:
                raise _RowInvalid(row[_BAD_SHAPE])
            day = _date(row, "date", latest=counting.latest_day)
            numbers = {column: _whole_number(row, found) for column, found in columns.items()}
            visitors = _whole_number(row, "visitors") if visitors_column else None
            key = row[table.key] if table.key else ""
            if table.axis == EVENTS:
                if key.strip().lower() in _PLAUSIBLE_INTERNAL_EVENTS:
                    file.skipped_rows += 1
                    continue
                definition = counting.event_type(event_type_of(key))
                # The page it happened on, as live events count (only some goals export one).
                identifier = _identifier(definition, row.get("path", "").strip(), column="path")
            elif table.axis in (IDENTIFIER, IDENTIFIER_AND_TOTAL):
                identifier = _identifier(page_view, key, column=table.key)
                if not identifier:
                    raise _RowInvalid(f"{table.key}: a page is required")
        except _RowInvalid as problem:
            counting.summary.problem(f"{name} line {line}: {problem}")
            continue
        if counting.day_taken(file, day):
            continue
        if table.axis == EVENTS:
            counting.day_count(definition, day, axis=IDENTIFIER_AND_TOTAL, identifier=identifier, n=numbers["events"])
            file.events[definition.slug] += numbers["events"]
        elif table.axis in (TOTAL, IDENTIFIER, IDENTIFIER_AND_TOTAL):
            for column, n in numbers.items():
                for slug in table.counts[column]:
                    counting.day_count(counting.definitions[slug], day, axis=table.axis, identifier=identifier, n=n)
            if peer_file.table != "imported_entry_pages":  # its page views are those of visits by entry page
                file.page_views += numbers.get("pageviews", 0)
            if table.axis == TOTAL:
                counting.summary.page_views += numbers.get("pageviews", 0)
            file.visits += numbers.get("visits", 0) + numbers.get("entrances", 0)
            if visitors is not None:
                counting.visitors_add(file, day, visitors)
        else:
            file.page_views += numbers.get("pageviews", 0)
            file.visits += numbers.get("visits", 0)
            values = {table.axis: _axis_value(table.axis, key, site_domain=counting.site.domain)}
            values.update({column: v for column in campaign_columns if (v := _dimension_value(row[column]))})
            for column, n in numbers.items():
                for slug in table.counts[column]:
                    for dimension, value in values.items():
                        counting.day_value(counting.definitions[slug], day, dimension=dimension, value=value, n=n)


def _identifier(definition: BeaconDefinition, sent: str, *, column: str) -> str:
    """What a page or event counts under, by the type's rule (``identifier_resolve``, as at ingest)."""
    identifier = identifier_resolve(definition=definition, sent=sent, referer="")
    if not is_storable_text(identifier):
        raise _RowInvalid(f"{column}: contains a NUL character")
    return identifier


def _axis_value(axis: str, text: str, *, site_domain: str) -> str:
    if axis == "source":
        return source_named(text, site_domain=site_domain)
    if axis == "browser":
        return browser_name(text)
    if axis == "os":
        return os_name(text)
    if axis == "device":
        return device_kind(text)
    return country_code(text)


@dataclass
class _Hit:
    """One row of a per-hit export, read: a page view (``event`` empty) or an event."""

    moment: datetime
    event: str  # the event name; "" for a page view
    path: str
    dimensions: dict[str, str]
    session: str  # "" when the row has none
    visit: str  # what groups its visit ("" for none)


# A per-hit export's rows as read: a hit, a problem, or None for a row skipped on purpose.
_HitRows = Iterator[tuple[int, _Hit | _RowInvalid | None]]


def _hits_count(counting: _Import, file: FileSummary, name: str, hits: _HitRows) -> None:
    """Count a per-hit export's rows, then the visits its page views make and each day's
    distinct sessions (its unique visitors, kept as imported figures)."""
    page_view = counting.definitions[PAGE_VIEW]
    sessions: dict[date, set[str]] = defaultdict(set)
    visits: dict[str, list[tuple[int, str, tuple]]] = defaultdict(list)
    interned: dict[tuple, tuple] = {}  # visits share few sets of dimension values: each is kept once
    for line, hit in hits:
        counting.progress()
        file.rows += 1
        if hit is None:
            file.skipped_rows += 1
            continue
        try:
            if isinstance(hit, _RowInvalid):
                raise hit
            definition = counting.event_type(event_type_of(hit.event)) if hit.event else page_view
            identifier = _identifier(definition, hit.path, column="path")
            if not hit.event and not identifier:
                raise _RowInvalid("path: a page is required")
        except _RowInvalid as problem:
            counting.summary.problem(f"{name} line {line}: {problem}")
            continue
        day = counting.local_day(hit.moment)
        if counting.day_taken(file, day):
            continue
        counting.hit_count(definition, hit.moment, identifier=identifier, dimensions=hit.dimensions)
        if hit.session:
            sessions[day].add(hit.session)
        if hit.event:
            file.events[definition.slug] += 1
            continue
        file.page_views += 1
        counting.summary.page_views += 1
        if hit.visit:
            dimensions = tuple(sorted(hit.dimensions.items()))
            dimensions = interned.setdefault(dimensions, dimensions)
            visits[hit.visit].append((int(hit.moment.timestamp()), identifier, dimensions))
    counting.visits_count(file, visits)
    for day, seen in sorted(sessions.items()):
        counting.visitors_add(file, day, len(seen))


def _goatcounter_read(counting: _Import, file: FileSummary, peer_file: _PeerFile) -> None:
    name = PurePosixPath(peer_file.name).name
    header, rows = _csv_rows(peer_file.text, name=name)
    version = _VERSION_PREFIX.fullmatch(header[0]) if header else None
    if version is None or version.group(1) not in ("1", "2"):
        found = _shown(header[0]) if header else "missing"
        raise FileProblem(f"{name} is not a GoatCounter export of format 2: its first column is {found}, not “2Path”")
    header[0] = version.group(2)  # "2path" → "path", before the rows are read
    _columns_check(header, ("path", "event", "date"), name=name)
    user_agents = version.group(1) == "1"  # format 1 keeps the user agent in Browser
    site_domain = counting.site.domain

    def hits() -> _HitRows:
        for line, row in rows:
            try:
                if _BAD_SHAPE in row:
                    raise _RowInvalid(row[_BAD_SHAPE])
                moment = _moment(row, "date", latest=counting.latest_moment)
                event = _boolean(row, "event")
            except _RowInvalid as problem:
                yield line, problem
                continue
            if row.get("bot", "").strip() not in ("", "0"):
                yield line, None
                continue
            yield (
                line,
                _goatcounter_hit(row, moment=moment, event=event, user_agents=user_agents, site_domain=site_domain),
            )

    _hits_count(counting, file, name, hits())


def _goatcounter_hit(
    row: Mapping[str, str], *, moment: datetime, event: bool, user_agents: bool, site_domain: str
) -> _Hit:
    path = row["path"].strip()
    if user_agents:
        browser, os, device = extraction.device_of(row.get("browser", ""))
    else:
        browser, os = browser_name(row.get("browser", "")), os_name(row.get("system", ""))
        device = device_of_screen(row.get("screen_size", ""))
    referrer, scheme = row.get("referrer", "").strip(), row.get("referrer_scheme", "").strip()
    if not referrer:
        source = extraction.DIRECT
    elif scheme == "h":
        source = extraction.source_of(referrer, site_domain=site_domain)
    else:  # generated ("Hacker News"), a campaign or another kind (an app): a name
        source = source_named(referrer, site_domain=site_domain)
    dimensions = {
        "source": source,
        "browser": browser,
        "os": os,
        "device": device,
        "country": country_code(row.get("location", "")),
    }
    session = row.get("session", "").strip()
    return _Hit(moment, path if event else "", path, dimensions, session, session)


def _umami_read(counting: _Import, file: FileSummary, peer_file: _PeerFile) -> None:
    name = PurePosixPath(peer_file.name).name
    header, rows = _csv_rows(peer_file.text, name=name)
    _columns_check(header, ("url_path", "event_type", "created_at"), name=name)
    site_domain = counting.site.domain

    def hits() -> _HitRows:
        for line, row in rows:
            try:
                if _BAD_SHAPE in row:
                    raise _RowInvalid(row[_BAD_SHAPE])
                moment = _moment(row, "created_at", latest=counting.latest_moment)
                kind = row["event_type"].strip()
                if kind == "2" and not row.get("event_name", "").strip():
                    raise _RowInvalid("event_name: an event (event_type 2) needs a name")
            except _RowInvalid as problem:
                yield line, problem
                continue
            if kind not in ("1", "2"):  # 1: a page view, 2: an event; later versions add other kinds
                yield line, None
                continue
            yield line, _umami_hit(row, moment=moment, event=kind == "2", site_domain=site_domain)

    _hits_count(counting, file, name, hits())


def _umami_hit(row: Mapping[str, str], *, moment: datetime, event: bool, site_domain: str) -> _Hit:
    path, query = row["url_path"].strip(), row.get("url_query", "").strip().lstrip("?")
    host = row.get("hostname", "").strip() or site_domain
    page_url = f"https://{host}{path}" + (f"?{query}" if query else "")
    domain = row.get("referrer_domain", "").strip()
    referrer = f"https://{domain}{row.get('referrer_path', '').strip()}" if domain else ""
    # Newer exports have the campaign in columns of their own; older ones only in the query.
    columns = {column: row.get(column, "") for column in ("utm_source", *_CAMPAIGN_COLUMNS)}
    campaign = extraction.campaign_of(page_url) | {c: v for c, text in columns.items() if (v := _dimension_value(text))}
    dimensions = {
        "source": extraction.source_of(referrer, site_domain=site_domain, page_url=page_url, campaign=campaign),
        "browser": browser_name(row.get("browser", "")),
        "os": os_name(row.get("os", "")),
        "device": device_kind(row.get("device", "")),
        "country": country_code(row.get("country", "")),
    }
    dimensions.update({column: campaign[column] for column in _CAMPAIGN_COLUMNS if campaign.get(column)})
    session = row.get("session_id", "").strip()
    visit = row.get("visit_id", "").strip() or session
    # A page view counts its path and query (the type drops the query unless it keeps them), an event its path.
    page = path if event or not query else f"{path}?{query}"
    return _Hit(moment, row.get("event_name", "").strip() if event else "", page, dimensions, session, visit)


_READERS = {"plausible": _plausible_read, "goatcounter": _goatcounter_read, "umami": _umami_read}


# --- the service -------------------------------------------------------------------------------


def peer_import(
    *,
    peer: str,
    stream: IO[bytes],
    filename: str,
    site: Site,
    dry_run: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> PeerImportSummary:
    """Import ``peer``'s export (``stream``, a seekable binary file named ``filename``) into ``site``.

    Returns what was imported per file, or, with problems (file and line of each bad row) or on
    ``dry_run``, what would have been: then nothing is written, event types included. Raises
    ``FileProblem`` for a file that cannot be read at all (not the tool's format, a missing
    column, past the size limit). ``on_progress`` is called with the number of rows read since
    its last call.
    """
    if peer not in PEERS:
        raise ValueError(f"peer must be one of {', '.join(PEERS)}")
    sites_cache_clear()  # the site's zone as it is now, for the buckets
    budget = _Budget(settings.BEACONS_IMPORT_MAX_UNCOMPRESSED_BYTES)
    summary = PeerImportSummary(peer=peer, site=site.domain, dry_run=dry_run)
    written = False
    try:
        with transaction.atomic():
            counting = _Import(site=site, summary=summary, on_progress=on_progress)
            for peer_file in _files_open(peer=peer, stream=stream, filename=filename, budget=budget):
                file = FileSummary(name=PurePosixPath(peer_file.name).name)
                summary.files.append(file)
                if peer_file.text is None:
                    file.notes.append(f"not one of {PEERS[peer]}'s export files")
                    continue
                file.source = f"{peer}:{peer_file.table}.csv"[:PEER_SOURCE_MAX_LENGTH]
                _READERS[peer](counting, file, peer_file)
            counting.progress_flush()
            if not any(file.source for file in summary.files):
                raise FileProblem(f"the file holds none of {PEERS[peer]}'s export files")
            if summary.problem_count or dry_run:
                transaction.set_rollback(True)
            else:
                counting.write()
                written = True
    except DatabaseError as problem:
        raise FileProblem(f"the counts could not be written ({problem})") from None
    finally:
        if not written:
            definitions_cache_clear()  # types registered by the rolled-back import must not stay cached
    return summary


# --- what was imported, for the admin ------------------------------------------------------------


@dataclass(frozen=True)
class PeerImportHistory:
    site: str
    source: str
    days: int
    first: date
    last: date
    visitors: int | None = None  # imported unique visitors (ImportedVisitors), summed over ``days``


def peer_imports_listed(*, sites: list[Site]) -> tuple[list[PeerImportHistory], list[PeerImportHistory]]:
    """The days imported per (site, kind of file), and the imported unique visitors per (site,
    tool), of ``sites``. Two queries."""
    days = (
        PeerImportDay.objects.filter(site__in=sites)
        .values("site__domain", "source")
        .annotate(days=Count("id"), first=Min("day"), last=Max("day"))
        .order_by("site__domain", "source")
    )
    visitors = (
        ImportedVisitors.objects.filter(site__in=sites)
        .values("site__domain", "source")
        .annotate(days=Count("id"), first=Min("day"), last=Max("day"), visitors=Sum("visitors"))
        .order_by("site__domain", "source")
    )
    return (
        [PeerImportHistory(r["site__domain"], r["source"], r["days"], r["first"], r["last"]) for r in days],
        [
            PeerImportHistory(
                r["site__domain"], PEERS.get(r["source"], r["source"]), r["days"], r["first"], r["last"], r["visitors"]
            )
            for r in visitors
        ],
    )
