from django.db import migrations

DEFAULTS = [
    {
        "slug": "page_view",
        "name": "Page views",
        "description": "One for every page a visitor opens, counted per page address.",
        "kind": "page_view",
        "identifier_rule": "referer",
        # Minutes power the dashboard's "live now"; they are kept for two days only.
        "granularities": "M,H,D,MO,Y",
        "fine_retention_days": 2,
        "keep_raw": False,
    },
    {
        "slug": "error",
        "name": "JavaScript errors",
        "description": "Errors in visitors' browsers, grouped by message and place in the code.",
        "kind": "error",
        "identifier_rule": "referer",
        "granularities": "M,H,D,MO",
        "fine_retention_days": 7,
        "keep_raw": True,
        "raw_retention_days": 30,
    },
]


def register_defaults(apps, schema_editor):
    BeaconDefinition = apps.get_model("beacons", "BeaconDefinition")
    for values in DEFAULTS:
        BeaconDefinition.objects.get_or_create(slug=values["slug"], defaults=values)


def unregister_defaults(apps, schema_editor):
    BeaconDefinition = apps.get_model("beacons", "BeaconDefinition")
    BeaconDefinition.objects.filter(slug__in=[d["slug"] for d in DEFAULTS], aggregates__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("beacons", "0001_initial")]
    operations = [migrations.RunPython(register_defaults, unregister_defaults)]
