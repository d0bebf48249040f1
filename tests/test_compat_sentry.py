"""The Sentry endpoint (beacons.ingest.compat.sentry): envelopes and store bodies, auth, limits, grouping,
and the real Python ``sentry-sdk`` sending to a live server."""

import gzip
import json
import time
import tracemalloc
import urllib.error
import urllib.request
import uuid
import zlib

import pytest
import sentry_sdk
from django.db import OperationalError, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import include, path, reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from beacons.counting import sinks
from beacons.errors import alerts
from beacons.errors.grouping import error_signature
from beacons.ingest.compat.sentry import beacon_of, envelope_split
from beacons.ingest.parsing import events_from_data
from beacons.models import BeaconEvent, ErrorGroup, Site

from .conftest import BROWSER_UA, FastPathClient, first_site

KEY = "0123456789abcdef0123456789abcdef"
PROJECT = 4242
ENVELOPE = f"/api/{PROJECT}/envelope/"
STORE = f"/api/{PROJECT}/store/"
AUTH = f"Sentry sentry_version=7, sentry_client=sentry.javascript.browser/11.12.0, sentry_key={KEY}"
SHOP_ORIGIN = "https://shop.example"
WAIT_SECONDS = 10


@pytest.fixture(autouse=True)
def _alerts_sent_before_the_next_test(settings):
    settings.BEACONS_ALERT_EMAILS = ["oncall@example.com"]
    yield
    alerts.alerts_wait()
    alerts.alerts_retries_cancel()


@pytest.fixture
def shop(db) -> Site:
    """The first site, taking Sentry project PROJECT with key KEY."""
    site = first_site()
    site.domain, site.sentry_project_id, site.sentry_public_key = "shop.example", PROJECT, KEY
    site.save()
    return site


@pytest.fixture(params=["django path", "fast path"])
def client(request) -> Client:
    """A client with a browser's user agent; each test runs through Django's full request path and
    through the ingest fast path the served application takes."""
    client_class = FastPathClient if request.param == "fast path" else Client
    return client_class(HTTP_USER_AGENT=BROWSER_UA)


def sentry_event(
    message="Cannot read properties of undefined (reading 'total')",
    *,
    kind="TypeError",
    function="renderCart",
    line=41,
    library_frames=(),
    **fields,
) -> dict:
    """A browser SDK's error event: the exception's frames oldest call first, the throwing one last."""
    frames = [
        {"filename": "https://shop.example/static/app.3f9a8c7d.js", "function": "?", "lineno": 1, "colno": 200},
        {
            "filename": "https://shop.example/static/app.3f9a8c7d.js",
            "function": function,
            "lineno": line,
            "colno": 7,
            "in_app": True,
        },
        *({"filename": f"https://cdn.example/{name}.js", "function": name, "in_app": False} for name in library_frames),
    ]
    return {
        "event_id": uuid.uuid4().hex,
        "platform": "javascript",
        "level": "error",
        "exception": {"values": [{"type": kind, "value": message, "stacktrace": {"frames": frames}}]},
        "request": {"url": "https://shop.example/checkout?step=2", "headers": {"User-Agent": BROWSER_UA}},
        "release": "shop@1.4.0",
        "environment": "production",
        "tags": {"area": "cart"},
        "contexts": {"browser": {"name": "Chrome", "version": "131.0"}, "os": {"name": "Linux"}},
        **fields,
    }


def envelope(*items: tuple[dict, bytes | dict], header: dict | None = None) -> bytes:
    """An envelope of (item header, payload) pairs; a dict payload is sent as JSON, with its length."""
    lines = [json.dumps(header if header is not None else {"event_id": uuid.uuid4().hex}).encode()]
    for item, payload in items:
        body = json.dumps(payload).encode() if isinstance(payload, dict) else payload
        lines += [json.dumps({"length": len(body), **item}).encode(), body]
    return b"\n".join(lines) + b"\n"


def event_envelope(event: dict) -> bytes:
    return envelope(({"type": "event"}, event), header={"event_id": event["event_id"]})


def post(client, url=ENVELOPE, body=b"", *, auth=AUTH, content_type="application/x-sentry-envelope", **headers):
    if auth:
        headers["HTTP_X_SENTRY_AUTH"] = auth
    return client.post(url, data=body, content_type=content_type, **headers)


def database_down(*args, **kwargs):
    raise OperationalError("could not connect to server: Connection refused")


def groups(site=None) -> list[ErrorGroup]:
    return list(ErrorGroup.objects.filter(site=site or first_site()).order_by("pk"))


# --- what arrives --------------------------------------------------------------------------------


