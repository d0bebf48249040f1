# Error alerts: threshold window and the pending-alert queue on ErrorGroup (see beacons.alerts).

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('beacons', '0002_default_definitions'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='errorgroup',
            name='alert_attempts',
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='errorgroup',
            name='alert_failed_handlers',
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name='errorgroup',
            name='alert_reason',
            field=models.CharField(blank=True, default='', max_length=16),
        ),
        migrations.AddField(
            model_name='errorgroup',
            name='window_count',
            field=models.BigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='errorgroup',
            name='window_started_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name='errorgroup',
            index=models.Index(condition=models.Q(('alert_reason', ''), _negated=True), fields=['alert_reason'], name='error_group_alert_pending'),
        ),
    ]
