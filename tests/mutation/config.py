"""What `make mutate` mutates, and which tests each module answers to.

Keys are module paths from the repository root; values are the test files that exercise the
module, the most specific first (with ``-x`` the first failing test ends a mutant's run, so
the file most likely to kill it goes first). When a module moves, change its key here.
A module run on PostgreSQL (paths only the real database takes) says so in ``POSTGRES``.
"""

MODULES: dict[str, list[str]] = {
    "beacons/counting/buckets.py": ["tests/test_buckets.py", "tests/test_queries.py"],
    "beacons/ingest/parsing.py": ["tests/test_parsing.py", "tests/test_ingest.py"],
    "beacons/queries/counters.py": ["tests/test_queries.py", "tests/test_dashboard.py"],
    "beacons/queries/error_groups.py": ["tests/test_queries.py", "tests/test_errors_views.py", "tests/test_alerts.py"],
    "beacons/counting/increments.py": ["tests/test_counting.py", "tests/test_drain.py"],
    "dashboard/forms.py": ["tests/test_dashboard.py"],
}

# Modules whose mapped tests run on SQLite and then on PostgreSQL (each worker on its own
# database), for code paths only PostgreSQL takes. The first run, recording which tests call
# which function, is on PostgreSQL.
POSTGRES: set[str] = {"beacons/counting/increments.py"}

# Equivalent mutants: no test can tell them from the code (same observable behaviour).
# Each entry: file, line, change (as printed in the survivor list), reason.
SET_ASIDE: list[dict[str, object]] = [
    {
        "file": "beacons/ingest/parsing.py",
        "line": 152,
        "change": "1 → 2",
        "reason": "split(';', 2)[0] is split(';', 1)[0]: only the part before the first ';' is read",
    },
    {
        "file": "beacons/ingest/parsing.py",
        "line": 158,
        "change": "'utf-8' → ''",
        "reason": "QueryDict falls back to DEFAULT_CHARSET, which is utf-8",
    },
    {
        "file": "beacons/ingest/parsing.py",
        "line": 165,
        "change": "'utf-8' → ''",
        "reason": "MultiPartParser falls back to DEFAULT_CHARSET, which is utf-8",
    },
    {
        "file": "beacons/ingest/parsing.py",
        "line": 48,
        "change": "call statement dropped",
        "reason": "_Invalid's exception message is never read: it is caught and its .field/.error copied",
    },
    {
        "file": "beacons/queries.py",
        "line": 116,
        "change": "<= → <",
        "reason": "an end exactly at now moved to the year's end sums the same: no counter starts after now",
    },
    {
        "file": "beacons/queries.py",
        "line": 206,
        "change": "'last_seen' → ''",
        "reason": "an unknown order falls back to -last_seen, the value this key maps to",
    },
    {
        "file": "beacons/queries.py",
        "line": 211,
        "change": "'last_seen' → ''",
        "reason": "the default order '' falls back to -last_seen, as 'last_seen' does",
    },
    {
        "file": "beacons/queries.py",
        "line": 281,
        "change": "'Other' → ''",
        "reason": "ua-parser 1.x (pyproject: >=1.0) answers None, never the family 'Other', for an unknown agent",
    },
    {
        "file": "beacons/counting/increments.py",
        "line": 75,
        "change": "1000000 → 1000001",
        "reason": "a tuning constant: the statement boundary itself is pinned with a patched value",
    },
    {
        "file": "beacons/counting/increments.py",
        "line": 113,
        "change": "call statement dropped",
        "reason": "SET temp_buffers: memory tuning, counts unchanged",
    },
    {
        "file": "beacons/counting/increments.py",
        "line": 114,
        "change": "call statement dropped",
        "reason": "SET LOCAL work_mem: memory tuning, counts unchanged",
    },
    {
        "file": "beacons/ingest/parsing.py",
        "line": 85,
        "change": "return x → return None",
        "reason": "return False → None: every caller reads the answer as a truth value",
    },
    {
        "file": "beacons/counting/buckets.py",
        "line": 77,
        "change": "1 → 2",
        "reason": "bucket starts are whole seconds: 1 or 2 µs before one lies in the same previous bucket",
    },
    {
        "file": "beacons/counting/buckets.py",
        "line": 106,
        "change": ">= → >",
        "reason": "an empty range (lo == hi) finds no whole bucket at any level either way: no pieces",
    },
]