def test_an_envelope_event_becomes_an_error_of_the_projects_site(client, shop):
    event = sentry_event()
    response = post(client, body=event_envelope(event))

    assert response.status_code == 200
    assert response.json() == {"id": event["event_id"]}
    [group] = groups(shop)
    assert group.title == "TypeError: Cannot read properties of undefined (reading <str>)"
    assert group.message == "TypeError: Cannot read properties of undefined (reading 'total')"
    assert group.culprit == "renderCart (/static/app.<hash>.js)"
    [kept] = BeaconEvent.objects.filter(error_group=group)
    assert kept.identifier == "/checkout"
    assert kept.source == "sentry"
    assert kept.user_agent == BROWSER_UA
    assert kept.payload["id"] == event["event_id"]
    meta = kept.payload["meta"]
    assert meta["stack"] == (
        "    at renderCart (https://shop.example/static/app.3f9a8c7d.js:41:7)\n"
        "    at https://shop.example/static/app.3f9a8c7d.js:1:200"
    )
    assert (meta["source"], meta["line"], meta["col"]) == ("https://shop.example/static/app.3f9a8c7d.js", 41, 7)
    assert meta["release"] == "shop@1.4.0"
    assert meta["environment"] == "production"
    assert meta["level"] == "error"
    assert meta["tags"] == {"area": "cart"}
    assert meta["contexts"] == {"browser": "Chrome 131.0", "os": "Linux"}


def test_it_joins_the_group_of_the_same_error_sent_by_beacon_js(client, shop):
    beacon = {
        "event_type": "error",
        "identifier": "/checkout",
        "site": "shop.example",
        "meta": {
            "message": "Uncaught TypeError: Cannot read properties of undefined (reading 'total')",
            "stack": "TypeError: Cannot read properties of undefined (reading 'total')\n"
            "    at renderCart (https://shop.example/static/app.3f9a8c7d.js:41:7)",
        },
    }
    client.post("/beacon", data=json.dumps(beacon), content_type="application/json")
    post(client, body=event_envelope(sentry_event()))

    [group] = groups(shop)
    assert group.count == 2


def test_a_store_body_is_one_event_and_an_event_without_an_id_gets_one(client, shop):
    event = sentry_event()
    del event["event_id"]
    response = post(client, STORE, json.dumps(event).encode(), content_type="application/json")

    assert response.status_code == 200
    assert len(response.json()["id"]) == 32
    assert groups(shop)[0].count == 1


def test_the_key_may_come_from_the_query_or_the_envelope_headers_dsn(client, shop):
    event = sentry_event()
    by_query = post(client, f"{ENVELOPE}?sentry_key={KEY}&sentry_version=7", event_envelope(event), auth="")
    dsn_header = {"event_id": uuid.uuid4().hex, "dsn": f"https://{KEY}@beacons.example/{PROJECT}"}
    by_dsn = post(client, body=envelope(({"type": "event"}, sentry_event()), header=dsn_header), auth="")

    assert (by_query.status_code, by_dsn.status_code) == (200, 200)
    assert groups(shop)[0].count == 2


def test_a_message_event_is_grouped_by_its_masked_message(client, shop):
    for order in (7, 8):
        event = {"event_id": uuid.uuid4().hex, "level": "warning", "logentry": {"formatted": f"Order {order} slow"}}
        post(client, body=event_envelope(event))

    [group] = groups(shop)
    assert (group.title, group.message, group.count) == ("Order <num> slow", "Order 8 slow", 2)
    assert BeaconEvent.objects.filter(error_group=group).first().payload["meta"]["level"] == "warning"


def test_an_envelope_without_an_id_in_its_header_is_answered_with_its_events_id(client, shop):
    event = sentry_event()
    response = post(client, body=envelope(({"type": "event"}, event), header={}))

    assert response.json() == {"id": event["event_id"]}


def test_an_event_item_without_an_id_is_answered_with_the_id_its_envelope_header_names(client, shop):
    event = sentry_event()
    header_id = event.pop("event_id")
    response = post(client, body=envelope(({"type": "event"}, event), header={"event_id": header_id}))

    assert response.json() == {"id": header_id}


def test_a_log_entry_without_a_formatted_text_is_titled_by_its_message(client, shop):
    event = {"event_id": uuid.uuid4().hex, "logentry": {"message": "Queue %s stalled", "params": ["mail"]}}
    post(client, body=event_envelope(event))

    assert [group.title for group in groups(shop)] == ["Queue %s stalled"]


