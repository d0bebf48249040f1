"""The ingest URLs: /beacon (body, path and GIF forms)."""

from django.urls import path, re_path

from beacons.ingest import views

app_name = "beacons"

urlpatterns = [
    path("beacon", views.beacon_collect, name="collect"),
    re_path(r"^beacon/(?P<event_type>[^/]+)\.gif$", views.beacon_gif, name="gif"),
    re_path(r"^beacon/(?P<event_type>[^/]+)(?:/(?P<identifier>.*))?$", views.beacon_collect, name="collect_path"),
]
