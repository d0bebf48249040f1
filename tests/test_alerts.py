"""Error alerts: when they fire, cooldown and storms, recipients, email, webhook, hooks, retries."""

import json
import re
import sys
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from importlib import import_module

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from beacons.errors import alerts
from beacons.errors.alerts import alerts_send_pending, alerts_suppressed
from beacons.errors.grouping import error_group_status_set
from beacons.errors.handlers import alert_recipients
from beacons.models import BeaconDefinition, BeaconEvent, ErrorGroup
from beacons.signals import error_alert

pytestmark = pytest.mark.django_db

STACK = "TypeError: x is undefined\n    at pay (https://shop.example/static/checkout.js:41:7)"
XSS = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "</script><script>alert(1)</script>"]
calls: list[tuple[int, str]] = []


@pytest.fixture(autouse=True)
def error_type(db):
    """The `error` beacon type as the migrations register it (a transactional test may have flushed it)."""
    defaults = next(
        d for d in import_module("beacons.migrations.0002_default_definitions").DEFAULTS if d["slug"] == "error"
    )
    return BeaconDefinition.objects.get_or_create(slug="error", defaults=defaults)[0]


def exploding_handler(alert):
    calls.append((alert.group.pk, alert.reason))
    raise ConnectionError("notifier is down")


@pytest.fixture(autouse=True)
def alert_settings(settings):
    settings.BEACONS_ALERT_EMAILS = ["oncall@example.com"]
    settings.BEACONS_ALERT_HANDLERS = ["beacons.errors.handlers.email_handler"]
    settings.BEACONS_BASE_URL = "https://beacons.example/"
    settings.BEACONS_RATE_LIMIT = 0
    settings.BEACONS_NETWORK_RATE_LIMIT = 0
    calls.clear()
    yield settings
    alerts.alerts_wait()
    alerts.alerts_retries_cancel()


def error(message="TypeError: x is undefined", *, stack=STACK, page="/checkout", **meta) -> dict:
    return {"event_type": "error", "identifier": page, "meta": {"message": message, "stack": stack, **meta}}


def deliver() -> alerts.AlertRun:
    """What runs right after the ingest transaction commits (and what `beacons_alerts` runs)."""
    return alerts_send_pending()


def error_definition(**alert_settings) -> BeaconDefinition:
    BeaconDefinition.objects.filter(slug="error").update(**alert_settings)
    return BeaconDefinition.objects.get(slug="error")


def subjects() -> list[str]:
    return [message.subject for message in mail.outbox]


def age_last_alert(minutes: int) -> None:
    ErrorGroup.objects.update(last_alerted_at=timezone.now() - timedelta(minutes=minutes))


# --- when alerts fire -------------------------------------------------------------------------


def test_new_error_sends_one_email_after_the_request(send):
    assert send(error()).status_code == 204
    assert mail.outbox == []  # nothing is sent inside the ingest request
    assert ErrorGroup.objects.get().alert_reason == "new"
    assert deliver().sent == 1
    [message] = mail.outbox
    group = ErrorGroup.objects.get()
    assert message.subject == "[Beacons] New error on /checkout: TypeError: x is undefined"
    assert message.to == ["oncall@example.com"]
    assert f"https://beacons.example/dashboard/errors/{group.pk}/?site={group.site.domain}" in message.body
    assert "pay (/static/checkout.js)" in message.body
    assert "1 occurrence in total" in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    assert f'href="https://beacons.example/dashboard/errors/{group.pk}/?site={group.site.domain}"' in html
    assert (group.alert_reason, group.last_alerted_at is not None) == ("", True)


def test_email_lists_counts_first_and_last_seen_and_affected_pages(send):
    send({"events": [error(page="/checkout")] * 3 + [error(page="/cart")]})
    deliver()
    body = mail.outbox[0].body
    assert "4 occurrences in total" in body
    assert "First seen:" in body and "Last seen:" in body
    assert "3 × /checkout" in body and "1 × /cart" in body


def test_repeats_within_the_cooldown_send_nothing_more(send):
    send(error())
    deliver()
    for _ in range(5):
        send(error())
        deliver()
    assert len(mail.outbox) == 1


