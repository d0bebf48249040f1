import json

import pytest
from django.db import connection
from django.utils import timezone

from beacons.models import BeaconAggregate, BeaconDefinition, BeaconEvent, DroppedHits, Site
from beacons.registry import definitions_cache_clear

from .conftest import BROWSER_UA, day_count

pytestmark = pytest.mark.django_db


# --- every body form navigator.sendBeacon can send ------------------------------------------


def test_json_body_counts_identifier_and_total(send):
    response = send({"event_type": "page_view", "identifier": "/docs/home"})
    assert response.status_code == 204
    assert day_count("page_view", "/docs/home") == 1
    assert day_count("page_view") == 1


def test_text_plain_body_is_read_as_json(send):
    response = send(
        json.dumps({"event_type": "signup", "identifier": "footer"}), content_type="text/plain;charset=UTF-8"
    )
    assert response.status_code == 204
    assert day_count("signup", "footer") == 1


def test_urlencoded_form_with_meta_as_json_string(beacon_client):
    response = beacon_client.post(
        "/beacon",
        data="event_type=download_click&identifier=brochure.pdf&meta=%7B%22size%22%3A3%7D",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 204
    assert day_count("download_click", "brochure.pdf") == 1


def test_multipart_form_data(beacon_client):
    response = beacon_client.post("/beacon", data={"event_type": "newsletter", "identifier": "hero", "meta": "{}"})
    assert response.status_code == 204
    assert day_count("newsletter", "hero") == 1


def test_path_form_counts_identifier_from_the_address(beacon_client):
    response = beacon_client.post("/beacon/page/100")
    assert response.status_code == 204
    assert day_count("page", "100") == 1


def test_path_form_keeps_slashes_in_identifier_and_accepts_a_meta_body(beacon_client):
    response = beacon_client.post(
        "/beacon/report/docs/2026/q3", data={"meta": {"a": 1}}, content_type="application/json"
    )
    assert response.status_code == 204
    assert day_count("report", "docs/2026/q3") == 1


def test_gif_counts_and_answers_an_uncached_image(beacon_client):
    response = beacon_client.get("/beacon/email_open.gif?i=campaign-7")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/gif"
    assert "no-store" in response["Cache-Control"]
    assert response.content.startswith(b"GIF89a")
    assert day_count("email_open", "campaign-7") == 1


def test_batch_counts_every_event(send):
    events = [{"event_type": "page_view", "identifier": f"/p{i % 3}"} for i in range(9)]
    assert send({"events": events}).status_code == 204
    assert day_count("page_view") == 9
    assert day_count("page_view", "/p0") == 3


def test_every_kept_granularity_is_incremented_once(send):
    send({"event_type": "page_view", "identifier": "/a"})
    page_view = BeaconDefinition.objects.get(slug="page_view")
    rows = BeaconAggregate.objects.filter(definition=page_view)
    assert sorted(rows.filter(identifier="/a").values_list("granularity", flat=True)) == sorted(
        page_view.granularity_codes
    )
    assert all(row.count == 1 for row in rows)


def test_ingest_writes_counters_in_one_statement(send, django_assert_num_queries):
    send({"event_type": "page_view", "identifier": "/warm"}, HTTP_DNT="1")  # salt created
    with django_assert_num_queries(1):  # one upsert: page_view's definition is cached since the warm-up
        response = send(
            {"events": [{"event_type": "page_view", "identifier": f"/{i}"} for i in range(20)]}, HTTP_DNT="1"
        )
    assert response.status_code == 204


def test_page_views_inside_a_visit_write_one_upsert_and_one_subtraction(send, django_assert_num_queries, monkeypatch):
    # One moment for every send: a page view a second after the visit's last one gives the visit a
    # duration, and the duration type's first values of the day read the value cap's stored ones
    # (6 more queries: a CI run whose clock ticked between the sends saw 15).
    moment = timezone.now().replace(hour=12, minute=30)
    monkeypatch.setattr(timezone, "now", lambda: moment)
    send({"event_type": "page_view", "identifier": "/warm"})  # salt, visit types, their values of today
    send({"event_type": "page_view", "identifier": "/warm-2"})
    # in a savepoint: the counters' own savepoint around the upsert and the subtraction of the
    # visit's exit and bounce moves, then the visitor sketches' insert-missing, read for update
    # and write
    with django_assert_num_queries(9):
        response = send({"events": [{"event_type": "page_view", "identifier": f"/{i}"} for i in range(20)]})
    assert response.status_code == 204


def test_no_session_or_cookie_is_set(send):
    response = send({"event_type": "page_view", "identifier": "/"})
    assert not response.cookies


# --- identifiers --------------------------------------------------------------------------


@pytest.fixture
def example_site(db):
    """A site for pages on https://example.com (the referers below)."""
    return Site.objects.create(domain="example.com", name="Example")


def test_page_view_identifier_from_referer_without_query_string(send, example_site):
    send({"event_type": "page_view"}, HTTP_REFERER="https://example.com/pricing?utm_source=x#top")
    assert day_count("page_view", "/pricing") == 1


def test_page_view_query_string_is_dropped_unless_kept(send):
    send({"event_type": "page_view", "identifier": "/shop?colour=red"})
    assert day_count("page_view", "/shop") == 1
    BeaconDefinition.objects.filter(slug="page_view").update(keep_query_string=True)
    definitions_cache_clear()  # other processes see admin changes within DEFINITIONS_CACHE_SECONDS
    send({"event_type": "page_view", "identifier": "/shop?colour=red"})
    assert day_count("page_view", "/shop?colour=red") == 1


def test_hash_routes_survive_normalisation(send):
    send({"event_type": "page_view", "identifier": "/app#/settings"})
    assert day_count("page_view", "/app#/settings") == 1


def test_identifier_rule_none_counts_only_the_total(send):
    BeaconDefinition.objects.create(slug="heartbeat", name="Heartbeat", identifier_rule="none")
    send({"event_type": "heartbeat", "identifier": "anything"})
    assert day_count("heartbeat") == 1
    assert not BeaconAggregate.objects.filter(definition__slug="heartbeat").exclude(identifier="").exists()


def test_identifier_is_trimmed_and_numbers_accepted(send):
    send({"event_type": "item", "identifier": 42})
    send({"event_type": "item", "identifier": "  42  "})
    assert day_count("item", "42") == 2


# --- registry -----------------------------------------------------------------------------


def test_unknown_type_is_auto_registered_as_custom(send):
    send({"event_type": "Video_Play", "identifier": "intro"})
    definition = BeaconDefinition.objects.get(slug="video_play")
    assert definition.kind == BeaconDefinition.Kind.CUSTOM
    assert definition.is_active


def test_strict_mode_rejects_unknown_type_with_422(send, settings):
    settings.BEACONS_STRICT = True
    response = send({"event_type": "mystery"})
    assert response.status_code == 422
    assert "mystery" in response.json()["error"]
    assert response.json()["field"] == "event_type"
    assert not BeaconDefinition.objects.filter(slug="mystery").exists()


def test_inactive_type_is_accepted_but_not_counted(send):
    BeaconDefinition.objects.filter(slug="page_view").update(is_active=False)
    assert send({"event_type": "page_view", "identifier": "/"}).status_code == 204
    assert not BeaconAggregate.objects.exists()
    assert DroppedHits.objects.get(reason="inactive").count == 1


def test_disabled_site_answers_204_and_stores_nothing(send, settings):
    settings.BEACONS_ENABLED = False
    assert send({"event_type": "page_view", "identifier": "/"}).status_code == 204
    assert not BeaconAggregate.objects.exists()


# --- bad input: clear 4xx, nothing counted ------------------------------------------------


@pytest.mark.parametrize(
    "body, field",
    [
        ("{not json", "body"),
        ("[1, 2]", "body"),
        ('"just a string"', "body"),
        ({"identifier": "/"}, "event_type"),
        ({"event_type": ""}, "event_type"),
        ({"event_type": "x" * 65}, "event_type"),
        ({"event_type": "has space"}, "event_type"),
        ({"event_type": 7}, "event_type"),
        ({"event_type": "a", "identifier": "x" * 257}, "identifier"),
        ({"event_type": "a", "identifier": ["list"]}, "identifier"),
        ({"event_type": "a", "meta": [1]}, "meta"),
        ({"event_type": "a", "meta": "not json"}, "meta"),
        ({"event_type": "a", "meta": {"big": "x" * 3000}}, "meta"),
        ({"event_type": "a", "id": {"no": 1}}, "id"),
        ({"events": "nope"}, "events"),
        ({"events": []}, "events"),
    ],
)
def test_bad_input_gets_400_naming_the_field(send, body, field):
    response = send(body)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["field"] == field
    assert response.json()["error"]
    assert not BeaconAggregate.objects.exists()


def test_batch_with_one_bad_event_counts_nothing_and_lists_each_bad_index(send):
    events = [{"event_type": "ok"}, {"event_type": ""}, {"event_type": "ok", "meta": 5}, {"event_type": "ok"}]
    response = send({"events": events})
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert [(e["index"], e["field"]) for e in errors] == [(1, "event_type"), (2, "meta")]
    assert not BeaconAggregate.objects.exists()


def test_batch_over_the_limit_is_rejected(send, settings):
    settings.BEACONS_MAX_BATCH = 3
    response = send({"events": [{"event_type": "a"}] * 4})
    assert response.status_code == 400
    assert response.json()["field"] == "events"


def test_body_over_the_limit_gets_413_from_content_length(send, settings):
    settings.BEACONS_MAX_BODY_BYTES = 100
    response = send({"event_type": "a", "meta": {"pad": "x" * 200}})
    assert response.status_code == 413
    assert not BeaconAggregate.objects.exists()


def test_body_over_the_limit_without_content_length_gets_413_while_reading(settings):
    from io import BytesIO

    from django.test import RequestFactory

    from beacons.ingest.views import beacon_collect

    settings.BEACONS_MAX_BODY_BYTES = 100
    body = json.dumps({"event_type": "a", "meta": {"pad": "x" * 500}}).encode()
    request = RequestFactory().generic(
        "POST", "/beacon", data=b"", content_type="text/plain", HTTP_USER_AGENT=BROWSER_UA
    )
    request.META.pop("CONTENT_LENGTH", None)
    request._stream = BytesIO(body)
    response = beacon_collect(request)
    assert response.status_code == 413


def test_wrong_method_gets_405(beacon_client):
    response = beacon_client.get("/beacon")
    assert response.status_code == 405
    assert "POST" in response["Allow"]
    assert response.json()["field"] == "method"


def test_invalid_event_type_in_path_gets_400(beacon_client):
    assert beacon_client.post("/beacon/Not%20Valid!/x").status_code == 400


# --- bots, privacy, origins, rate limit, dedupe ------------------------------------------


@pytest.mark.parametrize("user_agent", ["", "Googlebot/2.1 (+http://www.google.com/bot.html)", "curl/8.5.0"])
def test_bots_and_empty_user_agents_are_not_counted_but_tallied(client, user_agent):
    response = client.post(
        "/beacon", data={"event_type": "page_view"}, content_type="application/json", HTTP_USER_AGENT=user_agent
    )
    assert response.status_code == 204
    assert not BeaconAggregate.objects.exists()
    assert DroppedHits.objects.get(reason="bot").count == 1


def test_no_raw_ip_address_is_stored_in_any_table(send, example_site):
    ip = "203.0.113.77"
    send({"event_type": "error", "meta": {"message": "boom"}}, REMOTE_ADDR=ip, HTTP_REFERER="https://example.com/p")
    send({"event_type": "page_view", "identifier": "/"}, REMOTE_ADDR=ip)
    assert BeaconEvent.objects.count() == 1
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')
            for row in cursor.fetchall():
                assert ip not in " ".join(str(value) for value in row), table


def test_do_not_track_is_counted_but_keeps_no_visitor_key(send):
    send({"event_type": "error", "meta": {"message": "x"}}, HTTP_DNT="1")
    send({"event_type": "error", "meta": {"message": "x"}}, HTTP_SEC_GPC="1")
    send({"event_type": "error", "meta": {"message": "x"}})
    assert day_count("error") == 3
    assert sorted(BeaconEvent.objects.values_list("visitor_key", flat=True)) == [
        "",
        "",
        BeaconEvent.objects.exclude(visitor_key="").get().visitor_key,
    ]
    assert len(BeaconEvent.objects.exclude(visitor_key="").get().visitor_key) == 32


def test_visitor_key_is_stable_within_a_day_and_differs_between_visitors(send):
    for ip in ["198.51.100.1", "198.51.100.1", "198.51.100.2"]:
        send({"event_type": "error", "meta": {"message": "x"}}, REMOTE_ADDR=ip)
    keys = list(BeaconEvent.objects.order_by("id").values_list("visitor_key", flat=True))
    assert keys[0] == keys[1] != keys[2]


def test_salts_older_than_two_days_are_deleted(send):
    from datetime import date, timedelta

    from beacons.models import DailySalt

    DailySalt.objects.create(day=date.today() - timedelta(days=5), salt="old")
    send({"event_type": "page_view", "identifier": "/"})
    assert list(DailySalt.objects.values_list("day", flat=True)) == [date.today()]


def test_foreign_origin_gets_403_and_is_not_counted(send):
    response = send({"event_type": "page_view"}, HTTP_ORIGIN="https://evil.example")
    assert response.status_code == 403
    assert response.json()["field"] == "origin"
    assert not BeaconAggregate.objects.exists()


def test_configured_origin_is_allowed_with_cors_headers(send, settings, beacon_client):
    settings.BEACONS_ALLOWED_ORIGINS = ["https://shop.example"]
    response = send({"event_type": "page_view", "identifier": "/"}, HTTP_ORIGIN="https://shop.example")
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == "https://shop.example"
    preflight = beacon_client.options("/beacon", HTTP_ORIGIN="https://shop.example")
    assert preflight.status_code == 204
    assert "POST" in preflight["Access-Control-Allow-Methods"]


def test_same_origin_and_allowed_hosts_are_allowed(send):
    assert send({"event_type": "page_view"}, HTTP_ORIGIN="http://testserver").status_code == 204
    assert send({"event_type": "page_view"}, HTTP_ORIGIN="http://localhost:8000").status_code == 204


def test_rate_limit_per_visitor_answers_429(send, settings):
    settings.BEACONS_RATE_LIMIT = 5
    statuses = [send({"event_type": "tap"}, REMOTE_ADDR="192.0.2.1").status_code for _ in range(7)]
    assert statuses == [204] * 5 + [429] * 2
    assert send({"event_type": "tap"}, REMOTE_ADDR="192.0.2.2").status_code == 204
    assert day_count("tap") == 6


def test_event_with_id_is_counted_once(send):
    for _ in range(3):
        assert send({"event_type": "purchase", "identifier": "sku-1", "id": "order-77"}).status_code == 204
    send({"event_type": "purchase", "identifier": "sku-1", "id": "order-78"})
    assert day_count("purchase", "sku-1") == 2
    assert DroppedHits.objects.get(reason="duplicate").count == 2


@pytest.mark.parametrize(
    "body, field",
    [
        ('{"event_type": "x", "identifier": "\\ud800abc"}', "identifier"),
        ('{"event_type": "x", "meta": {"k": "\\udfff"}}', "meta"),
        ('{"event_type": "x", "meta": {"k": "a\\u0000b"}}', "meta"),
        ('{"event_type": "x", "id": "\\ud800"}', "id"),
    ],
)
def test_text_the_database_cannot_store_gets_400(send, body, field):
    response = send(body)
    assert response.status_code == 400
    assert response.json()["field"] == field


def test_a_shared_cache_that_is_down_neither_fails_nor_loses_hits(send, settings):
    settings.CACHES = {"default": {"BACKEND": "beacon_site.cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}}
    response = send({"event_type": "purchase", "identifier": "sku-9", "id": "order-1"})
    assert response.status_code == 204
    assert day_count("purchase", "sku-9") == 1


def test_a_json_body_labelled_as_a_form_is_read_as_json(beacon_client):
    # What `curl -d '{...}'` sends: the README's examples rely on it.
    response = beacon_client.post(
        "/beacon",
        data='{"event_type": "signup", "identifier": "footer"}',
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 204
    assert day_count("signup", "footer") == 1


def test_a_nul_in_the_referer_or_user_agent_is_kept_as_a_replacement_character(send, example_site):
    send({"event_type": "page_view"}, HTTP_REFERER="https://example.com/pri\x00cing")
    send({"event_type": "error", "meta": {"message": "boom"}}, HTTP_USER_AGENT=BROWSER_UA + "\x00")
    assert day_count("page_view", "/pri\ufffdcing") == 1
    assert BeaconEvent.objects.get().user_agent == BROWSER_UA + "\ufffd"
