"""The dashboard's pages, partials, CSVs, error actions, experiments' results and the page that makes shared links."""

from django.urls import path

from . import error_views, experiment_views, report_views, share_views, views

app_name = "dashboard"

urlpatterns = [
    path("", views.index, name="index"),
    path("panel/<slug:name>/", views.panel, name="panel"),
    path("types/", views.type_search, name="type_search"),
    path("share/", share_views.share, name="share"),
    path("share/<int:pk>/revoke/", share_views.share_revoke, name="share_revoke"),
    path("errors/", error_views.error_list, name="errors"),
    path("errors/<int:pk>/", error_views.error_detail, name="error_detail"),
    path("errors/<int:pk>/status/", error_views.error_status, name="error_status"),
    path("experiments/", experiment_views.experiment_list, name="experiments"),
    path("experiments/<int:pk>/", experiment_views.experiment_detail, name="experiment"),
    path("reports/", report_views.report_subscriptions, name="reports"),
    path("reports/unsubscribe/<str:token>/", report_views.report_unsubscribe_link, name="report_unsubscribe"),
]
