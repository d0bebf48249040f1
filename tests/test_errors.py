"""Error grouping: fingerprints, the group upsert at ingest, reopening and status changes."""

from datetime import timedelta
from importlib import import_module

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from beacons.counting.buckets import bucket_start
from beacons.errors.grouping import error_group_status_set, error_signature, message_normalise, top_frame
from beacons.models import BeaconDefinition, BeaconEvent, ErrorGroup
from beacons.queries.error_groups import error_hourly

pytestmark = pytest.mark.django_db

CHROME_STACK = """TypeError: Cannot read properties of undefined (reading 'total')
    at renderCart (https://shop.example/static/app.3f9a8c7d.js:{line}:{col})
    at HTMLButtonElement.<anonymous> (https://shop.example/static/app.3f9a8c7d.js:1:200)"""


@pytest.fixture(autouse=True)
def error_type(db):
    """The `error` beacon type as the migrations register it (a transactional test may have flushed it)."""
    defaults = next(
        d for d in import_module("beacons.migrations.0002_default_definitions").DEFAULTS if d["slug"] == "error"
    )
    return BeaconDefinition.objects.get_or_create(slug="error", defaults=defaults)[0]


def error(message="TypeError: x is undefined", *, stack="", page="/checkout", **meta) -> dict:
    return {"event_type": "error", "identifier": page, "meta": {"message": message, "stack": stack, **meta}}


def chrome_stack(line=10, col=5, function="renderCart"):
    return CHROME_STACK.format(line=line, col=col).replace("renderCart", function)


# --- fingerprints ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Item 12 not found", "Item <num> not found"),
        ("Uncaught TypeError: x is undefined", "TypeError: x is undefined"),
        (
            "Cannot read properties of undefined (reading 'total')",
            "Cannot read properties of undefined (reading <str>)",
        ),
        ('Failed to load "https://cdn.example/a.js?v=3"', "Failed to load <str>"),
        ("Failed to fetch https://api.example/orders/991", "Failed to fetch <url>"),
        ("Order 123e4567-e89b-12d3-a456-426614174000 missing", "Order <uuid> missing"),
        ("Bad pointer 0xdeadBEEF in 5f2c9a7e41", "Bad pointer <hex> in <hex>"),
        ("Quota   exceeded\n  by 3.5 MB", "Quota exceeded by <num> MB"),
        ("h1 utf8 element", "h1 utf8 element"),
        ("", "(no message)"),
    ],
)
def test_message_normalise_masks_variable_parts(message, expected):
    assert message_normalise(message) == expected


@pytest.mark.parametrize(
    ("stack", "expected"),
    [
        (
            "TypeError: a\n    at render (https://x.example/js/app.js:10:5)\n    at go (https://x.example/js/b.js:1:1)",
            ("/js/app.js", "render"),
        ),
        ("TypeError: a\n    at https://x.example/js/app.js:10:5", ("/js/app.js", "")),
        (
            "TypeError: a\n    at Array.map (<anonymous>)\n    at async List.draw (https://x.example/list.js:3:9)",
            ("/list.js", "List.draw"),
        ),
        ("render@https://x.example/js/app.js?v=7:10:5\n@https://x.example/js/b.js:1:1", ("/js/app.js", "render")),
        ("global code@https://x.example/inline.js:3:4", ("/inline.js", "global code")),
        ("at render (https://x.example/js/main.1a2b3c4d.js:1:1)", ("/js/main.<hash>.js", "render")),
        ("no frames here", ("", "")),
    ],
)
def test_top_frame_reads_chrome_firefox_and_safari_stacks_without_line_numbers(stack, expected):
    assert top_frame(stack) == expected


def test_same_error_at_other_lines_with_other_numbers_has_one_fingerprint():
    first = error_signature(meta={"message": "Item 3 missing", "stack": chrome_stack(10, 5)})
    second = error_signature(meta={"message": "Item 4512 missing", "stack": chrome_stack(877, 31)})
    assert first == second
    assert first.culprit == "renderCart (/static/app.<hash>.js)"
    assert len(first.fingerprint) == 64


def test_different_top_frames_have_different_fingerprints():
    first = error_signature(meta={"message": "x is undefined", "stack": chrome_stack(function="renderCart")})
    second = error_signature(meta={"message": "x is undefined", "stack": chrome_stack(function="applyCoupon")})
    assert first.fingerprint != second.fingerprint


def test_client_fingerprint_overrides_message_and_stack():
    first = error_signature(meta={"message": "A", "stack": chrome_stack(function="a"), "fingerprint": "checkout-total"})
    second = error_signature(
        meta={"message": "B", "stack": chrome_stack(function="b"), "fingerprint": "checkout-total"}
    )
    other = error_signature(meta={"message": "A", "stack": chrome_stack(function="a"), "fingerprint": "other"})
    assert first.fingerprint == second.fingerprint != other.fingerprint


def test_non_text_meta_values_do_not_break_grouping():
    signature = error_signature(meta={"message": {"nested": [1, 2]}, "stack": 42, "fingerprint": ["a", 1]})
    assert len(signature.fingerprint) == 64


def test_window_onerror_without_stack_uses_the_script_address():
    signature = error_signature(meta={"message": "Script error.", "source": "https://cdn.example/w.js?x=1", "line": 3})
    assert signature.culprit == "/w.js"


# --- grouping at ingest ----------------------------------------------------------------------


