"""The ingest URLs: /beacon (body, path and GIF forms), experiment exposures and conversions, the published flags, and the drop-in endpoints of other trackers and the Sentry SDKs."""

from django.urls import path, re_path

from beacons.experiments import views as flags_views
from beacons.ingest import views
from beacons.ingest.compat import goatcounter, plausible, sentry, umami

app_name = "beacons"

urlpatterns = [
    path("beacon", views.beacon_collect, name="collect"),
    path("beacon/experiments", views.experiment_collect, name="experiments"),
    path("beacon/flags/<str:domain>.json", flags_views.flags_json, name="flags"),
    re_path(r"^beacon/(?P<event_type>[^/]+)\.gif$", views.beacon_gif, name="gif"),
    re_path(r"^beacon/(?P<event_type>[^/]+)(?:/(?P<identifier>.*))?$", views.beacon_collect, name="collect_path"),
    # Drop-in endpoints at the paths other trackers and the Sentry SDKs send to (BEACONS_COMPAT).
    path("api/event", plausible.endpoint, name="plausible"),
    path("api/send", umami.endpoint, name="umami"),
    path("count", goatcounter.endpoint, name="goatcounter"),
    path("api/<int:project_id>/envelope/", sentry.endpoint, name="sentry_envelope"),
    path("api/<int:project_id>/store/", sentry.endpoint, name="sentry_store"),
]
