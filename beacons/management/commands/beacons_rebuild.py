"""``manage.py beacons_rebuild``: recount the buckets inside a range from kept single events."""

import time

from beacons.counting.retention import aggregates_rebuild
from beacons.management.base import BeaconsCommand, Progress, duration, moment, option_error, plural
from beacons.models import BeaconDefinition


class Command(BeaconsCommand):
    help = (
        "Recompute counts from kept single events for buckets wholly inside [start, end). "
        "Only beacon types that keep single events; safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--start",
            required=True,
            type=moment,
            help="Date or datetime, in BEACONS_TIME_ZONE unless an offset is given.",
        )
        parser.add_argument("--end", required=True, type=moment, help="Exclusive end, same format.")
        parser.add_argument("--definition", help="Event type slug; default: every type that keeps single events.")

    def handle(self, *args, start, end, definition, **options):
        if end <= start:
            raise option_error("--end must be after --start")
        definitions = BeaconDefinition.objects.filter(keep_raw=True)
        if definition:
            definitions = BeaconDefinition.objects.filter(slug=definition)
            if not definitions.exists():
                raise option_error(f"--definition: no beacon type {definition!r}")
            if not definitions.get().keep_raw:
                raise option_error(f"--definition: {definition!r} does not keep single events: nothing to rebuild from")
        started = time.monotonic()
        with Progress(stream=self.stderr, unit="events", every=100_000, label="reading single events") as progress:
            written = aggregates_rebuild(start=start, end=end, definitions=list(definitions), on_events=progress.update)
        for slug, keys in written.items():
            self.stdout.write(f"{slug}: {plural(keys, 'counter')} rebuilt")
        self.stdout.write(
            f"rebuilt {plural(sum(written.values()), 'counter')} from {plural(progress.done, 'single event')} "
            f"in {duration(time.monotonic() - started)}"
        )
