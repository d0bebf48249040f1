"""The drop-in endpoints of Plausible (/api/event), Umami (/api/send) and GoatCounter (/count): each
request as their clients send it becomes Beacons events, counted under ingest's rules."""

import json
import uuid
from urllib.parse import urlencode

import pytest
from django.db import OperationalError, connection
from django.db.models import Sum
from django.test import Client

from beacons.counting import sinks
from beacons.ingest.compat import umami as umami_compat
from beacons.ingest.compat.umami import website_domains_clear
from beacons.ingest.views import TRANSPARENT_GIF
from beacons.logs import outage_warning
from beacons.models import BeaconAggregate, BeaconDefinition, BeaconEvent, DroppedHits, Granularity, Site
from beacons.sites import SITES_CACHE_SECONDS, SITES_RETRY_SECONDS

from .conftest import BROWSER_UA, FastPathClient, first_site

pytestmark = pytest.mark.django_db

WEBSITE = "1f0e9d8c-7b6a-4543-9210-fedcba987654"


@pytest.fixture(autouse=True)
def _fresh_website_ids():
    website_domains_clear()  # a test's sites are gone after it: so is what a process learnt of them
    yield
    website_domains_clear()


@pytest.fixture(params=["django path", "fast path"])
def visitor(request):
    """A test client with a browser's user agent (ingest drops empty and crawler ones); each test
    runs through Django's full request path and through the ingest fast path the served
    application takes."""
    client_class = FastPathClient if request.param == "fast path" else Client
    return client_class(HTTP_USER_AGENT=BROWSER_UA)


@pytest.fixture
def shop(db):
    return Site.objects.create(domain="shop.example", name="Shop", umami_website_id=WEBSITE)


@pytest.fixture
def signup(db):
    """A custom type declared before its first event: it keeps each event (meta) and counts plan."""
    return BeaconDefinition.objects.create(slug="signup", name="Sign-ups", keep_raw=True, property_keys="plan")


def nested(depth: int) -> dict:
    """An object ``depth`` levels deep (BEACONS_MAX_JSON_DEPTH allows 8)."""
    return {"x": nested(depth - 1)} if depth > 1 else {"x": 1}


def site_count(site, slug: str, identifier: str = "", dimension: str = "") -> int:
    """Hits of a type counted for ``site`` (a page, or with ``dimension`` a value; "" the total), summed over days."""
    rows = BeaconAggregate.objects.filter(
        site=site, definition__slug=slug, dimension=dimension, identifier=identifier, granularity=Granularity.DAY
    )
    return rows.aggregate(total=Sum("count"))["total"] or 0


def nothing_counted() -> bool:
    return not BeaconAggregate.objects.exists() and not BeaconEvent.objects.exists()


def dropped(reason: str) -> int:
    row = DroppedHits.objects.filter(reason=reason).first()
    return row.count if row else 0


def database_down(*args, **kwargs):
    raise OperationalError("could not connect to server: Connection refused")


@pytest.fixture
def counters_unwritable(monkeypatch):
    """The database goes down once a hit is read: its counters cannot be written."""
    monkeypatch.setattr(sinks, "aggregates_add", database_down)
    monkeypatch.setattr(outage_warning, "_last", float("-inf"))  # the outage is logged, whatever logged before


# --- Plausible ------------------------------------------------------------------------------


def plausible(client, body, content_type="text/plain", **headers):
    """POST to /api/event as Plausible's trackers do (JSON in a text/plain body)."""
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post("/api/event", data=data, content_type=content_type, **headers)


def test_plausible_page_view_with_short_keys_counts_the_path_referrer_and_campaign_for_its_domain(visitor, shop):
    response = plausible(
        visitor,
        {
            "n": "pageview",
            "u": "https://shop.example/pricing?utm_source=newsletter&utm_campaign=spring&x=1",
            "d": "shop.example",
            "r": "https://news.ycombinator.com/item?id=1",
            "v": 36,
        },
    )

    assert (response.status_code, response.content, response["Content-Type"]) == (202, b"ok", "text/plain")
    assert site_count(shop, "page_view", "/pricing") == 1  # the query is the type's to keep or drop
    assert site_count(shop, "page_view", "newsletter", dimension="source") == 1  # a tag wins over the referrer
    assert site_count(shop, "page_view", "spring", dimension="utm_campaign") == 1
    assert site_count(first_site(), "page_view") == 0


