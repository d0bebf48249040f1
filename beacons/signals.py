"""Signals other code can listen to."""

from django.dispatch import Signal

# Sent once per error alert, after the ingest transaction committed, before the
# BEACONS_ALERT_HANDLERS run: ``sender=ErrorGroup``, ``group`` (an ErrorGroup with its
# definition loaded) and ``reason`` ("new", "regression" or "threshold"). Receivers that
# raise are logged; they never stop the handlers or the ingest request.
error_alert = Signal()
