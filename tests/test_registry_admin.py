import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from beacons.counting.increments import Hit, aggregates_add, increments_for
from beacons.models import BeaconDefinition

from .conftest import first_site

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/beacons/beacondefinition/"


def record(definition, at, n):
    hits = [Hit(first_site().pk, definition.pk, tuple(definition.granularity_codes), "/x")] * n
    aggregates_add(increments=increments_for(hits=hits, received_at=at))


def test_registry_lists_hits_today_and_last_7_days(admin_client):
    page_view = BeaconDefinition.objects.get(slug="page_view")
    record(page_view, timezone.now(), 1234)
    record(page_view, timezone.now() - timedelta(days=3), 6)
    record(page_view, timezone.now() - timedelta(days=30), 100)
    html = admin_client.get(CHANGELIST).content.decode()
    assert "1,234" in html
    assert "1,240" in html


def test_registry_page_query_count_does_not_grow_with_definitions(admin_client):
    def queries_for_page():
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(CHANGELIST).status_code == 200
        return len(captured)

    before = queries_for_page()
    for i in range(15):
        definition = BeaconDefinition.objects.create(slug=f"type_{i}", name=f"Type {i}")
        record(definition, timezone.now(), 1)
    assert queries_for_page() == before


def test_bulk_deactivate_and_activate(admin_client):
    ids = list(BeaconDefinition.objects.values_list("pk", flat=True))
    admin_client.post(CHANGELIST, {"action": "deactivate", "_selected_action": ids})
    assert not BeaconDefinition.objects.filter(is_active=True).exists()
    admin_client.post(CHANGELIST, {"action": "activate", "_selected_action": ids})
    assert BeaconDefinition.objects.filter(is_active=False).count() == 0