def test_plausible_classic_long_names_count_as_the_short_keys_do(visitor, shop):
    response = plausible(
        visitor,
        {
            "name": "pageview",
            "url": "https://shop.example/docs",
            "domain": "shop.example",
            "referrer": "https://news.ycombinator.com/",
        },
        content_type="application/json",
    )

    assert response.status_code == 202
    assert site_count(shop, "page_view", "/docs") == 1
    assert site_count(shop, "page_view", "Hacker News", dimension="source") == 1


def test_plausible_page_view_without_a_referrer_is_direct(visitor, shop):
    plausible(visitor, {"n": "pageview", "u": "https://shop.example/", "d": "shop.example", "r": None})
    assert site_count(shop, "page_view", "Direct / none", dimension="source") == 1


def test_plausible_hash_routing_keeps_the_fragment_of_page_views_only_when_asked(visitor, shop):
    plausible(visitor, {"n": "pageview", "u": "https://shop.example/app#/cart", "d": "shop.example", "h": 1})
    plausible(visitor, {"n": "pageview", "u": "https://shop.example/app#/cart", "d": "shop.example"})
    assert site_count(shop, "page_view", "/app#/cart") == 1
    assert site_count(shop, "page_view", "/app") == 1


def test_plausible_custom_event_counts_under_its_name_as_a_type_on_the_page_with_props_as_meta(visitor, shop, signup):
    plausible(
        visitor,
        {"n": "Signup", "u": "https://shop.example/pricing?x=1", "d": "shop.example", "p": {"plan": "pro"}},
    )
    plausible(  # the classic tracker sends props as a JSON string
        visitor, {"n": "signup", "u": "https://shop.example/", "d": "shop.example", "p": json.dumps({"plan": "team"})}
    )

    assert site_count(shop, "signup", "/pricing") == 1  # the page it happened on, without the query
    assert site_count(shop, "signup", "pro", dimension="prop:plan") == 1
    assert site_count(shop, "signup", "team", dimension="prop:plan") == 1
    assert sorted(event.payload["meta"]["plan"] for event in BeaconEvent.objects.all()) == ["pro", "team"]


def test_plausible_event_names_become_valid_slugs_auto_registered_as_custom_types(visitor, shop):
    for name in ("Outbound Link: Click", "File Download", "404"):
        assert plausible(visitor, {"n": name, "u": "https://shop.example/", "d": "shop.example"}).status_code == 202

    assert site_count(shop, "outbound_link:click") == 1
    assert site_count(shop, "file_download") == 1
    assert site_count(shop, "404") == 1
    assert BeaconDefinition.objects.get(slug="outbound_link:click").auto_registered


def test_plausible_revenue_is_kept_on_the_event_meta(visitor, shop, signup):
    plausible(
        visitor,
        {
            "n": "signup",
            "u": "https://shop.example/checkout",
            "d": "shop.example",
            "p": {"plan": "pro"},
            "$": {"amount": "19.90", "currency": "eur"},
        },
    )
    plausible(
        visitor,
        {"name": "signup", "url": "/checkout", "domain": "shop.example", "revenue": {"amount": 5, "currency": "USD"}},
    )

    metas = [event.payload["meta"] for event in BeaconEvent.objects.order_by("id")]
    assert metas == [
        {"plan": "pro", "revenue_amount": "19.90", "revenue_currency": "EUR"},
        {"revenue_amount": 5, "revenue_currency": "USD"},
    ]


def test_plausible_engagement_is_accepted_and_counts_nothing(visitor, shop):
    response = plausible(
        visitor,
        {"n": "engagement", "u": "https://shop.example/", "d": "shop.example", "sd": 60, "e": 12000, "v": 36},
    )
    assert (response.status_code, response.content) == (202, b"ok")
    assert nothing_counted()


