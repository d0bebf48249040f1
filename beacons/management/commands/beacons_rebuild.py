import time
from datetime import datetime, time as dtime

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_date, parse_datetime

from beacons.buckets import bucket_zone
from beacons.maintenance import aggregates_rebuild
from beacons.models import BeaconDefinition


def parse_moment(value: str) -> datetime:
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(f"not a date or datetime: {value!r} (use 2026-11-01 or 2026-11-01T10:00)")
        moment = datetime.combine(day, dtime.min)
    return moment if moment.tzinfo else moment.replace(tzinfo=bucket_zone())


class Command(BaseCommand):
    help = (
        "Recompute counts from kept single events for buckets wholly inside [start, end). "
        "Only beacon types that keep single events; safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--start", required=True, help="Date or datetime, in BEACONS_TIME_ZONE unless an offset is given.")
        parser.add_argument("--end", required=True, help="Exclusive end, same format.")
        parser.add_argument("--definition", help="Event type slug; default: every type that keeps single events.")

    def handle(self, *args, start, end, definition, **options):
        start_at, end_at = parse_moment(start), parse_moment(end)
        if end_at <= start_at:
            raise CommandError("--end must be after --start")
        definitions = BeaconDefinition.objects.filter(keep_raw=True)
        if definition:
            definitions = BeaconDefinition.objects.filter(slug=definition)
            if not definitions.exists():
                raise CommandError(f"no beacon type {definition!r}")
            if not definitions.get().keep_raw:
                raise CommandError(f"{definition!r} does not keep single events: nothing to rebuild from")
        started = time.monotonic()
        written = aggregates_rebuild(start=start_at, end=end_at, definitions=list(definitions))
        for slug, keys in written.items():
            self.stdout.write(f"{slug}: {keys} counter(s) rebuilt")
        elapsed_ms = (time.monotonic() - started) * 1000
        self.stdout.write(f"rebuild ({elapsed_ms:.0f}ms/{sum(written.values())}r)")
