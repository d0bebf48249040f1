"""Importing Plausible, GoatCounter and Umami exports (``beacons.transfer.peers``): the files are
generated here from each tool's documented columns, imported, and read back."""

import csv
import gzip
import io
import random
import zipfile
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from beacons.counting.buckets import bucket_start, bucket_zone
from beacons.models import (
    BeaconAggregate,
    BeaconDefinition,
    ImportedVisitors,
    PeerImportDay,
    VisitorSketch,
)
from beacons.models import Granularity as G
from beacons.registry import VisitSlug
from beacons.transfer import peers

from .conftest import first_site, first_site_zone

pytestmark = pytest.mark.django_db

FIRST_DAY = date(2025, 3, 1)
PAGES = ["/", "/pricing", "/blog/launch", "/docs/start"]
# Plausible's export columns, as its export queries write them (lib/plausible/exports.ex)
PLAUSIBLE_COLUMNS = {
    "imported_visitors": ["date", "visitors", "pageviews", "bounces", "visits", "visit_duration"],
    "imported_pages": [
        "date",
        "hostname",
        "page",
        "visits",
        "visitors",
        "pageviews",
        "total_scroll_depth",
        "total_scroll_depth_visits",
    ],
    "imported_entry_pages": ["date", "entry_page", "visitors", "entrances", "visit_duration", "bounces", "pageviews"],
    "imported_exit_pages": ["date", "exit_page", "visitors", "visit_duration", "exits", "bounces", "pageviews"],
    "imported_sources": [
        "date",
        "source",
        "referrer",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "utm_content",
        "utm_term",
        "pageviews",
        "visitors",
        "visits",
        "visit_duration",
        "bounces",
    ],
    "imported_browsers": [
        "date",
        "browser",
        "browser_version",
        "visitors",
        "visits",
        "visit_duration",
        "bounces",
        "pageviews",
    ],
    "imported_operating_systems": [
        "date",
        "operating_system",
        "operating_system_version",
        "visitors",
        "visits",
        "visit_duration",
        "bounces",
        "pageviews",
    ],
    "imported_devices": ["date", "device", "visitors", "visits", "visit_duration", "bounces", "pageviews"],
    "imported_locations": [
        "date",
        "country",
        "region",
        "city",
        "visitors",
        "visits",
        "visit_duration",
        "bounces",
        "pageviews",
    ],
    "imported_custom_events": ["date", "name", "link_url", "path", "visitors", "events"],
}
GOATCOUNTER_COLUMNS = [
    "2Path",
    "Title",
    "Event",
    "UserAgent",
    "Browser",
    "System",
    "Session",
    "Bot",
    "Referrer",
    "Referrer scheme",
    "Screen size",
    "Location",
    "FirstVisit",
    "Date",
]
UMAMI_COLUMNS = [
    "website_id",
    "session_id",
    "visit_id",
    "event_id",
    "hostname",
    "browser",
    "os",
    "device",
    "screen",
    "language",
    "country",
    "region",
    "city",
    "url_path",
    "url_query",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_term",
    "referrer_path",
    "referrer_query",
    "referrer_domain",
    "page_title",
    "event_type",
    "event_name",
    "distinct_id",
    "created_at",
]


# --- files -------------------------------------------------------------------------------------


def csv_text(columns, rows, *, order=None) -> str:
    """A CSV file of ``rows`` (dicts) with ``columns``, written in ``order`` (default: as given)."""
    order = order or columns
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(order)
    for row in rows:
        writer.writerow([row.get(column, "") for column in order])
    return buffer.getvalue()