def test_plausible_counts_for_the_first_registered_domain_of_a_list(visitor, shop):
    Site.objects.create(domain="off.example", name="Off", is_active=False)
    response = plausible(
        visitor, {"n": "pageview", "u": "https://shop.example/", "d": "rollup.example, off.example,shop.example"}
    )
    assert response.status_code == 202
    assert site_count(shop, "page_view", "/") == 1


def test_plausible_unknown_domain_gets_403_and_is_tallied(visitor, shop):
    response = plausible(visitor, {"n": "pageview", "u": "https://blog.example/", "d": "blog.example"})
    assert response.status_code == 403
    assert response.json()["field"] == "site"
    assert nothing_counted()
    assert dropped("unknown_site") == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("not json", "body"),
        ("[1]", "body"),
        ({"u": "https://shop.example/", "d": "shop.example"}, "name"),
        ({"n": 5, "u": "https://shop.example/", "d": "shop.example"}, "name"),
        ({"n": " :: ", "u": "https://shop.example/", "d": "shop.example"}, "name"),
        ({"n": "beacons:visits", "u": "https://shop.example/", "d": "shop.example"}, "event_type"),
        ({"n": "pageview", "d": "shop.example"}, "url"),
        ({"n": "pageview", "u": "http://[::1/", "d": "shop.example"}, "url"),
        ({"n": "pageview", "u": "https://shop.example/"}, "domain"),
        ({"n": "pageview", "u": "https://shop.example/", "d": "https://shop.example/"}, "site"),
        ({"n": "signup", "u": "/", "d": "shop.example", "p": "{bad"}, "props"),
        ({"n": "signup", "u": "/", "d": "shop.example", "p": [1]}, "props"),
        ({"n": "signup", "u": "/", "d": "shop.example", "p": nested(9)}, "p"),
        ({"n": "signup", "u": "/", "d": "shop.example", "$": {"amount": "lots", "currency": "EUR"}}, "revenue"),
        ({"n": "signup", "u": "/", "d": "shop.example", "$": {"amount": 1, "currency": "euro"}}, "revenue"),
        ({"n": "signup", "u": "/", "d": "shop.example", "$": 3}, "revenue"),
        ({"n": "signup", "u": "/", "d": "shop.example", "p": {"x": "y" * 3000}}, "meta"),
    ],
)
def test_plausible_malformed_bodies_get_400_naming_the_field_and_count_nothing(visitor, shop, body, field):
    response = plausible(visitor, body)
    assert response.status_code == 400
    assert response.json()["field"] == field
    assert nothing_counted()


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"p": "{bad"}, "props is not valid JSON"),
        ({"p": "[1]"}, "props must be an object"),
        ({"$": "{bad"}, "revenue is not valid JSON"),
        ({"$": "[1]"}, 'revenue must be an object: {"amount": 10.5, "currency": "EUR"}'),
    ],
)
def test_plausible_props_or_revenue_sent_as_text_say_whether_the_json_or_its_shape_is_wrong(visitor, shop, body, error):
    response = plausible(visitor, {"n": "signup", "u": "/", "d": "shop.example", **body})
    assert response.status_code == 400
    assert response.json() == {"error": error, "field": "props" if "p" in body else "revenue"}
    assert nothing_counted()


def test_plausible_revenue_sent_as_json_text_is_kept_as_an_object_is(visitor, shop, signup):
    revenue = json.dumps({"amount": 7, "currency": "gbp"})
    assert plausible(visitor, {"n": "signup", "u": "/", "d": "shop.example", "$": revenue}).status_code == 202
    assert BeaconEvent.objects.get().payload["meta"] == {"revenue_amount": 7, "revenue_currency": "GBP"}


@pytest.mark.parametrize(
    "amount",
    [True, False, None, [5], {"value": 5}, "1" * 41, "NaN", "-Infinity", "12 EUR", ""],
    ids=["true", "false", "null", "list", "object", "41 digits", "NaN", "infinity", "with a unit", "empty"],
)
def test_plausible_revenue_amount_that_is_no_finite_number_gets_400(visitor, shop, signup, amount):
    body = {"n": "signup", "u": "/", "d": "shop.example", "$": {"amount": amount, "currency": "EUR"}}
    response = plausible(visitor, body)
    assert (response.status_code, response.json()["error"]) == (400, "revenue amount must be a number")
    assert nothing_counted()


