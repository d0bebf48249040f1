"""Ingest under attack (issue 12): every hostile input has a chosen limit, gets a clear 4xx
instead of a 500, and counts nothing when it is rejected; no report carries a client IP."""

import hashlib
import json
from io import BytesIO

import pytest
from django.core import mail
from django.db import DatabaseError
from django.test import Client
from django.urls import reverse

from beacons.models import BeaconDefinition, BeaconEvent, DailySalt, DroppedHits

from .conftest import BROWSER_UA, day_count, first_site

pytestmark = pytest.mark.django_db


def dropped(reason):
    return sum(DroppedHits.objects.filter(reason=reason).values_list("count", flat=True))


def client(**headers) -> Client:
    """A browser-like client that gets a 500 back instead of the exception raised in the view."""
    return Client(raise_request_exception=False, HTTP_USER_AGENT=BROWSER_UA, **headers)


def post_json(body, *, content_type="application/json", **headers):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client(**headers).post("/beacon", data=data, content_type=content_type)


def nested(depth: int) -> dict:
    """{"a": {"a": ...}} with ``depth`` objects."""
    value: dict = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


# --- item 1: the auto-registration budget -------------------------------------------------


def test_auto_registration_stops_at_the_total_budget_and_drops_the_rest(settings):
    settings.BEACONS_MAX_AUTO_TYPES = 3
    events = [{"event_type": f"flood_{i}"} for i in range(5)]
    assert post_json({"events": events}).status_code == 204
    assert BeaconDefinition.objects.filter(auto_registered=True).count() == 3
    assert sorted(BeaconDefinition.objects.filter(slug__startswith="flood_").values_list("slug", flat=True)) == [
        "flood_0",
        "flood_1",
        "flood_2",
    ]
    assert dropped(DroppedHits.Reason.OVER_BUDGET) == 2
    assert [day_count(f"flood_{i}") for i in range(3)] == [1, 1, 1]
    # Known types still count once the budget is used up; types registered in the admin do not use it.
    assert (
        post_json(
            {"events": [{"event_type": "flood_0"}, {"event_type": "page_view"}, {"event_type": "new"}]}
        ).status_code
        == 204
    )
    assert (day_count("flood_0"), day_count("page_view"), dropped(DroppedHits.Reason.OVER_BUDGET)) == (2, 1, 3)
    assert not BeaconDefinition.objects.filter(slug="new").exists()


def test_new_types_are_limited_per_visitor_per_minute(settings):
    settings.BEACONS_NEW_TYPES_PER_MINUTE = 2
    answers = [post_json({"event_type": f"mine_{i}"}).status_code for i in range(4)]
    assert answers == [204, 204, 204, 204]
    assert BeaconDefinition.objects.filter(slug__startswith="mine_").count() == 2
    assert dropped(DroppedHits.Reason.OVER_BUDGET) == 2


def test_new_types_are_limited_per_network_whatever_the_user_agent(settings):
    settings.BEACONS_NEW_TYPES_PER_MINUTE = 3
    for i in range(5):  # a new user agent and address each time, all in 198.51.100.0/24
        Client(HTTP_USER_AGENT=f"{BROWSER_UA} v{i}", REMOTE_ADDR=f"198.51.100.{i + 1}").post(
            "/beacon", data={"event_type": f"net_{i}"}, content_type="application/json"
        )
    Client(HTTP_USER_AGENT=BROWSER_UA, REMOTE_ADDR="203.0.113.5").post(
        "/beacon", data={"event_type": "elsewhere"}, content_type="application/json"
    )
    assert BeaconDefinition.objects.filter(slug__startswith="net_").count() == 3
    assert BeaconDefinition.objects.filter(slug="elsewhere").exists()


def test_strict_mode_still_rejects_unknown_types_with_422(settings):
    settings.BEACONS_STRICT = True
    response = post_json({"event_type": "unknown"})
    assert response.status_code == 422 and response.json()["field"] == "event_type"


def test_admin_warns_on_the_type_list_when_the_budget_is_used_up(admin_client, settings):
    settings.BEACONS_MAX_AUTO_TYPES = 2
    url = reverse("admin:beacons_beacondefinition_changelist")
    assert "automatically registered event types is used up" not in admin_client.get(url).content.decode()
    BeaconDefinition.objects.bulk_create(
        [BeaconDefinition(slug=f"t{i}", name=f"t{i}", auto_registered=True) for i in range(2)]
    )
    html = admin_client.get(url).content.decode()
    assert "The budget of 2 automatically registered event types is used up" in html


