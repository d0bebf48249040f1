"""Importing Plausible, GoatCounter and Umami exports (``beacons.transfer.peers``): the files are
generated here from each tool's documented columns, imported, and read back."""

import csv
import gzip
import io
import json
import random
import re
import zipfile
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError
from django.urls import reverse

from beacons import sites
from beacons.counting.buckets import bucket_start, bucket_zone
from beacons.models import (
    BeaconAggregate,
    BeaconDefinition,
    DroppedValues,
    ImportedVisitors,
    PeerImportDay,
    Site,
    VisitorSketch,
)
from beacons.models import Granularity as G
from beacons.registry import VisitSlug
from beacons.transfer import peers

from .conftest import BROWSER_UA, first_site, first_site_zone

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


def test_plausible_visit_figures_systems_devices_and_mediums_are_imported(tmp_path):
    export = PlausibleExport(days_from(FIRST_DAY, 2))
    import_peer(tmp_path, "plausible", export.zip())

    visitors = export.rows["imported_visitors"]
    assert stored(VisitSlug.BOUNCES) == Counter({date.fromisoformat(r["date"]): r["bounces"] for r in visitors})
    assert stored(VisitSlug.SECONDS) == Counter({date.fromisoformat(r["date"]): r["visit_duration"] for r in visitors})
    assert stored(VisitSlug.PAGES) == Counter(export.page_views)
    systems, devices = Counter(), Counter()
    for row in export.rows["imported_operating_systems"]:
        systems[(date.fromisoformat(row["date"]), {"Mac": "Mac OS X"}.get(row["operating_system"], "Linux"))] += row[
            "pageviews"
        ]
    for row in export.rows["imported_devices"]:
        devices[(date.fromisoformat(row["date"]), row["device"].lower().replace("laptop", "desktop"))] += row[
            "pageviews"
        ]
    assert stored("page_view", dimension="os", identifier=None) == systems
    assert stored("page_view", dimension="device", identifier=None) == devices
    assert stored("page_view", dimension="utm_medium", identifier=None) == Counter(
        {(day, "social"): n for (day, source), n in export.by_source.items() if source == "Twitter"}
    )


def test_plausibles_own_events_in_the_custom_events_file_are_skipped(tmp_path):
    rows = [
        {"date": "2025-03-01", "name": name, "events": 4} for name in ("pageview", "Engagement", "pageleave", "Signup")
    ]

    out, _ = import_peer(
        tmp_path, "plausible", csv_text(["date", "name", "events"], rows).encode(), name="imported_custom_events.csv"
    )

    assert stored("signup") == Counter({date(2025, 3, 1): 4})
    assert not BeaconDefinition.objects.filter(slug__in=["pageview", "engagement", "pageleave"]).exists()
    assert "4 signup events, 3 rows skipped" in out


def test_plausible_entry_pages_with_a_visits_column_for_entrances_are_read(tmp_path):
    rows = [{"date": "2025-03-01", "entry_page": "/pricing", "visits": 6, "bounces": 2}]

    import_peer(
        tmp_path,
        "plausible",
        csv_text(["date", "entry_page", "visits", "bounces"], rows).encode(),
        name="imported_entry_pages.csv",
    )

    assert stored(VisitSlug.VISITS, identifier="/pricing") == Counter({date(2025, 3, 1): 6})
    assert stored(VisitSlug.BOUNCES, identifier="/pricing") == Counter({date(2025, 3, 1): 2})


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


def test_event_types_a_refused_import_would_have_registered_are_registered_when_next_counted(tmp_path, client):
    files = PlausibleExport(days_from(FIRST_DAY, 1)).files()
    pages = next(name for name in files if name.startswith("imported_pages"))
    files[pages] = cell_set(files[pages], line=2, column="date", value="yesterday")
    import_refused(tmp_path, "plausible", zipped(files))

    beacon = {"event_type": "signup", "site": first_site().domain}
    client.post("/beacon", data=json.dumps(beacon), content_type="application/json", HTTP_USER_AGENT=BROWSER_UA)

    assert BeaconAggregate.objects.filter(definition__slug="signup", granularity=G.DAY).get().count == 1


def test_a_page_with_a_nul_character_is_a_problem(tmp_path):
    rows = [goatcounter_row("/a\x00b", datetime(2025, 3, 1, 9, tzinfo=UTC))]

    _, err = import_refused(tmp_path, "goatcounter", csv_text(GOATCOUNTER_COLUMNS, rows).encode(), name="gc.csv")

    assert err.splitlines() == ["gc.csv line 2: path: contains a NUL character"]


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


def test_an_upload_may_register_50_event_types_and_not_51(tmp_path):
    at = datetime(2025, 3, 1, 9, tzinfo=UTC)
    fifty = [umami_row("/", at, event=f"event {n}") for n in range(50)]
    import_peer(tmp_path, "umami", csv_text(UMAMI_COLUMNS, fifty).encode(), name="umami.csv")
    assert BeaconDefinition.objects.filter(slug__startswith="event_").count() == 50

    more = [umami_row("/", at + timedelta(days=1), event=f"more {n}") for n in range(51)]
    message, _ = import_refused(tmp_path, "umami", csv_text(UMAMI_COLUMNS, more).encode(), name="umami.csv")
    assert "more than 50 new event types" in message


