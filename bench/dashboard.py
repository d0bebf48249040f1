"""Dashboard benchmark: how long each panel takes to render over a large demo database, breakdowns on.

    python -m bench.dashboard                          # 10 M hits over 12 months, 1,000 pages
    python -m bench.dashboard --hits 10000000,30000000 # two sizes, and how much slower the larger is
    python -m bench.dashboard --hits 1000000 --repeat 10 --backends sqlite

Page views count every built-in dimension (source, utm_medium, utm_campaign, browser, os, device,
country) and the custom property ``plan``. Builds the scaled demo (``beacons_demo --reset``) into
throwaway databases, one per size — the SQLite file $TMPDIR/beacons-bench-dashboard-<N>.sqlite3 and
the PostgreSQL database <--pg-database>_<N> — unless they already hold it (``--rebuild`` forces),
purges as retention would, runs VACUUM/ANALYZE, then renders every panel ``--repeat`` times through
the Django test client as a staff user and prints each one's median time and query count, and for
two sizes the ratio larger/smaller per panel. Targets: every panel under 50 ms median on both
databases; no panel more than 1.5x slower at 10x the hits. Each database runs in its own process
(Django settings are read once per process).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_SERVER = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
TARGET_MS = 50
CASES = [
    # label, panel (None: the whole page), extra GET parameters
    ("page (30 days)", None, {}),
    ("kpis", "kpis", {}),
    ("live", "live", {}),
    ("series", "series", {}),
    ("series, compare", "series", {"compare": "on"}),
    ("series, 24 h by hour", "series", {"range": "24h"}),
    ("series, 30 d by hour", "series", {"granularity": "H"}),
    ("top", "top", {}),
    ("top, 12 months", "top", {"range": "12m"}),
    ("breakdown", "breakdown", {}),
    ("breakdown, 12 months", "breakdown", {"range": "12m"}),
    ("sources", "sources", {}),
    ("sources, campaigns", "sources", {"sources": "utm_campaign"}),
    ("sources, compare", "sources", {"compare": "on"}),
    ("sources, 12 months", "sources", {"range": "12m"}),
    ("devices (browsers)", "devices", {}),
    ("devices, OS", "devices", {"devices": "os"}),
    ("countries", "countries", {}),
    ("countries, 12 months", "countries", {"range": "12m"}),
    ("properties (prop:plan)", "properties", {}),
    ("sources CSV", "sources", {"format": "csv"}),
    ("kpis, source=Google", "kpis", {"dim": "source", "value": "Google"}),
    ("series, country=DE", "series", {"dim": "country", "value": "DE"}),
    ("errors", "errors", {}),
    ("identifiers type-ahead", "identifiers", {"identifier": "blog"}),
    ("kpis, one page", "kpis", {"identifier": "/pricing"}),
    ("series CSV", "series", {"format": "csv"}),
    ("page (12 months)", None, {"range": "12m", "compare": "on"}),
    ("page, source=Google", None, {"dim": "source", "value": "Google"}),
    ("page, browser=Firefox, 12 m", None, {"dim": "browser", "value": "Firefox", "range": "12m"}),
]
# Page views count every built-in dimension and one custom property (the demo's plan).
BENCH_PROPERTY_KEYS = "plan"


def child(args) -> None:
    """Runs inside one process with DATABASE_URL set: build if needed, measure, print JSON."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "beacon_site.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Sum
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment
    from django.urls import reverse

    from beacons.dimensions import BUILT_IN
    from beacons.models import BeaconAggregate, BeaconDefinition, Site

    call_command("migrate", verbosity=0)
    page_view = BeaconDefinition.objects.get(slug="page_view")
    every_dimension = {"dimensions": ",".join(BUILT_IN), "property_keys": BENCH_PROPERTY_KEYS}
    reconfigured = any(getattr(page_view, field) != value for field, value in every_dimension.items())
    if reconfigured:
        BeaconDefinition.objects.filter(pk=page_view.pk).update(**every_dimension)
    stored = BeaconAggregate.objects.filter(  # the hits asked for go to the first site (the shop gets a quarter more)
        site=Site.objects.order_by("pk").first(), definition=page_view, dimension="", identifier="", granularity="Y"
    ).aggregate(n=Sum("count"))["n"]
    build_seconds = None
    if args.rebuild or reconfigured or stored != args.hits:
        started = time.monotonic()
        call_command(
            "beacons_demo", reset=True, hits=args.hits, identifiers=args.identifiers, days=365, stdout=sys.stderr
        )
        # The table as retention keeps it: hour rows of single pages and values for hour_retention_days.
        call_command("beacons_purge", stdout=sys.stderr)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:  # autovacuum is off here; FULL: as if the purged rows never were
                cursor.execute(f"VACUUM (FULL, ANALYZE) {BeaconAggregate._meta.db_table}")
                cursor.execute("VACUUM (ANALYZE)")  # every other table too (sketches): the planner needs their sizes
        else:
            with connection.cursor() as cursor:  # the purge left free pages; the planner wants statistics
                cursor.execute("VACUUM")
                cursor.execute("ANALYZE")
        build_seconds = time.monotonic() - started
    rows = BeaconAggregate.objects.count()
    dimension_rows = BeaconAggregate.objects.exclude(dimension="").count()
    table_bytes = None
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_total_relation_size(%s)", [BeaconAggregate._meta.db_table])
            table_bytes = cursor.fetchone()[0]

    setup_test_environment()
    # A superuser sees every site and every panel (the permission checks still run).
    user, _ = get_user_model().objects.update_or_create(
        username="bench-staff", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    results = []
    for label, panel, params in CASES:
        url = reverse("dashboard:index") if panel is None else reverse("dashboard:panel", args=[panel])
        headers = {} if panel is None else {"HTTP_HX_REQUEST": "true"}
        warm = client.get(url, params, **headers)  # warm caches
        assert warm.status_code == 200, (label, warm.status_code)
        timings, queries = [], 0
        for _ in range(args.repeat):
            if args.cold:
                cache.clear()
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                response = client.get(url, params, **headers)
                timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (label, response.status_code)
            queries = len(captured)
        results.append({"label": label, "median_ms": statistics.median(timings), "queries": queries})
    print(
        json.dumps(
            {
                "vendor": connection.vendor,
                "rows": rows,
                "dimension_rows": dimension_rows,
                "table_bytes": table_bytes,
                "build_seconds": build_seconds,
                "results": results,
            }
        )
    )


def postgres_database_ensure(name: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f"CREATE DATABASE {name}")


def size_label(hits: int) -> str:
    return f"{hits / 1e6:g}M" if hits >= 1_000_000 else f"{hits:,}"


def measure(args, *, backend: str, hits: int) -> dict:
    """One size on one database, in a child process: its JSON report."""
    suffix = size_label(hits).lower().replace(",", "")
    sqlite_file = Path(tempfile.gettempdir()) / f"beacons-bench-dashboard-{suffix}.sqlite3"
    pg_database = f"{args.pg_database}_{suffix}"
    if backend == "postgres":
        postgres_database_ensure(pg_database)
    urls = {"sqlite": f"sqlite:///{sqlite_file}", "postgres": f"{PG_SERVER}/{pg_database}"}
    command = [sys.executable, "-m", "bench.dashboard", "--child", backend, "--hits", str(hits)]
    command += ["--identifiers", str(args.identifiers), "--repeat", str(args.repeat)]
    if args.cold:
        command.append("--cold")
    if args.rebuild:
        command.append("--rebuild")
    env = {**os.environ, "DATABASE_URL": urls[backend], "BEACONS_LOG_LEVEL": "WARNING"}
    print(f"== {backend}, {size_label(hits)} hits: preparing {urls[backend]} ...", flush=True)
    output = subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
    report = json.loads(output.strip().splitlines()[-1])
    built = f"built in {report['build_seconds']:.0f} s" if report["build_seconds"] else "reused"
    size = f", {report['table_bytes'] / 1e6:,.0f} MB with indexes" if report.get("table_bytes") else ""
    print(
        f"   {report['rows']:,} counter rows ({report['dimension_rows']:,} of dimension values){size} ({built})",
        flush=True,
    )
    # Each size's figures at once, so a long run that is stopped keeps what it measured.
    print("   " + ", ".join(f"{r['label']} {r['median_ms']:.1f}" for r in report["results"]), flush=True)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hits", default="10000000", help="hits, or two sizes separated by a comma")
    parser.add_argument("--identifiers", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument(
        "--pg-database",
        default=os.environ.get("BENCH_PG_DATABASE", "beacons_bench_dash"),
        help="PostgreSQL database name prefix (the size is appended)",
    )
    parser.add_argument("--rebuild", action="store_true", help="rebuild the demo data even if it is there")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="empty Django's cache before every render: what the first reader of the day sees (kept merges of visitors)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.hits = int(args.hits)
        child(args)
        return

    sizes = [int(hits) for hits in args.hits.split(",")]
    reports = {
        (backend, hits): measure(args, backend=backend, hits=hits)
        for backend in args.backends.split(",")
        for hits in sizes
    }
    columns = list(reports)
    header = f"{'panel':<30}" + "".join(f"{b + ' ' + size_label(h) + ' ms':>20}{'q':>4}" for b, h in columns)
    ratios = [(backend, sizes[0], sizes[-1]) for backend in args.backends.split(",")] if len(sizes) > 1 else []
    header += "".join(f"{b + ' ' + size_label(large) + '/' + size_label(small):>24}" for b, small, large in ratios)
    cold = ", the cache emptied before each" if args.cold else ""
    print(f"\n{args.identifiers:,} pages, median of {args.repeat} renders as staff{cold}\n")
    print(header)
    print("-" * len(header))
    for index, (label, _, _) in enumerate(CASES):
        line = f"{label:<30}"
        for column in columns:
            result = reports[column]["results"][index]
            line += f"{result['median_ms']:>20.1f}{result['queries']:>4}"
        for backend, small, large in ratios:
            ratio = (
                reports[backend, large]["results"][index]["median_ms"]
                / reports[backend, small]["results"][index]["median_ms"]
            )
            line += f"{ratio:>23.2f}x"
        print(line)
    for backend, hits in columns:
        partials = [r["median_ms"] for (label, panel, _), r in zip(CASES, reports[backend, hits]["results"]) if panel]
        pages = [r["median_ms"] for (label, panel, _), r in zip(CASES, reports[backend, hits]["results"]) if not panel]
        print(
            f"\n{backend} {size_label(hits)}: slowest partial median {max(partials):.1f} ms "
            f"(target < {TARGET_MS} ms), slowest whole page {max(pages):.1f} ms"
        )
    for backend, small, large in ratios:
        worst = max(
            big["median_ms"] / little["median_ms"]
            for big, little in zip(reports[backend, large]["results"], reports[backend, small]["results"])
        )
        print(f"{backend}: slowest panel {worst:.2f}x slower at {size_label(large)} than at {size_label(small)}")


if __name__ == "__main__":
    main()