def test_regression_reopens_and_alerts(send, admin_user):
    send(error())
    deliver()
    group = ErrorGroup.objects.get()
    error_group_status_set(group=group, status=ErrorGroup.Status.RESOLVED, user=admin_user)
    age_last_alert(61)
    send(error())
    deliver()
    group.refresh_from_db()
    assert group.status == ErrorGroup.Status.UNRESOLVED
    assert subjects()[-1] == "[Beacons] Regression on /checkout: TypeError: x is undefined"
    assert len(mail.outbox) == 2


def test_regression_within_the_cooldown_reopens_without_email(send, admin_user):
    send(error())
    deliver()
    error_group_status_set(group=ErrorGroup.objects.get(), status=ErrorGroup.Status.RESOLVED, user=admin_user)
    send(error())
    deliver()
    assert ErrorGroup.objects.get().status == ErrorGroup.Status.UNRESOLVED
    assert len(mail.outbox) == 1


def test_regression_alert_can_be_switched_off_per_type(send, admin_user):
    error_definition(alert_on_regression=False)
    send(error())
    deliver()
    error_group_status_set(group=ErrorGroup.objects.get(), status=ErrorGroup.Status.RESOLVED, user=admin_user)
    age_last_alert(61)
    send(error())
    deliver()
    assert len(mail.outbox) == 1


def test_threshold_alerts_when_more_than_n_within_the_window(send):
    error_definition(alert_on_new=False, alert_threshold=5, alert_window_minutes=10)
    send({"events": [error()] * 5})
    deliver()
    assert mail.outbox == []
    send(error())
    deliver()
    assert subjects() == ["[Beacons] Error spike (6 in 10 min) on /checkout: TypeError: x is undefined"]
    assert "6 occurrences in 10 minutes" in mail.outbox[0].body


def test_threshold_counts_only_occurrences_inside_the_window(send):
    error_definition(alert_on_new=False, alert_threshold=5, alert_window_minutes=10)
    send({"events": [error()] * 5})
    ErrorGroup.objects.update(window_started_at=timezone.now() - timedelta(minutes=11))
    send({"events": [error()] * 5})  # a new window starts: 5, not 10
    deliver()
    group = ErrorGroup.objects.get()
    assert (group.count, group.window_count, mail.outbox) == (10, 5, [])


def test_threshold_uses_the_site_default_when_the_type_sets_none(send, settings):
    settings.BEACONS_ALERT_THRESHOLD = 3
    settings.BEACONS_ALERT_ON_NEW = False
    send({"events": [error()] * 4})
    deliver()
    assert subjects() == ["[Beacons] Error spike (4 in 60 min) on /checkout: TypeError: x is undefined"]


def test_cooldown_allows_the_next_alert_once_it_has_passed(send):
    error_definition(alert_threshold=1, alert_cooldown_minutes=30)
    send(error())
    deliver()
    send({"events": [error()] * 10})
    deliver()
    assert len(mail.outbox) == 1
    age_last_alert(31)
    send(error())
    deliver()
    assert len(mail.outbox) == 2
    assert mail.outbox[1].subject.startswith("[Beacons] Error spike (")


def test_new_error_alert_can_be_switched_off_per_type_and_site_wide(send, settings):
    error_definition(alert_on_new=False)
    send(error("first"))
    settings.BEACONS_ALERT_ON_NEW = False
    error_definition(alert_on_new=True)
    send(error("second"))
    deliver()
    assert mail.outbox == []


def test_ignored_group_never_alerts(send, admin_user):
    error_definition(alert_threshold=1)
    send(error())
    deliver()
    error_group_status_set(group=ErrorGroup.objects.get(), status=ErrorGroup.Status.IGNORED, user=admin_user)
    age_last_alert(120)
    send({"events": [error()] * 20})
    deliver()
    assert len(mail.outbox) == 1


def test_storm_of_ten_thousand_identical_errors_sends_exactly_one_email(send):
    batch = {"events": [error()] * 50}
    for _ in range(200):
        assert send(batch).status_code == 204
        deliver()
    group = ErrorGroup.objects.get()
    assert group.count == 10_000
    assert len(mail.outbox) == 1
    assert mail.outbox[0].subject == "[Beacons] New error on /checkout: TypeError: x is undefined"


