"""A site URLconf that serves the ingest URLs under /t/ (tests of the fast path's own check)."""

from django.urls import include, path

urlpatterns = [path("t/", include("beacons.urls"))]
