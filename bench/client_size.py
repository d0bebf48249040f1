"""Size of the browser clients against their budgets; regenerates their minified copies.

    .venv/bin/python bench/client_size.py           # print raw and gzipped sizes
    .venv/bin/python bench/client_size.py --write   # regenerate beacon.min.js and beacon-flags.min.js, then print

The minified copies are committed, so users need no build step; they are made with calmjs.parse
(pure Python, in the test extra): comments and whitespace removed, local names shortened.
The clients are written in ES5 so this parser can read them.
"""

import argparse
import gzip
import sys
from dataclasses import dataclass
from pathlib import Path

STATIC = Path(__file__).resolve().parent.parent / "beacons" / "static" / "beacons"
PLAUSIBLE_GZIP_BYTES = 1024  # plausible.io/js/script.js, about 1 KB gzipped


@dataclass(frozen=True)
class Client:
    source: Path
    budget_gzip_bytes: int

    @property
    def minified(self) -> Path:
        return self.source.with_suffix(".min.js")


TAG = Client(STATIC / "beacon.js", budget_gzip_bytes=2560)  # counts page views, events and errors
FLAGS = Client(STATIC / "beacon-flags.js", budget_gzip_bytes=3072)  # flags and experiments
CLIENTS = (TAG, FLAGS)
# The names tests/test_client_tag.py reads: beacon.js's.
SOURCE, MINIFIED, BUDGET_GZIP_BYTES = TAG.source, TAG.minified, TAG.budget_gzip_bytes


def minify(source: str, *, name: str = TAG.source.name) -> str:
    """``source`` minified, under a header naming ``name``, the readable file that says what it does."""
    from calmjs.parse import es5
    from calmjs.parse.unparsers.es5 import minify_print

    header = f"/*! Beacons: minified {name}, which says what it sends */\n"
    return header + minify_print(es5(source), obfuscate=True, obfuscate_globals=False) + "\n"


def client_minify(client: Client) -> str:
    """What ``client.minified`` holds when it is current."""
    return minify(client.source.read_text(), name=client.source.name)


def gzipped_size(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="regenerate the minified copies from the sources")
    args = parser.parse_args()
    within = True
    for client in CLIENTS:
        if args.write:
            client.minified.write_text(client_minify(client))
        budget = client.budget_gzip_bytes
        print(f"{'file':<22}{'raw':>8}{'gzip':>8}   budget {budget} B gzip, Plausible ~{PLAUSIBLE_GZIP_BYTES} B")
        for path, role in ((client.source, "readable source"), (client.minified, "served by default")):
            data = path.read_bytes()
            zipped = gzipped_size(data)
            verdict = "within budget" if zipped <= budget else "over budget"
            ratio = zipped / PLAUSIBLE_GZIP_BYTES
            print(f"{path.name:<22}{len(data):>8}{zipped:>8}   {role}: {verdict}, {ratio:.1f}x Plausible")
        within = within and gzipped_size(client.minified.read_bytes()) <= budget
    return 0 if within else 1


if __name__ == "__main__":
    sys.exit(main())