def test_values_over_the_daily_cap_are_tallied_as_dropped(tmp_path, settings):
    settings.BEACONS_MAX_VALUES_PER_DIMENSION = 2
    export = PlausibleExport(days_from(FIRST_DAY, 1))  # three browsers
    import_peer(tmp_path, "plausible", export.zip())

    tally = DroppedValues.objects.filter(definition__slug="page_view", dimension="browser")
    assert dict(tally.values_list("day", "count")) == {FIRST_DAY: export.by_browser[(FIRST_DAY, "Edge")]}


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


def test_goatcounter_import_reports_what_the_file_counts_under_its_kind_of_file(tmp_path):
    at = datetime(2025, 3, 2, 10, tzinfo=UTC)
    rows = [
        goatcounter_row("/", at, session="a", referrer="Google", scheme="g"),
        goatcounter_row("/pricing", at + timedelta(minutes=3), session="a"),
        goatcounter_row("signup", at + timedelta(minutes=4), session="a", event=True),
        goatcounter_row("/docs/start", at + timedelta(minutes=5), session="b"),
        goatcounter_row("/", at + timedelta(minutes=6), session="bot", bot="150"),
    ]

    out, _ = import_peer(tmp_path, "goatcounter", csv_text(GOATCOUNTER_COLUMNS, rows).encode(), name="gc.csv")

    assert out.splitlines()[0] == (
        "gc.csv: 5 rows, 1 days (2025-03-02 – 2025-03-02), 3 page views, 2 visits, 1 signup events, "
        "2 unique visitors over 1 days (imported: GoatCounter's own daily figures, kept apart from Beacons' "
        "visitors), 1 rows skipped"
    )
    assert out.splitlines()[-1].endswith(": 1 days, 3 page views")
    assert list(PeerImportDay.objects.values_list("source", "day")) == [("goatcounter:export.csv", date(2025, 3, 2))]

    again, _ = import_peer(tmp_path, "goatcounter", csv_text(GOATCOUNTER_COLUMNS, rows).encode(), name="gc.csv")
    assert again.splitlines()[0] == "gc.csv: 5 rows, no new days, 1 days skipped (already imported), 5 rows skipped"


def test_hits_at_the_start_of_an_hour_count_in_that_hour(tmp_path):
    hours = [datetime(2025, 3, 2, hour, tzinfo=UTC) for hour in (9, 10, 11)]
    rows = [goatcounter_row("/", at, session=f"s{at.hour}") for at in hours]
    rows += [goatcounter_row("signup", at, event=True, session=f"s{at.hour}") for at in hours]

    import_peer(tmp_path, "goatcounter", csv_text(GOATCOUNTER_COLUMNS, rows).encode(), name="gc.csv")

    assert stored("page_view", granularity=G.HOUR) == Counter(dict.fromkeys(hours, 1))
    assert stored("signup", granularity=G.HOUR) == Counter(dict.fromkeys(hours, 1))


@pytest.mark.parametrize(
    ("peer", "name", "text", "missing"),
    [
        ("plausible", "imported_pages.csv", "date,hostname,pageviews\n2025-03-01,x,3\n", "page"),
        ("goatcounter", "gc.csv", "2Path,Event\n/,false\n", "date"),
        ("umami", "umami.csv", "url_path,event_type\n/,1\n", "created_at"),
    ],
)
def test_a_file_without_a_column_it_needs_is_refused_naming_it(tmp_path, peer, name, text, missing):
    message, _ = import_refused(tmp_path, peer, text.encode(), name=name)

    columns = ", ".join(text.split("\n")[0].lower().removeprefix("2").split(","))
    assert f"{name} has no {missing} column (its columns: {columns})" in message
    assert not BeaconAggregate.objects.exists()


def test_a_plausible_file_of_no_count_it_imports_is_refused(tmp_path):
    message, _ = import_refused(tmp_path, "plausible", b"date,page\n2025-03-01,/\n", name="imported_pages.csv")

    assert "imported_pages.csv has none of the columns pageviews" in message


def test_a_file_whose_header_is_no_utf8_is_refused(tmp_path):
    message, _ = import_refused(tmp_path, "umami", "url_path,créé\n".encode("latin-1"), name="umami.csv")

    assert "umami.csv is not a UTF-8 CSV file" in message


@pytest.mark.parametrize(
    ("cell", "shown"), [("x" * 40, repr("x" * 40)), ("x" * 41, repr("x" * 39 + "…"))], ids=["40", "41"]
)
def test_a_bad_cell_is_shown_whole_up_to_40_characters(tmp_path, cell, shown):
    text = csv_text(["date", "pageviews"], [{"date": cell, "pageviews": 1}])

    _, err = import_refused(tmp_path, "plausible", text.encode(), name="imported_visitors.csv")

    assert err.splitlines() == [f"imported_visitors.csv line 2: date: {shown} is not a date like 2024-01-31"]


