"""What `make mutate` mutates.

Every module listed is mutated; the tests a mutant runs are found, not listed: one run of the
whole suite (not serial, not browser) records with coverage.py which test runs which line, and
a mutant runs only the tests that run its line, fastest first. A new core module only needs
its path here. A module with code paths only PostgreSQL takes names, in ``POSTGRES``, the test
files that are traced and run again on PostgreSQL.
"""

MODULES: list[str] = [
    "beacons/api/query.py",
    "beacons/counting/buckets.py",
    "beacons/counting/increments.py",
    "beacons/counting/redis_format.py",
    "beacons/counting/sketches.py",
    "beacons/counting/value_cap.py",
    "beacons/dimensions.py",
    "beacons/experiments/evaluation.py",
    "beacons/experiments/payload.py",
    "beacons/experiments/recording.py",
    "beacons/experiments/statistics.py",
    "beacons/ingest/compat/__init__.py",
    "beacons/ingest/compat/goatcounter.py",
    "beacons/ingest/compat/plausible.py",
    "beacons/ingest/compat/sentry.py",
    "beacons/ingest/compat/umami.py",
    "beacons/ingest/dimensions.py",
    "beacons/ingest/hits.py",
    "beacons/ingest/extraction.py",
    "beacons/ingest/parsing.py",
    "beacons/ingest/sessions.py",
    "beacons/periods.py",
    "beacons/queries/counters.py",
    "beacons/queries/error_groups.py",
    "beacons/queries/experiments.py",
    "beacons/queries/visitors.py",
    "beacons/queries/visits.py",
    "beacons/transfer/peers.py",
    "beacons/useragents.py",
    "dashboard/periods.py",
    "dashboard/forms.py",
]

POSTGRES: dict[str, list[str]] = {
    "beacons/counting/increments.py": ["tests/test_counting.py", "tests/test_drain.py", "tests/test_dimensions.py"]
}