def test_dashboard_lists_a_bounded_number_of_types_and_still_shows_any_one_asked_for(admin_client):
    from dashboard.views import TYPE_CHOICES_LIMIT

    BeaconDefinition.objects.bulk_create(
        [
            BeaconDefinition(slug=f"junk{i:04d}", name=f"Junk {i:04d}", auto_registered=True)
            for i in range(TYPE_CHOICES_LIMIT + 50)
        ]
    )
    html = admin_client.get(reverse("dashboard:index")).content.decode()
    assert html.count('<option value="junk') == TYPE_CHOICES_LIMIT - 2  # page views and errors come first
    assert 'value="page_view" selected' in html
    html = admin_client.get(reverse("dashboard:index"), {"type": "junk0249"}).content.decode()
    assert 'value="junk0249" selected' in html


def test_breakdown_stacks_the_busiest_types_and_sums_the_rest_as_other(admin_client):
    from datetime import UTC, datetime

    from beacons.counting.increments import Hit, increments_for
    from beacons.counting.sinks import get_sink
    from dashboard.views import BREAKDOWN_LIMIT

    now = datetime.now(UTC)
    definitions = BeaconDefinition.objects.bulk_create(
        [BeaconDefinition(slug=f"busy{i:02d}", name=f"Busy {i:02d}") for i in range(BREAKDOWN_LIMIT + 3)]
    )
    hits = [
        Hit(first_site().pk, d.pk, ("H", "D", "MO", "Y"), "x") for i, d in enumerate(definitions) for _ in range(i + 1)
    ]
    get_sink().add(increments_for(hits=hits, received_at=now))
    response = admin_client.get(reverse("dashboard:panel", args=["breakdown"]), {"format": "csv"})
    header = response.content.decode().splitlines()[0].split(",")
    busiest = [f"Busy {i:02d}" for i in range(3, BREAKDOWN_LIMIT + 3)]
    assert header[1:] == [*busiest, "Other types"]
    rows = [line.split(",") for line in response.content.decode().splitlines()[1:]]
    totals = [sum(int(row[column]) for row in rows) for column in range(1, len(header))]
    assert totals[-1] == 1 + 2 + 3  # the three quietest types
    assert totals[0] == 4 and totals[-2] == BREAKDOWN_LIMIT + 3


# --- items 2 and 3: nesting, NaN, rejected requests count nothing --------------------------


def test_meta_nested_up_to_the_limit_counts_and_one_deeper_gets_400_naming_meta(settings):
    assert settings.BEACONS_MAX_JSON_DEPTH == 8
    assert post_json({"event_type": "deep", "meta": nested(8)}).status_code == 204
    response = post_json({"event_type": "deep", "meta": nested(9)})
    assert response.status_code == 400
    assert response.json() == {"error": "meta is nested more than 8 levels deep", "field": "meta"}
    assert day_count("deep") == 1


@pytest.mark.parametrize("depth", [500, 900, 5000])
def test_very_deep_meta_is_refused_quickly_and_counts_nothing(depth):
    body = '{"event_type":"error","identifier":"/deep","meta":' + '{"a":' * depth + "1" + "}" * depth + "}"
    response = post_json(body)
    assert response.status_code == 400
    assert response.json()["field"] in {"meta", "body"}
    assert day_count("error") == 0 and not BeaconEvent.objects.exists()


def test_deep_field_in_a_batch_is_named_with_its_index():
    events = [{"event_type": "ok"}, {"event_type": "ok", "meta": {"x": nested(8)}}]
    response = post_json({"events": events})
    assert response.status_code == 400
    assert response.json()["field"] == "events[1].meta"
    assert day_count("ok") == 0


def test_deep_unknown_field_is_refused_too():
    response = post_json({"event_type": "ok", "extra": [[[[[[[[[[1]]]]]]]]]]})
    assert response.status_code == 400 and response.json()["field"] == "extra"


