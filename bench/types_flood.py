"""A flood of registered types against the dashboard: render time and size, 5 types vs 30,000.

    python -m bench.types_flood                  # SQLite file in $TMPDIR
    python -m bench.types_flood --types 30000 --repeat 5
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/beacons_bench_flood python -m bench.types_flood

Builds a throwaway database (the SQLite file $TMPDIR/beacons-bench-flood.sqlite3 unless
DATABASE_URL is set; it is migrated and emptied first), counts hits for 5 types, then
registers ``--types`` more, each with one hit this hour as the flood of issue 12 left them
(registered directly: the ingest budget would refuse them), and renders the whole
dashboard page and each of its panels as a staff user before and after (on PostgreSQL
after ``VACUUM ANALYZE``, on SQLite after ``ANALYZE``). Prints the median time and the
response size of each, the two setups side by side with their ratio.
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

SQLITE_FILE = Path(tempfile.gettempdir()) / "beacons-bench-flood.sqlite3"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--types", type=int, default=30_000, help="types registered by the flood")
    parser.add_argument("--repeat", type=int, default=5, help="renders per case (the median is printed)")
    args = parser.parse_args()

    if not os.environ.get("DATABASE_URL"):
        SQLITE_FILE.unlink(missing_ok=True)
        os.environ["DATABASE_URL"] = f"sqlite:///{SQLITE_FILE}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "beacon_site.settings")
    os.environ.setdefault("BEACONS_SINK", "direct")
    os.environ.setdefault("SECRET_KEY", "bench-only-" + "x" * 40)  # a throwaway database
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.utils import timezone

    from beacons.counting.increments import Hit, increments_for
    from beacons.counting.sinks import get_sink
    from beacons.models import BeaconAggregate, BeaconDefinition, Site

    setup_test_environment()  # the test client's Host header passes ALLOWED_HOSTS
    call_command("migrate", verbosity=0)
    BeaconAggregate.objects.all().delete()
    BeaconDefinition.objects.all().delete()
    user = get_user_model().objects.filter(username="bench").first() or get_user_model().objects.create_superuser(
        "bench", "bench@example.com", "bench"
    )
    client = Client()
    client.force_login(user)
    now = timezone.now()
    site_id = Site.objects.order_by("pk").values_list("pk", flat=True).first()  # the superuser sees it by default

    def count(definitions, hits_each: int) -> None:
        hits = [Hit(site_id, d.pk, tuple(d.granularity_codes), "/") for d in definitions for _ in range(hits_each)]
        for start in range(0, len(hits), 20_000):
            get_sink().add(increments_for(hits=hits[start : start + 20_000], received_at=now))

    cases = [("page", "/dashboard/")] + [
        (f"{name} panel", f"/dashboard/panel/{name}/")
        for name in ["kpis", "series", "top", "breakdown", "live", "errors"]
    ]

    def analyze() -> None:
        with django.db.connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE" if django.db.connection.vendor == "postgresql" else "ANALYZE")

    def measure() -> dict[str, tuple[float, int]]:
        analyze()
        figures = {}
        for case, url in cases:
            times, size = [], 0
            client.get(url)  # warm
            for _ in range(args.repeat):
                started = time.perf_counter()
                response = client.get(url)
                times.append(time.perf_counter() - started)
                assert response.status_code == 200, response.status_code
                size = len(response.content)
            figures[case] = (statistics.median(times) * 1000, size)
        return figures

    few = BeaconDefinition.objects.bulk_create(
        [
            BeaconDefinition(slug=slug, name=slug.replace("_", " ").capitalize())
            for slug in ["page_view", "signup", "download", "search", "error"]
        ]
    )
    count(few, 100)
    before = measure()
    flood = BeaconDefinition.objects.bulk_create(
        [BeaconDefinition(slug=f"flood{i:06d}", name=f"Flood{i:06d}", auto_registered=True) for i in range(args.types)],
        batch_size=2_000,
    )
    count(BeaconDefinition.objects.filter(auto_registered=True), 1)
    after = measure()

    flooded = f"5 + {len(flood):,} types"
    print(f"database: {django.db.connection.vendor}, {args.repeat} renders per case (median)")
    print(f"{'what':<17} | {'5 types':>20} | {flooded:>20} | {'time ratio':>10}")
    for case, _ in cases:
        (t0, s0), (t1, s1) = before[case], after[case]
        print(f"{case:<17} | {t0:7.1f} ms {s0 / 1024:6.1f} KB | {t1:7.1f} ms {s1 / 1024:6.1f} KB | {t1 / t0:9.2f}x")


if __name__ == "__main__":
    main()