def test_plausible_revenue_amount_as_decimal_text_may_have_40_characters(visitor, shop, signup):
    amount = "1" * 37 + ".50"  # 40 characters: larger than a float holds exactly, which is why Plausible sends text
    body = {"n": "signup", "u": "/", "d": "shop.example", "$": {"amount": amount, "currency": "EUR"}}
    assert plausible(visitor, body).status_code == 202
    assert BeaconEvent.objects.get().payload["meta"]["revenue_amount"] == amount


def test_plausible_page_view_of_a_bare_domain_counts_the_home_page(visitor, shop):
    plausible(visitor, {"n": "pageview", "u": "https://shop.example", "d": "shop.example"})
    plausible(visitor, {"n": "pageview", "u": "https://shop.example?utm_source=mail", "d": "shop.example"})
    assert site_count(shop, "page_view", "/") == 2
    assert site_count(shop, "page_view") == 2


def test_plausible_domain_list_passes_over_names_that_are_no_host_names(visitor, shop):
    response = plausible(
        visitor, {"n": "pageview", "u": "https://shop.example/", "d": "https://rollup.example/, shop.example"}
    )
    assert response.status_code == 202
    assert site_count(shop, "page_view", "/") == 1


def test_plausible_form_body_is_read_as_the_classic_api_fields(visitor, shop):
    """``curl -d name=pageview&…`` sends a form: it is read as the JSON body's names."""
    form = urlencode({"name": "pageview", "url": "https://shop.example/from-a-form", "domain": "shop.example"})
    response = plausible(visitor, form, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 202
    assert site_count(shop, "page_view", "/from-a-form") == 1


def test_plausible_body_over_the_limit_gets_413(visitor, shop, settings):
    settings.BEACONS_MAX_BODY_BYTES = 200
    response = plausible(visitor, {"n": "pageview", "u": "https://shop.example/" + "a" * 300, "d": "shop.example"})
    assert response.status_code == 413
    assert nothing_counted()


def test_plausible_bots_are_answered_but_not_counted(shop):
    response = plausible(
        Client(HTTP_USER_AGENT="Googlebot/2.1 (+http://www.google.com/bot.html)"),
        {"n": "pageview", "u": "https://shop.example/", "d": "shop.example"},
    )
    assert response.status_code == 202
    assert nothing_counted()
    assert dropped("bot") == 1


def test_plausible_do_not_track_counts_the_page_view_as_untracked(visitor, shop):
    plausible(visitor, {"n": "pageview", "u": "https://shop.example/", "d": "shop.example"}, HTTP_DNT="1")
    assert site_count(shop, "page_view", "/") == 1
    assert site_count(shop, "page_view", "untracked", dimension="identity") == 1


def test_plausible_answers_the_sites_origin_with_cors_and_refuses_a_foreign_one(visitor, shop):
    body = {"n": "pageview", "u": "https://shop.example/", "d": "shop.example"}
    allowed = plausible(visitor, body, HTTP_ORIGIN="https://shop.example")
    foreign = plausible(visitor, body, HTTP_ORIGIN="https://evil.example")
    preflight = visitor.options("/api/event", HTTP_ORIGIN="https://shop.example")

    assert (allowed.status_code, allowed["Access-Control-Allow-Origin"]) == (202, "https://shop.example")
    assert (foreign.status_code, foreign.json()["field"]) == (403, "origin")
    assert preflight.status_code == 204 and "POST" in preflight["Access-Control-Allow-Methods"]
    assert site_count(shop, "page_view") == 1


def test_plausible_other_methods_get_405(visitor):
    assert visitor.get("/api/event").status_code == 405


def test_a_drop_in_adds_no_query_to_a_page_view(visitor, shop, django_assert_num_queries):
    body = {"n": "pageview", "u": "https://shop.example/warm", "d": "shop.example"}
    plausible(visitor, body, HTTP_DNT="1")  # salt, the sites and page_view's definition read
    umami(visitor, "event", {"website": WEBSITE, "url": "/warm"}, HTTP_DNT="1")  # the website ids read
    with django_assert_num_queries(1):  # the counters' upsert, as for /beacon
        plausible(visitor, {**body, "u": "https://shop.example/a"}, HTTP_DNT="1")
    with django_assert_num_queries(1):
        umami(visitor, "event", {"website": WEBSITE, "url": "/b"}, HTTP_DNT="1")
    with django_assert_num_queries(1):
        visitor.get("/count", {"p": "/c"}, HTTP_REFERER="https://shop.example/c", HTTP_DNT="1")
    assert site_count(shop, "page_view") == 5


def test_drop_in_events_kept_one_by_one_name_the_tracker_they_came_from(visitor, shop, signup):
    plausible(visitor, {"n": "signup", "u": "https://shop.example/", "d": "shop.example"})
    umami(visitor, "event", page_payload(name="signup"))
    count_js(visitor, p="signup", e="true")

    assert sorted(BeaconEvent.objects.values_list("source", flat=True)) == ["goatcounter", "plausible", "umami"]


@pytest.mark.parametrize(
    ("send", "answer"),
    [
        (lambda client: plausible(client, {"n": "pageview", "u": "https://shop.example/", "d": "shop.example"}), 503),
        (lambda client: umami(client, "event", page_payload()), 503),
        (lambda client: count_js(client), 200),  # the image still: a broken picture helps nobody
    ],
    ids=["plausible", "umami", "goatcounter"],
)
def test_while_the_database_is_down_nothing_is_counted_and_the_outage_is_logged(
    visitor, shop, counters_unwritable, caplog, send, answer
):
    with caplog.at_level("WARNING", logger="beacons"):
        response = send(visitor)

    assert response.status_code == answer
    if answer == 503:
        assert response["Retry-After"] == "5"
    else:
        assert response.content == TRANSPARENT_GIF
    [record] = [record for record in caplog.records if "database unreachable" in record.getMessage()]
    assert record.exc_info is not None  # the cause, with its traceback
    assert "could not connect to server" in caplog.text
    assert nothing_counted()


@pytest.mark.parametrize(
    ("path", "method", "body"),
    [
        ("/api/event", "post", {"n": "pageview", "u": "https://shop.example/", "d": "shop.example"}),
        ("/api/send", "post", {"type": "event", "payload": {"website": WEBSITE, "url": "/"}}),
        ("/count", "get", {"p": "/"}),
    ],
)
def test_each_endpoint_answers_404_when_turned_off(visitor, shop, settings, path, method, body):
    settings.BEACONS_COMPAT = ["sentry"]
    if method == "post":
        response = visitor.post(path, data=json.dumps(body), content_type="application/json")
    else:
        response = visitor.get(path, body, HTTP_REFERER="https://shop.example/")
    assert response.status_code == 404
    assert nothing_counted()


# --- Umami ----------------------------------------------------------------------------------


def umami(client, kind, payload, **headers):
    """POST to /api/send as Umami's tracker does."""
    body = json.dumps({"type": kind, "payload": payload})
    return client.post("/api/send", data=body, content_type="application/json", **headers)


def page_payload(**fields):
    """What Umami's tracker sends for a page view (the current tracker sends the full URL)."""
    return {
        "website": WEBSITE,
        "hostname": "shop.example",
        "screen": "1920x1080",
        "language": "en-GB",
        "title": "Docs",
        "url": "https://shop.example/docs?utm_source=newsletter&utm_medium=email",
        "referrer": "https://www.google.com/",
        **fields,
    }


def test_umami_page_view_counts_the_url_path_for_the_site_of_its_website_id(visitor, shop):
    response = umami(visitor, "event", page_payload())

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert set(response.json()) == {"cache"}  # what the tracker reads; no "disabled", so it goes on sending
    assert site_count(shop, "page_view", "/docs") == 1
    assert site_count(shop, "page_view", "newsletter", dimension="source") == 1
    assert site_count(shop, "page_view", "email", dimension="utm_medium") == 1
    assert site_count(first_site(), "page_view") == 0


def test_umami_page_view_as_the_older_tracker_sends_it_a_path_with_the_fragment_kept(visitor, shop):
    umami(visitor, "event", page_payload(url="/docs/install", referrer=""))
    umami(visitor, "event", page_payload(url="https://shop.example/docs#faq", referrer=""))
    umami(visitor, "event", {"website": WEBSITE})  # no url: the home page, as Umami counts it
    assert site_count(shop, "page_view", "/docs/install") == 1
    assert site_count(shop, "page_view", "/docs#faq") == 1
    assert site_count(shop, "page_view", "/") == 1
    assert site_count(shop, "page_view", "Direct / none", dimension="source") == 3


def test_umami_named_event_counts_a_custom_type_on_the_page_with_its_data_as_meta(visitor, shop, signup):
    response = umami(visitor, "event", page_payload(name="signup", data={"plan": "pro", "seats": 3}))
    umami(visitor, "event", page_payload(name="Newsletter Form"))

    assert response.status_code == 200
    assert site_count(shop, "signup", "/docs") == 1
    assert site_count(shop, "signup", "pro", dimension="prop:plan") == 1
    assert BeaconEvent.objects.get().payload == {"meta": {"plan": "pro", "seats": 3}}
    assert site_count(shop, "newsletter_form", "/docs") == 1
    assert site_count(shop, "page_view") == 0


@pytest.mark.parametrize("kind", ["identify", "performance", "engagement"])
def test_umami_identify_and_other_reports_are_accepted_and_count_nothing(visitor, shop, kind):
    response = umami(visitor, kind, page_payload(id="user-42", data={"email": "someone@example.com"}))
    assert response.status_code == 200
    assert "cache" in response.json()
    assert nothing_counted()


def test_umami_preflight_allows_the_cache_header(visitor, shop):
    response = visitor.options(
        "/api/send",
        HTTP_ORIGIN="https://shop.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type,x-umami-cache",
    )
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == "https://shop.example"
    allowed = {header.strip().lower() for header in response["Access-Control-Allow-Headers"].split(",")}
    assert {"content-type", "x-umami-cache"} <= allowed


def test_umami_cache_token_sent_back_is_ignored(visitor, shop):
    first = umami(visitor, "event", page_payload(), HTTP_ORIGIN="https://shop.example")
    # the older tracker sends the whole response text back; a forged token names another website
    forged = json.dumps({"cache": "eyJ3ZWJzaXRlSWQiOiJvdGhlciJ9.x.y", "sessionId": "someone-else"})
    for token in (first.content.decode(), first.json()["cache"], forged):
        response = umami(visitor, "event", page_payload(url="/next"), HTTP_X_UMAMI_CACHE=token)
        assert response.status_code == 200
    assert first["Access-Control-Allow-Origin"] == "https://shop.example"
    assert site_count(shop, "page_view", "/next") == 3
    assert BeaconAggregate.objects.exclude(site=shop).count() == 0


def test_umami_preflight_from_a_foreign_origin_is_refused_allowing_nothing(visitor, shop):
    response = visitor.options(
        "/api/send",
        HTTP_ORIGIN="https://evil.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type,x-umami-cache",
    )
    assert response.status_code == 403
    assert "Access-Control-Allow-Headers" not in response
    assert "Access-Control-Allow-Origin" not in response


def test_umami_form_body_is_read_as_a_form_whose_payload_is_no_object(visitor, shop):
    form = urlencode({"type": "event", "payload": json.dumps({"website": WEBSITE, "url": "/"})})
    response = visitor.post("/api/send", data=form, content_type="application/x-www-form-urlencoded")
    assert (response.status_code, response.json()["field"]) == (400, "payload")
    assert nothing_counted()


def test_umami_first_hit_while_the_database_is_down_gets_503(visitor, shop, monkeypatch):
    monkeypatch.setattr(connection, "cursor", database_down)  # the website ids were never read
    response = umami(visitor, "event", page_payload())
    assert (response.status_code, response["Retry-After"]) == (503, "5")


def test_umami_website_ids_outlive_a_database_outage_and_are_read_again_every_few_seconds(shop, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(umami_compat.time, "monotonic", lambda: now[0])
    website = uuid.UUID(WEBSITE)
    assert umami_compat.website_domain(website) == "shop.example"
    asked = []

    def down(*args, **kwargs):
        asked.append(now[0])
        database_down()

    monkeypatch.setattr(connection, "cursor", down)
    now[0] += SITES_CACHE_SECONDS  # due to be read again: the database is down
    assert umami_compat.website_domain(website) == "shop.example"
    now[0] += SITES_RETRY_SECONDS - 0.5
    assert umami_compat.website_domain(website) == "shop.example"  # not asked again yet
    now[0] += 0.5
    assert umami_compat.website_domain(website) == "shop.example"

    assert asked == [1000 + SITES_CACHE_SECONDS, 1000 + SITES_CACHE_SECONDS + SITES_RETRY_SECONDS]


def test_umami_unknown_website_gets_403_and_is_tallied(visitor, shop):
    response = umami(visitor, "event", page_payload(website=str(uuid.uuid4())))
    assert (response.status_code, response.json()["field"]) == (403, "website")
    assert nothing_counted()
    assert dropped("unknown_site") == 1


def test_umami_website_id_given_to_a_site_counts_at_once_in_this_process(visitor, shop):
    other = Site.objects.create(domain="blog.example", name="Blog")
    website = str(uuid.uuid4())
    assert umami(visitor, "event", page_payload(website=website)).status_code == 403

    other.umami_website_id = website
    other.save()
    assert umami(visitor, "event", page_payload(website=website)).status_code == 200
    assert site_count(other, "page_view", "/docs") == 1


def test_umami_site_switched_off_gets_403(visitor, shop):
    shop.is_active = False
    shop.save()
    response = umami(visitor, "event", page_payload())
    assert (response.status_code, response.json()["field"]) == (403, "site")
    assert nothing_counted()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("not json", "body"),
        (json.dumps(["event"]), "body"),
        (json.dumps({"type": "pageview", "payload": {"website": WEBSITE}}), "type"),
        (json.dumps({"type": "event"}), "payload"),
        (json.dumps({"type": "event", "payload": {"url": "/"}}), "website"),
        (json.dumps({"type": "event", "payload": {"website": "shop.example", "url": "/"}}), "website"),
        (json.dumps({"type": "event", "payload": {"website": WEBSITE, "url": 7}}), "url"),
        (json.dumps({"type": "event", "payload": {"website": WEBSITE, "url": "/", "name": ["x"]}}), "name"),
        (json.dumps({"type": "event", "payload": {"website": WEBSITE, "url": "/", "name": "x", "data": "y"}}), "data"),
    ],
)
def test_umami_malformed_bodies_get_400_naming_the_field_and_count_nothing(visitor, shop, body, field):
    response = visitor.post("/api/send", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["field"] == field
    assert nothing_counted()


def test_umami_body_over_the_limit_gets_413(visitor, shop, settings):
    settings.BEACONS_MAX_BODY_BYTES = 200
    response = umami(visitor, "event", page_payload(title="x" * 300))
    assert response.status_code == 413
    assert nothing_counted()


def test_umami_bots_are_answered_but_not_counted(shop):
    response = umami(Client(HTTP_USER_AGENT="Mozilla/5.0 (compatible; bingbot/2.0)"), "event", page_payload())
    assert response.status_code == 200
    assert nothing_counted()
    assert dropped("bot") == 1


def test_umami_do_not_track_counts_the_page_view_as_untracked(visitor, shop):
    umami(visitor, "event", page_payload(), HTTP_SEC_GPC="1")
    assert site_count(shop, "page_view", "/docs") == 1
    assert site_count(shop, "page_view", "untracked", dimension="identity") == 1


# --- GoatCounter ----------------------------------------------------------------------------


def count_js(client, method="get", referer="https://shop.example/blog/hello?utm_campaign=launch", **params):
    """A hit as count.js sends it: the query in the URL (sendBeacon's POST, or an image's GET)."""
    query = {
        "p": "/blog/hello?utm_campaign=launch",
        "r": "https://news.ycombinator.com/",
        "t": "Hello",
        "s": "1280,720,1",
        "b": "0",
        "q": "?utm_campaign=launch",
        "rnd": "k3j2h",
        **params,
    }
    if method == "get":
        return client.get("/count", query, HTTP_REFERER=referer)
    return client.post(f"/count?{urlencode(query)}", data=b"", content_type="text/plain", HTTP_ORIGIN=referer)


def test_goatcounter_page_view_answers_the_gif_and_counts_the_path_for_the_referers_site(visitor, shop):
    response = count_js(visitor)

    assert response.status_code == 200
    assert (response["Content-Type"], response.content) == ("image/gif", TRANSPARENT_GIF)
    assert response["Cache-Control"] == "no-store, max-age=0"
    assert site_count(shop, "page_view", "/blog/hello") == 1
    assert site_count(shop, "page_view", "launch", dimension="utm_campaign") == 1
    assert site_count(shop, "page_view", "Hacker News", dimension="source") == 1
    assert site_count(first_site(), "page_view") == 0


def test_goatcounter_send_beacon_post_counts_as_the_image_does(visitor, shop):
    response = count_js(visitor, method="post", referer="https://shop.example")
    assert (response.status_code, response["Content-Type"]) == (200, "image/gif")
    assert site_count(shop, "page_view", "/blog/hello") == 1


def test_goatcounter_event_counts_a_custom_type_named_by_the_path(visitor, shop):
    count_js(visitor, p="Signup Click", e="true", t="Sign up", r="", q="")
    assert site_count(shop, "signup_click") == 1
    assert site_count(shop, "page_view") == 0


@pytest.mark.parametrize("flag", ["false", "0", "off", "", "Off"])
def test_goatcounter_e_false_in_any_spelling_counts_a_page_view(visitor, shop, flag):
    assert count_js(visitor, e=flag).status_code == 200
    assert site_count(shop, "page_view", "/blog/hello") == 1


def test_goatcounter_page_counts_its_path_and_query_without_a_fragment(visitor, shop):
    count_js(visitor, p="/docs#install", q="")
    assert site_count(shop, "page_view", "/docs") == 1


def test_goatcounter_bot_flag_is_dropped_as_a_bot(visitor, shop):
    response = count_js(visitor, b="153")  # count.js: navigator.webdriver
    assert (response.status_code, response["Content-Type"]) == (200, "image/gif")
    assert nothing_counted()
    assert dropped("bot") == 1


def test_goatcounter_do_not_track_counts_the_page_view_as_untracked(visitor, shop):
    visitor.get("/count", {"p": "/"}, HTTP_REFERER="https://shop.example/", HTTP_DNT="1")
    assert site_count(shop, "page_view", "untracked", dimension="identity") == 1


def test_goatcounter_page_of_an_unknown_site_gets_403_and_counts_nothing(visitor, shop):
    response = count_js(visitor, referer="https://blog.example/")
    assert (response.status_code, response.json()["field"]) == (403, "site")
    assert nothing_counted()


@pytest.mark.parametrize(
    ("params", "field"),
    [({"p": ""}, "p"), ({"p": "   "}, "p"), ({"e": "maybe"}, "e"), ({"b": "yes"}, "b"), ({"e": "1", "p": "::"}, "p")],
)
def test_goatcounter_bad_parameters_get_400_and_count_nothing(visitor, shop, params, field):
    response = count_js(visitor, **params)
    assert (response.status_code, response.json()["field"]) == (400, field)
    assert nothing_counted()


def test_goatcounter_head_answers_the_gif_without_counting_and_other_methods_get_405(visitor, shop):
    head = visitor.head("/count", {"p": "/"}, HTTP_REFERER="https://shop.example/")
    assert (head.status_code, head["Content-Type"]) == (200, "image/gif")
    assert visitor.put("/count?p=/").status_code == 405
    assert nothing_counted()


def test_goatcounter_other_methods_get_405_naming_the_methods_it_takes(visitor, shop):
    response = visitor.delete("/count?p=/")
    assert (response.status_code, response["Allow"]) == (405, "GET, HEAD, POST")
    assert response.json()["field"] == "method"
    assert "GET or POST" in response.json()["error"]


def test_goatcounter_counts_nothing_but_still_answers_when_ingest_is_off(visitor, shop, settings):
    settings.BEACONS_ENABLED = False
    assert count_js(visitor).status_code == 200
    assert nothing_counted()
