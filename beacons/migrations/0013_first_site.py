"""One site for everything counted so far: BEACONS_BASE_URL's host (else the first concrete
ALLOWED_HOSTS entry, else "localhost"); every counter, single event and error group moves to it."""

from django.db import migrations

from beacons.domains import first_site_domain

MOVED = ("BeaconAggregate", "BeaconEvent", "ErrorGroup")


def first_site_create(apps, schema_editor):
    """The first site (created when no site exists yet), with every row that has none moved to it.
    Also called by the tests' fixtures, as transactional tests empty every table."""
    Site = apps.get_model("beacons", "Site")
    site = Site.objects.order_by("pk").first()
    if site is None:
        domain = first_site_domain()
        site = Site.objects.create(domain=domain, name=domain)
    for model_name in MOVED:
        apps.get_model("beacons", model_name).objects.filter(site__isnull=True).update(site=site)


class Migration(migrations.Migration):
    dependencies = [("beacons", "0012_sites")]

    operations = [migrations.RunPython(first_site_create, migrations.RunPython.noop)]
