"""The site's URLs: ingest first (the busiest), the dashboard, shared dashboards, the stats API, the demo, sign-in, the admin."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from beacon_site import demo
from beacons.api.views import api

admin.site.site_header = "Beacons administration"
admin.site.site_title = "Beacons"
admin.site.index_title = "Registry and data"
admin.site.site_url = "/dashboard/"

urlpatterns = [
    path("", include("beacons.urls")),  # first: the busiest URLs by far
    path("", RedirectView.as_view(pattern_name="dashboard:index", permanent=False)),
    path("dashboard/", include("dashboard.urls")),
    path("share/<slug:token>/", include("dashboard.share_urls")),
    path("api/v1/", api.urls),
    path("demo/", demo.demo, name="demo"),
    path("demo/<path:route>", demo.demo, name="demo_route"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
]
