"""Ingest CPU per page view with visits (sessions) on and off, and cache and Redis round trips per hit.

    .venv/bin/python -m bench.sessions [--hits 20000] [--visitors 2000] [--rounds 3] [--sink memory|redis]
                                       [--cache locmem|redis]

Records page views in process through ``recording.events_record`` (what the /beacon view calls
after parsing), single thread, on a throwaway SQLite database: a clock advancing 0.5 s per hit,
each hit from one of ``--visitors`` visitors (their own address, so their own visitor key) on one
of 50 pages, so about a tenth of the page views start a visit and the rest extend one. "off"
records the same hits without visits (``sessions.counts_add_with_visit`` only hands the counts to
the sink: no visit state, no visit counters); with the redis sink, "on" logs each page view and
the drain's fold of the log into visits is timed apart (``sessions.page_view_log_fold``); both
compute the visitor key, as the per-visitor rate limit of the view does anyway. Prints the median CPU microseconds per hit of ``--rounds`` rounds, the counter keys a
hit hands to the sink, and the cache calls (Redis round trips with ``--cache redis``) and sink
writes (Redis round trips with ``--sink redis``) per hit. The memory sink does not flush while
measured (its writes happen in a background thread, as in a server).
"""

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hits", type=int, default=20_000)
    parser.add_argument("--visitors", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sink", choices=["memory", "redis"], default="memory")
    parser.add_argument("--cache", choices=["locmem", "redis"], default="locmem")
    args = parser.parse_args(argv)

    database = Path(tempfile.gettempdir()) / f"beacons-bench-sessions-{os.getpid()}.sqlite3"
    prefix = f"bench-sessions-{uuid.uuid4().hex[:8]}"
    os.environ.update(
        DJANGO_SETTINGS_MODULE="beacon_site.settings",
        DEBUG="1",  # the settings want a SECRET_KEY otherwise; nothing here serves
        DATABASE_URL=f"sqlite:///{database}",
        BEACONS_SINK=args.sink,
        BEACONS_REDIS_PREFIX=prefix,
        BEACONS_FLUSH_SECONDS="3600",
        BEACONS_FLUSH_MAX_KEYS="100000000",
    )
    if args.cache == "redis":
        os.environ["CACHE_URL"] = "redis://127.0.0.1:6379/0"
    import django

    django.setup()
    from django.conf import settings
    from django.core.cache import cache
    from django.core.management import call_command

    from beacons.counting import sinks
    from beacons.ingest import sessions
    from beacons.ingest.parsing import EventInput
    from beacons.ingest.recording import RequestContext, events_record
    from beacons.models import Site

    settings.CACHES["default"]["KEY_PREFIX"] = prefix  # read when the cache is first used: after this
    call_command("migrate", verbosity=0)
    site = Site.objects.order_by("pk").first()
    rng = random.Random(1)
    pages = [f"/page/{i}" for i in range(50)]
    start = datetime.now(UTC).replace(microsecond=0)
    hits = [
        (start + timedelta(seconds=i // 2), rng.randrange(args.visitors), rng.choice(pages)) for i in range(args.hits)
    ]
    calls = {"cache": 0, "sink writes": 0, "sink keys": 0}

    def counted(owner, name, tally):
        original = getattr(owner, name)

        def wrapper(*a, **k):
            calls[tally] += 1
            return original(*a, **k)

        setattr(owner, name, wrapper)

    for name in ("get", "add", "set"):
        counted(cache, name, "cache")
    sink = sinks.get_sink()
    original_add = sink.add

    def add(increments, values=sinks.NO_VALUES, visitors=sinks.NO_VISITORS, **logged):
        calls["sink keys"] += len(increments) + sum(len(v.buckets) for v in values)
        return original_add(increments, values, visitors, **logged)

    sink.add = add
    if args.sink == "redis":
        counted(sink, "_count", "sink writes")
    else:
        counted(type(sink), "flush", "sink writes")

    with_visit = sessions.counts_add_with_visit

    def without_visit(sink, *, increments, values, visitors, **_):
        sink.add(increments, values, visitors)

    def run(tracked: bool) -> tuple[float, dict]:
        sessions.counts_add_with_visit = with_visit if tracked else without_visit
        if args.cache == "locmem":
            cache.clear()
        else:  # only this run's keys (never FLUSHALL a shared Redis)
            client = sinks.redis_client(os.environ["CACHE_URL"])
            keys = list(client.scan_iter(match=f"{prefix}:*"))
            if keys:
                client.delete(*keys)
        for key in calls:
            calls[key] = 0
        spent = 0.0
        for at, visitor, page in hits:
            context = RequestContext(
                site_id=site.pk,
                received_at=at,
                user_agent="Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0",
                referer="",
                source="beacon",
                ip=f"10.{visitor // 65536}.{visitor // 256 % 256}.{visitor % 256}",
                tracked=True,
            )
            context.visitor_hash  # noqa: B018 (computed for the rate limit before recording, in the view)
            began = time.process_time()
            events_record(events=[EventInput(event_type="page_view", identifier=page)], context=context)
            spent += time.process_time() - began
        tallies = {key: n / len(hits) for key, n in calls.items()}
        folding = 0.0
        if tracked and args.sink == "redis":  # the redis sink logs page views: the drain folds them into visits
            began = time.process_time()
            sessions.page_view_log_fold(sink=sink)
            folding = time.process_time() - began
        return spent / len(hits) * 1e6, tallies, folding / len(hits) * 1e6

    print(
        f"{args.hits:,} page views from {args.visitors:,} visitors, {args.sink} sink, {args.cache} cache, "
        f"best of {args.rounds} rounds of each (median)"
    )
    results: dict[str, list] = {"off": [], "on": []}
    for _ in range(args.rounds):
        for mode in ("off", "on"):
            results[mode].append(run(tracked=mode == "on"))
    visits_started = _visits_in(hits, settings.BEACONS_VISIT_GAP_SECONDS)
    print(f"visits in the stream: {visits_started:,} ({visits_started / len(hits):.0%} of page views start one)")
    print(
        f"{'sessions':<9} {'CPU µs/hit':>11} {'sink keys/hit':>14} {'cache calls/hit':>16} {'sink round trips/hit':>21}"
    )
    for mode in ("off", "on"):
        cpu = statistics.median(r[0] for r in results[mode])
        tallies = results[mode][-1][1]
        round_trips = f"{tallies['sink writes']:.2f}" if args.sink == "redis" else "(flushed in bulk)"
        print(f"{mode:<9} {cpu:>11.1f} {tallies['sink keys']:>14.1f} {tallies['cache']:>16.2f} {round_trips:>21}")
    off, on = (statistics.median(r[0] for r in results[m]) for m in ("off", "on"))
    print(f"sessions add {on - off:.1f} µs of CPU per page view ({on / off - 1:+.0%}) to ingest")
    if args.sink == "redis":
        folding = statistics.median(r[2] for r in results["on"])
        print(f"the drain folds them into visits: {folding:.1f} µs of CPU per page view, in the drain's process")
    if args.sink == "redis" or args.cache == "redis":
        client = sinks.redis_client(settings.BEACONS_REDIS_URL)
        keys = list(client.scan_iter(match=f"*{prefix}*"))
        if keys:
            client.delete(*keys)
    database.unlink(missing_ok=True)


def _visits_in(hits, gap: int) -> int:
    last: dict[int, datetime] = {}
    visits = 0
    for at, visitor, _ in hits:
        if visitor not in last or (at - last[visitor]).total_seconds() > gap:
            visits += 1
        last[visitor] = at
    return visits


if __name__ == "__main__":
    main(sys.argv[1:])