def test_a_store_body_that_is_no_event_is_400_saying_so(client, shop):
    response = post(client, STORE, b"{not json", content_type="application/json")

    assert (response.status_code, response.json()) == (400, {"detail": "event is not valid JSON"})


def test_a_server_sdks_event_counts_the_browser_it_served_and_the_transaction_names_it(client, shop):
    firefox = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
    event = sentry_event(request={"headers": [["user-agent", firefox]]}, transaction="/orders/{id}/")
    post(client, body=event_envelope(event), HTTP_USER_AGENT="sentry.python/2.75.0")

    kept = BeaconEvent.objects.get()
    assert (kept.user_agent, kept.identifier) == (firefox, "/orders/{id}/")


def test_a_retried_event_counts_once(client, shop):
    body = event_envelope(sentry_event())
    assert [post(client, body=body).status_code for _ in range(2)] == [200, 200]

    assert groups(shop)[0].count == 1


def test_a_crawlers_errors_are_answered_and_not_counted(client, shop):
    crawler = sentry_event(request={"url": "https://shop.example/", "headers": {"User-Agent": "Googlebot/2.1"}})
    response = post(client, body=event_envelope(crawler), HTTP_USER_AGENT="Googlebot/2.1")

    assert response.status_code == 200
    assert groups(shop) == []


# --- grouping ------------------------------------------------------------------------------------


def test_the_same_type_and_top_in_app_frame_group_together_whatever_the_line_ids_and_library_frames(client, shop):
    post(client, body=event_envelope(sentry_event("Order 41 not found", kind="NotFound", line=10)))
    post(client, body=event_envelope(sentry_event("Order 977 not found", kind="NotFound", line=12)))
    post(
        client,
        body=event_envelope(sentry_event("Order 3 not found", kind="NotFound", library_frames=("react", "lodash"))),
    )

    [group] = groups(shop)
    assert (group.title, group.culprit, group.count) == (
        "NotFound: Order <num> not found",
        "renderCart (/static/app.<hash>.js)",
        3,
    )
    stack = BeaconEvent.objects.filter(error_group=group).last().payload["meta"]["stack"]
    assert stack.startswith("    at renderCart (") and stack.endswith("(2 frames outside the app left out)")


@pytest.mark.parametrize(
    "other",
    [
        sentry_event("Order 41 not found", kind="Gone"),  # another type
        sentry_event("Order 41 not found", kind="NotFound", function="renderTotals"),  # another function
    ],
    ids=["type", "function"],
)
def test_another_type_or_top_frame_is_another_group(client, shop, other):
    post(client, body=event_envelope(sentry_event("Order 41 not found", kind="NotFound")))
    post(client, body=event_envelope(other))

    assert len(groups(shop)) == 2


def test_a_fingerprint_groups_different_errors_together(client, shop):
    post(client, body=event_envelope(sentry_event("Payment declined", kind="CardError", fingerprint=["payments"])))
    post(client, body=event_envelope(sentry_event("x is undefined", function="pay", fingerprint=["payments"])))

    [group] = groups(shop)
    assert group.count == 2
    assert BeaconEvent.objects.filter(error_group=group).first().payload["meta"]["fingerprint"] == ["payments"]


def test_the_default_fingerprint_is_the_default_grouping_and_can_be_extended(client, shop):
    post(client, body=event_envelope(sentry_event(fingerprint=["{{ default }}"])))
    post(client, body=event_envelope(sentry_event()))
    post(client, body=event_envelope(sentry_event(fingerprint=["{{ default }}", "eu"])))
    post(client, body=event_envelope(sentry_event(fingerprint=["{{default}}", "us"])))
    post(client, body=event_envelope(sentry_event("Other", fingerprint=["{{ default }}", "us"])))

    assert sorted(group.count for group in groups(shop)) == [1, 1, 1, 2]


# --- what is dropped, refused or cut --------------------------------------------------------------


def test_items_other_than_events_are_accepted_and_dropped(client, shop):
    attachment = b"line one\nline two\n"
    body = envelope(
        ({"type": "session"}, {"sid": uuid.uuid4().hex, "status": "ok"}),
        ({"type": "transaction"}, {"type": "transaction", "transaction": "/checkout"}),
        ({"type": "client_report"}, {"discarded_events": []}),
        ({"type": "attachment", "filename": "log.txt"}, attachment),
        ({"type": "replay_recording"}, b"\x00\x01binary"),
    )
    response = post(client, body=body)

    assert response.status_code == 200
    assert BeaconEvent.objects.count() == 0
    with_event = envelope(({"type": "attachment"}, attachment), ({"type": "event"}, sentry_event()))
    assert post(client, body=with_event).status_code == 200
    assert BeaconEvent.objects.count() == 1


