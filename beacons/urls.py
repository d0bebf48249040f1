"""The ingest URLs: /beacon (body, path and GIF forms), experiment exposures and conversions, and the published flags."""

from django.urls import path, re_path

from beacons.experiments import views as flags_views
from beacons.ingest import views

app_name = "beacons"

urlpatterns = [
    path("beacon", views.beacon_collect, name="collect"),
    path("beacon/experiments", views.experiment_collect, name="experiments"),
    path("beacon/flags/<str:domain>.json", flags_views.flags_json, name="flags"),
    re_path(r"^beacon/(?P<event_type>[^/]+)\.gif$", views.beacon_gif, name="gif"),
    re_path(r"^beacon/(?P<event_type>[^/]+)(?:/(?P<identifier>.*))?$", views.beacon_collect, name="collect_path"),
]
