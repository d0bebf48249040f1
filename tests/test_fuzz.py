"""Property-based: no body, content type, header or path ever gets a 500 from ingest, and a
rejected request counts nothing."""

import json
import unicodedata

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import BROWSER_UA, FastPathClient

pytestmark = pytest.mark.django_db

# Include lone surrogates and control characters: JSON can carry them as \u escapes.
any_text = st.text(alphabet=st.characters(categories=["Cs", "Cc", "Ll", "Lo", "Nd", "P", "S", "Zs"]), max_size=300)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
event_like = st.fixed_dictionaries(
    {},
    optional={
        "event_type": st.sampled_from(["page_view", "error", "Signup", "a" * 65, "", "ok.type:x-1"]) | json_values,
        "identifier": any_text | json_values,
        "meta": st.dictionaries(st.text(max_size=20), json_values, max_size=5) | json_values,
        "id": any_text | json_values,
        "referrer": any_text | json_values | st.text(min_size=2040, max_size=2100),
        "r": any_text | json_values,
        "utm_source": any_text | json_values,
        "utm_medium": any_text | json_values,
        "utm_campaign": any_text | json_values | st.text(min_size=118, max_size=130),
        "ref": any_text | json_values,
    },
)
bodies = st.one_of(
    st.binary(max_size=600),
    st.text(max_size=600).map(lambda t: t.encode("utf-8", "surrogatepass")),
    json_values.map(lambda v: json.dumps(v).encode()),
    event_like.map(lambda v: json.dumps(v).encode()),
    st.lists(event_like, max_size=60).map(lambda events: json.dumps({"events": events}).encode()),
    st.dictionaries(
        st.sampled_from(["event_type", "identifier", "meta", "id", "referrer", "utm_source"]), st.text(max_size=50)
    ).map(lambda d: "&".join(f"{k}={v}" for k, v in d.items()).encode("utf-8", "surrogatepass")),
)
content_types = st.sampled_from(
    [
        "application/json",
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "multipart/form-data",
        "application/octet-stream",
        "",
        "garbage/;;;",
    ]
)
header_values = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x2FF), max_size=80)


# The Django path and the fast path the served application takes (beacons.ingest.fastpath).
both_paths = pytest.mark.parametrize("client_class", [Client, FastPathClient], ids=["django path", "fast path"])


@both_paths
@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    body=bodies,
    content_type=content_types,
    origin=st.none() | st.sampled_from(["http://testserver", "https://evil.example", "null"]) | header_values,
    referer=st.none() | header_values,
    user_agent=st.sampled_from([BROWSER_UA, "", "Googlebot/2.1"]) | header_values,
    dnt=st.sampled_from([None, "1", "0"]),
)
def test_post_beacon_never_answers_500(client_class, body, content_type, origin, referer, user_agent, dnt):
    headers = {"HTTP_USER_AGENT": user_agent}
    if origin is not None:
        headers["HTTP_ORIGIN"] = origin
    if referer is not None:
        headers["HTTP_REFERER"] = referer
    if dnt:
        headers["HTTP_DNT"] = dnt
    response = client_class().generic("POST", "/beacon", data=body, content_type=content_type, **headers)
    assert response.status_code in {204, 400, 403, 413, 422, 429}
    if response.status_code >= 400:
        assert "error" in response.json()


@both_paths
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FF, exclude_characters="?#"), min_size=1, max_size=120
    ),
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"]),
    body=st.binary(max_size=200),
)
def test_any_beacon_path_and_method_never_answers_500(client_class, path, method, body):
    from urllib.parse import quote

    response = client_class(HTTP_USER_AGENT=BROWSER_UA).generic(method, "/beacon/" + quote(path, safe="/"), data=body)
    assert response.status_code < 500


@both_paths
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event_type=st.text(max_size=80), identifier=st.text(max_size=300))
def test_gif_never_answers_500(client_class, event_type, identifier):
    from urllib.parse import quote

    response = client_class(HTTP_USER_AGENT=BROWSER_UA).get(
        f"/beacon/{quote(event_type, safe='')}.gif", {"i": identifier}
    )
    assert response.status_code < 500


# --- hostile bodies: deep nesting, NaN/Infinity, floods of new types ------------------------

new_types = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=12).map(lambda t: f"t{t}")
not_numbers = st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-1E400", "1" * 5000])


def _deep(depth: int, opener: str) -> str:
    closer = {"[": "]", '{"a":': "}"}[opener]
    return opener * depth + "1" + closer * depth


deep_values = st.builds(_deep, st.integers(min_value=1, max_value=3000), st.sampled_from(["[", '{"a":']))
hostile_meta = st.one_of(
    deep_values,
    not_numbers.map(lambda constant: '{"n":' + constant + "}"),
    deep_values.map(lambda value: '{"x":' + value + "}"),
    st.just("{}"),
)