def test_blank_lines_between_and_after_items_are_passed_over(client, shop):
    event = json.dumps(sentry_event()).encode()
    body = b'{}\n\n{"type":"session"}\n{"sid":"x"}\n\n\n{"type":"event"}\n' + event + b"\n\n"

    assert post(client, body=body).status_code == 200
    assert len(groups(shop)) == 1


def test_items_without_a_length_end_at_the_newline(client, shop):
    event = json.dumps(sentry_event()).encode()
    body = b'{}\n{"type":"session"}\n{"sid":"x"}\n{"type":"event"}\n' + event

    assert post(client, body=body).status_code == 200
    assert len(groups(shop)) == 1


@pytest.mark.parametrize(
    ("url", "auth", "query"),
    [
        (ENVELOPE, AUTH.replace(KEY, "f" * 32), ""),
        (ENVELOPE, "", f"?sentry_key={'f' * 32}"),
        (ENVELOPE, "", ""),
        (STORE, "", ""),
        ("/api/99/envelope/", AUTH, ""),
        ("/api/99/store/", AUTH, ""),
    ],
    ids=["wrong key", "wrong query key", "no key", "store without key", "unknown project", "unknown project store"],
)
def test_a_wrong_or_missing_key_or_an_unknown_project_is_401(client, shop, url, auth, query):
    response = post(client, url + query, event_envelope(sentry_event()), auth=auth)

    assert response.status_code == 401
    assert set(response.json()) == {"detail"}
    assert BeaconEvent.objects.count() == 0


def test_a_project_without_a_key_takes_nothing(client, shop):
    shop.sentry_public_key = ""
    shop.save()

    assert post(client, body=event_envelope(sentry_event())).status_code == 401


def test_a_switched_off_site_is_refused(client, shop):
    shop.is_active = False
    shop.save()

    assert post(client, body=event_envelope(sentry_event())).status_code == 403


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw deflate"])
def test_compressed_bodies_are_read(client, shop, encoding):
    body = event_envelope(sentry_event())
    compressed = {
        "gzip": gzip.compress,
        "deflate": zlib.compress,
        "raw deflate": lambda data: zlib.compress(data, wbits=-zlib.MAX_WBITS),
    }[encoding](body)
    response = post(client, body=compressed, HTTP_CONTENT_ENCODING=encoding.split()[-1])

    assert response.status_code == 200
    assert len(groups(shop)) == 1


def test_an_oversize_body_is_413(client, shop, settings):
    settings.BEACONS_MAX_BODY_BYTES = 4096
    event = sentry_event(extra={"blob": "x" * 5000})

    assert post(client, body=event_envelope(event)).status_code == 413
    assert post(client, body=gzip.compress(event_envelope(event)), HTTP_CONTENT_ENCODING="gzip").status_code == 413
    assert BeaconEvent.objects.count() == 0


def test_a_gzip_bomb_is_413_without_being_inflated(client, shop):
    bomb = gzip.compress(b"\n" * 50_000_000, compresslevel=9)  # 50 MB in 49 KB: under the body limit
    assert len(bomb) < 65536
    tracemalloc.start()
    try:
        response = post(client, body=bomb, HTTP_CONTENT_ENCODING="gzip")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert response.status_code == 413
    assert peak < 5_000_000


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\n{}\n",  # the header is the first line
        b"not json\n",
        b"[]\n",
        b'{}\n{"type":"event","length":999}\n{}',
        b'{}\n{"type":"event","length":-1}\n{}',
        b'{}\n{"type":"event","length":"2"}\n{}',
        b'{}\n{"type":"event","length":true}\n{}',
        b'{}\n{"length":2}\n{}',
        b"{}\nnot a header\n{}",
        b'{}\n{"type":"event"}\nnot json',
        b'{}\n{"type":"event"}\n[1, 2]',
        b'{}\n{"type":"event"}\n{"message": NaN}',
        b'{}\n{"type":"event"}\n\xff\xfe',
        b"{}\n" + b'{"type":"session"}\n{}\n' * 101,
        b'{}\n{"type":"event"}\n' + b"[" * 10_000 + b"]" * 10_000,
    ],
)
def test_a_malformed_envelope_is_400(client, shop, body):
    response = post(client, body=body)

    assert response.status_code == 400, response.content
    assert "detail" in response.json()
    assert BeaconEvent.objects.count() == 0


