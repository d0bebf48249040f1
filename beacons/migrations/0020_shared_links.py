"""Shared links: a site's read-only dashboard behind a hashed token, an optional password and expiry."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('beacons', '0019_report_subscriptions'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='SharedLink',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('label', models.CharField(blank=True, help_text='Who or what the link is for, e.g. “investors”.', max_length=120)),
                ('token_hash', models.CharField(editable=False, max_length=64, unique=True)),
                ('password', models.CharField(blank=True, editable=False, max_length=128)),
                ('expires_at', models.DateTimeField(blank=True, help_text='After this moment the link answers 404. Empty: never.', null=True, verbose_name='expires')),
                ('is_active', models.BooleanField(default=True, help_text='Untick to revoke the link: it answers 404.', verbose_name='active')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('revoked_at', models.DateTimeField(blank=True, editable=False, null=True)),
                ('last_used_at', models.DateTimeField(blank=True, editable=False, null=True)),
                ('created_by', models.ForeignKey(blank=True, editable=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('site', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='shared_links', to='beacons.site')),
            ],
            options={
                'verbose_name': 'shared link',
                'ordering': ['-created_at'],
            },
        ),
    ]