def test_counts_up_to_what_a_counter_holds_are_read(tmp_path):
    most = 2**63 - 1
    rows = [{"date": "2025-03-01", "pageviews": most}, {"date": "2025-03-02", "pageviews": most + 1}]
    text = csv_text(["date", "pageviews"], rows).encode()

    _, err = import_refused(tmp_path, "plausible", text, "--dry-run", name="imported_visitors.csv")

    assert err.splitlines() == [
        f"imported_visitors.csv line 3: pageviews: '{most + 1}' is not a whole number from 0 to {most:,}"
    ]


@pytest.mark.parametrize("spare", [0, 1])
def test_an_upload_that_unpacks_to_the_limit_is_read_and_one_byte_more_refused(tmp_path, settings, spare):
    content = csv_text(GOATCOUNTER_COLUMNS, [goatcounter_row("/", datetime(2025, 3, 1, 9, tzinfo=UTC))]).encode()
    settings.BEACONS_IMPORT_MAX_UNCOMPRESSED_BYTES = len(content) - 1 + spare

    if spare:
        import_peer(tmp_path, "goatcounter", content, name="gc.csv")
        assert stored("page_view") == Counter({date(2025, 3, 1): 1})
    else:
        message, _ = import_refused(tmp_path, "goatcounter", content, name="gc.csv")
        assert "BEACONS_IMPORT_MAX_UNCOMPRESSED_BYTES" in message


def test_one_gzipped_plausible_file_imports_alone(tmp_path):
    text = csv_text(["date", "pageviews"], [{"date": "2025-03-01", "pageviews": 9}])

    out, _ = import_peer(
        tmp_path, "plausible", gzip.compress(text.encode()), name="imported_visitors_20250301_20250301.csv.gz"
    )

    assert stored("page_view") == Counter({date(2025, 3, 1): 9})
    assert out.startswith("imported_visitors_20250301_20250301.csv: 1 rows")


def test_a_count_column_a_plausible_file_lacks_is_noted_and_the_rest_imported(tmp_path):
    row = {"date": "2025-03-01", "visitors": 2, "pageviews": 5, "visits": 3}
    text = csv_text(["date", "visitors", "pageviews", "visits"], [row])

    out, _ = import_peer(tmp_path, "plausible", text.encode(), name="imported_visitors_20250301_20250301.csv")

    assert out.splitlines()[0] == (
        "imported_visitors_20250301_20250301.csv: 1 rows, 1 days (2025-03-01 – 2025-03-01), 5 page views, "
        "3 visits, 2 unique visitors over 1 days (imported: Plausible's own daily figures, kept apart from "
        "Beacons' visitors), no bounces column: not imported, no visit_duration column: not imported"
    )
    assert stored("page_view") == Counter({date(2025, 3, 1): 5})


@pytest.mark.parametrize(
    ("peer", "cell", "problem"),
    [
        ("plausible", "1969-12-31", "date: '1969-12-31' is outside the years 1970–2200"),
        ("plausible", "2201-01-01", "date: '2201-01-01' is outside the years 1970–2200"),
        ("goatcounter", "1969-12-31T23:00:00Z", "date: '1969-12-31T23:00:00Z' is outside the years 1970–2200"),
    ],
)
def test_a_date_outside_the_years_counters_hold_is_a_problem(tmp_path, peer, cell, problem):
    if peer == "plausible":
        name, text = "imported_visitors.csv", csv_text(["date", "pageviews"], [{"date": cell, "pageviews": 1}])
    else:
        name = "gc.csv"
        text = csv_text(GOATCOUNTER_COLUMNS, [goatcounter_row("/", datetime(2025, 3, 1, tzinfo=UTC)) | {"Date": cell}])

    _, err = import_refused(tmp_path, peer, text.encode(), name=name)

    assert err.splitlines() == [f"{name} line 2: {problem}"]


def test_dates_in_the_first_and_the_last_year_counters_hold_are_read(tmp_path):
    rows = [{"date": "1970-01-01", "pageviews": 1}, {"date": "2200-12-31", "pageviews": 1}]
    text = csv_text(["date", "pageviews"], rows).encode()

    _, err = import_refused(tmp_path, "plausible", text, "--dry-run", name="imported_visitors.csv")

    assert err.splitlines() == ["imported_visitors.csv line 3: date: 2200-12-31 is in the future"]


def test_rows_up_to_a_day_ahead_of_the_clock_are_imported_and_later_ones_are_in_the_future(tmp_path, monkeypatch):
    now = datetime(2025, 3, 10, 12, tzinfo=UTC)
    monkeypatch.setattr(peers.timezone, "now", lambda: now)
    latest = now + timedelta(days=1)  # the exporting server's clock may run ahead
    rows = [goatcounter_row("/", latest), goatcounter_row("/", latest + timedelta(seconds=1))]
    days = [{"date": "2025-03-11", "pageviews": 1}, {"date": "2025-03-12", "pageviews": 1}]

    _, goatcounter_err = import_refused(
        tmp_path, "goatcounter", csv_text(GOATCOUNTER_COLUMNS, rows).encode(), name="gc.csv"
    )
    _, plausible_err = import_refused(
        tmp_path, "plausible", csv_text(["date", "pageviews"], days).encode(), name="imported_visitors.csv"
    )

    assert goatcounter_err.splitlines() == ["gc.csv line 3: date: 2025-03-11T12:00:01Z is in the future"]
    assert plausible_err.splitlines() == ["imported_visitors.csv line 3: date: 2025-03-12 is in the future"]