def test_granularities_are_checkboxes_and_save_in_order(admin_client):
    page = admin_client.get(f"{CHANGELIST}add/").content.decode()
    assert 'type="checkbox" name="granularities" value="MO"' in page
    response = admin_client.post(
        f"{CHANGELIST}add/",
        {
            "name": "Downloads",
            "slug": "download_click",
            "kind": "custom",
            "identifier_rule": "payload",
            "granularities": ["Y", "H", "D"],
            "raw_retention_days": 30,
            "fine_retention_days": 7,
            "hour_retention_days": 92,
            "is_active": "on",
            "alert_on_new": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert BeaconDefinition.objects.get(slug="download_click").granularity_codes == ["H", "D", "Y"]


def test_invalid_slug_is_refused_with_a_message(admin_client):
    response = admin_client.post(
        f"{CHANGELIST}add/",
        {
            "name": "Bad",
            "slug": "Has Spaces",
            "kind": "custom",
            "identifier_rule": "payload",
            "granularities": ["D"],
            "raw_retention_days": 30,
            "fine_retention_days": 7,
            "hour_retention_days": 92,
        },
    )
    assert response.status_code == 200
    assert "lower-case letters" in response.content.decode()


def test_every_registry_field_has_help_text_for_staff():
    editable = [f for f in BeaconDefinition._meta.get_fields() if getattr(f, "editable", False) and not f.auto_created]
    missing = [
        f.name for f in editable if not getattr(f, "help_text", "") and f.name not in {"created_at", "updated_at"}
    ]
    assert missing == []


def test_switching_a_type_off_in_the_admin_stops_counting_at_once(admin_client, send):
    assert send({"event_type": "page_view", "identifier": "/"}).status_code == 204  # type now cached
    page_view = BeaconDefinition.objects.get(slug="page_view")
    admin_client.post(CHANGELIST, {"action": "deactivate", "_selected_action": [page_view.pk]})
    send({"event_type": "page_view", "identifier": "/"})
    from beacons.models import BeaconAggregate, Granularity

    assert BeaconAggregate.objects.get(definition=page_view, identifier="", granularity=Granularity.DAY).count == 1


def test_add_beacon_type_starts_with_hour_day_month_year_ticked_and_saves_first_time(admin_client):
    html = admin_client.get(f"{CHANGELIST}add/").content.decode()
    ticked = re.findall(r'<input type="checkbox" name="granularities" value="(\w+)"[^>]*checked', html)
    assert ticked == ["H", "D", "MO", "Y"]
    form = {
        "name": "Video plays",
        "slug": "video_play",
        "kind": "custom",
        "description": "",
        "is_active": "on",
        "identifier_rule": "payload",
        "granularities": ticked,
        "raw_retention_days": "30",
        "fine_retention_days": "7",
        "hour_retention_days": "92",
        "alert_emails": "",
        "alert_on_new": "on",
        "alert_on_regression": "on",
    }
    response = admin_client.post(f"{CHANGELIST}add/", form)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert BeaconDefinition.objects.get(slug="video_play").granularity_codes == ["H", "D", "MO", "Y"]


def test_add_beacon_type_explains_user_action_and_custom_event_next_to_the_choice(admin_client):
    html = admin_client.get(f"{CHANGELIST}add/").content.decode()
    assert "Custom event: something your own code reports when it happens" in html
    assert "User action: a click or tap on a button or link" in html


def test_error_admin_lists_errors_by_their_latest_message(admin_client, send):
    send({"event_type": "error", "identifier": "/cart", "meta": {"message": "Item 42 not found"}})
    html = admin_client.get("/admin/beacons/errorgroup/").content.decode()
    assert "Item 42 not found" in html and "Item &lt;num&gt; not found" not in html


def test_the_admin_calls_the_registry_event_types(admin_client):
    index = admin_client.get("/admin/").content.decode()
    assert ">Event types</a>" in index and "Beacon types" not in index
    changelist = admin_client.get(CHANGELIST).content.decode()
    assert "Select event type to change" in changelist
    assert (
        "Stop counting the selected event types" in changelist
        and "Start counting the selected event types" in changelist
    )
    ids = [str(pk) for pk in BeaconDefinition.objects.values_list("pk", flat=True)[:2]]
    response = admin_client.post(CHANGELIST, {"action": "deactivate", "_selected_action": ids}, follow=True)
    assert "2 event type(s) no longer counting." in response.content.decode()


def _add_form(**fields):
    return {
        "name": "Sign-ups",
        "slug": "signup",
        "kind": "custom",
        "identifier_rule": "payload",
        "granularities": ["H", "D", "MO", "Y"],
        "raw_retention_days": 30,
        "fine_retention_days": 7,
        "hour_retention_days": 92,
        "is_active": "on",
        **fields,
    }


ALL_BUILT_IN = ["source", "utm_medium", "utm_campaign", "browser", "os", "device", "country", "identity"]


@pytest.mark.parametrize("kind, expected", [("page_view", ",".join(ALL_BUILT_IN)), ("custom", ""), ("action", "")])
def test_breakdowns_left_as_offered_are_all_for_page_views_and_none_for_other_kinds(admin_client, kind, expected):
    page = admin_client.get(f"{CHANGELIST}add/").content.decode()
    assert 'type="checkbox" name="dimensions" value="country"' in page
    response = admin_client.post(f"{CHANGELIST}add/", _add_form(kind=kind, dimensions=ALL_BUILT_IN))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert BeaconDefinition.objects.get(slug="signup").dimensions == expected


def test_breakdowns_chosen_in_the_admin_are_kept_in_a_fixed_order(admin_client):
    response = admin_client.post(f"{CHANGELIST}add/", _add_form(dimensions=["country", "browser"]))
    assert response.status_code == 302
    definition = BeaconDefinition.objects.get(slug="signup")
    assert definition.dimensions == "browser,country"
    assert definition.dimension_codes == ["browser", "country"]


def test_declared_properties_become_dimensions_counted_per_day_month_and_year_unless_hourly(admin_client):
    response = admin_client.post(f"{CHANGELIST}add/", _add_form(property_keys=" plan , method,"))
    assert response.status_code == 302
    definition = BeaconDefinition.objects.get(slug="signup")
    assert definition.property_keys == "plan,method"
    assert definition.dimension_codes == ["prop:plan", "prop:method"]
    assert definition.dimension_granularity_codes == ["D", "MO", "Y"]
    definition.dimensions_by_hour = True
    assert definition.dimension_granularity_codes == ["H", "D", "MO", "Y"]


@pytest.mark.parametrize(
    "keys, message",
    [
        ("plan,has space", "is not a property name"),
        ("plan/tier", "is not a property name"),
        (",".join(f"p{i}" for i in range(11)), "At most 10 properties"),
    ],
)
def test_bad_or_too_many_property_names_are_refused_with_a_message(admin_client, keys, message):
    response = admin_client.post(f"{CHANGELIST}add/", _add_form(property_keys=keys))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not BeaconDefinition.objects.filter(slug="signup").exists()


def test_the_migrated_page_view_type_keeps_every_built_in_dimension():
    assert BeaconDefinition.objects.get(slug="page_view").dimension_codes == ALL_BUILT_IN
    assert BeaconDefinition.objects.get(slug="error").dimension_codes == []
