"""Ingest throughput through a real server on loopback, driven by wrk.

    .venv/bin/python -m bench.ingest              # the table: ceiling, direct SQLite/PostgreSQL, memory, redis
    .venv/bin/python -m bench.ingest --servers    # granian vs gunicorn sync vs gunicorn gthread
    .venv/bin/python -m bench.ingest --setup "visits on"   # only those setups (and the ceilings)

Each run: a fresh server with 2 workers (the production server, granian, unless --server
says otherwise), a 2 s warm-up, then ``wrk`` for --seconds (default 8) with --connections
(default 16), one event per request. Every setup is run in --rounds rounds (default 3), the
ceilings first in each: the bare Django view under the same server, and under gunicorn (sync, 2
workers). Reported per setup: median events/s, p50 and p99 latency; the median (and range) of its
ratio to the bare Django view measured in the same round; and whether the hits counted in the
database (after a clean stop and, for redis, ``beacons_drain``) equal the 204 answers the server
gave — exactly, in every round. The targets (``TARGETS``) are checked last: ingest with every
built-in extraction on, through the redis and the memory sink, at least as fast as the bare view
(1.0 ×), and through the redis sink under granian at least twice gunicorn's bare view.

Requests look like page views of real browsers (``bench/wrk_beacons.lua``: five user agents, a
thousand client addresses in X-Forwarded-For, search referrers and campaign tags on some). The
setups "breakdowns on" count them under a type that keeps every built-in dimension, so each
hit runs every extractor (source from referrer and utm, browser/OS/device from the user agent,
country from the address) and writes its dimension counters; "visits on" makes that type a page
view, so each hit also adds to the visitor sketches and counts visits. With the redis sink a
request logs its hits and the drain counts them and folds page views into visits (its time is
printed: the work moved there); the others count under a type that keeps none. Per request
answered, the server's CPU and, with the redis sink, its Redis calls (round trips: requests
arriving together share one) and Redis's time in them are printed. Afterwards the CPU cost per hit of each extractor on the same mix is printed
(``bench.extraction --per-hit``, one process, no server).

Needs PostgreSQL on 127.0.0.1:5432 (database ``beacons_bench`` is created; BENCH_DATABASE_URL
for another) and Redis on 127.0.0.1:6379 (prefix ``beacons-bench-ingest``, BENCH_REDIS_PREFIX
for another); SQLite goes to a temporary file.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from statistics import median

from .servers import ROOT, Server, cpu_seconds, hits_counted, manage, postgres_database_create

POSTGRES_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/beacons_bench")
REDIS_URL = "redis://127.0.0.1:6379/0"
REDIS_PREFIX = os.environ.get("BENCH_REDIS_PREFIX", "beacons-bench-ingest")
WRK_SCRIPT = ROOT / "bench" / "wrk_beacons.lua"
WARM_UP_SECONDS = 2


@dataclass
class Scenario:
    label: str
    sink: str
    database: str  # "sqlite" | "postgres"
    path: str = "/beacon"
    breakdowns: bool = False  # the type keeps every built-in dimension: every extractor runs
    visits: bool = False  # ... and is a page-view type: visits (sessions) and visitor sketches too
    server: str | None = None  # another server than the run's (--server)


CEILING = "bare Django view (ceiling)"
GUNICORN_CEILING = "bare Django view, gunicorn sync"
REDIS_ALL = "redis sink, PostgreSQL, breakdowns and visits on"
MEMORY_ALL = "memory sink, PostgreSQL, breakdowns and visits on"
INGEST_SCENARIOS = [
    Scenario(CEILING, "direct", "sqlite", "/bench/bare"),
    Scenario(GUNICORN_CEILING, "direct", "sqlite", "/bench/bare", server="gunicorn-sync"),
    Scenario("direct sink, SQLite", "direct", "sqlite"),
    Scenario("direct sink, PostgreSQL", "direct", "postgres"),
    Scenario("memory sink, PostgreSQL", "memory", "postgres"),
    Scenario("redis sink, PostgreSQL", "redis", "postgres"),
    Scenario("redis sink, PostgreSQL, breakdowns on", "redis", "postgres", breakdowns=True),
    Scenario(MEMORY_ALL, "memory", "postgres", breakdowns=True, visits=True),
    Scenario(REDIS_ALL, "redis", "postgres", breakdowns=True, visits=True),
]
# Ratios of events/s measured in the same round: (setup, reference, target). Ingest with every
# built-in extraction on must beat a Django view that does nothing under the same server, and,
# under the shipped server, twice what gunicorn's bare Django view answers.
TARGETS = [(REDIS_ALL, CEILING, 1.0), (MEMORY_ALL, CEILING, 1.0), (REDIS_ALL, GUNICORN_CEILING, 2.0)]
# Registers the type beforehand, keeping every built-in dimension (an auto-registered type keeps none),
# of the kind its last argument names (a page view counts visits).
TYPE_WITH_BREAKDOWNS = (
    "import sys; from beacons.dimensions import BUILT_IN; from beacons.models import BeaconDefinition; "
    "BeaconDefinition.objects.create(slug=sys.argv[-2], name=sys.argv[-2], dimensions=','.join(BUILT_IN), kind=sys.argv[-1])"
)


@dataclass
class Measured:
    label: str
    events_per_second: float
    p50_ms: float
    p99_ms: float
    answered_204: int
    counted: int | None  # None: nothing is counted (the bare view)
    other_statuses: dict
    drain_seconds: float | None = None  # the redis sink: beacons_drain after the run (visits folded in it)
    cpu_us_per_hit: float = 0.0  # the server's processes (workers and their parent), user + system
    redis_calls_per_hit: float | None = None  # script calls (round trips) per answered request; None: no Redis
    redis_us_per_hit: float | None = None  # Redis's own time in those calls


def wrk_run(*, url: str, event_type: str, seconds: int, connections: int) -> dict:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(WRK_SCRIPT), url, "--", event_type],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    figures: dict = {"statuses": {}}
    for line in out.splitlines():
        parts = line.split()
        if line.startswith("status "):
            figures["statuses"][int(parts[1])] = int(parts[2])
        elif len(parts) == 2 and parts[0] in {"p50_us", "p99_us", "duration_us", "requests", "socket_errors"}:
            figures[parts[0]] = int(parts[1])
    return figures


def server_statuses(directory: Path) -> dict[str, int]:
    total: dict[str, int] = {}
    for path in directory.glob("*.json"):
        for key, n in json.loads(path.read_text()).items():
            total[key] = total.get(key, 0) + n
    return total


def redis_script_calls() -> tuple[int, int]:
    """(calls, microseconds) of RPUSH and EVALSHA so far, from Redis's command statistics: the sink
    logs a request's hits with one RPUSH (several requests' when they arrive together) and writes
    counts with one script call, and the bench's servers send Redis nothing else while wrk runs."""
    import redis

    stats = redis.Redis.from_url(REDIS_URL).info("commandstats")
    calls = [stats.get(f"cmdstat_{name}", {}) for name in ("rpush", "evalsha")]
    return sum(int(c.get("calls", 0)) for c in calls), sum(int(c.get("usec", 0)) for c in calls)