def test_a_goatcounter_date_with_an_offset_is_read_at_that_offset(tmp_path):
    rows = [goatcounter_row("/", datetime(2025, 3, 1, tzinfo=UTC)) | {"Date": "2025-03-02T01:30:00+02:00"}]

    import_peer(tmp_path, "goatcounter", csv_text(GOATCOUNTER_COLUMNS, rows).encode(), name="gc.csv")

    assert stored("page_view", granularity=G.HOUR) == Counter({datetime(2025, 3, 1, 23, tzinfo=UTC): 1})


def test_goatcounters_format_1_reads_the_user_agent_in_browser_and_format_2_the_screens_device(tmp_path):
    at = datetime(2025, 3, 1, 9, tzinfo=UTC)
    format_1 = [c if c != "2Path" else "1Path" for c in GOATCOUNTER_COLUMNS]
    row = goatcounter_row("/", at, browser=BROWSER_UA, system="") | {"1Path": "/"}
    import_peer(tmp_path, "goatcounter", csv_text(format_1, [row]).encode(), name="gc1.csv")
    import_peer(
        tmp_path, "goatcounter", csv_text(GOATCOUNTER_COLUMNS, [goatcounter_row("/", at + timedelta(days=1))]).encode()
    )

    browsers = stored("page_view", dimension="browser", identifier=None)
    assert browsers == Counter({(date(2025, 3, 1), "Chrome"): 1, (date(2025, 3, 2), "Firefox"): 1})
    assert stored("page_view", dimension="device", identifier=None) == Counter(
        {(date(2025, 3, 1), "desktop"): 1, (date(2025, 3, 2), "desktop"): 1}
    )


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("::", "event name '::': name must contain a letter or digit"),
        ("error", "event type 'error' is a javascript error type, not an event"),
    ],
)
def test_an_event_name_that_makes_no_custom_event_type_is_a_problem(tmp_path, name, problem):
    rows = [umami_row("/", datetime(2025, 3, 1, 9, tzinfo=UTC), event=name)]

    _, err = import_refused(tmp_path, "umami", csv_text(UMAMI_COLUMNS, rows).encode(), name="umami.csv")

    assert err.splitlines() == [f"umami.csv line 2: {problem}"]


def test_an_import_needs_the_page_view_type(tmp_path):
    BeaconDefinition.objects.filter(slug="page_view").update(kind=BeaconDefinition.Kind.CUSTOM)
    rows = [umami_row("/", datetime(2025, 3, 1, 9, tzinfo=UTC))]

    message, _ = import_refused(tmp_path, "umami", csv_text(UMAMI_COLUMNS, rows).encode(), name="umami.csv")

    assert "there is no page_view event type of kind page view" in message


def test_minutes_are_counted_for_hits_within_the_types_fine_retention_only(tmp_path, monkeypatch):
    now = datetime(2025, 3, 10, 12, tzinfo=UTC)
    monkeypatch.setattr(peers.timezone, "now", lambda: now)
    BeaconDefinition.objects.create(slug="signup", name="Sign-ups", granularities="M,H,D", fine_retention_days=7)
    oldest = now - timedelta(days=7)  # the first moment the type keeps minutes of
    rows = [goatcounter_row("signup", at, event=True) for at in (oldest - timedelta(seconds=1), oldest)]

    import_peer(tmp_path, "goatcounter", csv_text(GOATCOUNTER_COLUMNS, rows).encode(), name="gc.csv")

    assert stored("signup", granularity=G.MINUTE) == Counter({oldest: 1})
    assert sum(stored("signup", granularity=G.HOUR).values()) == 2


@pytest.mark.parametrize(
    ("peer", "name"), [("plausible", "imported_visitors.csv"), ("goatcounter", "gc.csv"), ("umami", "umami.csv")]
)
def test_blank_lines_are_passed_over_and_a_row_of_the_wrong_width_is_a_problem(tmp_path, peer, name):
    header = {
        "plausible": "date,pageviews",
        "goatcounter": ",".join(GOATCOUNTER_COLUMNS),
        "umami": ",".join(UMAMI_COLUMNS),
    }
    cells = len(header[peer].split(","))
    text = header[peer] + "\n\n , \n" + "x," * cells + "x\n"

    _, err = import_refused(tmp_path, peer, text.encode(), name=name)

    assert err.splitlines() == [f"{name} line 4: {cells + 1} cells where the header has {cells}"]