def zipped(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def split(total: int, parts: int, rng: random.Random) -> list[int]:
    """``total`` shared at random among ``parts`` whole numbers."""
    cuts = sorted(rng.randint(0, total) for _ in range(parts - 1))
    return [b - a for a, b in zip([0, *cuts], [*cuts, total])]


class PlausibleExport:
    """A Plausible CSV export of ``days``, generated from its documented columns, with the
    figures it holds kept for comparison."""

    SOURCES = [("Google", "", ""), ("", "", ""), ("Twitter", "social", "launch"), ("news.ycombinator.com", "", "")]
    BROWSERS = ["Chrome", "Safari", "Microsoft Edge"]
    DEVICES = ["Desktop", "Mobile", "Laptop"]
    COUNTRIES = [("DE", "DE-BE"), ("DE", "DE-BY"), ("US", "US-CA")]

    def __init__(self, days: list[date], *, seed: int = 7):
        rng = random.Random(seed)
        self.days = days
        self.rows: dict[str, list[dict]] = defaultdict(list)
        self.page_views: dict[date, int] = {}
        self.by_page: Counter = Counter()  # (day, page) -> page views
        self.by_source: Counter = Counter()  # (day, source value) -> page views
        self.by_browser: Counter = Counter()
        self.by_country: Counter = Counter()
        self.events: Counter = Counter()  # (day, slug) -> events
        self.visits: dict[date, int] = {}
        self.visitors: dict[date, int] = {}
        for day in days:
            text = day.isoformat()
            views = {page: rng.randint(1, 60) for page in PAGES}
            total = sum(views.values())
            visits = max(1, total // 2)
            bounces = visits // 3
            self.page_views[day], self.visits[day], self.visitors[day] = total, visits, visits - 3
            self.rows["imported_visitors"].append(
                {
                    "date": text,
                    "visitors": visits - 3,
                    "pageviews": total,
                    "bounces": bounces,
                    "visits": visits,
                    "visit_duration": visits * 40,
                }
            )
            for page, n in views.items():
                self.by_page[(day, page)] += n
                self.rows["imported_pages"].append(
                    {"date": text, "hostname": "example.com", "page": page, "visits": n, "visitors": n, "pageviews": n}
                )
            for (page, n), entries in zip(views.items(), split(visits, len(PAGES), rng)):
                self.rows["imported_entry_pages"].append(
                    {"date": text, "entry_page": page, "visitors": entries, "entrances": entries, "bounces": 0}
                    | {"visit_duration": entries * 40, "pageviews": n}
                )
                self.rows["imported_exit_pages"].append({"date": text, "exit_page": page, "exits": entries})
            for (source, medium, campaign), n in zip(self.SOURCES, split(total, len(self.SOURCES), rng)):
                named = {"Google": "Google", "": "Direct / none", "Twitter": "Twitter"}.get(source, "Hacker News")
                self.by_source[(day, named)] += n
                self.rows["imported_sources"].append(
                    {"date": text, "source": source, "utm_medium": medium, "utm_campaign": campaign, "pageviews": n}
                    | {"visitors": n, "visits": n, "visit_duration": n * 10, "bounces": 0}
                )
            self._values(day, "imported_browsers", "browser", self.BROWSERS, total, rng, self.by_browser)
            self._values(day, "imported_devices", "device", self.DEVICES, total, rng, Counter())
            self._values(day, "imported_operating_systems", "operating_system", ["Mac", "GNU/Linux"], total, rng)
            for (country, region), n in zip(self.COUNTRIES, split(total, len(self.COUNTRIES), rng)):
                self.by_country[(day, country)] += n
                self.rows["imported_locations"].append(
                    {"date": text, "country": country, "region": region, "city": 0, "pageviews": n}
                    | {"visitors": n, "visits": n, "visit_duration": 0, "bounces": 0}
                )
            for name, slug, link, path in [
                ("Signup", "signup", "", ""),
                ("Outbound Link: Click", "outbound_link:click", "https://x.org", ""),
                ("404", "404", "", "/old-page"),
            ]:
                n = rng.randint(1, 9)
                self.events[(day, slug)] += n
                self.rows["imported_custom_events"].append(
                    {"date": text, "name": name, "link_url": link, "path": path, "visitors": n, "events": n}
                )

    def _values(self, day, table, column, names, total, rng, into=None):
        browsers = {"Microsoft Edge": "Edge"}
        for name, n in zip(names, split(total, len(names), rng)):
            if into is not None:
                into[(day, browsers.get(name, name))] += n
            self.rows[table].append(
                {"date": day.isoformat(), column: name, "pageviews": n, "visits": n}
                | {"visitors": n, "visit_duration": 0, "bounces": 0}
            )

    def files(self, *, reversed_columns: bool = False) -> dict[str, str]:
        suffix = f"_{min(self.days):%Y%m%d}_{max(self.days):%Y%m%d}.csv"
        files = {}
        for table, columns in PLAUSIBLE_COLUMNS.items():
            order = list(reversed(columns)) if reversed_columns else columns
            files[table + suffix] = csv_text(columns, self.rows[table], order=order)
        return files

    def zip(self, **kwargs) -> bytes:
        return zipped(self.files(**kwargs))


def days_from(first: date, n: int) -> list[date]:
    return [first + timedelta(days=i) for i in range(n)]


def import_peer(tmp_path, peer, content: bytes, *args, name="export.zip"):
    path = tmp_path / name
    path.write_bytes(content)
    out, err = io.StringIO(), io.StringIO()
    call_command("beacons_import_peer", peer, str(path), "--site", first_site().domain, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def import_refused(tmp_path, peer, content: bytes, *args, name="export.zip") -> tuple[str, str]:
    path = tmp_path / name
    path.write_bytes(content)
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as refused:
        call_command(
            "beacons_import_peer", peer, str(path), "--site", first_site().domain, *args, stdout=out, stderr=err
        )
    return str(refused.value), err.getvalue()


# --- reading counters back ---------------------------------------------------------------------


def stored(slug: str, *, granularity=G.DAY, dimension: str = "", identifier: str | None = "") -> Counter:
    """{(local day or bucket start, identifier): count} of a type's counters of one axis."""
    zone = bucket_zone(first_site())
    rows = BeaconAggregate.objects.filter(
        site=first_site(), definition__slug=slug, dimension=dimension, granularity=granularity
    )
    if identifier is not None:
        rows = rows.filter(identifier=identifier)
    found = Counter()
    for start, value, count in rows.values_list("period_start", "identifier", "count"):
        key = start.astimezone(zone).date() if granularity in (G.DAY, G.MONTH, G.YEAR) else start
        found[(key, value) if identifier is None else key] += count
    return found


def counters_snapshot() -> set:
    return set(
        BeaconAggregate.objects.values_list(
            "definition__slug", "dimension", "identifier", "granularity", "period_start", "count"
        )
    )


# --- Plausible -------------------------------------------------------------------------------------


def test_plausible_export_imports_its_daily_figures(tmp_path):
    export = PlausibleExport(days_from(FIRST_DAY, 10))
    out, _ = import_peer(tmp_path, "plausible", export.zip())

    assert stored("page_view") == Counter(export.page_views)
    assert stored("page_view", identifier=None) == Counter(
        {(day, page): n for (day, page), n in export.by_page.items()}
        | {(d, ""): n for d, n in export.page_views.items()}
    )
    assert stored("page_view", dimension="source", identifier=None) == export.by_source
    assert stored("page_view", dimension="browser", identifier=None) == export.by_browser
    assert stored("page_view", dimension="country", identifier=None) == export.by_country
    assert stored("page_view", dimension="utm_campaign", identifier=None) == Counter(
        {(day, "launch"): n for (day, source), n in export.by_source.items() if source == "Twitter"}
    )
    for slug in ("signup", "outbound_link:click", "404"):
        assert stored(slug) == Counter({day: n for (day, s), n in export.events.items() if s == slug})
    assert stored("404", identifier="/old-page") == stored("404")  # the page a goal names, as live events count
    assert not BeaconAggregate.objects.filter(definition__slug="outbound_link:click").exclude(identifier="").exists()
    assert stored(VisitSlug.VISITS) == Counter(export.visits)
    assert stored(VisitSlug.EXITS) == Counter(export.visits)  # one exit per visit
    assert sum(stored(VisitSlug.VISITS, identifier=None).values()) == 2 * sum(export.visits.values())  # pages + total
    assert "10 days (2025-03-01 – 2025-03-10)" in out
    assert f"10 days, {sum(export.page_views.values()):,} page views" in out


def test_plausible_days_roll_up_into_months_and_years_not_hours(tmp_path):
    export = PlausibleExport(days_from(date(2025, 1, 28), 7))
    import_peer(tmp_path, "plausible", export.zip())

    months = Counter()
    for day, n in export.page_views.items():
        months[date(day.year, day.month, 1)] += n
    assert stored("page_view", granularity=G.MONTH) == months
    assert stored("page_view", granularity=G.YEAR) == Counter({date(2025, 1, 1): sum(export.page_views.values())})
    assert not BeaconAggregate.objects.filter(granularity__in=[G.HOUR, G.MINUTE]).exists()


def test_plausible_days_are_the_sites_local_days(tmp_path):
    first_site_zone("Europe/Berlin")
    export = PlausibleExport(days_from(FIRST_DAY, 2))
    import_peer(tmp_path, "plausible", export.zip())

    starts = set(
        BeaconAggregate.objects.filter(granularity=G.DAY, definition__slug="page_view").values_list(
            "period_start", flat=True
        )
    )
    assert starts == {datetime(2025, 2, 28, 23, tzinfo=UTC), datetime(2025, 3, 1, 23, tzinfo=UTC)}


def test_plausible_unique_visitors_are_kept_as_imported_figures_not_sketches(tmp_path):
    export = PlausibleExport(days_from(FIRST_DAY, 5))
    out, _ = import_peer(tmp_path, "plausible", export.zip())

    kept = dict(ImportedVisitors.objects.filter(site=first_site(), source="plausible").values_list("day", "visitors"))
    assert kept == export.visitors
    assert not VisitorSketch.objects.exists()
    assert f"{sum(export.visitors.values()):,} unique visitors over 5 days (imported:" in out


def test_plausible_columns_are_read_by_header_in_any_order(tmp_path):
    export = PlausibleExport(days_from(FIRST_DAY, 3))
    import_peer(tmp_path, "plausible", export.zip(reversed_columns=True))

    assert stored("page_view") == Counter(export.page_views)
    assert stored("page_view", dimension="source", identifier=None) == export.by_source


def test_second_import_of_the_same_export_adds_nothing(tmp_path):
    export = PlausibleExport(days_from(FIRST_DAY, 4))
    import_peer(tmp_path, "plausible", export.zip())
    before = counters_snapshot()

    out, _ = import_peer(tmp_path, "plausible", export.zip())

    assert counters_snapshot() == before
    assert "4 days skipped (already imported)" in out
    assert ImportedVisitors.objects.count() == 4


def test_overlapping_export_adds_only_its_new_days(tmp_path):
    import_peer(tmp_path, "plausible", PlausibleExport(days_from(FIRST_DAY, 4), seed=1).zip())
    later = PlausibleExport(days_from(FIRST_DAY + timedelta(days=2), 4), seed=2)  # days 3–6: 3 and 4 are in both

    out, _ = import_peer(tmp_path, "plausible", later.zip())

    first = PlausibleExport(days_from(FIRST_DAY, 4), seed=1)
    expected = Counter(first.page_views) | Counter({d: n for d, n in later.page_views.items() if d not in first.days})
    assert stored("page_view") == expected
    assert "2 days skipped (already imported)" in out
    assert PeerImportDay.objects.filter(source="plausible:imported_pages.csv").count() == 6


def cell_set(text: str, *, line: int, column: str, value: str) -> str:
    """``text`` (a CSV file) with one cell changed; ``line`` counts from 1, the header."""
    rows = list(csv.reader(io.StringIO(text)))
    rows[line - 1][rows[0].index(column)] = value
    return csv_text(rows[0], [dict(zip(rows[0], row)) for row in rows[1:]])


def test_bad_rows_are_named_by_file_and_line_and_nothing_is_imported(tmp_path):
    files = PlausibleExport(days_from(FIRST_DAY, 3)).files()
    pages, events = (next(n for n in files if n.startswith(table)) for table in ("imported_pages", "imported_custom"))
    files[pages] = cell_set(files[pages], line=5, column="date", value="yesterday")
    files[pages] = cell_set(files[pages], line=7, column="pageviews", value="-4")
    files[events] = cell_set(files[events], line=2, column="name", value="beacons:visits")

    message, err = import_refused(tmp_path, "plausible", zipped(files))

    assert err.splitlines() == [
        "imported_pages_20250301_20250303.csv line 5: date: 'yesterday' is not a date like 2024-01-31",
        f"imported_pages_20250301_20250303.csv line 7: pageviews: '-4' is not a whole number from 0 to {2**63 - 1:,}",
        "imported_custom_events_20250301_20250303.csv line 2: event name 'beacons:visits' names one of Beacons' own types",
    ]
    assert "nothing imported: 3 problems" in message
    assert not BeaconAggregate.objects.exists()
    assert not PeerImportDay.objects.exists() and not ImportedVisitors.objects.exists()
    assert not BeaconDefinition.objects.filter(slug__in=["signup", "outbound_link:click"]).exists()


def test_a_count_that_is_not_a_whole_number_is_named(tmp_path):
    files = PlausibleExport(days_from(FIRST_DAY, 1)).files()
    visitors = next(name for name in files if name.startswith("imported_visitors"))
    files[visitors] = cell_set(files[visitors], line=2, column="pageviews", value="12.5")

    _, err = import_refused(tmp_path, "plausible", zipped(files))

    assert f"{visitors} line 2: pageviews: '12.5' is not a whole number" in err


def test_dry_run_reports_and_writes_nothing(tmp_path):
    export = PlausibleExport(days_from(FIRST_DAY, 3))

    out, _ = import_peer(tmp_path, "plausible", export.zip(), "--dry-run")

    assert "dry run: nothing written" in out
    assert f"{sum(export.page_views.values()):,} page views" in out
    assert "event types it would register: 404, outbound_link:click, signup" in out
    assert not BeaconAggregate.objects.exists() and not PeerImportDay.objects.exists()
    assert not BeaconDefinition.objects.filter(slug="signup").exists()


def test_one_plausible_file_imports_alone(tmp_path):
    export = PlausibleExport(days_from(FIRST_DAY, 2))
    name, text = next((n, t) for n, t in export.files().items() if n.startswith("imported_visitors"))

    import_peer(tmp_path, "plausible", text.encode(), name=name)

    assert stored("page_view") == Counter(export.page_views)
    assert not BeaconAggregate.objects.exclude(identifier="").filter(definition__slug="page_view").exists()


def test_a_zip_bomb_is_refused_before_it_is_unpacked(tmp_path, settings):
    settings.BEACONS_IMPORT_MAX_UNCOMPRESSED_BYTES = 100_000
    header = ",".join(PLAUSIBLE_COLUMNS["imported_pages"]) + "\n"
    bomb = zipped({"imported_pages_20250301_20250301.csv": header + "2025-03-01,x,/,1,1,1,,\n" * 50_000})
    assert len(bomb) < 100_000

    message, _ = import_refused(tmp_path, "plausible", bomb)

    assert "BEACONS_IMPORT_MAX_UNCOMPRESSED_BYTES" in message
    assert not BeaconAggregate.objects.exists()


def test_a_gzip_bomb_is_refused_while_it_is_read(tmp_path, settings):
    settings.BEACONS_IMPORT_MAX_UNCOMPRESSED_BYTES = 100_000
    rows = [goatcounter_row("/", datetime(2025, 3, 1, 9, tzinfo=UTC))] * 20_000
    bomb = gzip.compress(csv_text(GOATCOUNTER_COLUMNS, rows).encode())
    assert len(bomb) < 100_000

    message, _ = import_refused(tmp_path, "goatcounter", bomb, name="export.csv.gz")

    assert "BEACONS_IMPORT_MAX_UNCOMPRESSED_BYTES" in message
    assert not BeaconAggregate.objects.exists()


def test_a_damaged_gzip_is_refused(tmp_path):
    rows = [goatcounter_row("/", datetime(2025, 3, 1, 9, tzinfo=UTC))] * 100
    damaged = gzip.compress(csv_text(GOATCOUNTER_COLUMNS, rows).encode())[:-30]

    message, _ = import_refused(tmp_path, "goatcounter", damaged, name="export.csv.gz")

    assert "export.csv.gz cannot be unpacked" in message
    assert not BeaconAggregate.objects.exists()


def test_a_file_that_is_not_the_tools_export_is_refused(tmp_path):
    message, _ = import_refused(tmp_path, "plausible", b"a,b\n1,2\n", name="numbers.csv")
    assert "not one of Plausible's export files" in message

    message, _ = import_refused(tmp_path, "goatcounter", b"Path,Date\n/,2025-03-01T00:00:00Z\n", name="gc.csv")
    assert "is not a GoatCounter export of format 2" in message


def test_dimension_values_go_through_the_daily_cap(tmp_path, settings):
    settings.BEACONS_MAX_VALUES_PER_DIMENSION = 2
    export = PlausibleExport(days_from(FIRST_DAY, 2))  # three browsers a day
    import_peer(tmp_path, "plausible", export.zip())

    browsers = stored("page_view", dimension="browser", identifier=None)
    assert browsers[(FIRST_DAY, "(other)")] == export.by_browser[(FIRST_DAY, "Edge")] > 0
    for day in export.days:
        assert {value for d, value in browsers if d == day} <= {"Chrome", "Safari", "(other)"}
        assert sum(n for (d, _), n in browsers.items() if d == day) == export.page_views[day]


def test_one_upload_registers_a_bounded_number_of_event_types(tmp_path):
    at = datetime(2025, 3, 1, 9, tzinfo=UTC)
    rows = [umami_row("/", at, event=f"event {n}") for n in range(peers.NEW_TYPES_MAX + 1)]

    message, _ = import_refused(tmp_path, "umami", csv_text(UMAMI_COLUMNS, rows).encode(), name="umami.csv")

    assert f"more than {peers.NEW_TYPES_MAX} new event types" in message
    assert not BeaconDefinition.objects.filter(slug__startswith="event_").exists()


def test_event_types_in_strict_mode_must_be_registered(tmp_path, settings):
    settings.BEACONS_STRICT = True
    message, err = import_refused(tmp_path, "plausible", PlausibleExport(days_from(FIRST_DAY, 1)).zip())

    assert "event type 'signup' is not registered and strict mode is on" in err
    assert not BeaconAggregate.objects.exists()


# --- GoatCounter ---------------------------------------------------------------------------------


def goatcounter_row(path, moment, *, event=False, session="s1", referrer="", scheme="", bot="0", **cells):
    return {
        "2Path": path,
        "Title": "A page",
        "Event": "true" if event else "false",
        "UserAgent": "",
        "Browser": cells.get("browser", "Firefox 128"),
        "System": cells.get("system", "Windows 10"),
        "Session": session,
        "Bot": bot,
        "Referrer": referrer,
        "Referrer scheme": scheme,
        "Screen size": cells.get("screen", "1920,1080,1"),
        "Location": cells.get("location", "US-TX"),
        "FirstVisit": "false",
        "Date": moment.isoformat().replace("+00:00", "Z"),
    }


def goatcounter_export(seed=3, days=3):
    """Hits of a few sessions a day: page views, an event, a bot; and what they add up to."""
    rng = random.Random(seed)
    rows, views, by_page, by_source, by_hour, events, sessions = [], Counter(), Counter(), Counter(), Counter(), 0, {}
    for day in days_from(FIRST_DAY, days):
        sessions[day] = set()
        for n in range(6):
            session = f"{day}-{n}"
            sessions[day].add(session)
            moment = datetime(day.year, day.month, day.day, 8 + n, rng.randint(0, 50), tzinfo=UTC)
            referrer, scheme, source = rng.choice(
                [
                    ("", "", "Direct / none"),
                    ("news.ycombinator.com/item?id=1", "h", "Hacker News"),
                    ("Google", "g", "Google"),
                ]
            )
            for i in range(rng.randint(1, 3)):
                page = rng.choice(PAGES)
                at = moment + timedelta(minutes=2 * i)
                rows.append(
                    goatcounter_row(page, at, session=session, referrer=referrer if i == 0 else "", scheme=scheme)
                )
                views[day] += 1
                by_page[(day, page)] += 1
                by_source[(day, source if i == 0 else "Direct / none")] += 1
                by_hour[bucket_start(at, G.HOUR)] += 1
        rows.append(goatcounter_row("signup-click", moment, event=True, session=session))
        events += 1
        rows.append(goatcounter_row("/", moment, bot="150", session="bot"))
    return rows, views, by_page, by_source, by_hour, events, sessions


def test_goatcounter_export_counts_every_hit_in_every_granularity(tmp_path):
    rows, views, by_page, by_source, by_hour, events, sessions = goatcounter_export()
    content = gzip.compress(csv_text(GOATCOUNTER_COLUMNS, rows).encode())

    out, _ = import_peer(tmp_path, "goatcounter", content, name="goatcounter-export-x-20250304T000000Z-0.csv.gz")

    assert stored("page_view") == Counter(views)
    assert stored("page_view", granularity=G.HOUR) == by_hour
    assert stored("page_view", granularity=G.MONTH) == Counter({date(2025, 3, 1): sum(views.values())})
    assert stored("page_view", identifier=None) - Counter({(d, ""): n for d, n in views.items()}) == by_page
    assert stored("page_view", dimension="source", identifier=None) == by_source
    assert stored("page_view", dimension="browser", identifier=None) == Counter(
        {(d, "Firefox"): n for d, n in views.items()}
    )
    assert stored("page_view", dimension="os", identifier=None) == Counter(
        {(d, "Windows"): n for d, n in views.items()}
    )
    assert stored("page_view", dimension="country", identifier=None) == Counter(
        {(d, "US"): n for d, n in views.items()}
    )
    assert sum(stored("signup-click").values()) == events
    visitors = dict(ImportedVisitors.objects.filter(source="goatcounter").values_list("day", "visitors"))
    assert visitors == {day: len(seen) for day, seen in sessions.items()}  # the bots' session is not one
    assert "3 rows skipped" in out  # the bots


def test_goatcounter_sessions_become_visits(tmp_path):
    at = datetime(2025, 3, 2, 10, tzinfo=UTC)
    rows = [
        goatcounter_row("/", at, session="a", referrer="Google", scheme="g"),
        goatcounter_row("/pricing", at + timedelta(minutes=3), session="a"),
        goatcounter_row("/docs/start", at + timedelta(minutes=5), session="b"),
        goatcounter_row("/", at + timedelta(hours=5), session="a"),  # past the gap: a second visit
    ]
    import_peer(tmp_path, "goatcounter", csv_text(GOATCOUNTER_COLUMNS, rows).encode(), name="gc.csv")

    day = date(2025, 3, 2)
    assert stored(VisitSlug.VISITS) == Counter({day: 3})
    assert stored(VisitSlug.BOUNCES) == Counter({day: 2})
    assert stored(VisitSlug.SECONDS) == Counter({day: 180})
    assert stored(VisitSlug.EXITS, identifier=None) == Counter(
        {(day, ""): 3, (day, "/pricing"): 1, (day, "/docs/start"): 1, (day, "/"): 1}
    )
    assert stored(VisitSlug.VISITS, dimension="source", identifier=None) == Counter(
        {(day, "Google"): 1, (day, "Direct / none"): 2}
    )


def test_goatcounter_second_import_adds_nothing_and_a_later_export_only_new_days(tmp_path):
    rows, views, *_ = goatcounter_export(days=2)
    import_peer(tmp_path, "goatcounter", csv_text(GOATCOUNTER_COLUMNS, rows).encode(), name="gc.csv")
    before = counters_snapshot()
    import_peer(tmp_path, "goatcounter", csv_text(GOATCOUNTER_COLUMNS, rows).encode(), name="gc.csv")
    assert counters_snapshot() == before

    more, more_views, *_ = goatcounter_export(seed=9, days=3)  # days 1–3: only the third is new
    out, _ = import_peer(tmp_path, "goatcounter", csv_text(GOATCOUNTER_COLUMNS, more).encode(), name="gc.csv")

    third = FIRST_DAY + timedelta(days=2)
    assert stored("page_view") == Counter(views) | Counter({third: more_views[third]})
    assert "2 days skipped (already imported)" in out


def test_goatcounter_bad_rows_are_named_and_nothing_is_imported(tmp_path):
    rows, *_ = goatcounter_export(days=1)
    rows[1]["Date"] = "2025-13-01T00:00:00Z"
    rows[3]["Event"] = "maybe"
    message, err = import_refused(tmp_path, "goatcounter", csv_text(GOATCOUNTER_COLUMNS, rows).encode(), name="gc.csv")

    assert "gc.csv line 3: date: '2025-13-01T00:00:00Z' is not a date and time" in err
    assert "gc.csv line 5: event: 'maybe' is not true or false" in err
    assert "2 problems" in message
    assert not BeaconAggregate.objects.exists()


# --- Umami ----------------------------------------------------------------------------------------


def umami_row(path, moment, *, session="5a1f0c2e-0000-4000-8000-000000000001", visit="", event="", **cells):
    return {
        "website_id": "0b0c0d0e-0000-4000-8000-000000000000",
        "session_id": session,
        "visit_id": visit or session,
        "event_id": f"e-{moment.timestamp()}-{path}",
        "hostname": "example.com",
        "browser": cells.get("browser", "chrome"),
        "os": cells.get("os", "Mac OS"),
        "device": cells.get("device", "laptop"),
        "screen": "1440x900",
        "language": "en-US",
        "country": cells.get("country", "DE"),
        "region": "DE-BE",
        "city": "Berlin",
        "url_path": path,
        "url_query": cells.get("query", ""),
        "referrer_domain": cells.get("referrer", ""),
        "page_title": "A page",
        "event_type": "2" if event else "1",
        "event_name": event,
        "created_at": moment.strftime("%Y-%m-%d %H:%M:%S"),
    }


def test_umami_export_counts_page_views_events_sources_and_visitors(tmp_path):
    rng = random.Random(5)
    rows, views, by_page, by_campaign, events, sessions = (
        [],
        Counter(),
        Counter(),
        Counter(),
        Counter(),
        defaultdict(set),
    )
    for day in days_from(FIRST_DAY, 4):
        for n in range(5):
            session = f"00000000-0000-4000-8000-{day:%m%d}{n:08d}"
            at = datetime(day.year, day.month, day.day, 12, n, tzinfo=UTC)
            sessions[day].add(session)
            query = "utm_source=newsletter&utm_campaign=spring" if n == 0 else ""
            for i in range(rng.randint(1, 4)):
                page = rng.choice(PAGES)
                rows.append(umami_row(page, at + timedelta(minutes=i), session=session, query=query if i == 0 else ""))
                views[day] += 1
                by_page[(day, page)] += 1
                if query and i == 0:
                    by_campaign[(day, "spring")] += 1
            if n % 2:
                rows.append(umami_row("/pricing", at, session=session, event="checkout"))
                events[day] += 1
        rows.append({**umami_row("/", datetime(day.year, day.month, day.day, 13, tzinfo=UTC)), "event_type": "4"})
    order = list(reversed(UMAMI_COLUMNS))

    out, _ = import_peer(tmp_path, "umami", csv_text(UMAMI_COLUMNS, rows, order=order).encode(), name="umami.csv")

    assert stored("page_view") == Counter(views)
    assert stored("page_view", identifier=None) - Counter({(d, ""): n for d, n in views.items()}) == by_page
    assert stored("page_view", dimension="utm_campaign", identifier=None) == by_campaign
    assert stored("page_view", dimension="browser", identifier=None) == Counter(
        {(d, "Chrome"): n for d, n in views.items()}
    )
    assert stored("page_view", dimension="os", identifier=None) == Counter(
        {(d, "Mac OS X"): n for d, n in views.items()}
    )
    assert stored("page_view", dimension="device", identifier=None) == Counter(
        {(d, "desktop"): n for d, n in views.items()}
    )
    assert stored("checkout") == events
    assert stored("checkout", identifier="/pricing") == events
    visitors = dict(ImportedVisitors.objects.filter(source="umami").values_list("day", "visitors"))
    assert visitors == {day: len(seen) for day, seen in sessions.items()}  # a skipped row is no visitor
    assert stored(VisitSlug.VISITS) == Counter({day: 5 for day in sessions})
    assert "4 rows skipped" in out


def test_umami_created_at_without_offset_is_utc_and_lands_in_the_sites_day(tmp_path):
    first_site_zone("America/New_York")
    rows = [umami_row("/", datetime(2025, 3, 2, 3, tzinfo=UTC))]  # 22:00 on 1 March in New York

    import_peer(tmp_path, "umami", csv_text(UMAMI_COLUMNS, rows).encode(), name="umami.csv")

    assert stored("page_view") == Counter({date(2025, 3, 1): 1})
    assert PeerImportDay.objects.get().day == date(2025, 3, 1)


# --- the admin --------------------------------------------------------------------------------------


IMPORT_PERMISSIONS = ("beacons.add_beaconaggregate", "beacons.change_beaconaggregate", "beacons.view_beaconaggregate")


@pytest.mark.parametrize(
    ("staff", "permissions", "status"),
    [
        (False, IMPORT_PERMISSIONS, 302),  # not staff: the admin's login page
        (True, ("beacons.view_beaconaggregate",), 403),  # may see counts, not import them
        (True, IMPORT_PERMISSIONS, 200),
    ],
)
def test_admin_peer_import_needs_the_import_permission(client, make_staff, staff, permissions, status):
    user = make_staff(permissions=permissions, is_staff=staff)
    client.force_login(user)
    upload = io.BytesIO(PlausibleExport(days_from(FIRST_DAY, 2)).zip())
    upload.name = "plausible_export.zip"

    response = client.post(
        reverse("admin:beacons_beaconaggregate_import_peer"),
        {"peer": "plausible", "site": first_site().pk, "file": upload},
    )

    assert response.status_code == status
    assert BeaconAggregate.objects.exists() == (status == 200)


def test_admin_import_page_offers_the_peer_import_and_shows_what_was_imported(admin_client, tmp_path):
    page = admin_client.get(reverse("admin:beacons_beaconaggregate_import"))
    assert reverse("admin:beacons_beaconaggregate_import_peer") in page.content.decode()
    upload = io.BytesIO(PlausibleExport(days_from(FIRST_DAY, 3)).zip())
    upload.name = "plausible_export.zip"

    response = admin_client.post(
        reverse("admin:beacons_beaconaggregate_import_peer"),
        {"peer": "plausible", "site": first_site().pk, "file": upload},
    )

    text = response.content.decode()
    assert response.status_code == 200
    assert "imported_pages_20250301_20250303.csv" in text
    assert "Imported unique visitors" in text and "imported" in text
    assert PeerImportDay.objects.filter(source="plausible:imported_pages.csv").count() == 3
    later = admin_client.get(reverse("admin:beacons_beaconaggregate_import_peer")).content.decode()
    assert "Plausible (imported)" in later and "plausible:imported_pages.csv" in later


def test_the_counts_import_on_the_same_page_still_previews(admin_client):
    upload = io.BytesIO(b"event_type,granularity,period_start,count\npage_view,day,2025-03-01T00:00:00+00:00,5\n")
    upload.name = "counts.csv"

    preview = admin_client.post(
        reverse("admin:beacons_beaconaggregate_import"),
        {"import_file": upload, "format": "0", "resource": "0", "mode": "merge"},
    )

    assert preview.context["confirm_form"] is not None
    assert preview.context["peer_form"] is not None


def test_admin_peer_import_lists_bad_rows_and_writes_nothing(admin_client):
    files = PlausibleExport(days_from(FIRST_DAY, 1)).files()
    pages = next(name for name in files if name.startswith("imported_pages"))
    files[pages] = files[pages].replace("2025-03-01", "March", 1)
    upload = io.BytesIO(zipped(files))
    upload.name = "export.zip"

    response = admin_client.post(
        reverse("admin:beacons_beaconaggregate_import_peer"),
        {"peer": "plausible", "site": first_site().pk, "file": upload},
    )

    assert f"{pages} line 2: date: &#x27;March&#x27; is not a date" in response.content.decode()
    assert not BeaconAggregate.objects.exists()


def test_admin_peer_import_refuses_an_upload_over_the_limit(admin_client, settings):
    settings.BEACONS_IMPORT_MAX_UNCOMPRESSED_BYTES = 1000
    upload = io.BytesIO(PlausibleExport(days_from(FIRST_DAY, 5)).zip())
    upload.name = "export.zip"

    response = admin_client.post(
        reverse("admin:beacons_beaconaggregate_import_peer"),
        {"peer": "plausible", "site": first_site().pk, "file": upload},
    )

    assert "BEACONS_IMPORT_MAX_UNCOMPRESSED_BYTES" in response.content.decode()
    assert not BeaconAggregate.objects.exists()


# --- names ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Signup", "signup"),
        ("Outbound Link: Click", "outbound_link:click"),
        ("/click/Download PDF", "click_download_pdf"),
    ],
)
def test_event_names_become_event_types(name, slug):
    assert peers.event_type_of(name) == slug


@pytest.mark.parametrize(
    ("text", "browser", "os"),
    [("Chrome 120", "Chrome", "Windows"), ("edge-chromium", "Edge", "Windows")],
)
def test_browser_and_system_names_lose_their_versions(text, browser, os):
    assert peers.browser_name(text) == browser
    assert peers.os_name("Windows 10") == os
    assert peers.os_name("macOS 14.1") == "Mac OS X"
    assert peers.browser_name("") == "(unknown)"
