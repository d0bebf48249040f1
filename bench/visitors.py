"""Unique visitors from sketches against exact ``count(distinct)`` over the same synthetic stream.

    python -m bench.visitors                      # 10 M hits from 2 M visitors over 12 months
    python -m bench.visitors --hits 2000000 --visitors 400000 --repeat 15

Builds a stream of page views (visitor, page, second; a few pages take most views) over the
12 months from 1 December 2025, and stores it twice in the PostgreSQL database ``--database``
(created when missing; its beacons tables are emptied first, so give it a scratch database):

- as the product keeps it: visitor sketches (``VisitorSketch``) of the site total and each page
  per day and month, built directly with ``beacons.counting.sketches`` (not through HTTP), and the
  page-view counters of the same keys (``BeaconAggregate``), for the storage comparison;
- as raw rows (visitor, page, epoch second) in an unlogged table, which is what peers scan.

Then prints unique visitors for 30 days (21 October – 19 November: days of two months) and 12
months, site-wide and for the busiest page, each from ``beacons.queries.visitors.visitors`` (median
ms of ``--repeat`` runs) beside the exact ``count(DISTINCT visitor)`` of the raw rows and its median
ms, the relative error, and the bytes of sketches beside counters. Target: each figure under 50 ms
median, within 2 % of the exact count.
"""

import argparse
import hashlib
import io
import os
import statistics
import time
from datetime import UTC, datetime, timedelta

DEFAULT_DATABASE = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/beacons_vis")
START = datetime(2025, 12, 1, tzinfo=UTC)
DAYS = 365
PAGES = 1000
CHUNK = 1_000_000  # hits turned into Python objects at a time


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ["BEACONS_TIME_ZONE"] = "UTC"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "beacon_site.settings")
    os.environ.setdefault("DEBUG", "1")
    import django

    django.setup()


def stream(*, hits: int, visitors: int, seed: int):
    """(visitor, page, second since START) arrays of the synthetic stream."""
    import numpy as np

    rng = np.random.default_rng(seed)
    visitor = rng.integers(0, visitors, hits, dtype=np.int64)
    page = (PAGES * rng.random(hits) ** 3).astype(np.int64)  # page 0 is the busiest
    second = np.sort(rng.integers(0, DAYS * 86400, hits, dtype=np.int64))
    return visitor, page, second


