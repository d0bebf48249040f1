"""``manage.py beacons_purge``: delete what is past its retention, and visitor salts older than two days."""

import time

from django.utils import timezone

from beacons.counting.retention import retention_purge
from beacons.ingest.privacy import salts_purge
from beacons.management.base import BeaconsCommand, duration, plural


class Command(BeaconsCommand):
    help = "Delete single events past their retention and second/minute counts past fine_retention_days."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Only report what would be deleted.")

    def handle(self, *args, dry_run, **options):
        started = time.monotonic()
        now = timezone.now()
        removed = retention_purge(now=now, dry_run=dry_run)
        if not dry_run:
            salts_purge(today=now.date())  # also done at ingest, but a site with no traffic must forget its salts too
        verb = "would remove" if dry_run else "removed"
        for item in removed:
            if item.rows:
                self.stdout.write(f"{item.definition}: {verb} {item.rows:,} {item.what} row(s)")
        total = sum(item.rows for item in removed)
        elapsed = duration(time.monotonic() - started)
        if total:
            self.stdout.write(f"{verb} {plural(total, 'row')} in all, in {elapsed}")
        else:
            self.stdout.write(f"nothing to remove: everything is within its retention ({elapsed})")
