"""Who may read the stats API and what it refuses: keys (made once in the admin, hashed, scoped,
revocable), the per-key rate limit, malformed questions (400 naming the field, never a 500), and
its OpenAPI document and docs page."""

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beacons.api.keys import api_key_create, api_key_revoke
from beacons.models import ApiKey, BeaconDefinition, Site

from .conftest import first_site

pytestmark = pytest.mark.django_db


FIRST_SITE = "<the first site>"  # parametrize runs before the database exists: replaced when sent


def post(client, body, key=None, **headers):
    if key:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    if isinstance(body, dict) and body.get("site") == FIRST_SITE:
        body = {**body, "site": first_site().domain}
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post("/api/v1/query", data, content_type="application/json", **headers)


def question(**fields):
    return {"site": FIRST_SITE, "metrics": ["events"], **fields}


@pytest.fixture
def key():
    return api_key_create(name="tests", sites=[first_site()])[1]


# --- keys ---------------------------------------------------------------------------------------------


def test_a_key_is_stored_only_as_its_prefix_and_hash(key):
    stored = ApiKey.objects.get()
    assert key.startswith(f"bk_{stored.prefix}_") and len(key) > 50
    assert key not in json.dumps(list(ApiKey.objects.values()), default=str)


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("no key", 401),
        ("bad key", 401),
        ("right prefix, wrong secret", 401),
        ("revoked key", 401),
        ("not a bearer", 401),
        ("key of another site", 403),
        ("unknown site", 403),
        ("key of no site", 403),
        ("good key", 200),
    ],
)
def test_auth_matrix(client, key, case, status):
    other = Site.objects.create(domain="other.example", name="Other")
    headers, body = {}, question()
    if case == "bad key":
        headers["HTTP_AUTHORIZATION"] = "Bearer bk_00000000_nope"
    elif case == "right prefix, wrong secret":
        headers["HTTP_AUTHORIZATION"] = "Bearer " + key[:-4] + "AAAA"
    elif case == "revoked key":
        api_key_revoke(api_key=ApiKey.objects.get())
        headers["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    elif case == "not a bearer":
        headers["HTTP_AUTHORIZATION"] = f"Basic {key}"
    elif case == "key of another site":
        headers["HTTP_AUTHORIZATION"] = f"Bearer {api_key_create(name='other', sites=[other])[1]}"
    elif case == "unknown site":
        headers["HTTP_AUTHORIZATION"], body = f"Bearer {key}", question(site="nowhere.example")
    elif case == "key of no site":
        headers["HTTP_AUTHORIZATION"] = f"Bearer {api_key_create(name='none')[1]}"
    elif case == "good key":
        headers["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    response = post(client, body, **headers)
    assert response.status_code == status
    if status == 401:
        assert response.json()["field"] == "key"
        assert response["WWW-Authenticate"] == "Bearer"
    if status == 403:
        assert response.json() == {"error": response.json()["error"], "field": "site"}
        assert "may not read the site" in response.json()["error"]  # the same words for unknown and out of scope


def test_a_staff_session_without_a_key_gets_401(admin_client):
    assert post(admin_client, question()).status_code == 401
    assert admin_client.get(f"/api/v1/sites/{first_site().domain}/summary").status_code == 401


def test_every_get_endpoint_needs_a_key(client, key):
    base = f"/api/v1/sites/{first_site().domain}"
    for path in ("summary", "timeseries", "breakdown/visit:source", "realtime"):
        assert client.get(f"{base}/{path}").status_code == 401, path
        assert client.get(f"{base}/{path}", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 200, path


def test_last_used_is_written_at_most_once_a_minute(client, key, monkeypatch):
    start = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: start)
    post(client, question(), key)
    assert ApiKey.objects.get().last_used_at == start
    monkeypatch.setattr(timezone, "now", lambda: start + timedelta(seconds=50))
    post(client, question(), key)
    assert ApiKey.objects.get().last_used_at == start
    monkeypatch.setattr(timezone, "now", lambda: start + timedelta(seconds=61))
    post(client, question(), key)
    assert ApiKey.objects.get().last_used_at == start + timedelta(seconds=61)


def test_the_admin_shows_a_new_key_once_and_revoking_it_shuts_it_out(admin_client, client):
    response = admin_client.post("/admin/beacons/apikey/add/", {"name": "report script", "sites": [first_site().pk]})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    key = re.search(r'value="(bk_[^"]+)"', response.content.decode()).group(1)
    stored = ApiKey.objects.get()
    assert stored.created_by.is_superuser and list(stored.sites.all()) == [first_site()]
    assert post(client, question(), key).status_code == 200
    page = admin_client.get(f"/admin/beacons/apikey/{stored.pk}/change/").content.decode()
    assert stored.prefix in page and key not in page
    assert key not in admin_client.get("/admin/beacons/apikey/").content.decode()
    admin_client.post("/admin/beacons/apikey/", {"action": "revoke", "_selected_action": [stored.pk]}, follow=True)
    stored.refresh_from_db()
    assert not stored.is_active and stored.revoked_at is not None
    assert post(client, question(), key).status_code == 401


# --- rate limit ------------------------------------------------------------------------------------


def test_a_key_over_its_limit_gets_429_with_retry_after_and_another_key_does_not(client, key, settings):
    settings.BEACONS_API_RATE_PER_MINUTE = 3
    other = api_key_create(name="other", sites=[first_site()])[1]
    assert [post(client, question(), key).status_code for _ in range(3)] == [200, 200, 200]
    refused = post(client, question(), key)
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused.json() == {"error": "more than 3 requests a minute with this key", "field": "key"}
    assert post(client, question(), other).status_code == 200


# --- malformed questions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ("{not json", "body", "not JSON"),
        ("[1, 2]", "body", "JSON object"),
        ('{"site": NaN}', "body", "not JSON"),
        ("[" * 50 + "]" * 50, "body", "nested"),
        ({"metrics": ["events"]}, "site", "required"),
        (question(metrics=[]), "metrics", "at least 1"),
        (question(metrics=["events"] * 11), "metrics", "at most 10"),
        (question(metrics=["visitors"], dimensions=["event:type"]), "dimensions", "visitors are of page views, not"),
        (question(metrics=["visits"], dimensions=["event:type"]), "dimensions", "visit metrics are of page views"),
        (question(metrics=["bounce_rate"], dimensions=["event:props:plan"]), "dimensions", "not by prop:plan"),
        (
            question(metrics=["visits"], dimensions=["time:hour"], filters=[["is", "visit:source", ["Google"]]]),
            "dimensions",
            "visits of a dimension value are not kept per hour",
        ),
        (
            question(metrics=["visits"], filters=[["is", "event:props:plan", ["pro"]]]),
            "filters",
            "keeps no event:props",
        ),
        (question(metrics=["hits"]), "metrics.0", "not a metric"),
        (question(date_range="yesterday"), "date_range", "Input should be"),
        (question(date_range=["2026-11-02", "2026-11-01"]), "date_range", "after the last"),
        (question(date_range=["1999-12-31", "2000-01-02"]), "date_range", "days from 2000-01-01"),
        (question(date_range=["2000-01-01", "2026-01-01"]), "date_range", "at most 3660 days"),
        (question(dimensions=["visit:source", "visit:os"]), "dimensions.1", "not per combination"),
        (question(dimensions=["a", "b", "c", "d"]), "dimensions", "at most 3"),
        (question(dimensions=["visit:planet"]), "dimensions.0", "not a dimension"),
        (question(dimensions=["event:props:has space"]), "dimensions.0", "not a property name"),
        (question(dimensions=["time:day", "visit:source"]), "dimensions", "not available yet"),
        (
            question(dimensions=["time:hour"], date_range=["2024-01-01", "2025-12-31"]),
            "dimensions",
            "more than 10,000 rows",
        ),
        (
            question(dimensions=["visit:source"], event_type="error"),
            "dimensions",
            "error keeps no visit:source counts",
        ),
        (question(filters=[["contains", "event:page", ["/a"]]]), "filters.0", "operator 'contains' is not available"),
        (question(filters=[["is", "event:type", ["signup"]]]), "filters.0", "event_type"),
        (question(filters=[["is", "visit:source", ["A", "B"]]]), "filters.0", "one value at a time"),
        (question(filters=[["is", "visit:source", []]]), "filters.0", "name at least one value"),
        (
            question(filters=[["is", "visit:source", ["A"]], ["is", "visit:os", ["Linux"]]]),
            "filters.1",
            "one dimension value at a time",
        ),
        (question(dimensions=["event:page"], filters=[["is", "visit:os", ["Linux"]]]), "filters.0", "not available"),
        (question(filters=[["is", "visit:os", ["x"]]] * 6), "filters", "at most 5"),
        (question(limit=10_001), "limit", "less than or equal to 10000"),
        (question(limit=0), "limit", "greater than or equal to 1"),
        (question(offset=-1), "offset", "greater than or equal to 0"),
        (question(order_by=[["visitors", "desc"]]), "order_by.0", "neither a metric nor a dimension"),
        (question(order_by=[["events", "up"]]), "order_by.0.1", "Input should be"),
        (question(include={"comparison": "year_over_year"}), "include.comparison", "Input should be"),
        (question(include={"imports": True}), "include.imports", "Extra inputs"),
        (question(colour="red"), "colour", "Extra inputs"),
        (question(event_type="mystery"), "event_type", "no event type 'mystery'"),
        (question(metrics=["events", "events"]), "metrics", "a metric is named twice"),
        (question(dimensions=["time:hour", "time:day"]), "dimensions.1", "one time dimension at a time"),
        (
            question(
                dimensions=["visit:source"], filters=[["is", "visit:source", ["A"]], ["is", "visit:source", ["B"]]]
            ),
            "filters.1",
            "one filter per dimension",
        ),
        (question(dimensions=["visit:source", "visit:source"]), "dimensions", "a dimension is named twice"),
        (
            question(dimensions=["time:hour"], filters=[["is", "visit:source", ["Google"]]]),
            "dimensions",
            "page_view keeps no visit:source counts per hour",
        ),
        (
            question(metrics=["visitors"], dimensions=["time:hour"], filters=[["is", "visit:source", ["Google"]]]),
            "metrics",
            "visitors: visitors are kept per day here, not per hour",
        ),
    ],
)
def test_a_malformed_question_gets_400_naming_the_field(client, key, body, field, words):
    response = post(client, body, key)
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field
    assert words in response.json()["error"]