def redis_clear() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{{{REDIS_PREFIX}}}:*"))
    if keys:
        client.delete(*keys)


def scenario_run(
    scenario: Scenario, *, kind: str, databases: dict[str, str], seconds: int, connections: int, workdir: Path
) -> Measured:
    event_type = f"bench_{uuid.uuid4().hex[:8]}"
    status_dir = Path(tempfile.mkdtemp(dir=workdir))
    env = {
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DATABASE_URL": databases[scenario.database],
        "BEACONS_SINK": scenario.sink,
        "BEACONS_REDIS_URL": REDIS_URL,
        "BEACONS_REDIS_PREFIX": REDIS_PREFIX,
        "BEACONS_RATE_LIMIT": "0",  # one load generator is one visitor
        "BEACONS_NETWORK_RATE_LIMIT": "0",  # ... on one network
        "BENCH_STATUS_DIR": str(status_dir),
        "ALLOWED_HOSTS": "127.0.0.1",
        "BEACONS_CLIENT_IP_HEADER": "HTTP_X_FORWARDED_FOR",  # the load generator's addresses, for countries
    }
    if scenario.breakdowns:
        type_kind = "page_view" if scenario.visits else "custom"
        subprocess.run(
            [sys.executable, "-c", f"import django; django.setup(); {TYPE_WITH_BREAKDOWNS}", event_type, type_kind],
            cwd=ROOT,
            env={**os.environ, **env},
            check=True,
        )
    kind = scenario.server or kind
    server = Server(env=env, kind=kind, log_path=workdir / f"{kind}-{event_type}.log").start()
    try:
        # Warm-up, not measured: first requests open database connections and load the
        # registry, URLconf and middleware. Its hits still count in the 204s = counted check.
        wrk_run(url=server.url + scenario.path, event_type=event_type, seconds=WARM_UP_SECONDS, connections=connections)
        processes = [server.process.pid, *server.worker_pids()]
        cpu_before, script_before = cpu_seconds(processes), redis_script_calls()
        figures = wrk_run(
            url=server.url + scenario.path, event_type=event_type, seconds=seconds, connections=connections
        )
        cpu, script = cpu_seconds(processes) - cpu_before, redis_script_calls()
        time.sleep(2)  # requests wrk gave up on at the end are still being answered (and tallied)
    finally:
        server.stop()
    drain_seconds = None
    if scenario.sink == "redis":
        began = time.monotonic()
        manage("beacons_drain", env=env)
        drain_seconds = time.monotonic() - began
    answered = server_statuses(status_dir)
    answered_204 = answered.get(f"{scenario.path} 204", 0)
    counted = None if scenario.path != "/beacon" else hits_counted(databases[scenario.database], event_type)
    others = {k: v for k, v in answered.items() if not k.endswith(" 204") and not k.startswith("/beacon 405")}
    requests = max(figures["requests"], 1)
    calls, microseconds = script[0] - script_before[0], script[1] - script_before[1]
    return Measured(
        cpu_us_per_hit=cpu / requests * 1e6,
        redis_calls_per_hit=calls / requests if scenario.sink == "redis" else None,
        redis_us_per_hit=microseconds / requests if scenario.sink == "redis" else None,
        label=scenario.label,
        events_per_second=figures["requests"] / (figures["duration_us"] / 1e6),
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        answered_204=answered_204,
        counted=counted,
        other_statuses=others,
        drain_seconds=drain_seconds,
    )


