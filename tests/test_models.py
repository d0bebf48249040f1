import pytest
from django.core.exceptions import ValidationError

from beacons.models import BeaconDefinition, BeaconEvent, granularities_split, validate_granularities


def test_granularities_split_keeps_the_codes_as_written_and_skips_empty_parts():
    assert granularities_split("Y,H,,D,") == ["Y", "H", "D"]
    assert granularities_split("") == []


def test_a_definition_lists_its_granularities_finest_first():
    assert BeaconDefinition(granularities="Y,MO,H").granularity_codes == ["H", "MO", "Y"]


@pytest.mark.parametrize("value", ["", ",", "H,fortnight"])
def test_granularities_need_one_known_code_and_no_unknown_one(value):
    with pytest.raises(ValidationError):
        validate_granularities(value)


@pytest.mark.parametrize(
    "payload, meta",
    [
        ({"meta": {"message": "Boom", "line": 3}}, {"message": "Boom", "line": 3}),
        ({}, {}),
        ({"meta": "Boom"}, {}),
        ({"meta": ["Boom"]}, {}),
        ({"meta": None}, {}),
        (["not", "an", "object"], {}),
    ],
)
def test_an_event_meta_is_the_object_the_client_sent_or_empty(payload, meta):
    assert BeaconEvent(payload=payload).meta == meta