@st.composite
def hostile_bodies(draw) -> tuple[bytes, str]:
    """A JSON or form body whose events have new types and meta that may nest deep or hold NaN."""
    events = draw(st.lists(st.tuples(new_types | st.just("page_view"), hostile_meta), min_size=1, max_size=20))
    form = draw(st.booleans()) and len(events) == 1
    if form:
        from urllib.parse import urlencode

        event_type, meta = events[0]
        return urlencode({"event_type": event_type, "meta": meta}).encode(), "application/x-www-form-urlencoded"
    texts = ['{"event_type":"' + event_type + '","meta":' + meta + "}" for event_type, meta in events]
    body = texts[0] if len(texts) == 1 else '{"events":[' + ",".join(texts) + "]}"
    return body.encode(), draw(st.sampled_from(["application/json", "text/plain"]))


def _counted() -> tuple:
    from django.db.models import Sum

    from beacons.models import BeaconAggregate, BeaconDefinition, BeaconEvent

    return (
        BeaconAggregate.objects.aggregate(total=Sum("count"))["total"] or 0,
        BeaconEvent.objects.count(),
        BeaconDefinition.objects.count(),
    )


@pytest.fixture
def small_type_budget(settings):
    settings.BEACONS_MAX_AUTO_TYPES = 8  # below the per-minute allowance, so the flood reaches it
    return settings.BEACONS_MAX_AUTO_TYPES


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(body=hostile_bodies(), user_agent=st.integers(min_value=0, max_value=5).map(lambda n: f"{BROWSER_UA} fuzz{n}"))
def test_hostile_bodies_never_answer_500_and_count_nothing_when_rejected(small_type_budget, body, user_agent):
    from beacons.models import BeaconDefinition

    raw, content_type = body
    before = _counted()
    response = Client(raise_request_exception=False, HTTP_USER_AGENT=user_agent).generic(
        "POST", "/beacon", data=raw, content_type=content_type
    )
    assert response.status_code in {204, 400, 413, 429}
    if response.status_code >= 400:
        assert "error" in response.json()
        assert _counted() == before
    assert BeaconDefinition.objects.filter(auto_registered=True).count() <= small_type_budget


# --- dimension values: attacker-controlled text counted under its own name -------------------


@pytest.fixture
def typed_properties(settings):
    from beacons.models import BeaconDefinition

    settings.BEACONS_MAX_VALUES_PER_DIMENSION = 5  # the cap is reached within a few examples
    return BeaconDefinition.objects.create(
        slug="checkout", name="Checkouts", granularities="H,D", property_keys="plan,method", dimensions_by_hour=True
    )


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    values=st.lists(st.fixed_dictionaries({}, optional={"plan": json_values, "method": any_text}), max_size=5),
    sink=st.sampled_from(["direct", "memory"]),
)
def test_dimension_values_never_answer_500_and_are_stored_clean_and_short(typed_properties, settings, values, sink):
    from beacons.counting.sinks import sinks_flush, sinks_reset
    from beacons.dimensions import VALUE_MAX_LENGTH
    from beacons.models import BeaconAggregate

    settings.BEACONS_SINK = sink
    sinks_reset()
    events = [{"event_type": "checkout", "meta": meta} for meta in values]
    response = Client(HTTP_USER_AGENT=BROWSER_UA).post(
        "/beacon", data=json.dumps({"events": events}), content_type="application/json"
    )
    assert response.status_code in {204, 400, 413, 422, 429}
    sinks_flush()
    stored = BeaconAggregate.objects.filter(definition=typed_properties).exclude(dimension="")
    for value in stored.values_list("identifier", flat=True):
        assert value and len(value) <= VALUE_MAX_LENGTH and value == value.strip()
        assert not {unicodedata.category(c) for c in value} & {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
    per_day = stored.filter(granularity="D").values("dimension", "period_start").distinct()
    for key in per_day:
        distinct = stored.filter(granularity="D", **key).exclude(identifier="(other)").count()
        assert distinct <= settings.BEACONS_MAX_VALUES_PER_DIMENSION


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    referrer=any_text | st.text(min_size=2040, max_size=2100),
    utm_source=any_text,
    page=st.none() | header_values,
    user_agent=header_values.filter(lambda ua: ua.strip()) | st.just(BROWSER_UA),
    address=st.sampled_from(["81.2.69.142", "::ffff:8.8.8.8", "10.0.0.1", "junk"]) | header_values,
)
def test_built_in_dimensions_of_any_request_are_stored_clean_and_short(
    db, referrer, utm_source, page, user_agent, address
):
    from beacons.dimensions import VALUE_MAX_LENGTH
    from beacons.models import BeaconAggregate

    headers = {"HTTP_USER_AGENT": user_agent, "REMOTE_ADDR": address}
    if page is not None:
        headers["HTTP_REFERER"] = page
    body = {"event_type": "page_view", "identifier": "/", "referrer": referrer, "utm_source": utm_source}
    response = Client().post("/beacon", data=json.dumps(body), content_type="application/json", **headers)
    assert response.status_code in {204, 400, 403, 422, 429}
    stored = BeaconAggregate.objects.exclude(dimension="").values_list("identifier", flat=True)
    for value in stored:
        assert value and len(value) <= VALUE_MAX_LENGTH and value == value.strip()
        assert not {unicodedata.category(c) for c in value} & {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