# Equivalent mutants: no test can tell them from the code (same observable behaviour).
# Each entry: file, function (qualified, e.g. "covering_buckets.cover"; "" at module level),
# text (the changed line, stripped, as printed in the survivor list), change, reason. No line
# numbers: an entry keeps applying when code above it moves, and one whose line or function
# changed is reported as stale (`--list` exits 1). Identical lines in one function share an entry.
SET_ASIDE: list[dict[str, object]] = [
    {
        "file": "beacons/experiments/evaluation.py", "function": "_operator_holds", "change": "return x → return None",
        "text": "return False",
        "reason": "condition_holds reads the answer as a truth value: None and False both skip the rule",
    },
    {
        "file": "beacons/experiments/evaluation.py", "function": "_operator_holds", "change": "return x → return None",
        "text": "return False  # an operator this payload never holds: the rule is skipped, as an SDK skips it",
        "reason": "condition_holds reads the answer as a truth value: None and False both skip the rule",
    },
    {
        "file": "beacons/experiments/evaluation.py", "function": "_same", "change": "or → and",
        "text": "if isinstance(left, list | dict) or isinstance(right, list | dict):",
        "reason": "a list or object is never == a text, number or boolean, so only two containers reach a difference, and both return False",
    },
    {
        "file": "beacons/experiments/evaluation.py", "function": "_same", "change": "return x → return None",
        "text": "return False",
        "reason": "every caller reads the answer as a truth value (all, any, not): None and False are the same there",
    },
    {
        "file": "beacons/experiments/evaluation.py", "function": "_experiment_variation", "change": "1 → 2",
        "text": "return -1",
        "reason": "-1 and -2 both mean no variation: the caller tests variation >= 0",
    },
    {
        "file": "beacons/ingest/hits.py", "function": "", "change": "1000 → 1001",
        "text": "HIT_LOG_CHUNK = 1_000  # entries counted per transaction by the drain",
        "reason": "how many entries one transaction counts: the same entries are counted once, in the same order (a test sets it to 2)",
    },
    {
        "file": "beacons/ingest/hits.py", "function": "_chunk_count", "change": "- → +",
        "text": "chunk = pipe.lrange(key, 0, HIT_LOG_CHUNK - 1)",
        "reason": "a chunk two entries longer: what is read is what is cut (LTRIM by its length), so every entry is counted once",
    },
    {
        "file": "beacons/ingest/hits.py", "function": "_chunk_count", "change": "1 → 2",
        "text": "chunk = pipe.lrange(key, 0, HIT_LOG_CHUNK - 1)",
        "reason": "a chunk one entry shorter: see - → + on this line",
    },
    {
        "file": "beacons/ingest/sessions.py", "function": "", "change": "10000 → 10001",
        "text": "PAGE_VIEW_LOG_CHUNK = 10_000  # log entries read at once by the drain",
        "reason": "how many log entries are read at once: the same entries are folded in the same order",
    },
    {
        "file": "beacons/ingest/sessions.py", "function": "", "change": "500 → 501",
        "text": "VISITS_PER_WRITE = 500  # visits written per script call: Redis runs nothing else while a script runs",
        "reason": "how many visits one script call writes: each is written alone either way (its own section)",
    },
    {
        "file": "beacons/ingest/sessions.py", "function": "page_view_log_fold", "change": "- → +",
        "text": "while chunk := client.lrange(key, read, read + PAGE_VIEW_LOG_CHUNK - 1):",
        "reason": "a chunk two entries longer: the next read starts after what was read, so the same entries fold once",
    },
    {
        "file": "beacons/ingest/sessions.py", "function": "page_view_log_fold", "change": "1 → 2",
        "text": "while chunk := client.lrange(key, read, read + PAGE_VIEW_LOG_CHUNK - 1):",
        "reason": "a chunk one entry shorter: see - → + on this line",
    },
    {
        "file": "beacons/ingest/sessions.py", "function": "_log_entries_fold", "change": "True → False",
        "text": "for key, held in zip(part, sink.client.mget(part), strict=True):",
        "reason": "MGET answers one value per key asked: strict only guards a reply Redis never gives",
    },
    {
        "file": "beacons/queries/visitors.py", "function": "", "change": "500 → 501",
        "text": "VALUES_LISTED = 500",
        "reason": "it only picks how the sketches are read (an IN list, or every value filtered in Python): same figures",
    },
    {
        "file": "beacons/queries/visitors.py", "function": "", "change": "24 → 25",
        "text": "OVER_MERGES_SECONDS = 24 * 3600",
        "reason": "how long a cache may hold a kept merge: every read checks it against its rows' stamps, and the next day's reads use another key",
    },
    {
        "file": "beacons/queries/visitors.py", "function": "", "change": "3600 → 3601",
        "text": "OVER_MERGES_SECONDS = 24 * 3600",
        "reason": "see 24 → 25 on this line",
    },
    {
        "file": "beacons/queries/visitors.py", "function": "", "change": "1 → 2",
        "text": "OVER_MERGES_MAX_BYTES = 1 << 20",
        "reason": "the limit's size, not its rule: the rule is tested at its edge with the limit set to a merge's size",
    },
    {
        "file": "beacons/queries/visitors.py", "function": "", "change": "20 → 21",
        "text": "OVER_MERGES_MAX_BYTES = 1 << 20",
        "reason": "see 1 → 2 on this line",
    },
    {
        "file": "beacons/queries/visitors.py", "function": "visitors_of_values", "change": "<= → <",
        "text": "if len(merges) <= VALUES_LISTED:  # in each branch: an index range per value, not a scan of every value",
        "reason": "as 500 → 501 of VALUES_LISTED: at exactly 500 values every value's rows are read and the others skipped, same figures",
    },
    {
        "file": "beacons/queries/visitors.py", "function": "_over_merges", "change": "> → >=",
        "text": "keeps = over > start",
        "reason": "with over == start no row is before over: a merge of nothing is kept (and found) under a key of its own, same figures",
    },
    {
        "file": "beacons/queries/visitors.py", "function": "_over_merges", "change": "0 → 1",
        "text": "stamps = 0",
        "reason": "every sum one more, the kept one as the new: the same comparisons",
    },
    {
        "file": "beacons/queries/visitors.py", "function": "_over_merges_key", "change": "'beacons:visitors-over:' → ''",
        "text": 'return "beacons:visitors-over:" + hashlib.sha256(read.encode()).hexdigest()',
        "reason": "the prefix names the entry for a person reading the cache; the digest alone tells entries apart",
    },
    {
        "file": "beacons/queries/visitors.py", "function": "_sketch_rows", "change": "'postgresql' → ''",
        "text": 'if database.vendor != "postgresql":',
        "reason": "the suite runs SQLite here, where the ORM's cursor is read either way; on PostgreSQL the mutant reads the same rows through the ORM's cursor (the slower, hex-text reading)",
    },
    {
        "file": "beacons/queries/visitors.py", "function": "_sketch_rows", "change": "call statement dropped",
        "text": "database.ensure_connection()",
        "reason": "PostgreSQL only (the mutation run is on SQLite), and every test has opened the connection before; it is for a first query of a fresh process",
    },
    {
        "file": "beacons/queries/visitors.py", "function": "_sketch_rows", "change": "return x → return None",
        "text": "return []",
        "reason": "PostgreSQL only (the mutation run is on SQLite): killed there by test_series_breakdown_and_live_visitors (an empty period; checked by hand)",
    },
    {
        "file": "beacons/queries/visitors.py", "function": "_sketch_rows", "change": "call statement dropped",
        "text": "cursor.execute(sql, params)",
        "reason": "PostgreSQL only (the mutation run is on SQLite): every visitor test on PostgreSQL fails with it (checked by hand)",
    },
    {
        "file": "beacons/queries/visitors.py", "function": "_sketch_rows", "change": "return x → return None",
        "text": "return cursor.fetchall()",
        "reason": "PostgreSQL only (the mutation run is on SQLite): every visitor test on PostgreSQL fails with it (checked by hand)",
    },
    {
        "file": "beacons/ingest/sessions.py", "function": "_visit_extended", "change": "> → >=",
        "text": "if now > last_seen:",
        "reason": "at the same second the seconds adjustment is 0, and _adjustments_add leaves zero keys out",
    },
    {
        "file": "beacons/counting/redis_format.py", "function": "copy_text", "change": "- → +",
        "text": 'clean = blob.count(b"\\x00") == len(fields) - 1',
        "reason": "clean text then takes the cleaning path, which leaves it as it is: the same COPY text, slower",
    },
    {
        "file": "beacons/counting/redis_format.py", "function": "copy_text", "change": "1 → 2",
        "text": 'clean = blob.count(b"\\x00") == len(fields) - 1',
        "reason": "see - → + on this line: only clean text is sent through the cleaning, unchanged",
    },
    {
        "file": "beacons/counting/redis_format.py", "function": "_buckets_split", "change": "True → False",
        "text": "granularities.split(_LIST_SEPARATOR_BYTES), epochs.split(_LIST_SEPARATOR_BYTES), strict=True",
        "reason": "a field lists as many epochs as granularities (buckets_field_encode writes both from one"
        " tuple): strict only guards a field nobody writes",
    },
    {
        "file": "beacons/counting/redis_format.py", "function": "visitor_field_decode", "change": "0 → 1",
        "text": "site_id, definition_id, dimension, identifier, granularity, epoch, _ = field_decode(one, 0)",
        "reason": "the count decoded with the key is dropped (_): a visitor field has none",
    },
    {
        "file": "beacons/counting/value_cap.py", "function": "ValueCap.value_for", "change": "return x → return None",
        "text": "return text",
        "reason": "None is read as the value's own text: DimensionValue.keys(None) keys it under its own value, and"
        " None is not OTHER_VALUE, so nothing is tallied as dropped (both returns of the value's own text)",
    },
    {
        "file": "beacons/counting/sketches.py", "function": "Merge.is_estimate", "change": "1 → 2",
        "text": "return not self.empty and self._union.get_upper_bound(1) - self._union.get_lower_bound(1) >= 1",
        "reason": "the bounds meet while every hash is listed (0 apart) and are far apart once estimated"
        " (thousands of visitors: tens apart), so 1 or 2 decides alike; likewise >= or >",
    },
    {
        "file": "beacons/counting/sketches.py", "function": "Merge.is_estimate", "change": ">= → >",
        "text": "return not self.empty and self._union.get_upper_bound(1) - self._union.get_lower_bound(1) >= 1",
        "reason": "see 1 → 2 on this line: the bounds are 0 or far more than 1 apart",
    },
    {
        "file": "beacons/counting/sketches.py", "function": "sketches_add", "change": "'postgresql' → ''",
        "text": 'text = \' COLLATE "C"\' if connection.vendor == "postgresql" else ""',
        "reason": "the order rows are locked in: only two concurrent writers could tell (a deadlock); no figure differs",
    },
    {
        "file": "beacons/counting/sketches.py", "function": "Merge.__init__", "change": "True → False",
        "text": "self.empty = True",
        "reason": "an empty union estimates 0 and its bounds meet (exact): the flag only saves those calls",
    },
    {
        "file": "beacons/counting/sketches.py", "function": "", "change": "300 → 301",
        "text": "ROWS_PER_STATEMENT = 300  # 8 parameters a row: under SQLite's variable limit",
        "reason": "a tuning constant: any size under SQLite's variable limit writes the same rows",
    },
    {
        "file": "beacons/api/query.py", "function": "_metric_key", "change": "0 → 1",
        "text": "return lambda row: (0, 0) if row.figures[at].value is None else (1, row.figures[at].value)",
        "reason": "(0, 1) for None still ranks below every figure's (1, value); the other 0 → 1, (1, 0), is killed",
    },
    {
        "file": "beacons/api/query.py", "function": "_sorted", "change": "'asc' → ''",
        "text": 'order_by = question.order_by or ([(dimensions[0], "asc")] if ask.granularity else [(names[0], "desc")])',
        "reason": "only \"desc\" reverses: any other direction, \"\" included, sorts ascending",
    },
    {
        "file": "beacons/api/query.py", "function": "_metric_key", "change": "1 → 2",
        "text": "return lambda row: (0, 0) if row.figures[at].value is None else (1, row.figures[at].value)",
        "reason": "the 1 only ranks a figure above None's 0: 2 does the same",
    },
    {
        "file": "beacons/api/query.py", "function": "_breakdown_figures", "change": "'count' → ''",
        "text": 'order="count",',
        "reason": "only \"change\" orders by change: any other order, \"\" included, is by count",
    },
    {
        "file": "beacons/api/query.py", "function": "_visit_dimension_check", "change": "'visits' → ''",
        "text": 'what = "visits of a dimension value" if dimension else "visits"',
        "reason": "the visit types keep every hour, day, month and year: without a dimension no time dimension is refused",
    },
    {
        "file": "beacons/api/query.py", "function": "QueryError.__init__", "change": "call statement dropped",
        "text": "super().__init__(message)",
        "reason": "the API's handler answers with .message and .field; the exception's own message is never read",
    },
    {
        "file": "beacons/api/query.py", "function": "", "change": "'30d' → ''",
        "text": 'DATE_RANGES = {"day": "today", "24h": "24h", "7d": "7d", "30d": "30d", "month": "month", "12mo": "12m",'
        ' "all": "all"}',
        "reason": "the value: an empty preset is read as the default one, the last 30 days (the key's mutant shares"
        " this text, and every question for '30d' would get 400 with it)",
    },
    {
        "file": "beacons/ingest/extraction.py", "function": "campaign_of", "change": "'?' → ''",
        "text": 'if "?" not in page_url:  # no query: most page views, spared the parse',
        "reason": "the shortcut never taken: a URL without '?' has an empty query, which the parse reads as no parameters",
    },
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
        "file": "beacons/ingest/parsing.py", "function": "nesting_within", "change": "return x → return None",
        "text": "return False",
        "reason": "its callers read only its truth (`if not nesting_within(...)`): None and False are both false",
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
        "file": "beacons/queries/counters.py", "function": "_bucket_counts", "change": "< → <=",
        "text": "if first_whole < last_whole:",
        "reason": "when equal, the whole-bucket range is empty and the edges [start, x) and [x, end) read the rows"
        " [start, end) does: x is a bucket boundary, so no finer bucket straddles it",
    },
    {
        "file": "beacons/queries/counters.py", "function": "_bucket_counts", "change": "< → <=",
        "text": "if lo < hi:",
        "reason": "lo == hi only at a bucket boundary (an edge of no width: no rows) or when start == end,"
        " where no bucket is returned at all",
    },
    {
        "file": "beacons/queries/counters.py", "function": "identifiers_compared", "change": "'count' → ''",
        "text": 'order: str = "count",',
        "reason": 'only "change" orders by change: any other order, "" included, is by count',
    },
    {
        "file": "dashboard/periods.py", "function": "cut_comparison_label", "change": "return x → return None",
        "text": 'return ""',
        "reason": "its callers read only its truth (`if comparison.label`, `comparison.label or ...`): None and '' are both false",
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
        "file": "beacons/counting/increments.py", "function": "aggregates_insert_new", "change": "'postgresql' → ''",
        "text": 'if connection.vendor == "postgresql":',
        "reason": "COPY and the plain INSERT store the same rows and both refuse a stored key; only speed differs",
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
        "file": "beacons/counting/buckets.py", "function": "", "change": "'bucket_zone' → ''",
        "text": '_active_zone: ContextVar[ZoneInfo | None] = ContextVar("bucket_zone", default=None)',
        "reason": "a ContextVar's name only labels its repr: nothing reads it",
    },
    {
        "file": "dashboard/forms.py", "function": "", "change": "'Total' → ''",
        "text": '("views", "Total"),',
        "reason": "the metric field is a hidden input: its choices' labels are never shown, only the codes are read",
    },
    {
        "file": "dashboard/forms.py", "function": "FilterForm", "change": "'Chart' → ''",
        "text": 'metric = forms.ChoiceField(label="Chart", choices=METRICS, required=False)',
        "reason": "the metric field is a hidden input: its label is never shown",
    },
    {
        "file": "dashboard/forms.py", "function": "DashboardState.comparison_read_to", "change": "0 → 1",
        "text": 'def comparison_read_to(self, *, granularity_codes: list[str] | None, fine_retention_days: int = 0) -> "Comparison":',
        "reason": "the callers that leave it out read visitor sketches (hours, days): minute retention cuts nothing there",
    },
    {
        "file": "beacons/periods.py", "function": "local_midnight", "change": "12 → 13",
        "text": "return bucket_start(datetime(day.year, day.month, day.day, 12, tzinfo=bucket_zone()), G.DAY)",
        "reason": "noon or 13:00 lie in the same local day in every zone: the day's midnight is the same",
    },
    {
        "file": "beacons/periods.py", "function": "preset_range", "change": "< → <=",
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
        "file": "dashboard/forms.py", "function": "_dimension_filter", "change": "and → or",
        "text": "if not (dimension and value) or definition is None:",
        "reason": "half a filter passed on reads as no filter either way: counter_filter gives the total for an empty value or dimension",
    },
    {
        "file": "beacons/experiments/statistics.py", "function": "_upper_regularized_gamma", "change": "< → <=",
        "text": "if x < a + 1:",
        "reason": "at x == a + 1 both P's series and the continued fraction give Q to ~1e-13 relative: the boundary"
        " only picks the faster one",
    },
    {
        "file": "beacons/experiments/statistics.py", "function": "_upper_regularized_gamma", "change": "1 → 2",
        "text": "if x < a + 1:",
        "reason": "the series for x in [a + 1, a + 2) loses at most one digit in 1 - P: within 6e-14 of scipy's"
        " gammaincc for every df up to 58 (checked by hand), far inside the 1e-10 the tests ask",
    },
    {
        "file": "beacons/experiments/statistics.py", "function": "_upper_regularized_gamma", "change": ">= → >",
        "text": "while abs(term) >= abs(total) * _CONVERGED:",
        "reason": "a term exactly at the tolerance adds one more term of ~1e-14 relative size: the same Q to 1e-13",
    },
    {
        "file": "beacons/experiments/statistics.py", "function": "_upper_regularized_gamma", "change": "< → <=",
        "text": "if abs(step - 1) < _CONVERGED:",
        "reason": "a step exactly at the tolerance takes one more step of size 1 ± 1e-14: the same Q to 1e-13",
    },
    {
        "file": "beacons/ingest/compat/plausible.py", "function": "_is_amount", "change": "return x → return None",
        "text": "return False",
        "reason": "its one caller reads only its truth (`if not _is_amount(amount)`): None and False both refuse the amount",
    },
    {
        "file": "beacons/ingest/compat/umami.py", "function": "", "change": "'beacons' → ''",
        "text": 'CACHE_TOKEN = "beacons"',
        "reason": "the token is only sent back by the tracker in x-umami-cache, which is never read: an empty one is"
        " sent back (or left out) the same, and every hit counts alike",
    },
    {
        "file": "beacons/ingest/compat/sentry.py", "function": "_header", "change": "return x → return None",
        "text": 'return ""',
        "reason": "its one caller reads only its truth (`if not user_agent`): None and '' both keep the request's own agent",
    },
    {
        "file": "beacons/ingest/compat/sentry.py", "function": "envelope_split", "change": "< → <=",
        "text": "while position < len(body):",
        "reason": "at position == len(body) the line read is empty, so it is skipped and position moves past the"
        " end: the same items",
    },
    {
        "file": "beacons/ingest/compat/sentry.py", "function": "_body_decoded", "change": "16 → 17",
        "text": "return _inflated(raw, wbits=zlib.MAX_WBITS | 16)",
        "reason": "MAX_WBITS is 15: 15 | 16 and 15 | 17 are both 31, zlib's gzip mode",
    },
    {
        "file": "beacons/ingest/compat/sentry.py", "function": "_meta_within_limit", "change": ">= → >",
        "text": 'if value and len(value) >= len(meta.get(key, "")):',
        "reason": "only the stack is given twice, and its later value, as long as the earlier, is the same text"
        " (the top line, or the same cut of it: the room only shrinks): keeping it or not is the same meta",
    },
    {
        "file": "beacons/transfer/peers.py", "function": "", "change": "'total' → ''",
        "text": 'TOTAL, IDENTIFIER, IDENTIFIER_AND_TOTAL, EVENTS = "total", "identifier", "identifier+total", "events"',
        "reason": "an axis's name, only ever compared with the same constant (never with a literal): any value"
        " other than the other axes' and the dimension codes reads the same",
    },
    {
        "file": "beacons/transfer/peers.py", "function": "", "change": "'identifier' → ''",
        "text": 'TOTAL, IDENTIFIER, IDENTIFIER_AND_TOTAL, EVENTS = "total", "identifier", "identifier+total", "events"',
        "reason": "an axis's name, only ever compared with the same constant (never with a literal): any value"
        " other than the other axes' and the dimension codes reads the same",
    },
    {
        "file": "beacons/transfer/peers.py", "function": "", "change": "'identifier+total' → ''",
        "text": 'TOTAL, IDENTIFIER, IDENTIFIER_AND_TOTAL, EVENTS = "total", "identifier", "identifier+total", "events"',
        "reason": "an axis's name, only ever compared with the same constant (never with a literal): any value"
        " other than the other axes' and the dimension codes reads the same",
    },
    {
        "file": "beacons/transfer/peers.py", "function": "", "change": "'events' → ''",
        "text": 'TOTAL, IDENTIFIER, IDENTIFIER_AND_TOTAL, EVENTS = "total", "identifier", "identifier+total", "events"',
        "reason": "an axis's name, only ever compared with the same constant (never with a literal): any value"
        " other than the other axes' and the dimension codes reads the same",
    },
    {
        "file": "beacons/transfer/peers.py", "function": "", "change": "10000 → 10001",
        "text": "PROGRESS_ROWS = 10_000  # rows between two progress reports",
        "reason": "how often progress is reported, not the rule: the rule is tested with a patched value (3)",
    },
    {
        "file": "beacons/transfer/peers.py", "function": "_table_of", "change": "return x → return None",
        "text": 'return ""',
        "reason": "only a zip member not named .csv gets here (a single file is always read as .csv), and the"
        " caller reads only its truth (`if not table`): None and '' both skip the member",
    },
    {
        "file": "beacons/transfer/peers.py", "function": "_boolean", "change": "return x → return None",
        "text": "return False",
        "reason": "the answer is read only as a truth value (`path if event else \"\"`): None and False are both a page view",
    },
    {
        "file": "beacons/transfer/peers.py", "function": "_Import.day_taken", "change": "return x → return None",
        "text": "return False",
        "reason": "its callers read only its truth (`if counting.day_taken(...)`): None and False both count the row",
    },
    {
        "file": "beacons/transfer/peers.py", "function": "peer_import", "change": "True → False",
        "text": "written = True",
        "reason": "the definitions cache is then cleared after a written import too: the next read loads the"
        " same types again (only a query more)",
    },
    {
        "file": "beacons/transfer/peers.py", "function": "_Import.write", "change": "> → >=",
        "text": "aggregates_add(increments={key: n for key, n in self.increments.items() if n > 0})",
        "reason": "aggregates_add writes only keys above 0 (and subtracts negatives): a key of 0 passed on is"
        " dropped there, the same counters",
    },
    {
        "file": "beacons/transfer/peers.py", "function": "_Import.write", "change": "> → >=",
        "text": "aggregates_add(increments={key: n for key, n in admitted.items() if n > 0})",
        "reason": "aggregates_add writes only keys above 0 (and subtracts negatives): a key of 0 passed on is"
        " dropped there, the same counters",
    },
    {
        "file": "beacons/transfer/peers.py", "function": "_Import._hit_add", "change": "augassign statement dropped",
        "text": "second -= second % QUARTER_HOUR",
        "reason": "hits held per second instead of per quarter hour fold into the same buckets (every bucket of"
        " a type without seconds and minutes starts on a quarter hour): only the bucket math runs more often",
    },
]  # fmt: skip