def test_alerts_suppressed_records_errors_without_alerting(send):
    with alerts_suppressed():
        send(error())
    deliver()
    assert ErrorGroup.objects.get().count == 1
    assert mail.outbox == []


# --- recipients -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_emails", "site_emails", "admins", "expected"),
    [
        (
            "dev@shop.example, qa@shop.example",
            ["ops@x.example"],
            [("Ada", "ada@x.example")],
            ["dev@shop.example", "qa@shop.example"],
        ),
        ("", ["ops@x.example", "sre@x.example"], [("Ada", "ada@x.example")], ["ops@x.example", "sre@x.example"]),
        ("", [], [("Ada", "ada@x.example")], ["ada@x.example"]),
        ("", [], [], []),
    ],
)
def test_recipients_fall_back_from_type_to_site_setting_to_admins(settings, type_emails, site_emails, admins, expected):
    settings.BEACONS_ALERT_EMAILS = site_emails
    settings.ADMINS = admins
    assert alert_recipients(definition=error_definition(alert_emails=type_emails)) == expected


def test_alert_goes_to_the_types_own_list(send):
    error_definition(alert_emails="dev@shop.example,\nqa@shop.example")
    send(error())
    deliver()
    assert mail.outbox[0].to == ["dev@shop.example", "qa@shop.example"]


def test_no_recipients_anywhere_sends_nothing_and_does_not_retry(send, settings):
    settings.BEACONS_ALERT_EMAILS = []
    settings.ADMINS = []
    send(error())
    run = deliver()
    assert (run.sent, run.failed, mail.outbox) == (1, 0, [])


# --- hooks and failures -----------------------------------------------------------------------


def test_error_alert_signal_carries_the_group_and_reason(send):
    received = []

    def receiver(sender, group, reason, **kwargs):
        received.append((group.title, reason))

    def broken_receiver(sender, **kwargs):
        raise RuntimeError("bad receiver")

    error_alert.connect(receiver)
    error_alert.connect(broken_receiver)
    try:
        send(error())
        deliver()
    finally:
        error_alert.disconnect(receiver)
        error_alert.disconnect(broken_receiver)
    assert received == [("TypeError: x is undefined", "new")]
    assert len(mail.outbox) == 1  # a raising receiver stops nothing


def test_raising_handler_keeps_ingest_at_204_and_is_retried_once(send, settings):
    settings.BEACONS_ALERT_HANDLERS = ["tests.test_alerts.exploding_handler", "beacons.errors.handlers.email_handler"]
    assert send(error()).status_code == 204
    first = deliver()
    group = ErrorGroup.objects.get()
    assert (first.sent, first.failed, first.retry_ids) == (0, 1, [group.pk])
    assert (group.alert_reason, group.alert_attempts) == ("new", 1)
    assert group.alert_failed_handlers == ["tests.test_alerts.exploding_handler"]
    assert len(mail.outbox) == 1  # the email handler worked: it is not sent again
    call_command("beacons_alerts")  # the retry
    assert calls == [(group.pk, "new"), (group.pk, "new")]
    assert len(mail.outbox) == 1
    call_command("beacons_alerts")  # given up after one retry
    assert len(calls) == 2
    assert ErrorGroup.objects.get().alert_reason == ""


def test_retried_handler_that_recovers_completes_the_alert(send, settings, monkeypatch):
    settings.BEACONS_ALERT_HANDLERS = ["tests.test_alerts.exploding_handler"]
    send(error())
    deliver()
    monkeypatch.setattr(sys.modules[__name__], "exploding_handler", lambda alert: calls.append(("ok", alert.reason)))
    assert deliver().sent == 1
    assert calls[-1] == ("ok", "new")


