"""The registry's rules are one rule for ingest and imports: the same name gets the same answer."""

import pytest

from beacons.models import BeaconAggregate, BeaconDefinition
from beacons.registry import InvalidName, UnknownEventType, definitions_resolve, event_type_normalise, identifier_check
from beacons.transfer import imports

pytestmark = pytest.mark.django_db

ROW = {"granularity": "day", "period_start": "2026-11-01T00:00:00+00:00", "count": 3}

BAD_EVENT_TYPES = {
    "blank": "  ",
    "65 characters": "a" * 65,
    "starts with a dash": "-signup",
    "a space": "sign up",
    "a slash": "sign/up",
    "a NUL": "sign\x00up",
    "a lone surrogate": "sign\ud800up",
}
BAD_IDENTIFIERS = {"a NUL": "/a\x00b", "a lone surrogate": "/a\ud800", "257 characters": "/" + "x" * 256}


def row_import(**values):
    return imports.aggregates_import(rows=[{**ROW, **values}], mode="merge")


@pytest.mark.parametrize("name", BAD_EVENT_TYPES.values(), ids=BAD_EVENT_TYPES.keys())
def test_ingest_and_import_refuse_the_same_event_types_with_the_same_reason(send, name):
    with pytest.raises(InvalidName) as rule:
        event_type_normalise(name)
    response = send({"event_type": name, "identifier": "/"})
    assert response.status_code == 400
    assert response.json() == {"error": f"event_type {rule.value}", "field": "event_type"}
    summary = row_import(event_type=name, identifier="/")
    assert (summary.failed, summary.new) == (1, 0)
    assert summary.problems[0].errors == {"event_type": [str(rule.value)]}
    assert not BeaconAggregate.objects.exists()


@pytest.mark.parametrize("identifier", BAD_IDENTIFIERS.values(), ids=BAD_IDENTIFIERS.keys())
def test_ingest_and_import_refuse_the_same_identifiers_with_the_same_reason(send, identifier):
    with pytest.raises(InvalidName) as rule:
        identifier_check(identifier)
    response = send({"event_type": "page_view", "identifier": identifier})
    assert response.status_code == 400
    assert response.json() == {"error": f"identifier {rule.value}", "field": "identifier"}
    summary = row_import(event_type="page_view", identifier=identifier)
    assert summary.failed == 1 and summary.problems[0].errors == {"identifier": [str(rule.value)]}
    assert not BeaconAggregate.objects.exists()


@pytest.mark.parametrize(
    "sent, slug", [(" Sign_Up ", "sign_up"), ("v2.checkout:done-1", "v2.checkout:done-1"), ("A" * 64, "a" * 64)]
)
def test_ingest_and_import_store_a_name_under_the_same_slug(send, sent, slug):
    assert event_type_normalise(sent) == slug
    assert send({"event_type": sent, "identifier": "/"}).status_code == 204
    assert BeaconDefinition.objects.filter(slug=slug).count() == 1
    BeaconDefinition.objects.filter(slug=slug).delete()
    assert row_import(event_type=sent, identifier="/").new == 1
    assert BeaconAggregate.objects.get(definition__slug=slug, identifier="/", granularity="D").count == 3


def test_an_identifier_of_256_storable_characters_is_accepted_by_both_paths(send):
    identifier = "/" + "é" * 255
    assert identifier_check(identifier) == identifier
    assert send({"event_type": "page_view", "identifier": identifier}).status_code == 204
    assert row_import(event_type="page_view", identifier=identifier).new == 1  # 1 Nov; the hit counted today
    assert (
        BeaconAggregate.objects.filter(definition__slug="page_view", identifier=identifier, granularity="D").count()
        == 2
    )


def test_strict_mode_raises_unknown_event_type_and_registers_nothing(db, settings):
    settings.BEACONS_STRICT = True
    with pytest.raises(UnknownEventType) as unknown:
        definitions_resolve(slugs={"page_view", "brand_new"})
    assert unknown.value.slug == "brand_new"
    assert str(unknown.value) == "unknown event type 'brand_new': register it in the admin first"
    assert not BeaconDefinition.objects.filter(slug="brand_new").exists()


def test_strict_mode_unknown_type_is_a_422_at_ingest_and_a_row_error_at_import(send, settings):
    settings.BEACONS_STRICT = True
    response = send({"event_type": "brand_new", "identifier": "/"})
    assert response.status_code == 422
    assert response.json() == {
        "error": "unknown event type 'brand_new': register it in the admin first",
        "field": "event_type",
    }
    summary = row_import(event_type="brand_new", identifier="/")
    assert summary.failed == 1 and "unknown event type 'brand_new'" in summary.problems[0].errors["event_type"][0]
    assert not BeaconAggregate.objects.exists()
