"""The site joins the keys: counters are unique on (site, definition, identifier, granularity,
period_start), error groups on (site, definition, fingerprint); the read indexes start with the
site. Each new index is built before the one it replaces is dropped."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("beacons", "0013_first_site")]

    operations = [
        migrations.AlterField(
            model_name="beaconaggregate",
            name="site",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="aggregates",
                to="beacons.site",
            ),
        ),
        migrations.AlterField(
            model_name="beaconevent",
            name="site",
            field=models.ForeignKey(
                db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name="events", to="beacons.site"
            ),
        ),
        migrations.AlterField(
            model_name="errorgroup",
            name="site",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="error_groups",
                to="beacons.site",
            ),
        ),
        migrations.AddConstraint(
            model_name="beaconaggregate",
            constraint=models.UniqueConstraint(
                fields=("site", "definition", "identifier", "granularity", "period_start"),
                name="beacon_aggregate_site_bucket",
            ),
        ),
        migrations.RemoveConstraint(model_name="beaconaggregate", name="beacon_aggregate_bucket"),
        migrations.AddIndex(
            model_name="beaconaggregate",
            index=models.Index(
                fields=["site", "definition", "granularity", "period_start"], name="beacon_agg_site_def_gran"
            ),
        ),
        migrations.RemoveIndex(model_name="beaconaggregate", name="beacon_agg_def_gran_start"),
        migrations.AddIndex(
            model_name="beaconaggregate",
            index=models.Index(
                fields=["site", "identifier", "granularity", "period_start", "definition", "count"],
                name="beacon_agg_site_ident_cover",
            ),
        ),
        migrations.RemoveIndex(model_name="beaconaggregate", name="beacon_agg_ident_gran_cover"),
        migrations.AddIndex(
            model_name="beaconevent",
            index=models.Index(fields=["site", "definition", "received_at"], name="beacon_event_site_def_received"),
        ),
        migrations.RemoveIndex(model_name="beaconevent", name="beacon_event_def_received"),
        migrations.AddConstraint(
            model_name="errorgroup",
            constraint=models.UniqueConstraint(
                fields=("site", "definition", "fingerprint"), name="error_group_site_fingerprint"
            ),
        ),
        migrations.RemoveConstraint(model_name="errorgroup", name="error_group_fingerprint"),
        migrations.AddIndex(
            model_name="errorgroup",
            index=models.Index(fields=["site", "status", "last_seen"], name="error_group_site_status_seen"),
        ),
        migrations.RemoveIndex(model_name="errorgroup", name="error_group_status_seen"),
    ]
