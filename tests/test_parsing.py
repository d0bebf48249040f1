"""Ingest parsing: every limit at, below and above its edge, and each body form's failure."""

import json

import pytest

from beacons.ingest.parsing import EVENT_ID_MAX_LENGTH, Rejected, body_to_data, events_from_data
from beacons.models import IDENTIFIER_MAX_LENGTH

FORM = "application/x-www-form-urlencoded"


def one(data, **url):
    [event] = events_from_data(data, **url)
    return event


def rejection(data, **url):
    with pytest.raises(Rejected) as caught:
        events_from_data(data, **url)
    assert str(caught.value) == caught.value.error  # what a log line shows
    return caught.value.status, caught.value.as_json()


def test_event_type_of_exactly_64_characters_is_accepted_and_65_rejected():
    assert one({"event_type": "a" * 64}).event_type == "a" * 64
    assert rejection({"event_type": "a" * 65}) == (
        400,
        {"error": "event_type is longer than 64 characters", "field": "event_type"},
    )


def test_event_type_is_trimmed_and_lowercased_before_its_length_and_characters_are_checked():
    assert one({"event_type": "  Sign_Up.v2:x-y  "}).event_type == "sign_up.v2:x-y"
    assert one({"event_type": " " + "A" * 64 + " "}).event_type == "a" * 64


@pytest.mark.parametrize(
    "value, error",
    [
        (None, "event_type is required"),
        ("   ", "event_type is required"),
        (7, "event_type must be a string"),
        ("sign up", "event_type must start with a-z or 0-9 and may only contain a-z, 0-9 and _ . : -"),
    ],
)
def test_event_type_problems_are_named(value, error):
    assert rejection({"event_type": value}) == (400, {"error": error, "field": "event_type"})


def test_identifier_of_exactly_the_maximum_is_accepted_and_one_more_rejected():
    at_limit = "x" * IDENTIFIER_MAX_LENGTH
    assert one({"event_type": "signup", "identifier": at_limit}).identifier == at_limit
    assert rejection({"event_type": "signup", "identifier": at_limit + "x"}) == (
        400,
        {"error": f"identifier is longer than {IDENTIFIER_MAX_LENGTH} characters", "field": "identifier"},
    )


def test_identifier_is_trimmed_a_number_becomes_text_and_blank_means_not_sent():
    assert one({"event_type": "signup", "identifier": "  /pricing  "}).identifier == "/pricing"
    assert one({"event_type": "signup", "identifier": 42}).identifier == "42"
    assert one({"event_type": "signup", "identifier": "   "}).identifier is None
    assert one({"event_type": "signup"}).identifier is None


@pytest.mark.parametrize("value", [True, 1.5, ["/a"], {"a": 1}])
def test_identifier_that_is_not_text_or_a_whole_number_is_rejected(value):
    assert rejection({"event_type": "signup", "identifier": value}) == (
        400,
        {"error": "identifier must be a string", "field": "identifier"},
    )


@pytest.mark.parametrize("value", ["/a\x00b", "/a\ud800b"])
def test_identifier_with_nul_or_a_lone_surrogate_is_rejected(value):
    assert rejection({"event_type": "signup", "identifier": value}) == (
        400,
        {"error": "identifier contains a NUL character or invalid Unicode", "field": "identifier"},
    )


def test_url_event_type_and_identifier_win_over_the_body():
    event = one({"event_type": "ignored", "identifier": "/ignored"}, event_type="signup", identifier="/from-url")
    assert (event.event_type, event.identifier) == ("signup", "/from-url")