@pytest.mark.parametrize("meta", ["[" * 20_000, "[" * 20 + "]" * 20, '{"a":' * 50 + "1" + "}" * 50])
def test_form_encoded_deep_meta_gets_400_not_500(meta):
    from urllib.parse import urlencode

    body = urlencode({"event_type": "form_deep", "meta": meta})
    response = post_json(body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and response.json()["field"] == "meta"
    assert day_count("form_deep") == 0


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity", "1e999", "-1e400"])
def test_nan_and_infinity_are_refused_and_count_nothing(constant):
    body = '{"event_type":"error","identifier":"/nan","meta":{"message":"x","n":' + constant + "}}"
    response = post_json(body)
    assert response.status_code == 400
    assert response.json()["field"] == "body" and "not valid JSON" in response.json()["error"]
    assert day_count("error") == 0 and day_count("error", "/nan") == 0
    assert not BeaconEvent.objects.exists()


def test_nan_in_form_encoded_meta_is_refused():
    response = post_json('event_type=error&meta={"n":NaN}', content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and response.json() == {
        "error": "meta is not valid JSON: NaN is not a JSON number",
        "field": "meta",
    }
    assert day_count("error") == 0


def test_counters_are_not_written_when_the_single_events_cannot_be_stored(monkeypatch):
    from beacons.ingest import recording

    def refuse(**kwargs):
        raise DatabaseError("value out of range")

    monkeypatch.setattr(recording, "raw_events_keep", refuse)
    response = post_json({"event_type": "error", "identifier": "/x", "meta": {"message": "boom"}})
    assert response.status_code == 500
    assert day_count("error") == 0 and day_count("error", "/x") == 0


# --- item 2 and 14: error reports carry no client IP; a 500 is logged ----------------------


@pytest.fixture
def ingest_breaks(monkeypatch):
    from beacons.ingest import views

    def broken(*, events, context):
        raise RuntimeError("ingest broke")

    monkeypatch.setattr(views, "events_record", broken)


def test_error_mail_to_admins_carries_no_client_ip(settings, ingest_breaks):
    settings.ADMINS = [("Ops", "ops@example.com")]
    response = client(REMOTE_ADDR="203.0.113.77", HTTP_X_FORWARDED_FOR="198.51.100.23, 10.1.2.3").post(
        "/beacon", data={"event_type": "page_view"}, content_type="application/json"
    )
    assert response.status_code == 500
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    text = message.subject + message.body + "".join(str(content) for content, _ in getattr(message, "alternatives", []))
    assert "RuntimeError" in text and "ingest broke" in text
    for address in ["203.0.113.77", "198.51.100.23", "10.1.2.3"]:
        assert address not in text
    assert "REMOTE_ADDR = '[address removed]'" in message.body


@pytest.fixture
def console():
    """What the ``django`` logger's console handlers write (they hold the stderr of start-up)."""
    import logging
    from io import StringIO

    buffer = StringIO()
    handlers = [h for h in logging.getLogger("django").handlers if type(h) is logging.StreamHandler]
    previous = [h.setStream(buffer) for h in handlers]
    yield buffer
    for handler, stream in zip(handlers, previous):
        handler.setStream(stream)


def test_a_500_logs_its_traceback_to_the_console_without_the_ip(console, ingest_breaks):
    client(REMOTE_ADDR="203.0.113.78").post(
        "/beacon", data={"event_type": "page_view"}, content_type="application/json"
    )
    err = console.getvalue()
    assert "Internal Server Error: /beacon" in err
    assert "Traceback" in err and "RuntimeError: ingest broke" in err
    assert "203.0.113.78" not in err


def test_debug_error_page_carries_no_client_ip(settings, ingest_breaks):
    settings.DEBUG = True
    response = client(REMOTE_ADDR="203.0.113.79").post(
        "/beacon", data={"event_type": "page_view"}, content_type="application/json"
    )
    assert response.status_code == 500 and b"ingest broke" in response.content
    assert b"203.0.113.79" not in response.content


# --- item 9: per-network rate limit --------------------------------------------------------


@pytest.mark.parametrize(
    "addresses",
    [
        ["198.51.100.1", "198.51.100.2", "198.51.100.200"],
        ["2001:db8:1:2::1", "2001:db8:1:2:ffff::9", "2001:db8:1:2::abcd"],
    ],
)
def test_network_rate_limit_holds_when_user_agent_and_address_change(settings, addresses):
    settings.BEACONS_RATE_LIMIT = 600
    settings.BEACONS_NETWORK_RATE_LIMIT = 100
    answers = []
    for i, address in enumerate(addresses):
        response = Client(HTTP_USER_AGENT=f"{BROWSER_UA} r{i}", REMOTE_ADDR=address).post(
            "/beacon", data={"events": [{"event_type": "page_view"}] * 50}, content_type="application/json"
        )
        answers.append(response.status_code)
    assert answers == [204, 204, 429]
    assert response.json() == {"error": "more than 100 events a minute from one network", "field": "events"}
    assert day_count("page_view") == 100
    other = Client(HTTP_USER_AGENT=BROWSER_UA, REMOTE_ADDR="192.0.2.1").post(
        "/beacon", data={"event_type": "page_view"}, content_type="application/json"
    )
    assert other.status_code == 204


# --- item 10: the visitor key needs a secret the database does not hold ---------------------


def test_visitor_key_cannot_be_recomputed_from_the_stored_salt(settings):
    post_json({"event_type": "error", "meta": {"message": "m"}}, REMOTE_ADDR="127.0.0.1")
    stored = BeaconEvent.objects.get().visitor_key
    salt = DailySalt.objects.get().salt
    plain = hashlib.sha256(f"{salt}|127.0.0.1|{BROWSER_UA}".encode()).hexdigest()[:32]
    assert len(stored) == 32 and stored != plain

    from beacons.ingest.privacy import visitor_key

    settings.SECRET_KEY = "another-secret-key-for-this-test-only-0123456789"
    assert visitor_key(ip="127.0.0.1", user_agent=BROWSER_UA) != stored


def test_visitor_and_network_keys_are_djangos_salted_hmac_of_the_days_salt(settings):
    """The keys of a deploy before the key was derived once: a visitor mid-visit keeps the same key."""
    from django.utils.crypto import salted_hmac

    from beacons.ingest.privacy import network_key, salt_for_today, visitor_key

    salt = salt_for_today()
    for secret in ("first-secret-key-for-this-test-only-0123456789", "second-secret-key-for-this-test-only-987"):
        settings.SECRET_KEY = secret
        expected = salted_hmac("beacons.ingest.privacy.visitor_key", f"{salt}|192.0.2.7|UA é", algorithm="sha256")
        assert visitor_key(ip="192.0.2.7", user_agent="UA é") == expected.hexdigest()[:32]
        expected = salted_hmac("beacons.ingest.privacy.network_key", f"{salt}|192.0.2.0/24", algorithm="sha256")
        assert network_key(ip="192.0.2.7") == expected.hexdigest()[:32]


# --- item 12: chunked and truncated bodies -------------------------------------------------


def _raw_post(body: bytes, **environ):
    """POST with a hand-made WSGI input (and whatever CONTENT_LENGTH the caller gives)."""
    return client().generic(
        "POST", "/beacon", data=b"", content_type="application/json", **{"wsgi.input": BytesIO(body), **environ}
    )


def test_chunked_body_is_read_when_the_server_marks_its_end():
    body = json.dumps({"event_type": "page_view", "identifier": "/chunked"}).encode()
    response = _raw_post(body, HTTP_TRANSFER_ENCODING="chunked", **{"wsgi.input_terminated": True})
    assert response.status_code == 204
    assert day_count("page_view", "/chunked") == 1


def test_chunked_body_over_the_limit_gets_413(settings):
    settings.BEACONS_MAX_BODY_BYTES = 100
    body = json.dumps({"event_type": "page_view", "meta": {"pad": "x" * 500}}).encode()
    response = _raw_post(body, HTTP_TRANSFER_ENCODING="chunked", **{"wsgi.input_terminated": True})
    assert response.status_code == 413 and day_count("page_view") == 0


def test_chunked_body_on_a_server_that_cannot_mark_its_end_gets_411():
    body = json.dumps({"event_type": "page_view"}).encode()
    response = _raw_post(body, HTTP_TRANSFER_ENCODING="chunked")
    assert response.status_code == 411
    assert response.json()["field"] == "body" and "Content-Length" in response.json()["error"]
    assert day_count("page_view") == 0


def test_body_shorter_than_its_content_length_is_never_counted():
    body = json.dumps({"event_type": "page_view", "identifier": "/cut"}).encode()
    response = _raw_post(body, CONTENT_LENGTH=str(len(body) + 60))
    assert response.status_code == 400
    assert response.json() == {"error": "body ended before its Content-Length: nothing counted", "field": "body"}
    assert day_count("page_view") == 0


@pytest.mark.parametrize("length", ["-5", "abc"])
def test_content_length_that_is_not_a_length_gets_400(length):
    response = _raw_post(b'{"event_type":"page_view"}', CONTENT_LENGTH=length)
    assert response.status_code == 400 and day_count("page_view") == 0


# --- item 15: type names, origins, methods --------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/beacon/..", "/beacon/%2e%2e/x", "/beacon/..gif", "/beacon/.", "/beacon/-x", "/beacon/_x/1"]
)
def test_a_type_must_start_with_a_letter_or_digit(path):
    before = set(BeaconDefinition.objects.values_list("slug", flat=True))
    response = client().post(path)
    assert response.status_code in {400, 404, 405}
    assert set(BeaconDefinition.objects.values_list("slug", flat=True)) == before


def test_gif_with_a_dot_type_counts_nothing():
    before = BeaconDefinition.objects.count()
    response = client().get("/beacon/..gif")
    assert response.status_code == 400 and response.json()["field"] == "event_type"
    assert BeaconDefinition.objects.count() == before


@pytest.mark.parametrize(
    "origin",
    [
        "evil://127.0.0.1",
        "http://localhost:99999999",
        "ftp://localhost",
        "http://user@localhost",
        "null",
        "http://localhost/path",
        "http://[::1",
        "https://evil.example",
    ],
)
def test_origin_with_another_scheme_or_a_bad_port_is_refused(origin):
    response = post_json({"event_type": "page_view"}, HTTP_ORIGIN=origin)
    assert response.status_code == 403 and response.json()["field"] == "origin"
    assert day_count("page_view") == 0


def test_allowed_origins_compare_scheme_host_and_port(settings):
    settings.BEACONS_ALLOWED_ORIGINS = ["https://shop.example.com"]
    assert post_json({"event_type": "page_view"}, HTTP_ORIGIN="https://shop.example.com").status_code == 204
    assert post_json({"event_type": "page_view"}, HTTP_ORIGIN="https://SHOP.example.com:443").status_code == 204
    assert post_json({"event_type": "page_view"}, HTTP_ORIGIN="http://shop.example.com").status_code == 403
    assert post_json({"event_type": "page_view"}, HTTP_ORIGIN="https://shop.example.com:8443").status_code == 403
    assert post_json({"event_type": "page_view"}, HTTP_ORIGIN="http://[::1]:3000").status_code == 204  # ALLOWED_HOSTS
    assert day_count("page_view") == 3


@pytest.mark.parametrize("method", ["PUT", "DELETE", "POST", "PATCH"])
def test_other_methods_on_the_gif_get_405_json_even_with_csrf_checks(method):
    response = Client(enforce_csrf_checks=True, HTTP_USER_AGENT=BROWSER_UA).generic(method, "/beacon/email_open.gif")
    assert response.status_code == 405
    assert response.json() == {"error": "use GET for the image beacon", "field": "method"}
    assert not BeaconDefinition.objects.filter(slug="email_open").exists()


# --- item 12 with the real server: granian decodes chunked bodies; a client that gives up ----


@pytest.fixture(scope="module")
def granian(tmp_path_factory):
    """One granian worker over a migrated SQLite file of its own (the direct sink)."""
    from bench.servers import Server, manage

    folder = tmp_path_factory.mktemp("granian")
    url = f"sqlite:///{folder / 'db.sqlite3'}"
    manage("migrate", "--noinput", env={"DATABASE_URL": url})
    server = Server(
        env={"DATABASE_URL": url, "BEACONS_SINK": "direct", "ALLOWED_HOSTS": "127.0.0.1", "WEB_THREADS": "2"},
        workers=1,
        log_path=folder / "server.log",
    ).start()
    yield server, url
    server.stop()


def _exchange(server, head: bytes, body_parts: list[bytes], *, give_up: bool = False) -> bytes:
    import socket

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head)
        for part in body_parts:
            sock.sendall(part)
        if give_up:
            sock.shutdown(socket.SHUT_WR)
        answer = b""
        try:
            while b"\r\n\r\n" not in answer:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
        except (ConnectionResetError, TimeoutError):
            pass
        return answer


