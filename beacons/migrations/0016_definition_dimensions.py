"""What each type breaks its counts down by; page views keep every built-in dimension, other types none."""

from django.db import migrations, models

import beacons.models

# The built-in dimensions as this migration knows them (beacons.dimensions.BUILT_IN may grow later).
BUILT_IN = "source,utm_medium,utm_campaign,browser,os,device,country"


def page_views_keep_every_dimension(apps, schema_editor):
    Definition = apps.get_model("beacons", "BeaconDefinition")
    Definition.objects.filter(kind="page_view").update(dimensions=BUILT_IN)


class Migration(migrations.Migration):
    dependencies = [
        ("beacons", "0015_dimensions"),
    ]

    operations = [
        migrations.AddField(
            model_name="beacondefinition",
            name="dimensions",
            field=models.CharField(
                blank=True,
                default="",
                help_text="Also count by where visitors came from, what they use and where they are. Page views keep them all by default, other types none. Each one adds a few rows per day.",
                max_length=128,
                validators=[beacons.models.validate_dimensions],
                verbose_name="breakdowns",
            ),
        ),
        migrations.AddField(
            model_name="beacondefinition",
            name="dimensions_by_hour",
            field=models.BooleanField(
                default=False,
                help_text="Keep the breakdowns above per hour too (kept for the hour retention below). Off: per day, month and year.",
                verbose_name="breakdowns by hour",
            ),
        ),
        migrations.AddField(
            model_name="beacondefinition",
            name="property_keys",
            field=models.CharField(
                blank=True,
                default="",
                help_text="Names of values sent in the beacon's meta to count separately, separated by commas, e.g. plan, method: meta.plan = “pro” counts under property “plan”, value “pro”. At most 10; letters, digits, _ and - only.",
                max_length=330,
                validators=[beacons.models.validate_property_keys],
                verbose_name="properties",
            ),
        ),
        migrations.RunPython(page_views_keep_every_dimension, migrations.RunPython.noop),
    ]
