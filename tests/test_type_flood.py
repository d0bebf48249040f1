"""However many beacon types are registered, every page, panel and admin list that names types stays bounded."""

import re

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from beacons.admin import TYPE_FILTER_LIMIT
from beacons.models import BeaconDefinition
from beacons.registry import SYSTEM_DEFINITIONS, system_definitions_resolve
from dashboard.error_views import ERROR_TYPES_SHOWN
from dashboard.views import TYPE_CHOICES_LIMIT, TYPE_SEARCH_LIMIT

from .conftest import first_site

pytestmark = pytest.mark.django_db


def flood(n: int, **fields) -> list[BeaconDefinition]:
    return BeaconDefinition.objects.bulk_create(
        [BeaconDefinition(slug=f"junk{i:04d}", name=f"Junk {i:04d}", auto_registered=True, **fields) for i in range(n)]
    )


def test_type_search_finds_types_beyond_the_listed_choices_at_most_twenty(admin_client):
    flood(TYPE_CHOICES_LIMIT + 50)
    page = admin_client.get(reverse("dashboard:index")).content.decode()
    assert 'value="junk0249"' not in page  # not among the choices
    html = admin_client.get(reverse("dashboard:type_search"), {"types": "JUNK02", "range": "7d"}).content.decode()
    assert html.count("<li>") == TYPE_SEARCH_LIMIT
    assert "Junk 0200" in html and "Junk 0219" in html and "Junk 0220" not in html
    assert "&amp;type=junk0200&amp;range=7d" in html  # the dashboard showing it, the dates kept
    html = admin_client.get(reverse("dashboard:type_search"), {"types": "junk0249"}).content.decode()
    assert html.count("<li>") == 1 and "<code>junk0249</code>" in html


def test_type_search_escapes_type_names_and_what_was_typed(admin_client):
    BeaconDefinition.objects.create(slug="hostile", name="<img src=x onerror=alert(1)>")
    html = admin_client.get(reverse("dashboard:type_search"), {"types": "<img"}).content.decode()
    assert "&lt;img src=x onerror=alert(1)&gt;</a>" in html and "<img" not in html
    html = admin_client.get(reverse("dashboard:type_search"), {"types": "<b>nothing"}).content.decode()
    assert "No event type’s name contains “&lt;b&gt;nothing”" in html


@pytest.mark.parametrize(
    ("who", "status"), [("anonymous", 302), ("non_staff", 302), ("staff", 403), ("staff_view", 200)]
)
def test_type_search_checks_the_dashboard_permission(client, django_user_model, who, status):
    BeaconDefinition.objects.create(slug="secret_launch", name="Secret launch")
    if who != "anonymous":
        user = django_user_model.objects.create_user("u", password="pw", is_staff=who != "non_staff")
        if who == "staff_view":
            user.user_permissions.add(Permission.objects.get(codename="view_beaconaggregate"))
            user.beacon_sites.add(first_site())  # a member of the site it asks about
        client.force_login(user)
    response = client.get(reverse("dashboard:type_search"), {"types": "secret"})
    assert response.status_code == status
    assert ("Secret launch" in response.content.decode()) == (status == 200)


def test_admin_lists_filter_by_at_most_fifty_types_and_keep_the_chosen_one(admin_client):
    types = flood(TYPE_FILTER_LIMIT + 70)
    for model in ["beaconaggregate", "beaconevent", "errorgroup"]:
        url = reverse(f"admin:beacons_{model}_changelist")
        html = admin_client.get(url).content.decode()
        assert html.count("definition__id__exact=") == TYPE_FILTER_LIMIT
        html = admin_client.get(url, {"definition__id__exact": types[-1].pk}).content.decode()
        assert len(set(re.findall(r"definition__id__exact=(\d+)", html))) == TYPE_FILTER_LIMIT + 1
        assert re.search(r'<li class="selected">\s*<a href="[^"]*">Junk 0119</a>', html)


def test_dashboard_with_a_thousand_types_reads_at_most_the_listed_ones(
    admin_client, django_assert_max_num_queries, monkeypatch
):
    flood(1_000)
    built = []
    original = BeaconDefinition.from_db.__func__
    monkeypatch.setattr(BeaconDefinition, "from_db", classmethod(lambda cls, *a: built.append(1) or original(cls, *a)))
    system_definitions_resolve()  # the visit types, registered on a site's first visit
    # the sources, devices and countries panels read one query each; visitors and visits 5; the
    # busiest pages' visitors 1 and the Visitors panel 8 (whatever the number of types)
    with django_assert_max_num_queries(27):
        html = admin_client.get(reverse("dashboard:index")).content.decode()
    assert html.count('<option value="junk') == TYPE_CHOICES_LIMIT - 2  # page views and errors come first
    assert len(built) <= TYPE_CHOICES_LIMIT + len(SYSTEM_DEFINITIONS)  # the listed types, and the visit types
    for name in ["kpis", "series", "top", "breakdown", "live", "identifiers", "sources", "countries", "properties"]:
        built.clear()
        with django_assert_max_num_queries(6):
            assert admin_client.get(reverse("dashboard:panel", args=[name]), {"type": "junk0999"}).status_code == 200
        assert len(built) <= 2  # a panel reads the type it shows (and page views), not the type choices


def test_error_list_names_a_bounded_number_of_error_types(admin_client):
    flood(ERROR_TYPES_SHOWN + 25, kind=BeaconDefinition.Kind.ERROR)
    html = admin_client.get(reverse("dashboard:errors")).content.decode()
    assert html.count('class="alert-audience') == ERROR_TYPES_SHOWN


def test_the_type_search_box_shows_only_when_the_type_list_is_cut_short(admin_client, settings):
    page = admin_client.get(reverse("dashboard:index")).content.decode()
    assert 'id="type-search"' not in page  # the two registered types are all in the select
    BeaconDefinition.objects.bulk_create(
        BeaconDefinition(slug=f"junk{n:04d}", name=f"Junk {n:04d}", auto_registered=True) for n in range(250)
    )
    page = admin_client.get(reverse("dashboard:index")).content.decode()
    assert 'id="type-search"' in page