def test_a_row_that_is_no_utf8_is_refused_naming_its_line(tmp_path):
    text = ("date,pageviews\n" + "2025-03-01,1\n" * 2000).encode() + "2025-03-02,1 café\n".encode("latin-1")

    message, _ = import_refused(tmp_path, "plausible", text, name="imported_visitors.csv")

    assert re.search(r"imported_visitors.csv line \d+ cannot be read as UTF-8 CSV", message)


@pytest.mark.parametrize(
    ("peer", "text", "said"),
    [
        ("umami", "", "umami.csv has no url_path, event_type, created_at column (its columns: none)"),
        ("goatcounter", "", "its first column is missing, not “2Path”"),
        ("goatcounter", "Path,Date\n", "its first column is 'path', not “2Path”"),
    ],
)
def test_a_file_of_no_header_the_tool_writes_is_refused_saying_what_it_found(tmp_path, peer, text, said):
    message, _ = import_refused(tmp_path, peer, text.encode(), name=f"{peer}.csv")

    assert said in message


@pytest.mark.parametrize(
    ("spelling", "event"),
    [("TRUE", True), ("1", True), ("t", True), ("yes", True)]
    + [("False", False), ("0", False), ("f", False), ("no", False), ("", False)],
)
def test_goatcounters_event_column_reads_each_spelling_of_true_and_false(tmp_path, spelling, event):
    rows = [goatcounter_row("signup", datetime(2025, 3, 1, 9, tzinfo=UTC)) | {"Event": spelling}]

    import_peer(tmp_path, "goatcounter", csv_text(GOATCOUNTER_COLUMNS, rows).encode(), name="gc.csv")

    assert (sum(stored("signup").values()), sum(stored("page_view").values())) == ((1, 0) if event else (0, 1))


@pytest.mark.parametrize(
    ("peer", "name", "text", "problem"),
    [
        ("plausible", "imported_pages.csv", "date,page,pageviews\n2025-03-01, ,4\n", "page: a page is required"),
        ("goatcounter", "gc.csv", None, "path: a page is required"),
        ("umami", "umami.csv", None, "path: a page is required"),
    ],
)
def test_a_page_view_of_no_page_is_a_problem(tmp_path, peer, name, text, problem):
    at = datetime(2025, 3, 1, 9, tzinfo=UTC)
    if peer == "goatcounter":
        text = csv_text(GOATCOUNTER_COLUMNS, [goatcounter_row(" ", at)])
    elif peer == "umami":
        text = csv_text(UMAMI_COLUMNS, [umami_row("", at)])

    _, err = import_refused(tmp_path, peer, text.encode(), name=name)

    assert err.splitlines() == [f"{name} line 2: {problem}"]


def test_a_file_that_starts_as_a_zip_and_is_none_is_refused(tmp_path):
    message, _ = import_refused(tmp_path, "plausible", b"PK\x03\x04 not the rest of a zip")

    assert "the file is not a readable zip file" in message


def test_a_goatcounter_zip_passes_over_what_is_no_csv_file(tmp_path):
    rows = [goatcounter_row("/", datetime(2025, 3, 1, 9, tzinfo=UTC))]

    out, _ = import_peer(
        tmp_path, "goatcounter", zipped({"README.txt": "hello", "gc.csv": csv_text(GOATCOUNTER_COLUMNS, rows)})
    )

    assert "README.txt: not imported (not one of GoatCounter's export files)" in out.splitlines()
    assert stored("page_view") == Counter({date(2025, 3, 1): 1})


def test_counts_the_database_refuses_are_refused_as_a_whole(tmp_path, monkeypatch):
    def refused(**kwargs):
        raise DatabaseError("value too large")

    monkeypatch.setattr(peers, "aggregates_add", refused)
    rows = [goatcounter_row("/", datetime(2025, 3, 1, 9, tzinfo=UTC))]

    message, _ = import_refused(tmp_path, "goatcounter", csv_text(GOATCOUNTER_COLUMNS, rows).encode(), name="gc.csv")

    assert "the counts could not be written (value too large)" in message
    assert not PeerImportDay.objects.exists()


def test_a_zip_of_none_of_the_tools_files_is_refused(tmp_path):
    message, _ = import_refused(tmp_path, "plausible", zipped({"readme.txt": "hello", "data.json": "{}"}))

    assert "the file holds none of Plausible's export files" in message


def test_the_junk_a_mac_adds_to_a_zip_is_passed_over(tmp_path):
    visitors = csv_text(["date", "pageviews"], [{"date": "2025-03-01", "pageviews": 4}])
    files = {"imported_visitors.csv": visitors, "__MACOSX/._imported_visitors.csv": "\x00\x05junk"}

    out, _ = import_peer(tmp_path, "plausible", zipped(files))

    assert "MACOSX" not in out and "._imported" not in out
    assert stored("page_view") == Counter({date(2025, 3, 1): 4})


