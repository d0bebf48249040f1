"""``manage.py beacons_drain [--loop]``: move the Redis counters into the database exactly once."""

import signal
import threading
import time

from django.core.management.base import CommandError

from beacons.counting.drain import drain_batches_purge, drain_with_retries
from beacons.management.base import BeaconsCommand, Progress, duration, plural, seconds, whole_number

PROGRESS_EVERY = 100_000

PURGE_EVERY_SECONDS = 3600


class Command(BeaconsCommand):
    help = (
        "Move the counts buffered in Redis (BEACONS_SINK=redis) into the database, exactly once. "
        "Safe to kill at any moment and to run more than one at a time."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--loop",
            action="store_true",
            help="Keep draining every --interval seconds until stopped (SIGTERM finishes the pass first); "
            "hourly, also deletes drain records older than 7 days.",
        )
        parser.add_argument(
            "--interval", type=seconds, default=2.0, help="Seconds between passes with --loop (default 2)."
        )
        parser.add_argument(
            "--attempts",
            type=whole_number(1),
            default=6,
            help="Without --loop: tries while the database or Redis is down (default 6, ~30 s).",
        )

    def handle(self, *args, loop, interval, attempts, verbosity, **options):
        self.verbosity = verbosity
        if not loop:
            self._pass(attempts=attempts, looping=False)
            return
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())  # finish the pass in progress, then exit
        purged_at = float("-inf")
        while not stop.is_set():
            self._pass(attempts=None, looping=True)
            if time.monotonic() - purged_at > PURGE_EVERY_SECONDS:
                purged_at = time.monotonic()
                self._purge()
            stop.wait(interval)

    def _purge(self) -> None:
        try:
            deleted = drain_batches_purge()
        except Exception as exc:  # the next hour tries again; draining matters more
            self.stderr.write(f"could not delete old drain batch records: {exc}")
            return
        if deleted:
            self.stdout.write(f"deleted {plural(deleted, 'drain batch record')} older than 7 days")

    def _pass(self, *, attempts: int | None, looping: bool) -> None:
        """One drain; its summary in words (with --loop, an empty pass says nothing unless -v 2)."""
        started = time.monotonic()
        # With --loop (a service), no progress: its log would fill with lines.
        progress = Progress(stream=self.stderr, unit="counters", every=PROGRESS_EVERY, label="draining")
        try:
            with progress:
                result = drain_with_retries(attempts=attempts, on_fields=None if looping else progress.update)
        except Exception as exc:
            raise CommandError(f"drain failed, counts stay in Redis: {exc}") from exc
        elapsed = duration(time.monotonic() - started)
        discarded = (
            f"; {plural(result.discarded, 'batch', 'batches')} already written, discarded" if result.discarded else ""
        )
        folded = (
            f"; {plural(result.page_views_folded, 'page view')} folded into visits" if result.page_views_folded else ""
        )
        if result.batches:
            self.stdout.write(
                f"drained {plural(result.keys, 'counter')} ({plural(result.hits, 'hit')}) in "
                f"{plural(result.batches, 'batch', 'batches')} in {elapsed}{discarded}{folded}"
            )
        elif result.discarded or not looping or self.verbosity > 1:
            self.stdout.write(f"nothing to drain: Redis holds no new counts ({elapsed}){discarded}")