def test_a_body_over_the_limit_gets_413_before_it_is_read(client, key):
    response = post(client, json.dumps(question(padding="x" * 20_000)), key)
    assert response.status_code == 413
    assert response.json() == {"error": "the body is larger than 16384 bytes", "field": "body"}


def test_get_wrappers_refuse_bad_parameters_with_400(client, key):
    base = f"/api/v1/sites/{first_site().domain}"
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    cases = [
        (f"{base}/summary?period=fortnight", "period"),
        (f"{base}/summary?metrics=visitor", "metrics.0"),
        (f"{base}/timeseries?interval=week", "interval"),
        (f"{base}/breakdown/visit:nope", "dimensions.0"),
        (f"{base}/breakdown/time:day", "dimension"),
        (f"{base}/breakdown/visit:source?limit=0", "limit"),
        (f"{base}/summary?metrics=" + ",".join(["events"] * 11), "metrics"),
    ]
    for url, field in cases:
        response = client.get(url, **headers)
        assert (response.status_code, response.json()["field"]) == (400, field), url


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "site": st.sampled_from([FIRST_SITE, "other.example"]) | JSON_VALUES,
        "metrics": st.lists(st.sampled_from(["events", "pageviews", "visitors", "x"]), max_size=4) | JSON_VALUES,
        "date_range": st.sampled_from(["day", "7d", "all", "12mo", ["2026-01-01", "2026-02-01"]]) | JSON_VALUES,
        "dimensions": st.lists(
            st.sampled_from(
                [
                    "time:hour",
                    "time:day",
                    "time:month",
                    "event:page",
                    "event:type",
                    "visit:source",
                    "event:props:plan",
                    "visit:x",
                ]
            ),
            max_size=3,
        )
        | JSON_VALUES,
        "filters": st.lists(
            st.tuples(
                st.sampled_from(["is", "is_not"]),
                st.sampled_from(["event:page", "visit:country", "event:type"]),
                st.lists(st.text(max_size=8), max_size=3),
            ),
            max_size=3,
        )
        | JSON_VALUES,
        "order_by": JSON_VALUES,
        "limit": st.integers(-5, 20_000) | JSON_VALUES,
        "offset": st.integers(-5, 2_000_000) | JSON_VALUES,
        "include": st.just({"comparison": "previous_period"}) | JSON_VALUES,
        "event_type": st.sampled_from(["page_view", "signup", "nope"]) | JSON_VALUES,
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=FIELDS | JSON_VALUES)
def test_no_body_gets_a_500(client, key, body):
    response = post(client, body, key)
    assert response.status_code in (200, 400, 403), (body, response.content)
    assert "error" in response.json() or "results" in response.json()


