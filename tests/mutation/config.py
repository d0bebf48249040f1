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
    "beacons/useragents.py": ["tests/test_useragents.py", "tests/test_extraction.py"],
    "beacons/ingest/extraction.py": ["tests/test_extraction.py"],
    "dashboard/periods.py": ["tests/test_dashboard_forms.py", "tests/test_dashboard_periods.py"],
    "dashboard/forms.py": [
        "tests/test_dashboard_forms.py",
        "tests/test_dashboard_periods.py",
        "tests/test_dashboard.py",
    ],
}

# Modules whose mapped tests run on SQLite and then on PostgreSQL (each worker on its own
# database), for code paths only PostgreSQL takes. The first run, recording which tests call
# which function, is on PostgreSQL.
POSTGRES: set[str] = {"beacons/counting/increments.py"}

# Equivalent mutants: no test can tell them from the code (same observable behaviour).
# Each entry: file, function (qualified, e.g. "covering_buckets.cover"; "" at module level),
# text (the changed line, stripped, as printed in the survivor list), change, reason. No line
# numbers: an entry keeps applying when code above it moves, and one whose line or function
# changed is reported as stale (`--list` exits 1). Identical lines in one function share an entry.
SET_ASIDE: list[dict[str, object]] = [
    {
        "file": "beacons/ingest/parsing.py", "function": "body_to_data", "change": "1 → 2",
        "text": 'media_type = content_type.split(";", 1)[0].strip().lower()',
        "reason": "split(';', 2)[0] is split(';', 1)[0]: only the part before the first ';' is read",
    },
    {
        "file": "beacons/ingest/parsing.py", "function": "body_to_data", "change": "'utf-8' → ''",
        "text": 'form = QueryDict(raw, encoding="utf-8")',
        "reason": "QueryDict falls back to DEFAULT_CHARSET, which is utf-8",
    },
    {
        "file": "beacons/ingest/parsing.py", "function": "body_to_data", "change": "'utf-8' → ''",
        "text": '{**meta, "CONTENT_LENGTH": str(len(raw)), "CONTENT_TYPE": content_type}, BytesIO(raw), [], "utf-8"',
        "reason": "MultiPartParser falls back to DEFAULT_CHARSET, which is utf-8",
    },
    {
        "file": "beacons/ingest/parsing.py", "function": "_Invalid.__init__", "change": "call statement dropped",
        "text": "super().__init__(error)",
        "reason": "_Invalid's exception message is never read: it is caught and its .field/.error copied",
    },
    {
        "file": "beacons/queries/counters.py", "function": "_through_now", "change": "<= → <",
        "text": "if end <= now:",
        "reason": "an end exactly at now moved to the year's end sums the same: no counter starts after now",
    },
    {
        "file": "beacons/queries/error_groups.py", "function": "", "change": "'last_seen' → ''",
        "text": 'ERROR_ORDERINGS = {"last_seen": "-last_seen", "count": "-count", "first_seen": "-first_seen"}',
        "reason": "an unknown order falls back to -last_seen, the value this key maps to",
    },
    {
        "file": "beacons/queries/error_groups.py", "function": "error_groups_filtered", "change": "'last_seen' → ''",
        "text": '*, status: str = "", page: str = "", since: datetime | None = None, order: str = "last_seen"',
        "reason": "the default order '' falls back to -last_seen, as 'last_seen' does",
    },
    {
        "file": "beacons/useragents.py", "function": "_known", "change": "'Other' → ''",
        "text": 'return "" if family in (None, "Other") else family',
        "reason": "ua-parser 1.x (pyproject: >=1.0) answers None, never the family 'Other', for an unknown agent",
    },
    {
        "file": "beacons/counting/increments.py", "function": "", "change": "1000000 → 1000001",
        "text": "STREAM_ROWS_PER_STATEMENT = 1_000_000",
        "reason": "a tuning constant: the statement boundary itself is pinned with a patched value",
    },
    {
        "file": "beacons/counting/increments.py", "function": "aggregates_add_stream", "change": "call statement dropped",
        "text": "cursor.execute(\"SET temp_buffers = '256MB'\")",
        "reason": "SET temp_buffers: memory tuning, counts unchanged",
    },
    {
        "file": "beacons/counting/increments.py", "function": "aggregates_add_stream", "change": "call statement dropped",
        "text": "cursor.execute(\"SET LOCAL work_mem = '256MB'\")",
        "reason": "SET LOCAL work_mem: memory tuning, counts unchanged",
    },
    {
        "file": "beacons/counting/buckets.py", "function": "bucket_before", "change": "1 → 2",
        "text": "return bucket_start(start - timedelta(microseconds=1), granularity, tz)",
        "reason": "bucket starts are whole seconds: 1 or 2 µs before one lies in the same previous bucket",
    },
    {
        "file": "beacons/counting/buckets.py", "function": "covering_buckets.cover", "change": ">= → >",
        "text": "if lo >= hi or not levels:",
        "reason": "an empty range (lo == hi) finds no whole bucket at any level either way: no pieces",
    },
    {
        "file": "dashboard/forms.py", "function": "_local_midnight", "change": "12 → 13",
        "text": "return bucket_start(datetime(day.year, day.month, day.day, 12, tzinfo=bucket_zone()), G.DAY)",
        "reason": "noon or 13:00 lie in the same local day in every zone: the day's midnight is the same",
    },
    {
        "file": "dashboard/forms.py", "function": "_preset_range", "change": "< → <=",
        "text": "if last_day < first_day:",
        "reason": "swapping two equal days changes nothing",
    },
    {
        "file": "dashboard/forms.py", "function": "dashboard_state", "change": "> → >=",
        "text": "coarser = [g for g in choices if CHART_GRANULARITIES.index(g) > CHART_GRANULARITIES.index(wanted)]",
        "reason": "coarser is read only when the wanted size is not kept, so never among the choices: >= adds nothing",
    },
    {
        "file": "dashboard/forms.py", "function": "_bucket_count", "change": "30 → 31",
        "text": "G.MONTH: timedelta(days=30),",
        "reason": "dates are capped at 3,661 days: at most 123 months, far under the 800-point limit either way",
    },
    {
        "file": "dashboard/forms.py", "function": "_bucket_count", "change": "365 → 366",
        "text": "G.YEAR: timedelta(days=365),",
        "reason": "dates are capped at 3,661 days: at most 11 years, far under the 800-point limit either way",
    },
    {
        "file": "dashboard/periods.py", "function": "period_label", "change": "1 → 2",
        "text": "last = (max(end, start + timedelta(microseconds=1)) - timedelta(microseconds=1)).astimezone(tz)",
        "reason": "start and end are whole seconds: 1 or 2 µs before end (or after start) is on the same date and hour",
    },
    {
        "file": "dashboard/forms.py", "function": "DashboardState", "change": "'views' → ''",
        "text": 'sort: str = "views"', "reason": "a default never used: dashboard_state always passes sort",
    },
    {
        "file": "dashboard/forms.py", "function": "DashboardState", "change": "10 → 11",
        "text": "rows: int = 10", "reason": "a default never used: dashboard_state always passes rows",
    },
    {
        "file": "dashboard/forms.py", "function": "DashboardState", "change": "1 → 2",
        "text": "page: int = 1", "reason": "a default never used: dashboard_state always passes page",
    },
    {
        "file": "dashboard/forms.py", "function": "DashboardState", "change": "'stacked' → ''",
        "text": 'scale: str = "stacked"', "reason": "a default never used: dashboard_state always passes scale",
    },
    {
        "file": "dashboard/forms.py", "function": "dashboard_state", "change": "call statement dropped",
        "text": "form.is_valid()",
        "reason": "the form is rendered only: its fields validate lazily (form.errors) when the template asks",
    },
]  # fmt: skip
