from django.apps import AppConfig


class BeaconsConfig(AppConfig):
    name = "beacons"
    verbose_name = "Beacons"
    default_auto_field = "django.db.models.BigAutoField"
