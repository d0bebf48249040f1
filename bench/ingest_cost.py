"""Where a beacon's CPU goes, beside a bare Django view's, in one process (no server, no load generator).

    .venv/bin/python -m bench.ingest_cost            # the table (PostgreSQL and Redis on 127.0.0.1)
    .venv/bin/python -m bench.ingest_cost --requests 3000 --rounds 5

``bench.ingest`` measures throughput through a real server; this splits one request's CPU into
the steps ingest takes, to say which of them a bare view does not pay. Each line is a fresh
process that answers --requests requests of ``bench.ingest``'s mix (five browsers, a thousand
addresses, search referrers and campaign tags on some; a page-view type keeping every built-in
dimension, so every extractor runs and visits count) through ``bench.wsgi.application`` one
after the other, after a warm-up, and prints the process's CPU time per request, all its
threads, with the sink's flush at the end (what the memory sink buffered is written in the time
measured). The lines are run in --rounds rounds, one after the other in each, and the median is
printed. The steps after the first are cut off by replacing
the function that starts the next one with one that does nothing (instrumentation only):

- the bare view: Django's whole path (middleware, URL walk, request and response) to a view
  that reads the body and answers 204 — the ceiling of ``bench.ingest``;
- the fast path only: the ingest URL answered by a view that answers 204 at once;
- + the body: read, decoded and checked (``beacon_collect`` up to ``request_events_record``);
- + recording without the write: bots, the site, privacy, the rate limit, the type, the
  dimensions (every extractor), the visitor key and the hits built;
- whole, redis sink: the hit-log entry and its write, one round trip per request (a server's
  concurrent requests share round trips: ``bench.ingest`` prints how many);
- whole, memory sink: the counting, the visit and the sketches in the request.

Then the CPU of one write alone: an ``RPUSH`` of an entry the size of a request's, on one
connection, as the sink sends it.
"""

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from statistics import median

from .ingest import POSTGRES_URL, REDIS_PREFIX, REDIS_URL, TYPE_WITH_BREAKDOWNS
from .request_mix import mixed_hit
from .servers import ROOT, manage, postgres_database_create

WARM_UP_REQUESTS = 500
# (label, sink, path, the step cut off). The order is the table's.
STEPS = [
    ("bare Django view (ceiling)", "redis", "/bench/bare", ""),
    ("fast path, view answering 204 at once", "redis", "/beacon", "view"),
    ("+ body read, decoded, checked", "redis", "/beacon", "recording"),
    ("+ recording, without the write", "redis", "/beacon", "write"),
    ("whole, redis sink (1 round trip a request)", "redis", "/beacon", ""),
    ("whole, memory sink (counting in the request)", "memory", "/beacon", ""),
]


def environs_of(first: int, count: int, *, path: str, event_type: str) -> list[dict]:
    """The WSGI environs of requests ``first`` to ``first + count - 1`` of the mix, each a beacon
    posted as ``bench/wrk_beacons.lua`` posts it (built before they are answered: not measured)."""
    from django.test import RequestFactory

    factory, environs = RequestFactory(SERVER_NAME="127.0.0.1"), []
    for n in range(first, first + count):
        hit = mixed_hit(n)
        fields = {"event_type": event_type, "identifier": hit.identifier, **hit.campaign}
        if hit.referrer:
            fields["referrer"] = hit.referrer
        request = factory.post(
            path,
            json.dumps(fields),
            content_type="application/json",
            headers={"user-agent": hit.user_agent, "x-forwarded-for": hit.address},
        )
        environs.append(request.environ)
    return environs


def step_cut_off(step: str) -> None:
    """Replace the function that starts what follows ``step`` with one that does nothing."""
    from django.http import HttpResponse

    from beacons.ingest import recording, views

    if step == "view":
        from bench.wsgi import site_application

        site_application.ingest_match("/beacon").func = lambda request: HttpResponse(status=204)
    elif step == "recording":
        views.request_events_record = lambda *args, **kwargs: None
    elif step == "write":
        recording.hits_record = lambda *args, **kwargs: None


