"""Peak memory of exporting counts: 1/10 of the rows vs all of them, per format.

    .venv/bin/python bench/export_memory.py            # 1,000,000 rows (takes a few minutes)
    .venv/bin/python bench/export_memory.py --rows 200000 --formats csv,json

Builds a throwaway SQLite database in a temporary folder (never the project's), fills it
with --rows counters spread over 10 event types, then exports one event type (a tenth of
the rows) and everything, through the same code the beacons_export command and the admin
use. For each export it prints the time, the file size, the peak Python allocation
(tracemalloc, a separate run) and the peak resident memory above the process's resident
memory before the export (VmHWM, reset before each run). Flat means the two sizes peak
at about the same memory.
"""

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TYPES = 10


def rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_reset() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux)
    except OSError:
        pass


def setup(folder: str) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = f"sqlite:///{folder}/bench.sqlite3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "beacon_site.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def fill(rows: int) -> list[int]:
    from django.db import connection, transaction

    from beacons.models import BeaconAggregate, BeaconDefinition, Site

    ids = [BeaconDefinition.objects.create(slug=f"type_{n}", name=f"Type {n}").pk for n in range(TYPES)]
    base = datetime(2024, 1, 1, tzinfo=UTC)
    adapt = connection.ops.adapt_datetimefield_value
    sql = (
        f"INSERT INTO {BeaconAggregate._meta.db_table} "
        "(site_id, definition_id, dimension, identifier, granularity, period_start, count) "
        "VALUES (%s, %s, '', %s, %s, %s, %s)"
    )
    site_id = Site.objects.order_by("pk").values_list("pk", flat=True).first()
    per_type = rows // TYPES
    with transaction.atomic(), connection.cursor() as cursor:
        for definition_id in ids:
            batch = []
            for i in range(per_type):
                start = base + timedelta(hours=i // 100)
                batch.append((site_id, definition_id, f"/page/{i % 100}", "H", adapt(start), i % 97 + 1))
                if len(batch) == 10_000:
                    cursor.executemany(sql, batch)
                    batch = []
            if batch:
                cursor.executemany(sql, batch)
    return ids


def export_once(file_format: str, slug: str | None, folder: str, *, traced: bool) -> tuple[int, float, float, float]:
    from beacons.queries import exports
    from beacons.transfer import formats

    queryset = exports.aggregates_filter(definition=slug)
    target = Path(folder) / f"out.{file_format}"
    baseline = rss_mb("VmRSS")
    peak_reset()
    if traced:
        tracemalloc.start()
    started = time.monotonic()
    with open(target, "wb") as file:
        for chunk in formats.aggregates_export(queryset=queryset, file_format=file_format):
            file.write(chunk)
    elapsed = time.monotonic() - started
    traced_peak = tracemalloc.get_traced_memory()[1] / 2**20 if traced else float("nan")
    if traced:
        tracemalloc.stop()
    return target.stat().st_size, elapsed, traced_peak, rss_mb("VmHWM") - baseline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--formats", default="csv,json,xlsx")
    options = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # each line shows up as it is measured
    with tempfile.TemporaryDirectory(prefix="beacons-bench-") as folder:
        setup(folder)
        started = time.monotonic()
        fill(options.rows)
        print(f"filled {options.rows:,} counters in {time.monotonic() - started:.1f}s (SQLite, {folder})")
        print(
            f"{'format':<6} {'rows':>10} {'seconds':>8} {'file MB':>8} {'tracemalloc peak MB':>20} {'RSS peak +MB':>13}"
        )
        for file_format in options.formats.split(","):
            for label, slug in [(options.rows // TYPES, "type_0"), (options.rows, None)]:
                size, elapsed, _, rss = export_once(file_format, slug, folder, traced=False)
                _, _, traced, _ = export_once(file_format, slug, folder, traced=True)
                print(
                    f"{file_format:<6} {label:>10,} {elapsed:>8.1f} {size / 2**20:>8.1f} {traced:>20.1f} {rss:>13.1f}"
                )


if __name__ == "__main__":
    main()
