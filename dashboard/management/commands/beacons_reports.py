"""``manage.py beacons_reports``: mail every weekly and monthly email report that is due, once."""

import time

from beacons.management.base import BeaconsCommand, duration, plural
from dashboard.reports import reports_send


class Command(BeaconsCommand):
    help = (
        "Send the email reports that are due: each active subscription's last whole week (Monday to "
        "Sunday) or month, in its site's time zone, unless it was sent already. Running it again sends "
        "nothing twice. Run it every hour from cron or a systemd timer."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="List the reports that are due; send nothing.")

    def handle(self, *args, dry_run=False, **options):
        started = time.monotonic()
        run = reports_send(dry_run=dry_run)
        elapsed = duration(time.monotonic() - started)
        if dry_run:
            for subscription, address in run.due:
                self.stdout.write(f"due: {subscription.frequency} report of {subscription.site.domain} to {address}")
            self.stdout.write(f"{plural(len(run.due), 'report')} due; nothing sent (--dry-run, {elapsed})")
            return
        line = f"sent {plural(run.sent, 'report')} in {elapsed}"
        if run.failed:
            line += f"; {run.failed:,} failed (retried on the next run)"
        if run.skipped:
            line += f"; {run.skipped:,} skipped (the subscriber may no longer see the site or has no address)"
        self.stdout.write(line)
