"""The ASGI application: Django's handler with the ingest fast path (``beacons.ingest.fastpath``),
unless ``BEACONS_FAST_PATH`` is off."""

import os

import django
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "beacon_site.settings")
django.setup(set_prefix=False)

from beacons.ingest.fastpath import FastPathASGIHandler  # noqa: E402 (needs the apps loaded)

application = FastPathASGIHandler() if settings.BEACONS_FAST_PATH else ASGIHandler()