def table_print(rounds: list[list[Measured]], title: str) -> None:
    """One line per setup: medians over the rounds; × ceiling is the median of each round's
    ratio to the ceiling measured in that same round (the machine's load drifts between rounds)."""
    print(f"\n{title}")
    print(
        f"| {'setup':<32} | {'events/s':>9} | {'p50 ms':>7} | {'p99 ms':>7} | {'× ceiling':>9} | {'range':>11} | {'204s = counted':<24} |"
    )
    print(f"| {'-' * 32} | {'-' * 9}:| {'-' * 6}:| {'-' * 6}:| {'-' * 8}:| {'-' * 10}:| {'-' * 24} |")
    for index, label in enumerate(row.label for row in rounds[0]):
        rows = [measured[index] for measured in rounds]
        ratios = [measured[index].events_per_second / measured[0].events_per_second for measured in rounds]
        if rows[0].counted is None:
            check = "n/a (counts nothing)"
        else:
            exact = all(row.counted == row.answered_204 for row in rows)
            check = f"{'yes' if exact else 'NO'} ({sum(row.counted for row in rows):,})"
        print(
            f"| {label:<32} | {median(r.events_per_second for r in rows):>9,.0f} | {median(r.p50_ms for r in rows):>7.2f} "
            f"| {median(r.p99_ms for r in rows):>7.2f} | {median(ratios):>9.2f} | {min(ratios):>4.2f}–{max(ratios):<4.2f} | {check:<24} |"
        )
        for row in rows:
            if row.other_statuses:
                print(f"|   other answers: {row.other_statuses}")
    for index, label in enumerate(row.label for row in rounds[0]):
        drained = [(m[index].drain_seconds, m[index].answered_204) for m in rounds if m[index].drain_seconds]
        if drained:
            seconds = median(s for s, _ in drained)
            per_hit = median(s / n * 1e6 for s, n in drained if n)
            print(
                f"  {label}: the drain afterwards took {seconds:.1f} s ({per_hit:.0f} µs per hit, process start included)"
            )
    print("\nPer request answered, medians over the rounds: the server's CPU (workers and their parent,")
    print("user + system) and, for the redis sink, its script calls (round trips) and Redis's time in them.")
    print(f"| {'setup':<32} | {'CPU µs':>7} | {'Redis calls':>11} | {'Redis µs':>8} |")
    print(f"| {'-' * 32} | {'-' * 6}:| {'-' * 10}:| {'-' * 7}:|")
    for index, label in enumerate(row.label for row in rounds[0]):
        rows = [measured[index] for measured in rounds]
        cpu = median(row.cpu_us_per_hit for row in rows)
        if rows[0].redis_calls_per_hit is None:
            calls = spent = "–"
        else:
            calls = f"{median(row.redis_calls_per_hit for row in rows):.2f}"
            spent = f"{median(row.redis_us_per_hit for row in rows):.1f}"
        print(f"| {label:<32} | {cpu:>7.0f} | {calls:>11} | {spent:>8} |")
    sys.stdout.flush()


