"""``manage.py beacons_alerts``: send the error alerts that are due (threshold windows, retries)."""

import time

from beacons.errors.alerts import alerts_send_pending
from beacons.management.base import BeaconsCommand, duration, plural


class Command(BeaconsCommand):
    help = (
        "Send the error alerts that are waiting: alerts a stopped process did not send, and the one "
        "retry of handlers that failed. Alerts are normally sent right after ingest; run this every "
        "minute (cron, systemd timer) so none is left behind."
    )

    def handle(self, *args, **options):
        started = time.monotonic()
        run = alerts_send_pending()
        elapsed = duration(time.monotonic() - started)
        if not run.sent and not run.failed:
            self.stdout.write(f"no alerts waiting ({elapsed})")
            return
        line = f"sent {plural(run.sent, 'alert')} in {elapsed}"
        if run.failed:
            line += f"; {run.failed:,} with a failing handler ({len(run.retry_ids):,} to retry once)"
        self.stdout.write(line)