def _head(extra: str) -> bytes:
    return (
        f"POST /beacon HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: {BROWSER_UA}\r\n"
        f"Content-Type: application/json\r\nConnection: close\r\n{extra}\r\n"
    ).encode()


def test_granian_chunked_body_is_counted(granian):
    from bench.servers import hits_counted

    server, url = granian
    body = json.dumps({"event_type": "chunky", "identifier": "/c"}).encode()
    parts = [b"%x\r\n%s\r\n" % (len(piece), piece) for piece in (body[:10], body[10:])] + [b"0\r\n\r\n"]
    answer = _exchange(server, _head("Transfer-Encoding: chunked\r\n"), parts)
    assert answer.startswith(b"HTTP/1.1 204")
    assert hits_counted(url, "chunky") == 1


def test_granian_chunked_body_over_the_limit_gets_413(granian):
    from bench.servers import hits_counted

    server, url = granian
    body = json.dumps({"event_type": "chunky_big", "meta": {"pad": "x" * 70_000}}).encode()
    parts = [b"%x\r\n%s\r\n" % (len(body[i : i + 8192]), body[i : i + 8192]) for i in range(0, len(body), 8192)]
    answer = _exchange(server, _head("Transfer-Encoding: chunked\r\n"), [*parts, b"0\r\n\r\n"])
    assert answer.startswith(b"HTTP/1.1 413")
    assert hits_counted(url, "chunky_big") == 0


