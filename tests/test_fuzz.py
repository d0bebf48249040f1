"""Property-based: no body, content type, header or path ever gets a 500 from ingest."""

import json

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings, strategies as st

from .conftest import BROWSER_UA

pytestmark = pytest.mark.django_db

# Include lone surrogates and control characters: JSON can carry them as \u escapes.
any_text = st.text(alphabet=st.characters(categories=["Cs", "Cc", "Ll", "Lo", "Nd", "P", "S", "Zs"]), max_size=300)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=20)
event_like = st.fixed_dictionaries(
    {},
    optional={
        "event_type": st.sampled_from(["page_view", "error", "Signup", "a" * 65, "", "ok.type:x-1"]) | json_values,
        "identifier": any_text | json_values,
        "meta": st.dictionaries(st.text(max_size=20), json_values, max_size=5) | json_values,
        "id": any_text | json_values,
    },
)
bodies = st.one_of(
    st.binary(max_size=600),
    st.text(max_size=600).map(lambda t: t.encode("utf-8", "surrogatepass")),
    json_values.map(lambda v: json.dumps(v).encode()),
    event_like.map(lambda v: json.dumps(v).encode()),
    st.lists(event_like, max_size=60).map(lambda events: json.dumps({"events": events}).encode()),
    st.dictionaries(st.sampled_from(["event_type", "identifier", "meta", "id"]), st.text(max_size=50)).map(
        lambda d: "&".join(f"{k}={v}" for k, v in d.items()).encode("utf-8", "surrogatepass")
    ),
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


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    body=bodies,
    content_type=content_types,
    origin=st.none() | st.sampled_from(["http://testserver", "https://evil.example", "null"]) | header_values,
    referer=st.none() | header_values,
    user_agent=st.sampled_from([BROWSER_UA, "", "Googlebot/2.1"]) | header_values,
    dnt=st.sampled_from([None, "1", "0"]),
)
def test_post_beacon_never_answers_500(body, content_type, origin, referer, user_agent, dnt):
    headers = {"HTTP_USER_AGENT": user_agent}
    if origin is not None:
        headers["HTTP_ORIGIN"] = origin
    if referer is not None:
        headers["HTTP_REFERER"] = referer
    if dnt:
        headers["HTTP_DNT"] = dnt
    response = Client().generic("POST", "/beacon", data=body, content_type=content_type, **headers)
    assert response.status_code in {204, 400, 403, 413, 422, 429}
    if response.status_code >= 400:
        assert "error" in response.json()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FF, exclude_characters="?#"), min_size=1, max_size=120),
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"]),
    body=st.binary(max_size=200),
)
def test_any_beacon_path_and_method_never_answers_500(path, method, body):
    from urllib.parse import quote

    response = Client(HTTP_USER_AGENT=BROWSER_UA).generic(method, "/beacon/" + quote(path, safe="/"), data=body)
    assert response.status_code < 500


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event_type=st.text(max_size=80), identifier=st.text(max_size=300))
def test_gif_never_answers_500(event_type, identifier):
    from urllib.parse import quote

    response = Client(HTTP_USER_AGENT=BROWSER_UA).get(f"/beacon/{quote(event_type, safe='')}.gif", {"i": identifier})
    assert response.status_code < 500