@pytest.mark.parametrize(
    "body", [gzip.compress(b"{}\n")[:-5], gzip.compress(b"{}\n") + b"tail", b"plain"], ids=["cut", "tail", "plain"]
)
def test_a_broken_gzip_body_is_400(client, shop, body):
    assert post(client, body=body, HTTP_CONTENT_ENCODING="gzip").status_code == 400


@pytest.mark.parametrize(
    ("body", "detail"),
    [(b"x\x9c", "compressed body is cut short"), (b"\x88\x1c", "body is not valid for its Content-Encoding")],
    ids=["a zlib header alone", "a header naming a window zlib refuses"],
)
def test_a_two_byte_deflate_body_is_400_saying_what_is_wrong(client, shop, body, detail):
    response = post(client, body=body, HTTP_CONTENT_ENCODING="deflate")

    assert response.status_code == 400
    assert response.json()["detail"].startswith(detail)


def test_an_encoding_not_read_here_is_415(client, shop):
    response = post(client, body=b"{}\n", HTTP_CONTENT_ENCODING="br")

    assert response.status_code == 415
    assert "gzip" in response.json()["detail"]


def test_the_kept_meta_is_cut_to_the_limit_keeping_the_top_frame_first(client, shop, settings):
    frames = [{"filename": f"https://shop.example/{n}.js", "function": f"f{n}", "lineno": n} for n in range(40)]
    huge = sentry_event("é" * 3000, release="r" * 1000, fingerprint=["p" * 500] * 30)
    many_tags = sentry_event(tags={f"tag{n}": "v" * 300 for n in range(50)})
    for event in (huge, many_tags):
        event["exception"]["values"][0]["stacktrace"]["frames"] = frames
        assert post(client, body=event_envelope(event)).status_code == 200

    huge_meta, many_tags_meta = (event.payload["meta"] for event in BeaconEvent.objects.order_by("pk"))
    for meta in (huge_meta, many_tags_meta):
        size = len(json.dumps(meta, separators=(",", ":"), ensure_ascii=False).encode())
        assert size <= settings.BEACONS_MAX_META_BYTES
        assert meta["stack"].startswith("    at f39 (https://shop.example/39.js:39)")
    assert many_tags_meta["stack"].count("\n") > 3
    assert len(huge_meta["message"]) == 500
    assert len(huge_meta["release"]) == 200
    assert len(huge_meta["fingerprint"]) == 8
    assert 0 < len(many_tags_meta["tags"]) < 50


def test_only_the_innermost_50_frames_of_a_deep_stack_are_read():
    frames = [{"filename": "a.js", "function": f"f{n}", "lineno": n} for n in range(80)]  # f79 threw
    event = {"exception": {"values": [{"type": "RangeError", "value": "too deep", "stacktrace": {"frames": frames}}]}}

    lines = beacon_of(event)["meta"]["stack"].split("\n")

    assert (len(lines), lines[0], lines[-1]) == (50, "    at f79 (a.js:79)", "    at f30 (a.js:30)")


def test_tag_keys_levels_and_fingerprint_parts_are_cut_to_sentrys_lengths():
    event = {"message": "x", "level": "l" * 40, "tags": {"k" * 40: "v" * 250}, "fingerprint": ["p" * 100, "q"]}

    meta = beacon_of(event)["meta"]

    assert meta["tags"] == {"k" * 32: "v" * 200}
    assert meta["level"] == "l" * 32
    assert meta["fingerprint"] == ["p" * 64, "q"]


@pytest.mark.parametrize(("last", "kept"), [(71, 5), (72, 4)], ids=["512 bytes", "513 bytes"])
def test_tags_are_kept_while_they_fit_in_512_bytes(last, kept):
    tags = {f"t{n}": "v" * 100 for n in range(4)} | {"t4": "v" * last}
    size = len(json.dumps(tags, separators=(",", ":")))
    assert size == 441 + last

    meta = beacon_of({"message": "x", "tags": tags})["meta"]

    assert list(meta["tags"]) == list(tags)[:kept]


def test_the_browser_os_runtime_and_device_contexts_are_kept_by_name_and_version():
    contexts = {
        "browser": {"name": "Chrome", "version": "131.0"},
        "os": {"name": "Android", "version": "14"},
        "runtime": {"name": "CPython", "version": "3.12.4"},
        "device": {"name": "Pixel 8"},
        "gpu": {"name": "Adreno", "version": "740"},
    }

    meta = beacon_of({"message": "x", "contexts": contexts})["meta"]

    assert meta["contexts"] == {
        "browser": "Chrome 131.0",
        "os": "Android 14",
        "runtime": "CPython 3.12.4",
        "device": "Pixel 8",
    }