class _WebhookReceiver(BaseHTTPRequestHandler):
    received: list = []
    status = 204

    def do_POST(self):
        length = int(self.headers["Content-Length"])
        type(self).received.append((self.headers["Content-Type"], json.loads(self.rfile.read(length))))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook_server(settings):
    _WebhookReceiver.received = []
    _WebhookReceiver.status = 204
    server = HTTPServer(("127.0.0.1", 0), _WebhookReceiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.BEACONS_ALERT_HANDLERS = ["beacons.errors.handlers.webhook_handler"]
    settings.BEACONS_ALERT_WEBHOOK_URL = f"http://127.0.0.1:{server.server_port}/hooks/beacons"
    yield _WebhookReceiver
    server.shutdown()
    server.server_close()


def test_webhook_handler_posts_the_alert_as_json(send, webhook_server):
    send(error("TypeError: Item 42 is undefined", page="/checkout"))
    assert deliver().sent == 1
    [(content_type, body)] = webhook_server.received
    group = ErrorGroup.objects.get()
    assert content_type == "application/json"
    assert body["reason"] == "new"
    assert body["text"] == "[Beacons] New error on /checkout: TypeError: Item 42 is undefined"
    assert (body["group"]["title"], body["group"]["grouped_as"]) == (
        "TypeError: Item 42 is undefined",
        "TypeError: Item <num> is undefined",
    )
    assert body["url"] == f"https://beacons.example/dashboard/errors/{group.pk}/?site={group.site.domain}"
    assert body["group"]["count"] == 1 and body["group"]["culprit"] == "pay (/static/checkout.js)"
    assert body["pages"] == [{"page": "/checkout", "count": 1}]


def test_webhook_error_answer_is_retried(send, webhook_server):
    webhook_server.status = 500
    send(error())
    assert deliver().retry_ids == [ErrorGroup.objects.get().pk]
    webhook_server.status = 200
    assert deliver().sent == 1
    assert len(webhook_server.received) == 2


# --- content is escaped -------------------------------------------------------------------------


def test_html_email_escapes_error_text(send):
    send(error(XSS[0], stack=XSS[1] + "\n" + XSS[2], page="/p" + XSS[1]))
    deliver()
    html = mail.outbox[0].alternatives[0][0]
    for attack in XSS:
        assert attack not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    assert "\n" not in mail.outbox[0].subject


def test_subject_is_one_line_and_cut_short(send):
    send(error("Boom\r\nBcc: victim@example.com " + "x" * 400))
    deliver()
    subject = mail.outbox[0].subject
    assert "\n" not in subject and "\r" not in subject
    assert len(subject) <= alerts.SUBJECT_MAX_LENGTH and subject.endswith("…")


# --- delivery after the response, for real ------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_alert_is_sent_once_the_ingest_transaction_commits(send):
    # A background thread sends it; on the suite's in-memory SQLite, the committing thread.
    assert send(error()).status_code == 204
    alerts.alerts_wait()
    assert subjects() == ["[Beacons] New error on /checkout: TypeError: x is undefined"]
    assert ErrorGroup.objects.get().alert_reason == ""


def test_beacons_alerts_command_reports_what_it_sent(send, capsys):
    send(error())
    call_command("beacons_alerts")
    assert re.fullmatch(r"sent 1 alert in \d+\.\d s\n", capsys.readouterr().out)
    assert len(mail.outbox) == 1
    call_command("beacons_alerts")
    assert re.fullmatch(r"no alerts waiting \(\d+\.\d s\)\n", capsys.readouterr().out)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_first_hits_make_one_group_and_one_alert():
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection as thread_connection
    from django.test import Client

    from .conftest import BROWSER_UA

    body = json.dumps({"events": [error()] * 5})

    def post(_):
        try:
            return Client(HTTP_USER_AGENT=BROWSER_UA).post("/beacon", body, content_type="application/json").status_code
        finally:
            thread_connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(post, range(40)))
    alerts.alerts_wait()
    assert set(statuses) == {204}
    assert ErrorGroup.objects.get().count == 200
    assert len(mail.outbox) == 1


# --- nobody configured: the superusers are told (issue 11) ----------------------------------------