def test_a_zip_that_declares_exactly_the_size_allowed_is_read(tmp_path, settings):
    visitors = csv_text(["date", "pageviews"], [{"date": "2025-03-01", "pageviews": 4}])
    settings.BEACONS_IMPORT_MAX_UNCOMPRESSED_BYTES = len(visitors.encode())

    import_peer(tmp_path, "plausible", zipped({"imported_visitors.csv": visitors}))

    assert stored("page_view") == Counter({date(2025, 3, 1): 4})


def test_no_counter_of_nothing_is_written(tmp_path):
    at = datetime(2025, 3, 2, 10, tzinfo=UTC)
    rows = [goatcounter_row("/", at, session="a"), goatcounter_row("/pricing", at + timedelta(minutes=3), session="a")]

    import_peer(tmp_path, "goatcounter", csv_text(GOATCOUNTER_COLUMNS, rows).encode(), name="gc.csv")

    assert BeaconAggregate.objects.exists()
    assert not BeaconAggregate.objects.filter(count__lte=0).exists()  # the bounce the second page undid


def test_each_plausible_file_reports_its_own_page_views_and_visits(tmp_path):
    columns = ["date", "entry_page", "entrances", "pageviews", "bounces", "visit_duration"]
    entry = csv_text(
        columns,
        [
            {"date": "2025-03-01", "entry_page": "/", "entrances": 6, "pageviews": 9}
            | {"bounces": 1, "visit_duration": 60}
        ],
    )
    columns = ["date", "source", "pageviews", "visits", "bounces", "visit_duration"]
    sources = csv_text(
        columns,
        [
            {"date": "2025-03-01", "source": "Google", "pageviews": 5, "visits": 4}
            | {"bounces": 1, "visit_duration": 60}
        ],
    )
    pages = csv_text(["date", "page", "pageviews"], [{"date": "2025-03-01", "page": "/", "pageviews": 7}])
    files = {"imported_entry_pages.csv": entry, "imported_sources.csv": sources, "imported_pages.csv": pages}

    out, _ = import_peer(tmp_path, "plausible", zipped(files))

    day = "1 days (2025-03-01 – 2025-03-01)"
    assert out.splitlines()[:3] == [
        f"imported_entry_pages.csv: 1 rows, {day}, 6 visits",  # its page views are those of its visits
        f"imported_sources.csv: 1 rows, {day}, 5 page views, 4 visits",
        f"imported_pages.csv: 1 rows, {day}, 7 page views",
    ]


def test_the_admin_lists_the_days_and_the_visitors_imported_per_site_and_kind_of_file(tmp_path):
    export = PlausibleExport(days_from(FIRST_DAY, 3))
    import_peer(tmp_path, "plausible", export.zip())

    days, visitors = peers.peer_imports_listed(sites=[first_site()])

    domain, last = first_site().domain, FIRST_DAY + timedelta(days=2)
    assert peers.PeerImportHistory(domain, "plausible:imported_pages.csv", 3, FIRST_DAY, last) in days
    assert visitors == [peers.PeerImportHistory(domain, "Plausible", 3, FIRST_DAY, last, sum(export.visitors.values()))]


def test_the_first_20_problems_are_named_and_the_rest_counted(tmp_path):
    rows = [goatcounter_row("/", datetime(2025, 3, 1, tzinfo=UTC)) | {"Event": "maybe"} for _ in range(21)]

    message, err = import_refused(tmp_path, "goatcounter", csv_text(GOATCOUNTER_COLUMNS, rows).encode(), name="gc.csv")

    assert err.splitlines()[19:] == ["gc.csv line 21: event: 'maybe' is not true or false", "… and 1 more problems"]
    assert "nothing imported: 21 problems" in message


def test_a_zip_of_64_files_is_read_and_one_of_65_refused(tmp_path):
    files = {f"notes/{n}.txt": "x" for n in range(63)}
    files["imported_visitors.csv"] = csv_text(["date", "pageviews"], [{"date": "2025-03-01", "pageviews": 4}])

    out, _ = import_peer(tmp_path, "plausible", zipped(files))
    assert stored("page_view") == Counter({date(2025, 3, 1): 4})
    assert "0.txt: not imported (not one of Plausible's export files)" in out.splitlines()

    message, _ = import_refused(tmp_path, "plausible", zipped(files | {"notes/63.txt": "x"}))
    assert "the zip holds 65 files, more than the 64 allowed" in message


@pytest.mark.parametrize("peer", ["goatcounter", "plausible"])
def test_progress_is_reported_every_so_many_rows_and_once_for_the_rest(monkeypatch, peer):
    monkeypatch.setattr(peers, "PROGRESS_ROWS", 3)
    if peer == "goatcounter":
        name = "gc.csv"
        text = csv_text(
            GOATCOUNTER_COLUMNS, [goatcounter_row("/", datetime(2025, 3, 1, 9, n, tzinfo=UTC)) for n in range(7)]
        )
    else:
        name = "imported_visitors.csv"
        text = csv_text(["date", "pageviews"], [{"date": f"2025-03-0{n + 1}", "pageviews": 1} for n in range(7)])
    reported = []

    summary = peers.peer_import(
        peer=peer, stream=io.BytesIO(text.encode()), filename=name, site=first_site(), on_progress=reported.append
    )

    assert reported == [3, 3, 1]
    assert summary.page_views == sum(stored("page_view").values()) == 7