def meta_of_size(size: int, filler: str = "a") -> dict:
    """A meta object of two keys whose compact UTF-8 JSON is exactly ``size`` bytes."""
    overhead = len(b'{"n":1,"k":""}')
    width = len(filler.encode())
    assert (size - overhead) % width == 0
    return {"n": 1, "k": filler * ((size - overhead) // width)}


def test_meta_of_exactly_the_byte_limit_is_accepted_and_one_byte_more_rejected(settings):
    settings.BEACONS_MAX_META_BYTES = 100
    assert one({"event_type": "signup", "meta": meta_of_size(100)}).meta == meta_of_size(100)
    assert rejection({"event_type": "signup", "meta": meta_of_size(101)}) == (
        400,
        {"error": "meta is 101 bytes; the limit is 100", "field": "meta"},
    )


def test_meta_limit_counts_utf8_bytes_of_non_ascii_text_not_characters(settings):
    settings.BEACONS_MAX_META_BYTES = 100
    at_limit = meta_of_size(100, "é")  # 43 characters, 86 bytes of text
    assert one({"event_type": "signup", "meta": at_limit}).meta == at_limit
    over = {"n": 1, "k": "é" * 43 + "a"}
    assert rejection({"event_type": "signup", "meta": over}) == (
        400,
        {"error": "meta is 101 bytes; the limit is 100", "field": "meta"},
    )


def test_default_meta_limit_is_2048_bytes():
    assert one({"event_type": "signup", "meta": meta_of_size(2048)}).meta == meta_of_size(2048)
    assert rejection({"event_type": "signup", "meta": meta_of_size(2049)})[1]["error"] == (
        "meta is 2049 bytes; the limit is 2048"
    )


def test_meta_holding_json_arrays_is_accepted():
    meta = {"tags": ["a", "b"], "sizes": [1, [2, 3]], "items": [{"sku": "x1"}]}
    assert one({"event_type": "signup", "meta": meta}).meta == meta


@pytest.mark.parametrize(
    "meta",
    [{"tags": ["ok", "a\x00"]}, {"a\x00": 1}, {"k": {"deeper": "\ud800"}}, {"k": [{"x": "\x00"}]}],
)
def test_meta_with_nul_or_a_lone_surrogate_anywhere_is_rejected(meta):
    assert rejection({"event_type": "signup", "meta": meta}) == (
        400,
        {"error": "meta contains a NUL character or invalid Unicode", "field": "meta"},
    )


@pytest.mark.parametrize(
    "meta, expected",
    [(None, {}), ("", {}), ("  ", {}), ('{"plan": "pro"}', {"plan": "pro"})],
)
def test_meta_sent_as_a_json_string_or_left_out(meta, expected):
    assert one({"event_type": "signup", "meta": meta}).meta == expected


@pytest.mark.parametrize(
    "meta, error",
    [
        ("{not json", "meta is not valid JSON"),
        ("[1, 2]", "meta must be a JSON object"),
        ([1, 2], "meta must be a JSON object"),
        ("plain", "meta is not valid JSON"),
    ],
)
def test_meta_that_is_not_a_json_object_is_rejected(meta, error):
    assert rejection({"event_type": "signup", "meta": meta}) == (400, {"error": error, "field": "meta"})


def test_meta_numbers_with_a_fraction_or_exponent_are_kept_as_sent():
    assert one({"event_type": "signup", "meta": '{"price": 9.5, "big": 1e300}'}).meta == {"price": 9.5, "big": 1e300}


@pytest.mark.parametrize(
    "meta, error",
    [
        ('{"n": 1e999}', "meta is not valid JSON: 1e999 is out of range"),
        ('{"n": -1e999}', "meta is not valid JSON: -1e999 is out of range"),
        ('{"n": NaN}', "meta is not valid JSON: NaN is not a JSON number"),
        ('{"n": -Infinity}', "meta is not valid JSON: -Infinity is not a JSON number"),
    ],
)
def test_meta_numbers_no_json_column_can_store_are_rejected_and_named(meta, error):
    assert rejection({"event_type": "signup", "meta": meta}) == (400, {"error": error, "field": "meta"})


def test_event_id_of_exactly_128_characters_is_accepted_and_129_rejected():
    assert EVENT_ID_MAX_LENGTH == 128
    assert one({"event_type": "signup", "id": "i" * 128}).event_id == "i" * 128
    assert rejection({"event_type": "signup", "id": "i" * 129}) == (
        400,
        {"error": "id is longer than 128 characters", "field": "id"},
    )


def test_event_id_is_trimmed_a_number_becomes_text_and_blank_means_none():
    assert one({"event_type": "signup", "id": " abc "}).event_id == "abc"
    assert one({"event_type": "signup", "id": 12}).event_id == "12"
    assert one({"event_type": "signup", "id": ""}).event_id is None
    assert one({"event_type": "signup"}).event_id is None


@pytest.mark.parametrize(
    "value, error",
    [
        (False, "id must be a string"),
        ([1], "id must be a string"),
        ("a\x00", "id contains a NUL character or invalid Unicode"),
    ],
)
def test_event_id_problems_are_named(value, error):
    assert rejection({"event_type": "signup", "id": value}) == (400, {"error": error, "field": "id"})


def test_batch_of_exactly_the_limit_is_accepted_and_one_more_rejected(settings):
    settings.BEACONS_MAX_BATCH = 3
    events = events_from_data({"events": [{"event_type": "signup", "identifier": str(i)} for i in range(3)]})
    assert [e.identifier for e in events] == ["0", "1", "2"]
    assert rejection({"events": [{"event_type": "signup"}] * 4}) == (
        400,
        {"error": "a batch holds at most 3 events", "field": "events"},
    )


def test_default_batch_limit_is_50():
    assert len(events_from_data({"events": [{"event_type": "signup"}] * 50})) == 50
    assert rejection({"events": [{"event_type": "signup"}] * 51})[1]["error"] == "a batch holds at most 50 events"


def test_batch_with_bad_events_names_each_by_index_and_accepts_none():
    status, body = rejection({"events": [{"event_type": "ok"}, {"event_type": "Bad Type"}, "x", {"event_type": "ok"}]})
    assert status == 400
    assert body == {
        "error": "batch rejected: 2 invalid event(s), nothing counted",
        "field": "events",
        "errors": [
            {
                "index": 1,
                "field": "event_type",
                "error": "event_type must start with a-z or 0-9 and may only contain a-z, 0-9 and _ . : -",
            },
            {"index": 2, "field": "event", "error": "each event must be a JSON object"},
        ],
    }


@pytest.mark.parametrize(
    "data, error, field",
    [
        ({"events": {"event_type": "a"}}, "events must be a list", "events"),
        ({"events": []}, "events is empty", "events"),
        ([{"event_type": "a"}], "body must be a JSON object", "body"),
    ],
)
def test_body_shape_problems_are_named(data, error, field):
    assert rejection(data) == (400, {"error": error, "field": field})


def test_an_events_field_is_meta_data_when_the_url_names_the_type():
    [event] = events_from_data({"events": [1, 2]}, event_type="signup")
    assert (event.event_type, event.identifier, event.meta) == ("signup", None, {})


def decoded(raw: bytes, content_type: str):
    return body_to_data(raw=raw, content_type=content_type, meta={})


def decode_rejection(raw: bytes, content_type: str):
    with pytest.raises(Rejected) as caught:
        decoded(raw, content_type)
    return caught.value.status, caught.value.as_json()


@pytest.mark.parametrize(
    "content_type", ["application/json", "text/plain", "", FORM, "Application/JSON; charset=utf-8"]
)
def test_a_json_object_is_read_as_json_whatever_the_label(content_type):
    assert decoded(b' {"event_type": "signup", "meta": {"n": 1}}', content_type) == {
        "event_type": "signup",
        "meta": {"n": 1},
    }


def test_a_json_array_body_is_read_as_json_and_then_refused_as_not_an_object():
    assert decoded(b'[{"event_type": "a"}]', "application/json") == [{"event_type": "a"}]


@pytest.mark.parametrize(
    "raw, error",
    [
        (b'{"event_type": "\xff"}', "body is not UTF-8 text"),
        (b'{"event_type": ', "body is not valid JSON"),
        (b"", "body is not valid JSON"),
    ],
)
def test_undecodable_json_bodies_are_400(raw, error):
    assert decode_rejection(raw, "application/json") == (400, {"error": error, "field": "body"})


def test_urlencoded_form_keeps_the_last_value_of_each_field():
    assert decoded(b"event_type=signup&identifier=%2Fa&identifier=%2Fb", "application/x-www-form-urlencoded") == {
        "event_type": "signup",
        "identifier": "/b",
    }


def test_urlencoded_form_with_more_fields_than_django_allows_is_400(settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 5
    raw = "&".join(f"f{i}=1" for i in range(6)).encode()
    assert decode_rejection(raw, FORM) == (400, {"error": "form body could not be decoded", "field": "body"})


def multipart(*fields: tuple[str, str], boundary: str = "xyz") -> bytes:
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n' for name, value in fields
    ]
    return ("".join(parts) + f"--{boundary}--\r\n").encode()


def test_multipart_form_fields_are_read():
    raw = multipart(("event_type", "signup"), ("meta", json.dumps({"plan": "pro"})))
    assert decoded(raw, "multipart/form-data; boundary=xyz") == {"event_type": "signup", "meta": '{"plan": "pro"}'}


def test_multipart_holding_a_json_object_is_read_as_a_form_not_as_json():
    assert decoded(b'{"event_type": "signup"}', "multipart/form-data; boundary=xyz") == {}


@pytest.mark.parametrize(
    "raw, content_type",
    [
        (b"anything", "multipart/form-data"),  # no boundary: MultiPartParserError
        (b"anything", "multipart/form-data; boundary="),
    ],
)
def test_multipart_that_cannot_be_parsed_is_400(raw, content_type):
    assert decode_rejection(raw, content_type) == (
        400,
        {"error": "multipart body could not be parsed", "field": "body"},
    )


def test_multipart_with_more_fields_than_django_allows_is_400(settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 2
    raw = multipart(("a", "1"), ("b", "2"), ("c", "3"))
    assert decode_rejection(raw, "multipart/form-data; boundary=xyz") == (
        400,
        {"error": "multipart body could not be parsed", "field": "body"},
    )


def test_a_body_that_is_a_deeply_nested_list_is_refused_for_its_depth_not_its_shape(settings):
    settings.BEACONS_MAX_JSON_DEPTH = 8
    deep = "[" * 9 + "]" * 9
    with pytest.raises(Rejected) as caught:
        body_to_data(raw=deep.encode(), content_type="application/json", meta={})
    assert caught.value.as_json() == {"error": "body is nested more than 8 levels deep", "field": "body"}
    at_the_limit = "[" * 8 + "]" * 8
    assert body_to_data(raw=at_the_limit.encode(), content_type="application/json", meta={}) == json.loads(at_the_limit)


def test_referrer_and_campaign_tags_are_carried_on_the_event():
    event = one(
        {
            "event_type": "page_view",
            "referrer": " https://news.ycombinator.com/ ",
            "utm_source": "newsletter",
            "utm_medium": "email",
            "utm_campaign": "spring",
            "ref": "friend",
        }
    )
    assert event.referrer == "https://news.ycombinator.com/"
    assert event.campaign == {
        "utm_source": "newsletter",
        "utm_medium": "email",
        "utm_campaign": "spring",
        "ref": "friend",
    }


def test_plausibles_r_field_is_the_referrer_and_referrer_wins_over_it():
    assert one({"event_type": "page_view", "r": "https://t.co/x"}).referrer == "https://t.co/x"
    assert one({"event_type": "page_view", "r": "https://t.co/x", "referrer": "https://bsky.app/"}).referrer == (
        "https://bsky.app/"
    )


def test_an_event_without_them_has_no_referrer_and_no_campaign():
    event = one({"event_type": "page_view"})
    assert (event.referrer, event.campaign) == ("", {})


def test_a_referrer_of_2048_characters_is_kept_and_a_longer_one_cut_never_refused():
    at_limit = "https://example.org/" + "p" * 2028
    assert one({"event_type": "page_view", "referrer": at_limit}).referrer == at_limit
    assert one({"event_type": "page_view", "referrer": at_limit + "tail"}).referrer == at_limit


def test_campaign_tags_are_cut_to_120_characters_never_refused():
    event = one({"event_type": "page_view", "utm_campaign": "c" * 121, "utm_medium": "m" * 120})
    assert event.campaign == {"utm_campaign": "c" * 120, "utm_medium": "m" * 120}


@pytest.mark.parametrize("value", [5, ["https://a.example/"], {"u": 1}, None, True])
def test_a_referrer_that_is_not_text_is_dropped_and_the_event_kept(value):
    assert one({"event_type": "page_view", "referrer": value}).referrer == ""


def test_campaign_tags_that_are_not_text_are_dropped_numbers_become_text_and_controls_go():
    event = one(
        {
            "event_type": "page_view",
            "utm_source": {"a": 1},
            "utm_medium": ["email"],
            "utm_campaign": 2026,
            "ref": "  ",
        }
    )
    assert event.campaign == {"utm_campaign": "2026"}
    assert one(
        {"event_type": "page_view", "utm_source": "news\x00\nletter", "referrer": "https://a.example/\x00\ud800"}
    ).campaign == {"utm_source": "news letter"}


def test_a_referrer_with_control_characters_or_lone_surrogates_is_cleaned_not_refused():
    event = one({"event_type": "page_view", "referrer": "https://a.example/\x00\ud800x\ny"})
    assert event.referrer == "https://a.example/x y"


def test_each_event_of_a_batch_carries_its_own_referrer_and_tags():
    events = events_from_data(
        {
            "events": [
                {"event_type": "page_view", "referrer": "https://t.co/", "utm_source": "a"},
                {"event_type": "signup"},
            ]
        }
    )
    assert [(e.referrer, e.campaign) for e in events] == [("https://t.co/", {"utm_source": "a"}), ("", {})]


def test_form_bodies_carry_the_referrer_and_tags_too():
    data = decoded(b"event_type=page_view&referrer=https%3A%2F%2Ft.co%2Fx&utm_medium=email", FORM)
    event = one(data)
    assert (event.referrer, event.campaign) == ("https://t.co/x", {"utm_medium": "email"})


def test_a_batch_entry_that_is_a_deep_list_and_a_long_field_name_are_named_in_the_error(settings):
    settings.BEACONS_MAX_JSON_DEPTH = 8
    too_deep = json.loads("[" * 9 + "]" * 9)
    batch = json.dumps({"events": [{"event_type": "ok"}, too_deep]}).encode()
    with pytest.raises(Rejected) as caught:
        body_to_data(raw=batch, content_type="application/json", meta={})
    assert caught.value.as_json() == {"error": "events[1] is nested more than 8 levels deep", "field": "events[1]"}

    long_name = "k" * 100
    body = json.dumps({"event_type": "ok", long_name: too_deep}).encode()
    with pytest.raises(Rejected) as caught:
        body_to_data(raw=body, content_type="application/json", meta={})
    assert caught.value.field == "k" * 64  # a field name is cut before it is echoed