# --- OpenAPI and docs ------------------------------------------------------------------------------------


def test_the_openapi_document_validates_and_describes_every_endpoint(client):
    from openapi_spec_validator import validate

    document = client.get("/api/v1/openapi.json").json()
    validate(document)
    assert set(document["paths"]) == {
        "/api/v1/query",
        "/api/v1/sites/{domain}/summary",
        "/api/v1/sites/{domain}/timeseries",
        "/api/v1/sites/{domain}/breakdown/{dimension}",
        "/api/v1/sites/{domain}/realtime",
    }
    assert document["components"]["securitySchemes"]


def test_the_docs_page_loads_everything_from_this_site_under_its_csp(client):
    response = client.get("/api/v1/docs")
    html = response.content.decode()
    assert response.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(source.startswith("/static/") for source in sources)
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert not re.search(r"<script(?![^>]*(?:src=|type=\"application/json\"))", html)  # no inline script
    for source in sources:
        assert client.get(source).status_code == 200, source


def test_a_custom_period_may_end_up_to_366_days_ahead(client, key):
    from django.utils import timezone

    today = timezone.now().date()
    for days, status in [(366, 200), (367, 400)]:
        last = (today + timedelta(days=days)).isoformat()
        response = post(client, question(date_range=[today.isoformat(), last]), key)
        assert response.status_code == status, (days, response.content)