def test_an_upload_with_problems_ends_its_summary_saying_nothing_was_imported():
    rows = [goatcounter_row("/", datetime(2025, 3, 1, tzinfo=UTC)) | {"Event": "maybe"}]

    summary = peers.peer_import(
        peer="goatcounter",
        stream=io.BytesIO(csv_text(GOATCOUNTER_COLUMNS, rows).encode()),
        filename="gc.csv",
        site=first_site(),
    )

    assert summary.lines()[-1] == "nothing imported: 1 problems"


def test_only_the_three_tools_are_imported():
    with pytest.raises(ValueError, match="peer must be one of plausible, umami, goatcounter"):
        peers.peer_import(peer="matomo", stream=io.BytesIO(b""), filename="m.csv", site=first_site())


def test_an_import_follows_a_time_zone_another_process_gave_the_site(tmp_path):
    sites.sites_cached()  # this process has read the sites: the first in UTC
    Site.objects.filter(pk=first_site().pk).update(time_zone="America/New_York")  # saved by another process
    rows = [goatcounter_row("/", datetime(2025, 3, 2, 3, tzinfo=UTC))]  # 22:00 on 1 March in New York

    import_peer(tmp_path, "goatcounter", csv_text(GOATCOUNTER_COLUMNS, rows).encode(), name="gc.csv")

    starts = BeaconAggregate.objects.filter(definition__slug="page_view", granularity=G.DAY, identifier="")
    assert set(starts.values_list("period_start", flat=True)) == {datetime(2025, 3, 1, 5, tzinfo=UTC)}


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


def test_umami_import_reports_umamis_own_unique_visitors(tmp_path):
    rows = [umami_row("/", datetime(2025, 3, 1, 9, tzinfo=UTC), session=f"s{n}") for n in range(3)]

    out, _ = import_peer(tmp_path, "umami", csv_text(UMAMI_COLUMNS, rows).encode(), name="umami.csv")

    assert "3 unique visitors over 1 days (imported: Umami's own daily figures" in out


def test_umami_referrer_from_the_pages_own_host_is_no_source(tmp_path):
    rows = [
        umami_row("/docs", datetime(2025, 3, 1, 9, tzinfo=UTC), referrer="shop.example") | {"hostname": "shop.example"},
        umami_row("/", datetime(2025, 3, 1, 10, tzinfo=UTC), referrer="news.ycombinator.com"),
    ]

    import_peer(tmp_path, "umami", csv_text(UMAMI_COLUMNS, rows).encode(), name="umami.csv")

    day = date(2025, 3, 1)
    assert stored("page_view", dimension="source", identifier=None) == Counter(
        {(day, "Direct / none"): 1, (day, "Hacker News"): 1}
    )


def test_umami_visits_are_its_own_and_a_row_without_one_is_in_its_sessions(tmp_path):
    at = datetime(2025, 3, 1, 9, tzinfo=UTC)
    rows = [
        umami_row("/", at, session="s1", visit="v1"),
        umami_row("/docs", at + timedelta(minutes=5), session="s1", visit="v2"),  # Umami started a new visit
        umami_row("/", at, session="s2") | {"visit_id": ""},  # an older export: no visit_id
        umami_row("/docs", at + timedelta(minutes=5), session="s2") | {"visit_id": ""},
    ]

    import_peer(tmp_path, "umami", csv_text(UMAMI_COLUMNS, rows).encode(), name="umami.csv")

    assert stored(VisitSlug.VISITS) == Counter({date(2025, 3, 1): 3})
    assert stored(VisitSlug.BOUNCES) == Counter({date(2025, 3, 1): 2})


def test_umami_rows_of_a_session_make_its_visits_in_whatever_order_they_come(tmp_path):
    at = datetime(2025, 3, 1, 9, tzinfo=UTC)
    rows = [umami_row(page, at + timedelta(minutes=m), visit="v1") for page, m in [("/a", 5), ("/c", 0), ("/b", 2)]]

    import_peer(tmp_path, "umami", csv_text(UMAMI_COLUMNS, rows).encode(), name="umami.csv")

    day = date(2025, 3, 1)
    assert (stored(VisitSlug.VISITS), stored(VisitSlug.SECONDS)) == (Counter({day: 1}), Counter({day: 300}))
    assert stored(VisitSlug.EXITS, identifier="/a") == Counter({day: 1})


def test_umami_campaign_columns_a_query_with_its_question_mark_and_events_on_their_path(tmp_path):
    at = datetime(2025, 3, 1, 9, tzinfo=UTC)
    rows = [
        umami_row("/", at, query="?utm_campaign=spring"),
        umami_row("/docs", at) | {"utm_source": "newsletter"},
        umami_row("/pricing", at, event="checkout", query="plan=pro"),
    ]

    import_peer(tmp_path, "umami", csv_text(UMAMI_COLUMNS + ["utm_source"], rows).encode(), name="umami.csv")

    day = date(2025, 3, 1)
    assert stored("page_view", dimension="utm_campaign", identifier=None) == Counter({(day, "spring"): 1})
    assert stored("page_view", dimension="source", identifier="newsletter") == Counter({day: 1})
    assert stored("page_view", dimension="country", identifier="DE") == Counter({day: 2})
    assert stored("checkout", identifier="/pricing") == Counter({day: 1})


