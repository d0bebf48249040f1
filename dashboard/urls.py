from django.urls import path

from . import error_views, views

app_name = "dashboard"

urlpatterns = [
    path("", views.index, name="index"),
    path("errors/", error_views.error_list, name="errors"),
    path("errors/<int:pk>/", error_views.error_detail, name="error_detail"),
]
