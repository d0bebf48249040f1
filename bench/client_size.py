"""Size of the browser client against its budget; regenerates the minified copy.

    .venv/bin/python bench/client_size.py           # print raw and gzipped sizes
    .venv/bin/python bench/client_size.py --write   # regenerate beacon.min.js from beacon.js, then print

The minified copy is committed, so users need no build step; it is made with calmjs.parse
(pure Python, in the test extra): comments and whitespace removed, local names shortened.
beacon.js is written in ES5 so this parser can read it.
"""

import argparse
import gzip
import sys
from pathlib import Path

STATIC = Path(__file__).resolve().parent.parent / "beacons" / "static" / "beacons"
SOURCE = STATIC / "beacon.js"
MINIFIED = STATIC / "beacon.min.js"
BUDGET_GZIP_BYTES = 2560
PLAUSIBLE_GZIP_BYTES = 1024  # plausible.io/js/script.js, about 1 KB gzipped
HEADER = "/*! Beacons client, minified beacon.js (which says what it sends) */\n"


def minify(source: str) -> str:
    from calmjs.parse import es5
    from calmjs.parse.unparsers.es5 import minify_print

    return HEADER + minify_print(es5(source), obfuscate=True, obfuscate_globals=False) + "\n"


def gzipped_size(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="regenerate beacon.min.js from beacon.js")
    args = parser.parse_args()
    if args.write:
        MINIFIED.write_text(minify(SOURCE.read_text()))
    print(f"{'file':<16}{'raw':>8}{'gzip':>8}   budget {BUDGET_GZIP_BYTES} B gzip, Plausible ~{PLAUSIBLE_GZIP_BYTES} B")
    for path, role in ((SOURCE, "readable source"), (MINIFIED, "served by default")):
        data = path.read_bytes()
        zipped = gzipped_size(data)
        verdict = "within budget" if zipped <= BUDGET_GZIP_BYTES else "over budget"
        ratio = zipped / PLAUSIBLE_GZIP_BYTES
        print(f"{path.name:<16}{len(data):>8}{zipped:>8}   {role}: {verdict}, {ratio:.1f}x Plausible")
    return 0 if gzipped_size(MINIFIED.read_bytes()) <= BUDGET_GZIP_BYTES else 1


if __name__ == "__main__":
    sys.exit(main())
