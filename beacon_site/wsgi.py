"""The WSGI application (what granian and gunicorn serve): Django's handler with the ingest
fast path (``beacons.ingest.fastpath``), unless ``BEACONS_FAST_PATH`` is off."""

import os

import django
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "beacon_site.settings")
django.setup(set_prefix=False)

from beacons.ingest.fastpath import FastPathHandler  # noqa: E402 (needs the apps loaded)

application = FastPathHandler() if settings.BEACONS_FAST_PATH else WSGIHandler()