def test_a_custom_period_may_span_3660_days_and_no_more(client, key):
    first = timezone.now().date() - timedelta(days=3400)
    for days, status in [(3660, 200), (3661, 400)]:
        last = (first + timedelta(days=days)).isoformat()
        response = post(client, question(date_range=[first.isoformat(), last]), key)
        assert response.status_code == status, (days, response.content[:200])


def test_hours_of_a_running_period_are_answered_up_to_10000_rows(client, key, monkeypatch):
    """416 whole days and the 16 hours of today up to 15:59 are 10,000 hourly rows; at 16:00 one more."""
    from datetime import UTC, datetime

    for now, status in [
        (datetime(2026, 12, 31, 15, 59, tzinfo=UTC), 200),
        (datetime(2026, 12, 31, 16, tzinfo=UTC), 400),
    ]:
        monkeypatch.setattr(timezone, "now", lambda now=now: now)
        body = question(dimensions=["time:hour"], date_range=["2025-11-10", "2026-12-31"])
        response = post(client, body, key)
        assert response.status_code == status, (now, response.content[:200])
        if status == 200:
            assert len(response.json()["results"]) == 10_000


def test_the_answer_echoes_the_comparison_asked_for(client, key):
    for include, echoed in [({"comparison": "previous_period"}, "previous_period"), (None, None)]:
        body = question(include=include) if include else question()
        response = post(client, body, key)
        assert response.status_code == 200, response.content[:200]
        assert response.json()["query"]["include"] == {"comparison": echoed}