def test_a_stack_that_just_fits_the_meta_is_kept_whole_and_one_byte_less_cuts_its_last_frame(settings):
    frames = [{"filename": "app.js", "function": f"step{n}", "lineno": n} for n in range(3)]
    event = {"exception": {"values": [{"type": "Error", "value": "no", "stacktrace": {"frames": frames}}]}}
    whole = beacon_of(event)["meta"]
    settings.BEACONS_MAX_META_BYTES = len(json.dumps(whole, separators=(",", ":"), ensure_ascii=False).encode())

    assert beacon_of(event)["meta"] == whole
    settings.BEACONS_MAX_META_BYTES -= 1
    assert beacon_of(event)["meta"] == whole | {"stack": "    at step2 (app.js:2)\n    at step1 (app.js:1)"}


@pytest.mark.parametrize("room", [100, 101])  # bytes of text: 50 "é" (2 bytes each) either way
def test_a_text_over_the_room_left_keeps_the_longest_start_that_fits_and_what_has_no_room_is_left_out(settings, room):
    settings.BEACONS_MAX_META_BYTES = len('{"message":""}') + room

    meta = beacon_of({"message": "é" * 200, "release": "shop@1.4.0"})["meta"]

    assert meta == {"message": "é" * 50}


def test_odd_shapes_of_every_field_are_left_out_not_refused(client, shop):
    event = {
        "event_id": "not an id",
        "exception": [{"type": 3, "value": None, "stacktrace": {"frames": [None, {"lineno": True, "in_app": 1}]}}],
        "request": {"url": "http://[bad", "headers": "none"},
        "tags": [["ok", "yes"], ["bad"], 5],
        "contexts": {"browser": "Chrome"},
        "fingerprint": "not a list",
        "release": {"version": 1},
        "level": ["error"],
    }
    response = post(client, STORE, json.dumps(event).encode())

    assert response.status_code == 200
    assert BeaconEvent.objects.get().payload["meta"] == {
        "message": "3",
        "stack": "    at <anonymous>",
        "tags": {"ok": "yes"},
    }


def test_the_endpoints_are_404_when_switched_off(client, shop, settings):
    settings.BEACONS_COMPAT = ["plausible"]

    assert post(client, body=event_envelope(sentry_event())).status_code == 404
    assert post(client, STORE, json.dumps(sentry_event()).encode()).status_code == 404


def test_ingest_switched_off_answers_without_counting(client, shop, settings):
    settings.BEACONS_ENABLED = False

    assert post(client, body=event_envelope(sentry_event())).status_code == 204
    assert BeaconEvent.objects.count() == 0


def test_storage_down_is_503_with_a_retry_after(client, shop, monkeypatch):
    monkeypatch.setattr(sinks, "aggregates_add", database_down)
    response = post(client, body=event_envelope(sentry_event()))

    assert (response.status_code, response["Retry-After"]) == (503, "5")


def test_a_rate_limited_sender_is_told_when_to_retry(client, shop, settings):
    settings.BEACONS_RATE_LIMIT = 1
    post(client, body=event_envelope(sentry_event()))
    response = post(client, body=event_envelope(sentry_event()))

    assert response.status_code == 429
    assert response["Retry-After"] == "60"


# --- CORS ---------------------------------------------------------------------------------------


