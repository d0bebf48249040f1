"""Deleting a million counters: ``QuerySet.delete()`` (what retention uses) against Django's
private ``_raw_delete``, on the same rows, alternating, in seconds.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> .venv/bin/python -m bench.retention_delete [--rows 1000000]

Each round fills the rows with one ``INSERT … SELECT generate_series`` (outside the clock),
then deletes them the way ``beacons_purge`` does: fine buckets of one type older than a cutoff.
"""

import argparse
import os
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "beacon_site.settings")
    import django

    django.setup()
    from datetime import UTC, datetime

    from django.db import connection, transaction

    from beacons.counting.retention import rows_delete
    from beacons.models import BeaconAggregate, BeaconDefinition

    definition, _ = BeaconDefinition.objects.get_or_create(slug="bench_delete", defaults={"name": "Bench delete"})
    table = BeaconAggregate._meta.db_table
    cutoff = datetime(2030, 1, 1, tzinfo=UTC)

    def fill() -> None:
        BeaconAggregate.objects.filter(definition=definition).delete()
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (definition_id, identifier, granularity, period_start, count) "
                "SELECT %s, '/p/' || (i %% 1000), 'M', timestamptz '2026-01-01' + (i / 1000) * interval '1 minute', 1 "
                "FROM generate_series(0, %s - 1) AS i",
                [definition.pk, args.rows],
            )
            if connection.vendor == "postgresql":
                cursor.execute(f"VACUUM ANALYZE {table}")

    def old_rows():
        return BeaconAggregate.objects.filter(definition=definition, granularity="M", period_start__lt=cutoff)

    ways = {
        "QuerySet.delete()": lambda: rows_delete(old_rows()),
        "_raw_delete": lambda: old_rows()._raw_delete(BeaconAggregate.objects.db),
    }
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.rounds):
        for name, delete in ways.items():
            fill()
            started = time.perf_counter()
            with transaction.atomic():
                deleted = delete()
            times[name].append(time.perf_counter() - started)
            assert deleted == args.rows, (name, deleted)
    for name, seconds in times.items():
        print(
            f"{name:>18}: {args.rows:,} rows, median {statistics.median(seconds):.2f} s ({', '.join(f'{s:.2f}' for s in seconds)})"
        )
    definition.delete()


if __name__ == "__main__":
    main()