def test_an_event_type_breakdown_reads_at_most_200_types(client, key, send):
    """As the dashboard lists them, by name: a flood of types cannot swell the answer."""
    # Named to come first: the first 200 are flood_000 to flood_199.
    BeaconDefinition.objects.bulk_create(BeaconDefinition(slug=f"flood_{n:03}", name=f"A {n:03}") for n in range(201))
    for slug in ("flood_000", "flood_199", "flood_200"):
        assert send({"event_type": slug, "identifier": "/"}).status_code == 204
    answer = post(client, question(dimensions=["event:type"], limit=10_000), key).json()
    assert [row["dimensions"][0] for row in answer["results"]] == ["flood_000", "flood_199"]


def test_a_row_one_metric_has_and_another_has_not_shows_0_for_the_other(client, key, send):
    """Page views of a visitor who asked not to be tracked count, with no visitor and no visit."""
    sent = send({"event_type": "page_view", "identifier": "/", "utm_source": "untracked-only"}, HTTP_DNT="1")
    assert sent.status_code == 204
    answer = post(client, question(metrics=["events", "visitors", "visits"], dimensions=["visit:source"]), key).json()
    assert {tuple(row["dimensions"]): row["metrics"] for row in answer["results"]} == {("untracked-only",): [1, 0, 0]}


def test_a_question_asked_in_python_with_an_unknown_period_names_the_field():
    """The schema refuses an unknown period name before ``query_answer`` sees it; a direct caller gets
    the same refusal from the query itself."""
    from django.utils import timezone

    from beacons.api.query import QueryError, Question, query_answer

    question = Question(
        site=first_site(),
        metrics=["events"],
        date_range="yesterday",
        dimensions=[],
        filters=[],
        order_by=None,
        limit=10,
        offset=0,
        compare=False,
        event_type="page_view",
    )
    with pytest.raises(QueryError) as refused:
        query_answer(question, now=timezone.now())
    assert refused.value.field == "date_range" and "'yesterday' is not a period" in refused.value.message


def test_visits_filtered_by_a_property_are_refused_naming_the_filter(client, key):
    """Page views may keep a property, visits do not (they are kept by entry page and built-in
    dimensions): asked anyway, the answer names the filter, not a 0."""
    BeaconDefinition.objects.filter(slug="page_view").update(property_keys="plan")
    response = post(client, question(metrics=["visits"], filters=[["is", "event:props:plan", ["pro"]]]), key)
    assert (response.status_code, response.json()["field"]) == (400, "filters")
    assert "visits are kept by entry page and built-in dimensions, not by prop:plan" in response.json()["error"]


def test_a_type_kept_per_day_is_not_answered_per_hour(client, key):
    BeaconDefinition.objects.create(slug="signup", name="Sign-ups", granularities="D,MO,Y")
    response = post(client, question(event_type="signup", dimensions=["time:hour"]), key)
    assert (response.status_code, response.json()["field"]) == (400, "dimensions")
    assert response.json()["error"] == "dimensions: signup keeps no counts per hour"
    assert post(client, question(event_type="signup", dimensions=["time:day"]), key).status_code == 200


def test_page_views_without_a_page_view_type_are_0_not_no_answer(client, key):
    BeaconDefinition.objects.create(slug="signup", name="Sign-ups")
    BeaconDefinition.objects.filter(kind=BeaconDefinition.Kind.PAGE_VIEW).delete()
    asked = question(metrics=["pageviews", "events"], event_type="signup")
    response = post(client, asked, key)
    assert response.status_code == 200
    assert response.json()["results"] == [{"dimensions": [], "metrics": [0, 0], "comparison": None}]
    compared = post(client, {**asked, "include": {"comparison": "previous_period"}}, key).json()["results"]
    assert compared[0]["metrics"] == [0, 0] and compared[0]["comparison"]["metrics"] == [0, 0]
    by_page = post(client, {**asked, "dimensions": ["event:page"]}, key)
    assert by_page.status_code == 200 and by_page.json()["results"] == []