def step_measure(path: str, step: str, requests: int, event_type: str) -> float:
    """CPU µs per request of this process answering ``requests`` requests (run in the child)."""
    import django

    django.setup()
    from beacons.counting.sinks import get_sink
    from bench.wsgi import application

    step_cut_off(step)
    answers: dict[str, int] = {}

    def start_response(status, headers, exc_info=None):
        answers[status] = answers.get(status, 0) + 1

    def answer(environs: list[dict]) -> None:
        for environ in environs:
            response = application(environ, start_response)
            b"".join(response)
            response.close()

    answer(environs_of(1, WARM_UP_REQUESTS, path=path, event_type=event_type))
    measured = environs_of(1 + WARM_UP_REQUESTS, requests, path=path, event_type=event_type)
    sink = get_sink()
    sink.flush()
    began = time.process_time()
    answer(measured)
    sink.flush()  # what the memory sink buffered is written in the time measured
    spent = time.process_time() - began
    if set(answers) != {"204 No Content"}:
        raise SystemExit(f"not every request was answered 204: {answers}")
    return spent / requests * 1e6


def redis_write_us(entry_bytes: int, writes: int = 5000) -> float:
    """CPU µs of this process for one RPUSH of ``entry_bytes`` and its reply, as the sink sends it."""
    import redis
    from hiredis import pack_command

    connection = redis.Redis.from_url(REDIS_URL).connection_pool.make_connection()
    key, entry = f"{{{REDIS_PREFIX}}}:cost-probe", b"x" * entry_bytes
    began = time.process_time()
    for _ in range(writes):
        connection.send_packed_command([pack_command(("RPUSH", key, entry))], check_health=False)
        connection.read_response()
    spent = time.process_time() - began
    connection.send_command("DEL", key)
    connection.read_response()
    connection.disconnect()
    return spent / writes * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", nargs=3, metavar=("PATH", "STEP", "TYPE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        path, step, event_type = args.child
        print(f"{step_measure(path, step if step != '-' else '', args.requests, event_type):.2f}")
        return 0

    env = {
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DATABASE_URL": POSTGRES_URL,
        "BEACONS_REDIS_URL": REDIS_URL,
        "BEACONS_REDIS_PREFIX": REDIS_PREFIX,
        "BEACONS_RATE_LIMIT": "0",
        "BEACONS_NETWORK_RATE_LIMIT": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "BEACONS_CLIENT_IP_HEADER": "HTTP_X_FORWARDED_FOR",
        "PYTHONWARNINGS": "ignore",  # whitenoise's "no static directory" on every start
    }
    postgres_database_create(POSTGRES_URL)
    manage("migrate", "--noinput", env={"DATABASE_URL": POSTGRES_URL})
    event_type = f"bench_{uuid.uuid4().hex[:8]}"
    subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {TYPE_WITH_BREAKDOWNS}", event_type, "page_view"],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
    )
    figures: dict[str, list[float]] = {label: [] for label, *_ in STEPS}
    for _ in range(args.rounds):
        for label, sink, path, step in STEPS:
            out = subprocess.run(
                [sys.executable, "-m", "bench.ingest_cost", "--requests", str(args.requests)]
                + ["--child", path, step or "-", event_type],
                cwd=ROOT,
                env={**os.environ, **env, "BEACONS_SINK": sink},
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            figures[label].append(float(out.split()[-1]))
    bare = median(figures[STEPS[0][0]])
    print(f"CPU per request, one process, {args.requests:,} requests, median of {args.rounds} rounds")
    print(f"| {'step':<46} | {'CPU µs':>7} | {'× bare view':>11} | {'range µs':>13} |")
    print(f"| {'-' * 46} | {'-' * 6}:| {'-' * 10}:| {'-' * 12}:|")
    for label, *_ in STEPS:
        values = figures[label]
        print(
            f"| {label:<46} | {median(values):>7.0f} | {median(values) / bare:>11.2f} "
            f"| {min(values):>5.0f}–{max(values):<7.0f} |"
        )
    write = median(redis_write_us(300) for _ in range(args.rounds))
    print(f"\nOne RPUSH of 300 bytes and its reply, on one connection: {write:.0f} µs of this process's CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
