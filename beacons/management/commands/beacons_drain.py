import signal
import threading
import time

from django.core.management.base import BaseCommand, CommandError

from beacons.drain import drain_with_retries


class Command(BaseCommand):
    help = (
        "Move the counts buffered in Redis (BEACONS_SINK=redis) into the database, exactly once. "
        "Safe to kill at any moment and to run more than one at a time."
    )

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="Keep draining every --interval seconds until stopped.")
        parser.add_argument("--interval", type=float, default=2.0, help="Seconds between passes with --loop (default 2).")
        parser.add_argument(
            "--attempts", type=int, default=6, help="Without --loop: tries while the database or Redis is down (default 6, ~30 s)."
        )

    def handle(self, *args, loop, interval, attempts, verbosity, **options):
        self.verbosity = verbosity
        if not loop:
            self._pass(attempts=attempts)
            return
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())  # finish the pass in progress, then exit
        while not stop.is_set():
            self._pass(attempts=None)
            stop.wait(interval)

    def _pass(self, *, attempts: int | None) -> None:
        started = time.monotonic()
        try:
            result = drain_with_retries(attempts=attempts)
        except Exception as exc:
            raise CommandError(f"drain failed, counts stay in Redis: {exc}") from exc
        if result.batches or result.discarded or self.verbosity > 1:
            elapsed_ms = (time.monotonic() - started) * 1000
            self.stdout.write(
                f"drain ({elapsed_ms:.0f}ms/{result.keys}r): {result.batches} batch(es), {result.hits} hit(s), "
                f"{result.discarded} already-written batch(es) discarded"
            )
