import time

from django.core.management.base import BaseCommand

from beacons.alerts import alerts_send_pending


class Command(BaseCommand):
    help = (
        "Send the error alerts that are waiting: alerts a stopped process did not send, and the one "
        "retry of handlers that failed. Alerts are normally sent right after ingest; run this every "
        "minute (cron, systemd timer) so none is left behind."
    )

    def handle(self, *args, **options):
        started = time.monotonic()
        run = alerts_send_pending()
        elapsed_ms = (time.monotonic() - started) * 1000
        self.stdout.write(
            f"alerts ({elapsed_ms:.0f}ms/{run.sent + run.failed}r): sent {run.sent}, "
            f"{run.failed} with a failing handler ({len(run.retry_ids)} to retry once)"
        )
