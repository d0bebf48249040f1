"""Unique visitors: a sketch table beside the counters; page views also count by identity (signed in, anonymous, untracked)."""

import django.db.models.deletion
from django.db import migrations, models


def page_views_count_identity(apps, schema_editor):
    Definition = apps.get_model("beacons", "BeaconDefinition")
    for definition in Definition.objects.filter(kind="page_view"):
        codes = [code for code in definition.dimensions.split(",") if code]
        if codes and "identity" not in codes:  # a type whose breakdowns were all turned off stays so
            definition.dimensions = ",".join([*codes, "identity"])
            definition.save(update_fields=["dimensions"])


class Migration(migrations.Migration):
    dependencies = [
        ("beacons", "0016_definition_dimensions"),
    ]

    operations = [
        migrations.CreateModel(
            name="VisitorSketch",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("dimension", models.CharField(blank=True, default="", max_length=40)),
                ("identifier", models.CharField(blank=True, default="", max_length=256, verbose_name="value")),
                (
                    "granularity",
                    models.CharField(
                        choices=[
                            ("S", "second"),
                            ("M", "minute"),
                            ("H", "hour"),
                            ("D", "day"),
                            ("MO", "month"),
                            ("Y", "year"),
                        ],
                        max_length=2,
                    ),
                ),
                ("period_start", models.DateTimeField()),
                ("sketch", models.BinaryField(default=b"")),
                (
                    "definition",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="beacons.beacondefinition",
                    ),
                ),
                (
                    "site",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="beacons.site",
                    ),
                ),
            ],
            options={
                "verbose_name": "visitor sketch",
                "constraints": [
                    models.UniqueConstraint(
                        fields=("site", "definition", "dimension", "identifier", "granularity", "period_start"),
                        name="visitor_sketch_site_key",
                    )
                ],
            },
        ),
        migrations.RunPython(page_views_count_identity, migrations.RunPython.noop),
    ]