def test_the_browser_sdks_preflight_and_post_from_the_sites_origin_are_allowed(client, shop):
    preflight = client.options(ENVELOPE, HTTP_ORIGIN=SHOP_ORIGIN, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    response = post(client, f"{ENVELOPE}?sentry_key={KEY}", event_envelope(sentry_event()), HTTP_ORIGIN=SHOP_ORIGIN)

    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == SHOP_ORIGIN
    assert "X-Sentry-Auth" in preflight["Access-Control-Allow-Headers"]
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == SHOP_ORIGIN
    assert "X-Sentry-Rate-Limits" in response["Access-Control-Expose-Headers"]


def test_a_preflight_from_a_foreign_origin_is_refused_allowing_nothing(client, shop):
    response = client.options(
        ENVELOPE,
        HTTP_ORIGIN="https://evil.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type,x-sentry-auth",
    )

    assert response.status_code == 403
    assert "Access-Control-Allow-Headers" not in response
    assert "Access-Control-Allow-Origin" not in response


def test_an_origin_of_another_site_is_403(client, shop):
    Site.objects.create(domain="blog.example", name="Blog")
    response = post(client, body=event_envelope(sentry_event()), HTTP_ORIGIN="https://blog.example")

    assert response.status_code == 403
    assert BeaconEvent.objects.count() == 0


# --- fuzzing ------------------------------------------------------------------------------------

any_text = st.text(alphabet=st.characters(categories=["Cs", "Cc", "Ll", "Lo", "Nd", "P", "S", "Zs"]), max_size=80)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=20,
)
frame_like = st.fixed_dictionaries(
    {},
    optional={
        name: json_values for name in ("filename", "abs_path", "module", "function", "lineno", "colno", "in_app")
    },
)
event_like = st.fixed_dictionaries(
    {},
    optional={
        "event_id": st.uuids().map(lambda u: u.hex) | json_values,
        "exception": st.fixed_dictionaries(
            {
                "values": st.lists(
                    st.fixed_dictionaries(
                        {},
                        optional={
                            "type": json_values,
                            "value": json_values,
                            "stacktrace": st.fixed_dictionaries({"frames": st.lists(frame_like, max_size=5)})
                            | json_values,
                        },
                    ),
                    max_size=3,
                )
                | json_values
            }
        )
        | json_values,
        **{
            name: json_values
            for name in (
                "message",
                "logentry",
                "level",
                "release",
                "environment",
                "tags",
                "request",
                "contexts",
                "fingerprint",
                "transaction",
                "culprit",
                "threads",
            )
        },
    },
)
item_types = st.sampled_from(["event", "session", "transaction", "attachment", "client_report"]) | json_values


@st.composite
def envelopes(draw) -> bytes:
    lines = [json.dumps(draw(st.dictionaries(any_text, json_values, max_size=3))).encode()]
    for _ in range(draw(st.integers(0, 4))):
        payload = json.dumps(draw(event_like)).encode() if draw(st.booleans()) else draw(st.binary(max_size=40))
        header = {"type": draw(item_types)}
        if draw(st.booleans()):
            header["length"] = draw(st.sampled_from([len(payload), len(payload) + 1, 0]) | json_values)
        lines += [json.dumps(header).encode(), payload]
    return b"\n".join(lines)


@hypothesis_settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    body=st.binary(max_size=400) | envelopes() | event_like.map(lambda event: event_envelope({"event_id": 1, **event})),
    encoding=st.sampled_from(["", "", "gzip", "deflate", "br", "gzip, br"]),
    url=st.sampled_from([ENVELOPE, STORE]),
)
def test_no_body_ever_gets_a_500(client, shop, settings, body, encoding, url):
    settings.BEACONS_RATE_LIMIT = settings.BEACONS_NETWORK_RATE_LIMIT = 0
    if url == STORE and body.count(b"\n") >= 2:
        body = body.split(b"\n")[2]  # an envelope's first payload: an event, most of the time
    if encoding == "gzip":
        body = gzip.compress(body)
    elif encoding == "deflate":
        body = zlib.compress(body)
    response = post(client, url, body, HTTP_CONTENT_ENCODING=encoding)

    assert response.status_code in (200, 400, 415), response.content


@hypothesis_settings(max_examples=500, deadline=None)
@given(event=event_like, long=st.none() | st.text(max_size=3000))
def test_any_event_becomes_a_beacon_that_ingest_accepts(event, long):
    if long is not None:
        event = {**event, "message": long, "release": long, "transaction": long, "fingerprint": [long, "x"]}
    beacon = beacon_of(event)

    [parsed] = events_from_data({"events": [beacon]})  # raises Rejected for a meta over its size or depth
    assert parsed.event_type == "error"
    assert error_signature(meta=parsed.meta).fingerprint


def test_envelope_split_keeps_binary_payloads_with_newlines():
    header, items = envelope_split(b'{"a":1}\n{"type":"attachment","length":5}\na\nb\n\n{"type":"x"}\nrest')

    assert header == {"a": 1}
    assert items == [({"type": "attachment", "length": 5}, b"a\nb\n\n"), ({"type": "x"}, b"rest")]


def test_an_envelope_costs_the_queries_of_a_beacon_js_error_and_none_more(client, shop):
    beacon = {"event_type": "error", "identifier": "/checkout", "site": "shop.example", "meta": {"message": "x"}}

    def send_beacon():
        client.post("/beacon", data=json.dumps(beacon), content_type="application/json")

    def send_envelope():
        post(client, body=event_envelope(sentry_event()))

    send_beacon(), send_envelope()  # the sites, the project and the event types are read once a process
    with CaptureQueriesContext(connection) as by_beacon:
        send_beacon()
    with CaptureQueriesContext(connection) as by_envelope:
        send_envelope()

    assert len(by_envelope) == len(by_beacon)


