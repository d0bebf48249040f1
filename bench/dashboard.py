"""Dashboard benchmark: how long each panel takes to render over a large demo database.

    python -m bench.dashboard                       # 10 M hits over 12 months, 1,000 pages
    python -m bench.dashboard --hits 1000000 --repeat 10 --backends sqlite

Builds the scaled demo (``beacons_demo --reset``) into throwaway databases — the SQLite file
$TMPDIR/beacons-bench-dashboard.sqlite3 and the PostgreSQL database beacons_bench_dash — unless they
already hold it (``--rebuild`` forces), then renders every panel ``--repeat`` times through
the Django test client as a staff user and prints each one's median time and query count.
Target: every panel under 100 ms median on both databases. Each database runs in its own
process (Django settings are read once per process).
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
SQLITE_FILE = Path(tempfile.gettempdir()) / "beacons-bench-dashboard.sqlite3"
PG_SERVER = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
PG_DATABASE = "beacons_bench_dash"
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
    ("errors", "errors", {}),
    ("identifiers type-ahead", "identifiers", {"identifier": "blog"}),
    ("kpis, one page", "kpis", {"identifier": "/pricing"}),
    ("series CSV", "series", {"format": "csv"}),
    ("page (12 months)", None, {"range": "12m", "compare": "on"}),
]


def child(args) -> None:
    """Runs inside one process with DATABASE_URL set: build if needed, measure, print JSON."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "beacon_site.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Sum
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment
    from django.urls import reverse

    from beacons.models import BeaconAggregate

    call_command("migrate", verbosity=0)
    stored = BeaconAggregate.objects.filter(definition__slug="page_view", identifier="", granularity="Y").aggregate(
        n=Sum("count")
    )["n"]
    build_seconds = None
    if args.rebuild or stored != args.hits:
        started = time.monotonic()
        call_command(
            "beacons_demo", reset=True, hits=args.hits, identifiers=args.identifiers, days=365, stdout=sys.stderr
        )
        # The table as retention keeps it: hour rows of single pages and values for hour_retention_days.
        call_command("beacons_purge", stdout=sys.stderr)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:  # autovacuum is off here; FULL: as if the purged rows never were
                cursor.execute(f"VACUUM (FULL, ANALYZE) {BeaconAggregate._meta.db_table}")
        build_seconds = time.monotonic() - started
    rows = BeaconAggregate.objects.count()
    table_bytes = None
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_total_relation_size(%s)", [BeaconAggregate._meta.db_table])
            table_bytes = cursor.fetchone()[0]

    setup_test_environment()
    user, _ = get_user_model().objects.get_or_create(username="bench-staff", defaults={"is_staff": True})
    client = Client()
    client.force_login(user)
    results = []
    for label, panel, params in CASES:
        url = reverse("dashboard:index") if panel is None else reverse("dashboard:panel", args=[panel])
        headers = {} if panel is None else {"HTTP_HX_REQUEST": "true"}
        assert client.get(url, params, **headers).status_code == 200  # warm caches
        timings, queries = [], 0
        for _ in range(args.repeat):
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
                "table_bytes": table_bytes,
                "build_seconds": build_seconds,
                "results": results,
            }
        )
    )


def postgres_database_ensure() -> None:
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [PG_DATABASE]).fetchone():
            conn.execute(f"CREATE DATABASE {PG_DATABASE}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hits", type=int, default=10_000_000)
    parser.add_argument("--identifiers", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the demo data even if it is there")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    urls = {"sqlite": f"sqlite:///{SQLITE_FILE}", "postgres": f"{PG_SERVER}/{PG_DATABASE}"}
    reports = {}
    for backend in args.backends.split(","):
        if backend == "postgres":
            postgres_database_ensure()
        command = [
            sys.executable,
            "-m",
            "bench.dashboard",
            "--child",
            backend,
            "--hits",
            str(args.hits),
            "--identifiers",
            str(args.identifiers),
            "--repeat",
            str(args.repeat),
        ]
        if args.rebuild:
            command.append("--rebuild")
        env = {**os.environ, "DATABASE_URL": urls[backend], "BEACONS_LOG_LEVEL": "WARNING"}
        print(f"== {backend}: preparing {args.hits:,} hits over 12 months, {args.identifiers:,} pages ...", flush=True)
        output = subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
        reports[backend] = json.loads(output.strip().splitlines()[-1])
        report = reports[backend]
        built = f"built in {report['build_seconds']:.0f} s" if report["build_seconds"] else "reused"
        size = f", {report['table_bytes'] / 1e6:,.0f} MB with indexes" if report.get("table_bytes") else ""
        print(f"   {report['rows']:,} counter rows{size} ({built})", flush=True)

    backends = list(reports)
    header = f"{'panel':<26}" + "".join(f"{b + ' median ms':>22}{'queries':>9}" for b in backends)
    print(f"\n{args.hits:,} hits, {args.identifiers:,} pages, median of {args.repeat} renders as staff\n")
    print(header)
    print("-" * len(header))
    for index, (label, _, _) in enumerate(CASES):
        line = f"{label:<26}"
        for backend in backends:
            result = reports[backend]["results"][index]
            line += f"{result['median_ms']:>22.1f}{result['queries']:>9}"
        print(line)
    worst = max(r["median_ms"] for report in reports.values() for r in report["results"])
    print(f"\nslowest median: {worst:.1f} ms (target < 100 ms)")


if __name__ == "__main__":
    main()
