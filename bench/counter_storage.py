"""Bytes per counter row on PostgreSQL for candidate layouts of the counter table.

    python -m bench.counter_storage [--rows 300000] [--database postgres://postgres@127.0.0.1:5432/beacons_bench_rows]

Creates each layout as a scratch table, fills it with the same ``--rows`` page-view counters
(the demo's page names, hour buckets, one site and type) through ``COPY``, and prints
``pg_total_relation_size`` (heap, TOAST and every index) per row, the heap and the indexes
apart. The database is created when missing and the tables dropped afterwards.

Layouts (the aggregate table has a 70% fillfactor, kept in every layout):

- ``before``: the table before dimensions: (site, definition, identifier, granularity, period_start)
  unique, a (site, definition, granularity, period_start) index and a covering (site, identifier,
  granularity, period_start, definition, count) index over every row.
- ``dimension``: the chosen layout: a ``dimension`` text column after the definition in the unique
  key and the range index; the covering index only over the total rows (partial), which is all
  that reads it.
- ``interned``: as ``dimension``, but the value stored once in a text table and referenced by an
  integer id (the text table's size is included, split over the counter rows).
"""

import argparse
import random
import time
from datetime import UTC, datetime, timedelta

import psycopg

FILLFACTOR = 70
LAYOUTS = {
    "before": """
        CREATE TABLE {t} (id bigserial PRIMARY KEY, site_id bigint NOT NULL, definition_id bigint NOT NULL,
            identifier varchar(256) NOT NULL, granularity varchar(2) NOT NULL, period_start timestamptz NOT NULL,
            count bigint NOT NULL) WITH (fillfactor = {ff});
        CREATE UNIQUE INDEX ON {t} (site_id, definition_id, identifier, granularity, period_start);
        CREATE INDEX ON {t} (site_id, definition_id, granularity, period_start);
        CREATE INDEX ON {t} (site_id, identifier, granularity, period_start, definition_id, count);
    """,
    "dimension": """
        CREATE TABLE {t} (id bigserial PRIMARY KEY, site_id bigint NOT NULL, definition_id bigint NOT NULL,
            dimension varchar(40) NOT NULL, identifier varchar(256) NOT NULL, granularity varchar(2) NOT NULL,
            period_start timestamptz NOT NULL, count bigint NOT NULL) WITH (fillfactor = {ff});
        CREATE UNIQUE INDEX ON {t} (site_id, definition_id, dimension, identifier, granularity, period_start);
        CREATE INDEX ON {t} (site_id, definition_id, dimension, granularity, period_start);
        CREATE INDEX ON {t} (site_id, granularity, period_start, definition_id, count)
            WHERE dimension = '' AND identifier = '';
    """,
    "interned": """
        CREATE TABLE {t}_text (id serial PRIMARY KEY, text varchar(256) NOT NULL UNIQUE);
        CREATE TABLE {t} (id bigserial PRIMARY KEY, site_id bigint NOT NULL, definition_id bigint NOT NULL,
            dimension varchar(40) NOT NULL, value_id integer NOT NULL, granularity varchar(2) NOT NULL,
            period_start timestamptz NOT NULL, count bigint NOT NULL) WITH (fillfactor = {ff});
        CREATE UNIQUE INDEX ON {t} (site_id, definition_id, dimension, value_id, granularity, period_start);
        CREATE INDEX ON {t} (site_id, definition_id, dimension, granularity, period_start);
        CREATE INDEX ON {t} (site_id, granularity, period_start, definition_id, count)
            WHERE dimension = '' AND value_id = 0;
    """,
}


def sample_rows(count: int) -> list[tuple[str, datetime, int]]:
    """(page, hour, count) keys as the demo makes them: 1,000 pages, the popular ones in most hours."""
    from beacons.management.commands.beacons_demo import page_names, zipf_weights

    rng = random.Random(7)
    pages = page_names(count=1000, rng=rng)
    cum = zipf_weights(len(pages))
    hour = datetime(2025, 1, 1, tzinfo=UTC)
    rows: list[tuple[str, datetime, int]] = []
    while len(rows) < count:
        for page in sorted(set(rng.choices(pages, weights=cum, k=1200))):
            rows.append((page, hour, rng.randint(1, 50)))
        hour += timedelta(hours=1)
    return rows[:count]


def measure(conn, layout: str, rows: list[tuple[str, datetime, int]]) -> dict[str, float]:
    table = f"storage_probe_{layout}"
    with conn.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {table}, {table}_text")
        cursor.execute(LAYOUTS[layout].format(t=table, ff=FILLFACTOR))
        if layout == "interned":
            texts = {page: index for index, page in enumerate(sorted({r[0] for r in rows}), start=1)}
            with cursor.copy(f"COPY {table}_text (id, text) FROM STDIN") as copy:
                for text, index in texts.items():
                    copy.write_row((index, text))
            columns, values = "value_id", [texts[page] for page, _, _ in rows]
        else:
            columns, values = "identifier", [page for page, _, _ in rows]
        dimension = "" if layout == "before" else None
        cols = f"site_id, definition_id, {'dimension, ' if dimension is None else ''}{columns}, granularity, period_start, count"
        with cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
            for value, (_, hour, n) in zip(values, rows):
                key = (1, 1, "", value) if dimension is None else (1, 1, value)
                copy.write_row((*key, "H", hour, n))
        cursor.execute(f"VACUUM ANALYZE {table}")
        cursor.execute(
            f"SELECT pg_total_relation_size('{table}'), pg_relation_size('{table}'), pg_indexes_size('{table}')"
        )
        total, heap, indexes = cursor.fetchone()
        if layout == "interned":
            cursor.execute(f"SELECT pg_total_relation_size('{table}_text')")
            total += cursor.fetchone()[0]
        cursor.execute(f"DROP TABLE IF EXISTS {table}, {table}_text")
    n = len(rows)
    return {"total": total / n, "heap": heap / n, "indexes": indexes / n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--database", default="postgres://postgres@127.0.0.1:5432/beacons_bench_rows")
    args = parser.parse_args()
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "beacon_site.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-" + "x" * 50)  # no request is served
    import django

    django.setup()
    server, _, name = args.database.rpartition("/")
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            admin.execute(f'CREATE DATABASE "{name}"')
    rows = sample_rows(args.rows)
    with psycopg.connect(args.database, autocommit=True) as conn:
        print(f"{len(rows):,} hour rows of 1,000 demo pages, fillfactor {FILLFACTOR}; bytes per row:")
        print(f"{'layout':<10} {'total':>7} {'heap':>7} {'indexes':>8} {'seconds':>8}")
        for layout in LAYOUTS:
            started = time.monotonic()
            sizes = measure(conn, layout, rows)
            print(
                f"{layout:<10} {sizes['total']:7.0f} {sizes['heap']:7.0f} {sizes['indexes']:8.0f} "
                f"{time.monotonic() - started:8.1f}"
            )


if __name__ == "__main__":
    main()
