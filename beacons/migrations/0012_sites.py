"""Sites: the model, and a nullable ``site`` on counters, single events and error groups
(filled by 0013, made required with the new keys by 0014; three migrations, so PostgreSQL
commits the rows before the columns change)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import beacons.domains


class Migration(migrations.Migration):
    dependencies = [
        ("beacons", "0011_bounded_type_lists"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Site",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "domain",
                    models.CharField(
                        help_text="The host name its pages are served from, e.g. shop.example.com (no http://, port or path). Beacons name it in their “site” field, or are matched to it by their Origin or Referer.",
                        max_length=253,
                        unique=True,
                        validators=[beacons.domains.validate_domain],
                    ),
                ),
                ("name", models.CharField(help_text="What staff see in the site switcher.", max_length=120)),
                (
                    "time_zone",
                    models.CharField(
                        default=beacons.domains.default_time_zone,
                        help_text="An IANA time zone name, e.g. Europe/Berlin. Stored for the site; counters are still bucketed in BEACONS_TIME_ZONE for every site.",
                        max_length=64,
                        validators=[beacons.domains.validate_time_zone],
                    ),
                ),
                (
                    "extra_origins",
                    models.TextField(
                        blank=True,
                        help_text="Other web origins whose pages may send beacons for this site, one per line, e.g. https://checkout.example.net. The site's own https:// and http:// origins are always allowed.",
                        validators=[beacons.domains.validate_origins],
                        verbose_name="extra allowed origins",
                    ),
                ),
                (
                    "is_active",
                    models.BooleanField(
                        default=True,
                        help_text="Turn off to refuse this site's beacons (403); its counts stay.",
                        verbose_name="counting",
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "members",
                    models.ManyToManyField(
                        blank=True,
                        help_text="Staff who may see this site's dashboard and errors. Superusers see every site.",
                        related_name="beacon_sites",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={"ordering": ["name", "domain"]},
        ),
        migrations.AlterField(
            model_name="droppedhits",
            name="reason",
            field=models.CharField(
                choices=[
                    ("bot", "Bot or crawler"),
                    ("inactive", "Event type switched off"),
                    ("unknown_site", "Unknown site"),
                    ("duplicate", "Duplicate event id"),
                    ("over_budget", "Unknown type over budget"),
                ],
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="beaconaggregate",
            name="site",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="aggregates",
                to="beacons.site",
            ),
        ),
        migrations.AddField(
            model_name="beaconevent",
            name="site",
            field=models.ForeignKey(
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="events",
                to="beacons.site",
            ),
        ),
        migrations.AddField(
            model_name="errorgroup",
            name="site",
            field=models.ForeignKey(
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="error_groups",
                to="beacons.site",
            ),
        ),
    ]
