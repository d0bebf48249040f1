"""The beacons app: registers its system checks when Django starts."""

from django.apps import AppConfig


class BeaconsConfig(AppConfig):
    name = "beacons"
    verbose_name = "Beacons"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from beacons import checks  # noqa: F401 (registers the system checks)
        from beacons.experiments import payload  # noqa: F401 (a changed flag clears its site's kept payload)
