"""The dashboard app: staff pages that read the counters through beacons.queries."""

from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "dashboard"
    verbose_name = "Dashboard"
