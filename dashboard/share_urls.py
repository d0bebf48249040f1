"""A shared link's read-only dashboard, panels (and their CSVs) and embeds, under ``/share/<token>/``."""

from django.urls import path

from . import share_views

app_name = "share"

urlpatterns = [
    path("", share_views.shared_index, name="index"),
    path("panel/<slug:name>/", share_views.shared_panel, name="panel"),
    path("types/", share_views.shared_type_search, name="type_search"),
    path("embed/<slug:name>/", share_views.shared_embed, name="embed"),
]