def test_an_umami_event_without_a_name_is_a_problem(tmp_path):
    rows = [umami_row("/", datetime(2025, 3, 1, 9, tzinfo=UTC)) | {"event_type": "2", "event_name": " "}]

    _, err = import_refused(tmp_path, "umami", csv_text(UMAMI_COLUMNS, rows).encode(), name="umami.csv")

    assert err.splitlines() == ["umami.csv line 2: event_name: an event (event_type 2) needs a name"]


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


@pytest.mark.parametrize(
    ("text", "browser"),
    [
        ("chrome", "Chrome"),
        ("crios", "Chrome Mobile iOS"),
        ("chromium-webview", "Chrome Mobile WebView"),
        ("firefox", "Firefox"),
        ("fxios", "Firefox iOS"),
        ("safari", "Safari"),
        ("ios", "Mobile Safari"),
        ("ios-webview", "Mobile Safari UI/WKWebView"),
        ("edge", "Edge"),
        ("edge-chromium", "Edge"),
        ("edge-ios", "Edge Mobile"),
        ("Microsoft Edge", "Edge"),
        ("samsung", "Samsung Internet"),
        ("Samsung Browser", "Samsung Internet"),
        ("opera", "Opera"),
        ("opera-mini", "Opera Mini"),
        ("yandexbrowser", "Yandex Browser"),
        ("facebook", "Facebook"),
        ("instagram", "Instagram"),
        ("android", "Android"),
        ("silk", "Amazon Silk"),
        ("ie", "IE"),
        ("Vivaldi 6.5", "Vivaldi"),  # a name of no code: kept, without its version
    ],
)
def test_umamis_browser_codes_and_plausibles_names_become_the_names_live_hits_count_under(text, browser):
    assert peers.browser_name(text) == browser


@pytest.mark.parametrize(
    ("text", "os"),
    [
        ("mac", "Mac OS X"),
        ("Mac OS", "Mac OS X"),
        ("macOS", "Mac OS X"),
        ("OS X", "Mac OS X"),
        ("GNU/Linux", "Linux"),
        ("Android OS", "Android"),
        ("Windows Server", "Windows"),
        ("chromeos", "Chrome OS"),
        ("iOS 17.2", "iOS"),
    ],
)
def test_system_names_become_the_names_live_hits_count_under(text, os):
    assert peers.os_name(text) == os


@pytest.mark.parametrize("text", ["", "  ", "(not set)", "(none)", "unknown", "(Unknown)"])
def test_names_a_tool_writes_for_none_are_unknown(text):
    assert peers.browser_name(text) == peers.os_name(text) == peers.device_kind(text) == "(unknown)"


@pytest.mark.parametrize(
    ("text", "device"),
    [("Desktop", "desktop"), ("laptop", "desktop"), ("Mobile", "mobile"), ("phone", "mobile"), ("Tablet", "tablet")]
    + [("smart-tv", "(unknown)")],
)
def test_device_names_become_the_kinds_live_hits_count_under(text, device):
    assert peers.device_kind(text) == device


@pytest.mark.parametrize(
    ("size", "device"),
    [
        ("0.5,1,1", "mobile"),
        ("767,1024,2", "mobile"),
        ("768,1024,2", "tablet"),
        ("1023.5,768,1", "tablet"),
        ("1024,768,1", "desktop"),
        ("99999,1,1", "desktop"),
        ("100000,1,1", "(unknown)"),
        ("0,0,1", "(unknown)"),
        ("-5,1,1", "(unknown)"),
        ("nan,1,1", "(unknown)"),
        ("wide,1,1", "(unknown)"),
        ("", "(unknown)"),
    ],
)
def test_goatcounters_screen_width_gives_the_device_a_phone_under_768_a_tablet_under_1024(size, device):
    assert peers.device_of_screen(size) == device


@pytest.mark.parametrize(
    ("text", "country"),
    [("de", "DE"), (" US-TX ", "US"), ("ZZ", "(unknown)"), ("xx", "(unknown)"), ("1A", "(unknown)")]
    + [("Ö", "(unknown)"), ("ÖS", "(unknown)"), ("", "(unknown)")],
)
def test_country_codes_of_a_region_or_of_none_become_beacons_countries(text, country):
    assert peers.country_code(text) == country


@pytest.mark.parametrize("name", ["Direct / None", "direct", "(direct)", "(none)", "", " "])
def test_every_tools_name_for_no_source_is_direct(name):
    assert peers.source_named(name, site_domain="shop.example") == "Direct / none"


def test_a_named_source_is_counted_as_a_tag_of_that_name():
    assert peers.source_named("Newsletter", site_domain="shop.example") == "Newsletter"
