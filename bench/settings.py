"""Settings for benchmarks only: the site's settings plus the bare ceiling view and a
response-status tally (``bench.wsgi``) so counted hits can be compared with 204s."""

from beacon_site.settings import *  # noqa: F403 (the bench runs the site settings with one change)

ROOT_URLCONF = "bench.urls"
WSGI_APPLICATION = "bench.wsgi.application"