def test_same_error_with_different_numbers_and_lines_is_one_group(send):
    assert send(error("Item 3 missing", stack=chrome_stack(10, 5))).status_code == 204
    assert send(error("Item 77 missing", stack=chrome_stack(98, 1), page="/cart")).status_code == 204
    group = ErrorGroup.objects.get()
    assert (group.count, group.title, group.status) == (2, "Item <num> missing", "unresolved")
    assert group.culprit == "renderCart (/static/app.<hash>.js)"
    assert BeaconEvent.objects.filter(error_group=group).count() == 2


def test_different_top_frames_make_two_groups(send):
    send(error("x is undefined", stack=chrome_stack(function="renderCart")))
    send(error("x is undefined", stack=chrome_stack(function="applyCoupon")))
    assert sorted(ErrorGroup.objects.values_list("culprit", flat=True)) == [
        "applyCoupon (/static/app.<hash>.js)",
        "renderCart (/static/app.<hash>.js)",
    ]


def test_client_fingerprint_groups_different_messages_together(send):
    send(error("Payment failed: card declined", fingerprint="payments"))
    send(error("Payment failed: timeout", fingerprint="payments"))
    assert ErrorGroup.objects.get().count == 2


def test_a_batch_counts_each_group_once_per_fingerprint(send):
    events = [error("A 1")] * 30 + [error("B", stack=chrome_stack())] * 20
    assert send({"events": events}).status_code == 204
    assert dict(ErrorGroup.objects.values_list("title", "count")) == {"A <num>": 30, "B": 20}
    assert BeaconEvent.objects.filter(error_group__isnull=True).count() == 0


def test_grouping_a_batch_takes_one_statement(send):
    send(error("warm up"))  # registers nothing new, but fills caches
    with CaptureQueriesContext(connection) as queries:
        send({"events": [error("A 1"), error("A 2"), error("B", stack=chrome_stack())]})
    group_writes = [q["sql"] for q in queries.captured_queries if "beacons_errorgroup" in q["sql"]]
    assert len(group_writes) == 2  # the upsert, and the claim of the two new groups' alerts
    assert group_writes[0].lstrip().startswith("INSERT")


def test_counts_and_last_seen_grow_while_first_seen_stays(send):
    send(error())
    first = ErrorGroup.objects.get()
    send(error())
    group = ErrorGroup.objects.get()
    assert group.count == 2
    assert group.first_seen == first.first_seen
    assert group.last_seen >= first.last_seen


def test_errors_of_a_type_that_keeps_no_single_events_are_counted_but_not_grouped(send):
    BeaconDefinition.objects.filter(slug="error").update(keep_raw=False)
    assert send(error()).status_code == 204
    assert not ErrorGroup.objects.exists()


# --- status ----------------------------------------------------------------------------------


def test_resolved_group_that_happens_again_reopens(send, admin_user):
    send(error())
    group = ErrorGroup.objects.get()
    error_group_status_set(group=group, status=ErrorGroup.Status.RESOLVED, user=admin_user)
    group.refresh_from_db()
    assert group.resolved_at is not None
    send(error())
    group.refresh_from_db()
    assert (group.status, group.count, group.resolved_at, group.status_changed_by) == ("unresolved", 2, None, None)


def test_ignored_group_stays_ignored(send, admin_user):
    send(error())
    group = ErrorGroup.objects.get()
    error_group_status_set(group=group, status=ErrorGroup.Status.IGNORED, user=admin_user)
    send(error())
    group.refresh_from_db()
    assert (group.status, group.count) == ("ignored", 2)


def test_status_change_records_who_and_when(send, admin_user):
    send(error())
    group = error_group_status_set(group=ErrorGroup.objects.get(), status="resolved", user=admin_user)
    group.refresh_from_db()
    assert group.status_changed_by == admin_user
    assert group.status_changed_at is not None
    with pytest.raises(ValueError):
        error_group_status_set(group=group, status="deleted", user=admin_user)


# --- admin -----------------------------------------------------------------------------------


def test_admin_lists_searches_and_resolves_error_groups(send, admin_client, admin_user):
    send(error("<b>Boom</b> 1", stack=chrome_stack()))
    send(error("Other", stack=""))
    group = ErrorGroup.objects.get(title="<b>Boom</b> <num>")
    changelist = admin_client.get("/admin/beacons/errorgroup/", {"q": "renderCart", "status__exact": "unresolved"})
    html = changelist.content.decode()
    assert changelist.status_code == 200
    assert "&lt;b&gt;Boom&lt;/b&gt;" in html and "<b>Boom</b>" not in html and "Other" not in html
    response = admin_client.post(
        "/admin/beacons/errorgroup/", {"action": "mark_resolved", "_selected_action": [group.pk]}, follow=True
    )
    assert response.status_code == 200
    group.refresh_from_db()
    assert (group.status, group.status_changed_by) == ("resolved", admin_user)
    assert admin_client.get(f"/admin/beacons/errorgroup/{group.pk}/change/").status_code == 200


# --- reads -----------------------------------------------------------------------------------


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata", "America/St_Johns"])
def test_hourly_counts_land_in_the_sites_hour_buckets(send, settings, zone):
    settings.BEACONS_TIME_ZONE = zone
    send({"events": [error()] * 3})
    group = ErrorGroup.objects.get()
    now = timezone.now()
    series = error_hourly(group_ids=[group.pk], start=now - timedelta(hours=23), end=now + timedelta(seconds=1))
    assert len(series[group.pk]) == 24
    assert [count for _, count in series[group.pk] if count] == [3]
    assert series[group.pk][-1] == (bucket_start(group.last_seen, "H"), 3)
