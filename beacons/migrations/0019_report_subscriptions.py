"""Email report subscriptions (a staff user or an address, weekly or monthly) and the periods sent to each."""


import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('beacons', '0018_api_keys'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='ReportSubscription',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('email', models.EmailField(blank=True, help_text="An address mailed whoever it belongs to (the report lists new error groups' titles).", max_length=254)),
                ('frequency', models.CharField(choices=[('weekly', 'Weekly (the last whole week, Monday to Sunday)'), ('monthly', 'Monthly (the last whole month)')], default='weekly', max_length=8)),
                ('is_active', models.BooleanField(default=True, help_text='Untick to stop the mails (the unsubscribe link does this).', verbose_name='active')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('site', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='report_subscriptions', to='beacons.site')),
                ('user', models.ForeignKey(blank=True, help_text="A staff member mailed at their account's address while they may see the site.", null=True, on_delete=django.db.models.deletion.CASCADE, related_name='report_subscriptions', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['site', 'frequency', 'email'],
            },
        ),
        migrations.CreateModel(
            name='ReportSent',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('period_start', models.DateTimeField(help_text='The first moment of the week or month reported.')),
                ('claimed_at', models.DateTimeField(auto_now_add=True)),
                ('sent_at', models.DateTimeField(blank=True, help_text='Empty: claimed, but the mail was never confirmed sent.', null=True)),
                ('subscription', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='sent', to='beacons.reportsubscription')),
            ],
            options={
                'verbose_name': 'report sent',
                'verbose_name_plural': 'reports sent',
                'ordering': ['-period_start'],
            },
        ),
        migrations.AddConstraint(
            model_name='reportsubscription',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('user__isnull', False), ('email', '')), models.Q(('user__isnull', True), models.Q(('email', ''), _negated=True)), _connector='OR'), name='report_subscription_user_or_email'),
        ),
        migrations.AddConstraint(
            model_name='reportsubscription',
            constraint=models.UniqueConstraint(condition=models.Q(('user__isnull', False)), fields=('site', 'user', 'frequency'), name='report_subscription_user_once'),
        ),
        migrations.AddConstraint(
            model_name='reportsubscription',
            constraint=models.UniqueConstraint(condition=models.Q(('email', ''), _negated=True), fields=('site', 'email', 'frequency'), name='report_subscription_email_once'),
        ),
        migrations.AddConstraint(
            model_name='reportsent',
            constraint=models.UniqueConstraint(fields=('subscription', 'period_start'), name='report_sent_once_per_period'),
        ),
    ]