def test_granian_body_cut_short_by_the_client_is_not_counted(granian):
    import time

    from bench.servers import hits_counted

    server, url = granian
    body = json.dumps({"event_type": "cut_short"}).encode()
    answer = _exchange(server, _head(f"Content-Length: {len(body) + 60}\r\n"), [body], give_up=True)
    assert not answer.startswith(b"HTTP/1.1 204")
    time.sleep(0.5)
    assert hits_counted(url, "cut_short") == 0
    # The same body, whole, is counted (so the zero above is the truncation, not the type).
    assert _exchange(server, _head(f"Content-Length: {len(body)}\r\n"), [body]).startswith(b"HTTP/1.1 204")
    assert hits_counted(url, "cut_short") == 1


# --- the migration: types a flood left before the budget existed count against it ----------


def test_migration_marks_types_still_carrying_their_auto_registered_name():
    from importlib import import_module

    from django.apps import apps

    migration = import_module("beacons.migrations.0008_definition_budget_and_slug_rule")
    BeaconDefinition.objects.bulk_create(
        [
            BeaconDefinition(slug="download_click", name="Download click"),  # as auto-registration named it
            BeaconDefinition(slug="signup", name="Newsletter sign-ups"),  # renamed by staff
            BeaconDefinition(slug="search", name="Search", description="what visitors search for"),
        ]
    )
    migration.slugs_fix_and_mark_auto(apps, None)
    marked = set(BeaconDefinition.objects.filter(auto_registered=True).values_list("slug", flat=True))
    assert marked == {"download_click"}  # not page_view, error (migration names), signup or search


def test_a_request_that_failed_to_store_counts_when_retried_with_the_same_id(monkeypatch):
    from beacons.ingest import recording

    keep = recording.raw_events_keep

    def refuse(**kwargs):
        raise DatabaseError("value out of range")

    event = {"event_type": "error", "identifier": "/x", "id": "evt-1", "meta": {"message": "boom"}}
    monkeypatch.setattr(recording, "raw_events_keep", refuse)
    assert post_json(event).status_code == 500
    monkeypatch.setattr(recording, "raw_events_keep", keep)
    assert post_json(event).status_code == 204  # the retry is not a duplicate: the first counted nothing
    assert post_json(event).status_code == 204  # a real repeat is
    assert (day_count("error", "/x"), BeaconEvent.objects.count(), dropped(DroppedHits.Reason.DUPLICATE)) == (1, 1, 1)
