"""Drain throughput: N distinct counter keys from Redis into PostgreSQL, in keys/s.

    .venv/bin/python -m bench.drain [--keys 1000000]

Uses the database ``beacons_bench`` on 127.0.0.1 (created and migrated if missing; set
BENCH_DATABASE_URL to use another) and the Redis prefix ``beacons-bench-drain``. Runs two
drains of the same keys: the first inserts every row, the second updates every row. Then,
for scale on this machine at this moment, PostgreSQL alone: the same rows already in
temporary tables of two connections (no Redis, no Python), added by the drain's statement.
"""

import argparse
import os
import sys
import threading
import time

BENCH_DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/beacons_bench")
PREFIX = "beacons-bench-drain"


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ["BEACONS_REDIS_PREFIX"] = PREFIX
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "beacon_site.settings")
    import django

    django.setup()


def postgres_database_ensure(url: str) -> None:
    """Create the database named in ``url`` if it does not exist."""
    import psycopg
    from psycopg import sql

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def live_hash_fill(*, client, definition_id: int, keys: int) -> None:
    from django.utils import timezone

    from beacons.counting.buckets import bucket_start
    from beacons.counting.redis_format import field_encode, live_and_pending_keys
    from beacons.models import Site

    site_id = Site.objects.order_by("pk").values_list("pk", flat=True).first()
    live, _ = live_and_pending_keys(PREFIX)
    start = bucket_start(timezone.now(), "H")
    pipe = client.pipeline(transaction=False)
    for offset in range(0, keys, 20_000):
        mapping = {
            field_encode((site_id, definition_id, "", f"/page/{i}", "H", start)): 1
            for i in range(offset, min(keys, offset + 20_000))
        }
        pipe.hset(live, mapping=mapping)
        pipe.execute()


def reference_run(*, definition_id: int, keys: int, database_url: str, parts: int = 2) -> None:
    """Time only the database's share of a drain, as on this machine at this moment: each of
    ``parts`` connections has its share of the keys in a temporary table (loaded before the
    clock starts) and adds it with one ``INSERT … SELECT … ON CONFLICT`` — first as new rows,
    then again as updates. No Redis and no Python in the timed part."""
    import psycopg

    from beacons.models import BeaconAggregate, Site

    table = BeaconAggregate._meta.db_table
    site_id = Site.objects.order_by("pk").values_list("pk", flat=True).first()
    epoch = int(time.time()) // 3600 * 3600
    lines = [f"{definition_id}\tH\t{epoch}\t/reference/{i}\t1\n" for i in range(keys)]
    shares = [lines[index::parts] for index in range(parts)]
    for label in ("insert (new rows)", "update (existing rows)"):
        connections = [psycopg.connect(database_url.replace("postgres://", "postgresql://", 1)) for _ in range(parts)]
        for connection, share in zip(connections, shares):
            connection.execute("SET work_mem = '256MB'")
            connection.execute(
                'CREATE TEMP TABLE reference_rows (definition_id bigint, granularity text COLLATE "C", '
                'epoch bigint, identifier text COLLATE "C", count bigint)'
            )
            with connection.cursor().copy("COPY reference_rows FROM STDIN") as copy:
                copy.write("".join(share))
        barrier = threading.Barrier(parts + 1)

        def upsert(connection) -> None:
            barrier.wait()
            connection.execute(
                f"INSERT INTO {table} (site_id, definition_id, dimension, identifier, granularity, period_start, count) "
                f"SELECT {site_id}, definition_id, '', identifier, granularity, to_timestamp(epoch), count "
                "FROM reference_rows ORDER BY definition_id, identifier, granularity, epoch "
                "ON CONFLICT (site_id, definition_id, dimension, identifier, granularity, period_start) "
                f"DO UPDATE SET count = {table}.count + EXCLUDED.count"
            )
            connection.commit()

        threads = [threading.Thread(target=upsert, args=(connection,)) for connection in connections]
        for thread in threads:
            thread.start()
        barrier.wait()
        started = time.perf_counter()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        for connection in connections:
            connection.close()
        print(f"{label:<22}{elapsed:>10.2f}{keys / elapsed:>12,.0f}")
        sys.stdout.flush()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=1_000_000)
    args = parser.parse_args(argv)

    postgres_database_ensure(BENCH_DATABASE_URL)
    setup_django(BENCH_DATABASE_URL)
    from django.core.management import call_command
    from django.db import connection

    from beacons.counting.drain import drain_pass
    from beacons.counting.redis_format import live_and_pending_keys
    from beacons.counting.sinks import redis_client
    from beacons.models import BeaconAggregate, BeaconDefinition, DrainBatch

    call_command("migrate", verbosity=0)
    definition, _ = BeaconDefinition.objects.get_or_create(
        slug="bench_drain", defaults={"name": "Bench drain", "granularities": "H"}
    )
    BeaconAggregate.objects.filter(definition=definition).delete()
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {BeaconAggregate._meta.db_table}")
    client = redis_client(os.environ.get("BEACONS_REDIS_URL", "redis://127.0.0.1:6379/0"))
    client.delete(*live_and_pending_keys(PREFIX))

    print(f"drain of {args.keys:,} distinct keys into PostgreSQL ({connection.settings_dict['NAME']})")
    print(f"{'pass':<22}{'seconds':>10}{'keys/s':>12}")
    for label in ("insert (new rows)", "update (existing rows)"):
        live_hash_fill(client=client, definition_id=definition.pk, keys=args.keys)
        started = time.perf_counter()
        result = drain_pass(client=client, prefix=PREFIX)
        elapsed = time.perf_counter() - started
        assert result.keys == args.keys, result
        print(f"{label:<22}{elapsed:>10.2f}{result.keys / elapsed:>12,.0f}")
        sys.stdout.flush()
    print("PostgreSQL alone, for scale:")
    reference_run(definition_id=definition.pk, keys=args.keys, database_url=BENCH_DATABASE_URL)
    stored = sum(BeaconAggregate.objects.filter(definition=definition).values_list("count", flat=True))
    print(f"stored total {stored:,} (expected {4 * args.keys:,})")
    DrainBatch.objects.filter(keys=args.keys).delete()
    BeaconAggregate.objects.filter(definition=definition).delete()


if __name__ == "__main__":
    main()