def sketches_build(visitor, page, second):
    """{key: sketch} and {key: hits} of the site total and each page, per day and month."""
    from beacons.counting.sketches import sketch_new, visitor_token
    from beacons.models import Granularity as G

    days = [START + timedelta(days=d) for d in range(DAYS)]
    month_starts = sorted({datetime(day.year, day.month, 1, tzinfo=UTC) for day in days})
    months = [month_starts.index(datetime(day.year, day.month, 1, tzinfo=UTC)) for day in days]
    pages = [f"/page/{p}" for p in range(PAGES)]
    sketches: dict = {}
    counts: dict = {}
    # Visitor keys are hex of a keyed hash in the product: a hash of the id here.
    tokens = [
        visitor_token(hashlib.blake2b(b"%d" % v, digest_size=16).hexdigest()) for v in range(int(visitor.max()) + 1)
    ]
    day_index = second // 86400
    for offset in range(0, len(visitor), CHUNK):
        rows = zip(*(column[offset : offset + CHUNK].tolist() for column in (visitor, page, day_index)))
        for v, p, s in rows:
            token = tokens[v]
            for key in (
                (-1, G.DAY, s),  # ints while building: a dict of aware datetimes hashes slowly
                (-1, G.MONTH, months[s]),
                (p, G.DAY, s),
                (p, G.MONTH, months[s]),
            ):
                sketch = sketches.get(key)
                if sketch is None:
                    sketch = sketches[key] = sketch_new()
                    counts[key] = 0
                sketch.update(token)
                counts[key] += 1

    def named(key):
        page_index, granularity, index = key
        start = days[index] if granularity == G.DAY else month_starts[index]
        return ("" if page_index < 0 else pages[page_index], granularity, start)

    return {named(key): sketch for key, sketch in sketches.items()}, {named(key): n for key, n in counts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hits", type=int, default=10_000_000)
    parser.add_argument("--visitors", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--seed", type=int, default=20261202)
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    args = parser.parse_args()

    from bench.drain import postgres_database_ensure

    postgres_database_ensure(args.database)
    setup_django(args.database)
    from django.core.management import call_command
    from django.db import connection, transaction

    from beacons.counting.increments import aggregates_insert_new
    from beacons.counting.sketches import sketch_dump
    from beacons.models import BeaconAggregate, BeaconDefinition, Site, VisitorSketch
    from beacons.queries.visitors import visitors as visitors_query

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {VisitorSketch._meta.db_table}, {BeaconAggregate._meta.db_table}")
    site, _ = Site.objects.get_or_create(domain="bench-visitors.example", defaults={"name": "bench"})
    definition = BeaconDefinition.objects.get(slug="page_view")

    started = time.perf_counter()
    visitor, page, second = stream(hits=args.hits, visitors=args.visitors, seed=args.seed)
    print(
        f"stream: {args.hits:,} hits, {args.visitors:,} visitor ids, {PAGES} pages, {DAYS} days ({time.perf_counter() - started:.1f} s)"
    )

    started = time.perf_counter()
    sketches, counts = sketches_build(visitor, page, second)
    built = time.perf_counter() - started
    print(
        f"sketches: {len(sketches):,} keys built in {built:.1f} s ({built / args.hits * 1e6:.2f} µs a hit, 4 sketch updates each)"
    )

    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        with cursor.cursor.copy(
            f"COPY {VisitorSketch._meta.db_table} (site_id, definition_id, dimension, identifier, granularity, "
            "period_start, sketch) FROM STDIN"
        ) as copy:
            for (identifier, granularity, start), sketch in sketches.items():
                copy.write_row((site.pk, definition.pk, "", identifier, granularity, start, sketch_dump(sketch)))
        aggregates_insert_new(
            increments={
                (site.pk, definition.pk, "", identifier, g, start): n for (identifier, g, start), n in counts.items()
            }
        )
    print(f"stored sketches and counters in {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_visitor_hits")
        cursor.execute("CREATE UNLOGGED TABLE bench_visitor_hits (visitor bigint, page int, at bigint)")
        epoch = int(START.timestamp())
        chunk = 1_000_000
        for offset in range(0, args.hits, chunk):
            rows = zip(
                visitor[offset : offset + chunk].tolist(),
                page[offset : offset + chunk].tolist(),
                (second[offset : offset + chunk] + epoch).tolist(),
            )
            text = io.StringIO("".join(f"{v}\t{p}\t{s}\n" for v, p, s in rows))
            with cursor.cursor.copy("COPY bench_visitor_hits FROM STDIN") as copy:
                copy.write(text.getvalue())
        cursor.execute("ANALYZE bench_visitor_hits")
    print(f"raw rows copied in {time.perf_counter() - started:.1f} s")

    periods = {
        "30 days": (datetime(2026, 10, 21, tzinfo=UTC), datetime(2026, 11, 20, tzinfo=UTC)),
        "12 months": (START, START + timedelta(days=DAYS)),
    }
    print()
    print(f"{'figure':<24}{'sketch':>11}{'ms':>8}{'exact':>11}{'ms':>9}{'error':>9}  estimate?")
    with connection.cursor() as cursor:
        for period, (start, end) in periods.items():
            for label, identifier, page_filter in (("site", "", ""), ("page /page/0", "/page/0", " AND page = 0")):
                times, result = [], None
                for _ in range(args.repeat):
                    t = time.perf_counter()
                    result = visitors_query(
                        site=site, definitions=[definition], start=start, end=end, identifier=identifier
                    )
                    times.append((time.perf_counter() - t) * 1000)
                exact_times, exact = [], 0
                for _ in range(3):
                    t = time.perf_counter()
                    cursor.execute(
                        "SELECT count(DISTINCT visitor) FROM bench_visitor_hits WHERE at >= %s AND at < %s"
                        + page_filter,
                        [int(start.timestamp()), int(end.timestamp())],
                    )
                    exact = cursor.fetchone()[0]
                    exact_times.append((time.perf_counter() - t) * 1000)
                error = (result.visitors - exact) / exact if exact else 0.0
                print(
                    f"{label + ', ' + period:<24}{result.visitors:>11,}{statistics.median(times):>8.1f}"
                    f"{exact:>11,}{statistics.median(exact_times):>9.1f}{error:>+9.2%}  {result.estimate}"
                )
        print()
        for model in (VisitorSketch, BeaconAggregate):
            table = model._meta.db_table
            cursor.execute(f"SELECT count(*), pg_total_relation_size('{table}') FROM {table}")
            rows, size = cursor.fetchone()
            print(f"{table:<26}{rows:>10,} rows {size / 1e6:>9.1f} MB on disk (heap, TOAST, indexes)")
        cursor.execute(
            f"SELECT sum(octet_length(sketch)), max(octet_length(sketch)) FROM {VisitorSketch._meta.db_table}"
        )
        total, largest = cursor.fetchone()
        print(
            f"sketch bytes: {total / 1e6:.1f} MB in all, {total / len(sketches):,.0f} a key on average, {largest:,} the largest"
        )
        cursor.execute("SELECT pg_total_relation_size('bench_visitor_hits')")
        print(f"raw rows (bench_visitor_hits): {cursor.fetchone()[0] / 1e6:.1f} MB")
        cursor.execute("DROP TABLE bench_visitor_hits")


if __name__ == "__main__":
    main()
