"""The dashboard and the admin actions follow the admin's model permissions."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from beacons.counting.increments import Hit, aggregates_add, increments_for
from beacons.errors import alerts
from beacons.models import BeaconDefinition, ErrorGroup
from dashboard.permissions import CHANGE_ERRORS, VIEW_COUNTS, VIEW_ERRORS

from .conftest import first_site

pytestmark = pytest.mark.django_db

ROLES = {
    "anonymous": None,
    "non-staff": dict(is_staff=False, permissions=(VIEW_COUNTS, VIEW_ERRORS, CHANGE_ERRORS)),
    "staff without permissions": dict(permissions=()),
    "staff who may view": dict(permissions=(VIEW_COUNTS, VIEW_ERRORS)),
    "staff who may change": dict(permissions=(VIEW_COUNTS, VIEW_ERRORS, CHANGE_ERRORS)),
}
BREAKDOWN_PANELS = ["sources", "devices", "countries", "properties"]
COUNT_URLS = [
    "/dashboard/",
    "/dashboard/?range=7d&granularity=hour",
    *(
        f"/dashboard/panel/{name}/"
        for name in ["kpis", "live", "series", "top", "breakdown", "identifiers", *BREAKDOWN_PANELS]
    ),
    *(f"/dashboard/panel/{name}/?format=csv" for name in ["series", "top", "breakdown", *BREAKDOWN_PANELS]),
]
ERROR_URLS = [
    "/dashboard/panel/errors/",
    "/dashboard/errors/",
    "/dashboard/errors/?status=all",
    "/dashboard/errors/{pk}/",
]
HX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_CURRENT_URL": "http://testserver/dashboard/"}
SECRET_PAGE = "/secret-pricing"
SECRET_ERROR = "TypeError: card 4111 declined"


@pytest.fixture
def data(django_user_model, send, settings):
    settings.BEACONS_RATE_LIMIT = 0
    page_view = BeaconDefinition.objects.get(slug="page_view")
    hit = Hit(first_site().pk, page_view.pk, tuple(page_view.granularity_codes), SECRET_PAGE)
    aggregates_add(increments=increments_for(hits=[hit] * 3, received_at=datetime.now(UTC)))
    send({"event_type": "error", "identifier": "/checkout", "meta": {"message": SECRET_ERROR, "stack": SECRET_ERROR}})
    alerts.alerts_wait()
    return ErrorGroup.objects.get()


def client_for(role, make_staff) -> Client:
    client = Client()
    if ROLES[role] is not None:
        client.force_login(make_staff(role.replace(" ", "-"), **ROLES[role]))
    return client


def expected_for_a_page(role) -> int:
    return {"anonymous": 302, "non-staff": 302, "staff without permissions": 403}.get(role, 200)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("url", COUNT_URLS + ERROR_URLS)
def test_every_page_partial_and_csv_follows_the_view_permissions(make_staff, data, role, url):
    url = url.format(pk=data.pk)
    response = client_for(role, make_staff).get(url)

    assert response.status_code == expected_for_a_page(role)
    if response.status_code == 302:
        assert response["Location"].startswith(reverse("login") + "?next=")
    if response.status_code != 200:
        assert SECRET_PAGE.encode() not in response.content and b"TypeError" not in response.content
    cache_control = {part.strip() for part in response["Cache-Control"].split(",")}
    assert {"private", "no-store"} <= cache_control


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("url", COUNT_URLS + ERROR_URLS)
def test_htmx_requests_follow_the_same_permissions_and_never_get_a_login_form(make_staff, data, role, url):
    response = client_for(role, make_staff).get(url.format(pk=data.pk), **HX)

    assert response.status_code == {302: 403}.get(expected_for_a_page(role), expected_for_a_page(role))
    if role in ("anonymous", "non-staff"):
        assert response["HX-Redirect"].startswith(reverse("login") + "?next=")
    if response.status_code == 403:
        assert b"<form" not in response.content and SECRET_PAGE.encode() not in response.content


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("status", ["resolved", "ignored"])
def test_resolving_or_ignoring_an_error_needs_the_change_permission(make_staff, data, role, status):
    response = client_for(role, make_staff).post(reverse("dashboard:error_status", args=[data.pk]), {"status": status})

    data.refresh_from_db()
    if role == "staff who may change":
        assert response.status_code == 302
        assert data.status == status
    else:
        assert response.status_code == 403
        assert data.status == ErrorGroup.Status.UNRESOLVED


def test_staff_who_may_view_counts_but_not_errors_see_counts_without_the_error_panel(make_staff, data):
    client = Client()
    client.force_login(make_staff("counts-only", permissions=(VIEW_COUNTS,)))

    page = client.get("/dashboard/")
    assert page.status_code == 200
    assert SECRET_PAGE in page.content.decode()
    assert SECRET_ERROR not in page.content.decode() and 'id="errors"' not in page.content.decode()
    assert client.get("/dashboard/panel/errors/").status_code == 403
    assert client.get(f"/dashboard/errors/{data.pk}/").status_code == 403


def test_staff_who_may_view_errors_but_not_counts_get_403_on_count_pages(make_staff, data):
    client = Client()
    client.force_login(make_staff("errors-only", permissions=(VIEW_ERRORS,)))
    assert client.get("/dashboard/").status_code == 403
    assert client.get("/dashboard/panel/top/?format=csv").status_code == 403
    assert SECRET_ERROR in client.get(f"/dashboard/errors/{data.pk}/").content.decode()


def test_the_permission_check_costs_two_queries_per_request_however_many_panels(make_staff, data):
    superuser, viewer = Client(), Client()
    superuser.force_login(make_staff("root", permissions=(), is_superuser=True))
    viewer.force_login(make_staff("viewer", permissions=(VIEW_COUNTS, VIEW_ERRORS)))

    assert superuser.get("/dashboard/").status_code == 200  # the visit types registered on first use
    with CaptureQueriesContext(connection) as as_superuser:
        assert superuser.get("/dashboard/").status_code == 200
    with CaptureQueriesContext(connection) as as_viewer:
        assert viewer.get("/dashboard/").status_code == 200

    assert len(as_viewer) == len(as_superuser) + 2  # the user's and the groups' permissions, read once


# --- admin actions ---------------------------------------------------------------------------


def admin_actions(client, model) -> set[str]:
    response = client.get(reverse(f"admin:beacons_{model}_changelist"))
    assert response.status_code == 200
    form = response.context["action_form"]  # None when no action is offered
    return {name for name, _ in form.fields["action"].choices if name} if form else set()


@pytest.mark.parametrize(
    ("model", "actions"),
    [
        ("beacondefinition", {"activate", "deactivate"}),
        ("errorgroup", {"mark_resolved", "mark_ignored", "mark_unresolved"}),
    ],
)
def test_admin_actions_that_change_rows_are_offered_only_with_the_change_permission(make_staff, data, model, actions):
    viewer, changer = Client(), Client()
    viewer.force_login(make_staff("viewer", permissions=(f"beacons.view_{model}",)))
    changer.force_login(make_staff("changer", permissions=(f"beacons.view_{model}", f"beacons.change_{model}")))

    assert actions & admin_actions(viewer, model) == set()
    assert actions <= admin_actions(changer, model)


def test_a_view_only_user_posting_an_action_changes_nothing(make_staff, data):
    viewer = Client()
    viewer.force_login(make_staff("viewer", permissions=("beacons.view_errorgroup", "beacons.view_beacondefinition")))
    page_view = BeaconDefinition.objects.get(slug="page_view")

    viewer.post(
        reverse("admin:beacons_errorgroup_changelist"), {"action": "mark_ignored", "_selected_action": [data.pk]}
    )
    viewer.post(
        reverse("admin:beacons_beacondefinition_changelist"),
        {"action": "deactivate", "_selected_action": [page_view.pk]},
    )

    data.refresh_from_db()
    page_view.refresh_from_db()
    assert data.status == ErrorGroup.Status.UNRESOLVED
    assert page_view.is_active is True