def test_no_alert_address_configured_emails_the_active_superusers(send, settings, django_user_model):
    settings.BEACONS_ALERT_EMAILS = []
    settings.ADMINS = []
    django_user_model.objects.create_superuser("ada", "ada@shop.example", "x")
    django_user_model.objects.create_superuser("bob", "bob@shop.example", "x", is_active=False)
    django_user_model.objects.create_superuser("cy", "", "x")
    django_user_model.objects.create_user("dee", "dee@shop.example", "x", is_staff=True)
    send(error())
    assert deliver().sent == 1
    assert [message.to for message in mail.outbox] == [["ada@shop.example"]]


def test_a_configured_address_still_wins_over_the_superusers(send, settings, django_user_model):
    settings.BEACONS_ALERT_EMAILS = []
    settings.ADMINS = [("Ops", "ops@shop.example")]
    django_user_model.objects.create_superuser("ada", "ada@shop.example", "x")
    send(error())
    deliver()
    assert mail.outbox[0].to == ["ops@shop.example"]


def test_alert_names_the_error_by_its_message_when_single_events_are_gone(send):
    send(error("TypeError: Cannot read properties of undefined (reading 'price')"))
    BeaconEvent.objects.all().delete()  # e.g. past their retention when a retry is sent
    deliver()
    [message] = mail.outbox
    assert message.subject == "[Beacons] New error: TypeError: Cannot read properties of undefined (reading 'price')"
    assert "(reading 'price')" in message.body and "<str>" not in message.body
    assert "(reading &#x27;price&#x27;)" in message.alternatives[0][0]


# --- the decision, and one read of the alert for every handler ---------------------------------


def recording_handler(alert):
    calls.append(alert)


def test_every_handler_gets_the_same_alert_read_once_before_it_is_taken(send, settings, django_assert_num_queries):
    settings.BEACONS_ALERT_HANDLERS = ["tests.test_alerts.recording_handler"] * 3
    send(error("Boom", page="/cart"))
    group = ErrorGroup.objects.get()
    # the queued alerts, the latest occurrence, the affected pages, taking it: not one query more per handler
    with django_assert_num_queries(4):
        assert deliver().sent == 1
    first, second, third = calls
    assert first is second is third
    assert (first.group.pk, first.reason, first.message, first.page, first.pages) == (
        group.pk,
        "new",
        "Boom",
        "/cart",
        [("/cart", 1)],
    )
    assert first.subject == "[Beacons] New error on /cart: Boom"
    assert "_alert_details" not in vars(first.group)  # nothing cached on the model instance


POLICY = alerts.AlertPolicy(
    on_new=True, on_regression=True, threshold=10, window=timedelta(minutes=5), cooldown=timedelta(minutes=30)
)
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


# What the group upsert answers for a repeat of a known, unresolved, never-alerted error.
QUIET_UPSERT = {"status": "unresolved", "last_alerted_at": None, "created": False, "reopened": False, "window_count": 1}


@pytest.mark.parametrize(
    "facts, expected",
    [
        ({"created": True}, "new"),
        ({"created": True, "status": "ignored"}, ""),
        ({"created": True, "last_alerted_at": NOW - timedelta(minutes=29)}, ""),  # within the cooldown
        ({"created": True, "last_alerted_at": NOW - timedelta(minutes=30)}, "new"),
        ({"reopened": True}, "regression"),
        ({"reopened": True, "created": True, "window_count": 11}, "new"),
        ({"window_count": 10}, ""),  # more than the threshold alerts, not as many
        ({"window_count": 11}, "threshold"),
        ({}, ""),
    ],
)
def test_alert_reason_decides_from_what_the_upsert_answered(facts, expected):
    decided = {**QUIET_UPSERT, **facts}
    assert alerts.alert_reason(policy=POLICY, now=NOW, **decided) == expected


def test_alert_reason_honours_a_policy_with_new_and_regression_off():
    quiet = alerts.AlertPolicy(
        on_new=False, on_regression=False, threshold=0, window=timedelta(minutes=5), cooldown=timedelta(0)
    )
    for facts in ({"created": True}, {"reopened": True}, {"window_count": 10**6}):
        decided = {**QUIET_UPSERT, **facts}
        assert alerts.alert_reason(policy=quiet, now=NOW, **decided) == ""