# --- the dashboard ------------------------------------------------------------------------------


def test_sentry_errors_are_listed_on_the_dashboard(client, shop, make_staff):
    post(client, body=event_envelope(sentry_event("Order 12 failed", kind="CheckoutError")))
    staff = Client()
    staff.force_login(make_staff("ops", is_superuser=True))
    response = staff.get(reverse("dashboard:errors"), {"site": "shop.example"})

    assert response.status_code == 200
    assert "CheckoutError: Order 12 failed" in response.content.decode()
    detail = staff.get(reverse("dashboard:error_detail", args=[groups(shop)[0].pk]), {"site": "shop.example"})
    assert "renderCart (https://shop.example/static/app.3f9a8c7d.js:41:7)" in detail.content.decode()


# --- the real Python SDK ------------------------------------------------------------------------


def boom(request):
    raise ZeroDivisionError("checkout total 0 of 3 items")


urlpatterns = [path("boom/", boom), path("", include("beacon_site.urls"))]


class CheckoutFailed(Exception):
    pass


def checkout(order: int) -> None:
    raise CheckoutFailed(f"order {order} could not be paid")


@pytest.fixture
def sentry_sdk_live(live_server, transactional_db):
    """``init(**options)``: the real sentry_sdk sending to the live server, shut down after the test."""
    site = first_site()
    site.sentry_project_id, site.sentry_public_key = PROJECT, KEY
    site.save()
    host = live_server.url.split("://", 1)[1]

    def init(**options):
        return sentry_sdk.init(dsn=f"http://{KEY}@{host}/{PROJECT}", release="shop@2.0.0", **options)

    yield init
    client = sentry_sdk.get_client()
    transport = client.transport
    client.close()  # flushes
    sentry_sdk.get_global_scope().set_client(None)  # so nothing patched by the integrations sends again
    # The SDK keeps its connection to the live server open, and with it a server thread that holds a
    # database connection: PostgreSQL would refuse to drop the test database at the end of the run.
    if transport is not None:
        transport._pool.clear()


def wait_until(predicate, what: str):
    deadline = time.monotonic() + WAIT_SECONDS
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {WAIT_SECONDS}s waiting for {what}")
        time.sleep(0.05)


def test_python_sdk_exceptions_and_messages_arrive(sentry_sdk_live):
    sentry_sdk_live(environment="staging", auto_enabling_integrations=False)
    sentry_sdk.set_tag("shard", "eu-1")
    for order in (41, 42):
        try:
            checkout(order)
        except CheckoutFailed as error:
            sentry_sdk.capture_exception(error)
    sentry_sdk.capture_message("Stock for item 9 is low")
    sentry_sdk.flush()

    wait_until(lambda: len(groups()) == 2, "two groups")
    by_title = {group.title: group for group in groups()}
    raised = by_title["CheckoutFailed: order <num> could not be paid"]
    assert raised.count == 2
    assert raised.message == "CheckoutFailed: order 42 could not be paid"
    assert raised.culprit == "checkout (tests/test_compat_sentry.py)"
    assert by_title["Stock for item <num> is low"].count == 1
    meta = BeaconEvent.objects.filter(error_group=raised).last().payload["meta"]
    assert (meta["release"], meta["environment"], meta["tags"]) == ("shop@2.0.0", "staging", {"shard": "eu-1"})
    assert meta["platform"] == "python"
    assert meta["stack"].startswith("    at checkout (tests/test_compat_sentry.py:")
    assert meta["contexts"]["runtime"].startswith("CPython 3.")


def test_python_sdks_django_integration_reports_a_view_that_raises(sentry_sdk_live, live_server, settings):
    from sentry_sdk.integrations.django import DjangoIntegration

    settings.ROOT_URLCONF = __name__
    settings.DEBUG_PROPAGATE_EXCEPTIONS = False
    sentry_sdk_live(integrations=[DjangoIntegration()])
    request = urllib.request.Request(f"{live_server.url}/boom/?order=5", headers={"User-Agent": BROWSER_UA})
    with pytest.raises(urllib.error.HTTPError) as failed:
        urllib.request.urlopen(request, timeout=WAIT_SECONDS)
    assert failed.value.code == 500
    sentry_sdk.flush()

    wait_until(lambda: groups(), "the error group")
    [group] = groups()
    assert group.title == "ZeroDivisionError: checkout total <num> of <num> items"
    assert group.culprit == "boom (tests/test_compat_sentry.py)"
    [kept] = BeaconEvent.objects.filter(error_group=group)
    assert (kept.identifier, kept.user_agent) == ("/boom/", BROWSER_UA)