def targets_verdict(rounds: list[list[Measured]]) -> None:
    labels = [row.label for row in rounds[0]]
    for label, reference, target in TARGETS:
        if label not in labels or reference not in labels:
            continue
        index, base = labels.index(label), labels.index(reference)
        ratio = median(measured[index].events_per_second / measured[base].events_per_second for measured in rounds)
        verdict = "meets" if ratio >= target else "misses"
        print(f"{label}: {ratio:.2f} × {reference} ({verdict} the target {target})")


def databases_prepare(workdir: Path) -> dict[str, str]:
    sqlite_url = f"sqlite:///{workdir / 'bench.sqlite3'}"
    postgres_database_create(POSTGRES_URL)
    for url in (sqlite_url, POSTGRES_URL):
        manage("migrate", "--noinput", env={"DATABASE_URL": url})
    return {"sqlite": sqlite_url, "postgres": POSTGRES_URL}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--server", default="granian", choices=["granian", "gunicorn-sync", "gunicorn-gthread"])
    parser.add_argument("--servers", action="store_true", help="compare the servers on the ceiling and the redis sink")
    parser.add_argument(
        "--setup", action="append", default=[], help="only the setups whose label holds this text (and the ceilings)"
    )
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2

    workdir = Path(tempfile.mkdtemp(prefix="beacons-bench-"))
    started = time.monotonic()
    try:
        databases = databases_prepare(workdir)
        redis_clear()
        run = dict(databases=databases, seconds=args.seconds, connections=args.connections, workdir=workdir)
        redis_sink = next(s for s in INGEST_SCENARIOS if s.label == "redis sink, PostgreSQL")
        chosen = [
            s
            for s in INGEST_SCENARIOS
            if s.path != "/beacon" or not args.setup or any(t in s.label for t in args.setup)
        ]
        scenarios = [INGEST_SCENARIOS[0], redis_sink] if args.servers else chosen
        kinds = ["gunicorn-sync", "gunicorn-gthread", "granian"] if args.servers else [args.server]
        exact = True
        for kind in kinds:
            # Rounds of every setup, the ceiling first: each ratio compares runs minutes apart at most.
            rounds = [[scenario_run(scenario, kind=kind, **run) for scenario in scenarios] for _ in range(args.rounds)]
            title = f"{kind}, 2 workers, {args.connections} connections, {args.seconds} s per run, median of {args.rounds} rounds"
            table_print(rounds, title)
            exact &= all(row.counted in (None, row.answered_204) for measured in rounds for row in measured)
            if not args.servers:
                targets_verdict(rounds)
        extractors = subprocess.run(
            [sys.executable, "-m", "bench.extraction", "--per-hit"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        print("\nCPU per hit of each extractor, on the requests' mix (bench.extraction --per-hit):\n" + extractors)
        print(f"\n({time.monotonic() - started:.0f} s in all; logs in {workdir})")
        return 0 if exact else 1
    finally:
        redis_clear()


if __name__ == "__main__":
    sys.exit(main())
