"""Time and peak memory of reading a JSON import file: our reader vs ijson's backends.

    .venv/bin/python bench/import_json.py                 # 1,000,000 rows
    .venv/bin/python bench/import_json.py --rows 100000 --readers ours,yajl2_c

Writes a counts file with --rows rows (the shape ``beacons_export --format json`` writes)
into a temporary folder, then reads every row with each reader: ``ours`` is
``beacons.transfer.formats.rows_read`` (what ``beacons_import`` uses), the others are
``ijson.items(..., "item", use_float=True)`` on the named ijson backend. Each reader runs
twice: untimed memory (tracemalloc peak) and timed without tracing. A reader that changes
or refuses a row the others read is reported beside its figures.

ijson is not a dependency (why: ``beacons.transfer.formats._json_items``); install it to compare:
``.venv/bin/pip install 'ijson>=3.3'``. Figures of 2 Dec 2026 (2 cores, shared):
1 M rows, 127 MB: ours 9.6 s alone / 26–27 s under load, 0.34 MB peak; yajl2_c 4.3–17.8 s
under load, 0.55 MB, lone surrogate read as "?", a count of 2**63 refuses the whole file.
100 k rows: ours 2.7 s, 0.34 MB; python backend 15.6 s, 2.26 MB.
"""

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The rows a reader must give back exactly: a lone surrogate (a row error at import) and a
# count past 2**63 (a "too large" row error), as a file from another system may hold them.
PROBES = '{"event_type": "page_view", "identifier": "/a\\ud800", "count": 1}, {"event_type": "x", "count": 9223372036854775808}'


def file_write(path: Path, rows: int, *, probes: bool) -> None:
    with open(path, "w", encoding="utf-8") as file:
        file.write("[" + (PROBES + ",\n" if probes else ""))
        for n in range(rows):
            file.write(
                f'{"," if n else ""}\n{{"event_type": "type_{n % 10}", "identifier": "/page/{n % 100}", "granularity": "hour", '
                f'"period_start": "2024-01-01T{n % 24:02}:00:00+00:00", "count": {n % 97 + 1}}}'
            )
        file.write("\n]\n")


def reader_rows(name: str, path: Path):
    if name == "ours":
        from beacons.transfer import formats

        stream = open(path, "rb")
        _headers, rows = formats.rows_read(stream=stream, file_format="json")
        return rows
    import ijson

    backend = ijson.get_backend(name)
    return backend.items(open(path, "rb"), "item", use_float=True)


def read_once(name: str, path: Path, *, traced: bool) -> tuple[int, float, float, str]:
    if traced:
        tracemalloc.start()
    started = time.monotonic()
    count, note = 0, ""
    try:
        for row in reader_rows(name, path):
            if row.get("event_type") == "page_view" and row.get("identifier") != "/a\ud800":
                note = f"lone surrogate read as {row.get('identifier')!r}"
            count += 1
    except Exception as problem:  # a reader that refuses the file
        note += f" refused the file after {count} rows: {type(problem).__name__}: {str(problem).splitlines()[0][:60]}"
    elapsed = time.monotonic() - started
    peak = tracemalloc.get_traced_memory()[1] / 2**20 if traced else float("nan")
    if traced:
        tracemalloc.stop()
    return count, elapsed, peak, note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--readers", default="ours,yajl2_c,python")
    parser.add_argument("--no-probes", action="store_true", help="leave out the two rows some readers refuse")
    options = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "beacon_site.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-" + "x" * 50)  # no request is served
    import django

    django.setup()
    with tempfile.TemporaryDirectory(prefix="beacons-bench-") as folder:
        path = Path(folder) / "counts.json"
        file_write(path, options.rows, probes=not options.no_probes)
        print(f"{options.rows:,} rows, {path.stat().st_size / 2**20:.1f} MB")
        print(f"{'reader':<8} {'rows read':>10} {'seconds':>8} {'tracemalloc peak MB':>20}  note")
        for name in options.readers.split(","):
            _, _, peak, _ = read_once(name, path, traced=True)
            count, elapsed, _, note = read_once(name, path, traced=False)
            print(f"{name:<8} {count:>10,} {elapsed:>8.1f} {peak:>20.2f}  {note}")


if __name__ == "__main__":
    main()
