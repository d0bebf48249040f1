"""Email reports: when each is due (fixed clock at awkward moments), what it says (the dashboard's
figures, escaped), sending each once, unsubscribing, and one real delivery over SMTP with its chart."""

import os
import re
import socket
import struct
import zlib
from datetime import UTC, datetime
from email import message_from_bytes
from email import policy as email_policy

import pytest
from django.core import mail
from django.core.management import call_command
from django.urls import reverse

from beacons.models import BeaconDefinition, ErrorGroup, ReportSent, ReportSubscription
from dashboard import reports
from dashboard.reports import report_build, reports_send, subscriptions_due

from .conftest import CHROMIUM, first_site, first_site_zone, page_view_at, utc

pytestmark = pytest.mark.django_db
SCRIPT = "<script>alert(1)</script>"


def subscribe(site, frequency="weekly", *, email="boss@example.com", user=None) -> ReportSubscription:
    return ReportSubscription.objects.create(site=site, frequency=frequency, email="" if user else email, user=user)


def due_starts(now) -> dict[int, datetime]:
    return {subscription.pk: start for subscription, start in subscriptions_due(now=now)}


# --- When a report is due ------------------------------------------------------------------------


def test_monday_0030_in_tokyo_makes_the_tokyo_week_due_while_the_utc_site_still_has_sunday(clock, tokyo):
    first_site_zone("UTC")
    clock(utc(2026, 11, 1))
    in_tokyo, in_utc = subscribe(tokyo), subscribe(first_site())
    ReportSent.objects.create(subscription=in_utc, period_start=utc(2026, 11, 16), sent_at=utc(2026, 11, 23, 1))
    ReportSent.objects.create(subscription=in_tokyo, period_start=utc(2026, 11, 15, 15), sent_at=utc(2026, 11, 23))

    sunday_2359_tokyo = utc(2026, 11, 29, 14, 59)
    assert due_starts(sunday_2359_tokyo) == {}  # both have their last whole week already

    monday_0030_tokyo = utc(2026, 11, 29, 15, 30)  # Sunday 15:30 in UTC
    assert due_starts(monday_0030_tokyo) == {in_tokyo.pk: utc(2026, 11, 22, 15)}  # Monday 23 November 00:00 JST
    week = report_build(site=tokyo, frequency="weekly", now=monday_0030_tokyo)
    assert (week.period.start, week.period.end) == (utc(2026, 11, 22, 15), utc(2026, 11, 29, 15))
    assert week.previous_period == (utc(2026, 11, 15, 15), utc(2026, 11, 22, 15))

    monday_0030_utc = utc(2026, 11, 30, 0, 30)
    assert due_starts(monday_0030_utc) == {in_tokyo.pk: utc(2026, 11, 22, 15), in_utc.pk: utc(2026, 11, 23)}


def test_the_first_of_the_month_makes_the_month_due_at_local_midnight_after_a_dst_change(clock):
    first_site_zone("Europe/Berlin")  # clocks went back on 25 October 2026: October has 745 hours
    clock(utc(2026, 9, 15))
    monthly = subscribe(first_site(), "monthly")
    ReportSent.objects.create(subscription=monthly, period_start=utc(2026, 8, 31, 22), sent_at=utc(2026, 10, 1))

    october_31_2330_berlin = utc(2026, 10, 31, 22, 30)
    assert due_starts(october_31_2330_berlin) == {}
    november_1_0030_berlin = utc(2026, 10, 31, 23, 30)
    assert due_starts(november_1_0030_berlin) == {monthly.pk: utc(2026, 9, 30, 22)}  # 1 October 00:00 CEST
    october = report_build(site=first_site(), frequency="monthly", now=november_1_0030_berlin)
    assert (october.period.start, october.period.end) == (utc(2026, 9, 30, 22), utc(2026, 10, 31, 23))
    assert october.period_words == "1–31 October 2026"
    assert october.previous_words == "September 2026"

    december_1_0030_berlin = utc(2026, 11, 30, 23, 30)  # the month after the change: whole CET days
    november = report_build(site=first_site(), frequency="monthly", now=december_1_0030_berlin)
    assert (november.period.start, november.period.end) == (utc(2026, 10, 31, 23), utc(2026, 11, 30, 23))
    assert november.previous_period == (utc(2026, 9, 30, 22), utc(2026, 10, 31, 23))  # all of October


def test_a_subscription_made_mid_week_waits_for_the_week_under_way(clock):
    first_site_zone("UTC")
    clock(utc(2026, 11, 25, 12))  # a Wednesday
    weekly = subscribe(first_site())
    assert due_starts(utc(2026, 11, 29, 23)) == {}
    assert due_starts(utc(2026, 11, 30, 0, 1)) == {weekly.pk: utc(2026, 11, 23)}


# --- Sending once -------------------------------------------------------------------------------


def test_running_twice_mails_each_subscriber_once_and_dry_run_mails_nobody(clock, make_staff, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    first_site_zone("UTC")
    clock(utc(2026, 11, 1))
    staff = make_staff(email="staff@example.com")
    subscribe(first_site(), user=staff)
    subscribe(first_site(), email="owner@example.com")
    clock(utc(2026, 11, 30, 1))
    page_view_at(utc(2026, 11, 24, 10), "/pricing")

    call_command("beacons_reports", "--dry-run", stdout=(out := _Output()))
    assert mail.outbox == [] and ReportSent.objects.count() == 0
    assert "2 reports due; nothing sent" in out.text

    first = reports_send(draw_charts=False)
    second = reports_send(draw_charts=False)
    assert (first.sent, second.sent) == (2, 0)
    assert sorted(message.to[0] for message in mail.outbox) == ["owner@example.com", "staff@example.com"]
    assert {message.subject for message in mail.outbox} == {f"Weekly report for {first_site()}: 23–29 November 2026"}
    assert ReportSent.objects.filter(period_start=utc(2026, 11, 23), sent_at__isnull=False).count() == 2

    clock(utc(2026, 12, 7, 1))  # the next week is a new report
    assert reports_send(draw_charts=False).sent == 2


def test_a_send_that_fails_is_retried_by_the_next_run(clock, settings, monkeypatch):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    first_site_zone("UTC")
    clock(utc(2026, 11, 1))
    subscribe(first_site())
    clock(utc(2026, 11, 30, 1))

    def refuse(self, fail_silently=False):
        raise ConnectionRefusedError("no SMTP server")

    with monkeypatch.context() as patch:
        patch.setattr(reports.EmailMultiAlternatives, "send", refuse)
        assert reports_send(draw_charts=False).failed == 1
    assert ReportSent.objects.count() == 0 and mail.outbox == []
    assert reports_send(draw_charts=False).sent == 1
    assert len(mail.outbox) == 1


def test_a_site_whose_report_cannot_be_built_holds_back_no_other_site(clock, settings, monkeypatch, tokyo):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    first_site_zone("UTC")
    clock(utc(2026, 11, 1))
    subscribe(tokyo)
    subscribe(first_site())
    clock(utc(2026, 11, 30, 1))
    built = reports.report_build

    def broken_for_tokyo(*, site, frequency, now):
        if site.pk == tokyo.pk:
            raise ValueError("a broken site")
        return built(site=site, frequency=frequency, now=now)

    monkeypatch.setattr(reports, "report_build", broken_for_tokyo)
    run = reports_send(draw_charts=False)
    assert (run.sent, run.failed) == (1, 1)
    assert [message.subject for message in mail.outbox] == [f"Weekly report for {first_site()}: 23–29 November 2026"]
    assert list(ReportSent.objects.values_list("subscription__site", flat=True)) == [first_site().pk]


def test_a_staff_member_removed_from_the_site_or_deactivated_gets_no_report(clock, make_staff, settings, tokyo):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    first_site_zone("UTC")
    clock(utc(2026, 11, 1))
    removed = make_staff("removed", email="removed@example.com")
    deactivated = make_staff("gone", email="gone@example.com")
    kept = make_staff("kept", email="kept@example.com")
    for user in (removed, deactivated, kept):
        subscribe(first_site(), user=user)
    removed.beacon_sites.set([tokyo])
    deactivated.is_active = False
    deactivated.save()
    clock(utc(2026, 11, 30, 1))
    run = reports_send(draw_charts=False)
    assert (run.sent, run.skipped) == (1, 2)
    assert [message.to for message in mail.outbox] == [["kept@example.com"]]


# --- Unsubscribing ------------------------------------------------------------------------------


def test_the_link_in_the_mail_unsubscribes_in_one_click_without_signing_in_and_twice_is_harmless(
    clock, client, settings
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    first_site_zone("UTC")
    clock(utc(2026, 11, 1))
    subscription = subscribe(first_site())
    clock(utc(2026, 11, 30, 1))
    reports_send(draw_charts=False)
    [message] = mail.outbox
    link = re.search(r"Stop these reports \(one click\): (\S+)", message.body).group(1)
    assert message.extra_headers["List-Unsubscribe"] == f"<{link}>"
    path = link.removeprefix(settings.BEACONS_BASE_URL)

    for _ in range(2):
        page = client.get(path)
        assert page.status_code == 200
        said = f"No more weekly reports of {first_site().domain} will be sent to boss@example.com"
        assert said in page.content.decode()
    subscription.refresh_from_db()
    assert not subscription.is_active
    assert client.post(path).status_code == 200  # RFC 8058: the mail client posts, with no CSRF token
    clock(utc(2026, 12, 7, 1))
    assert reports_send(draw_charts=False).sent == 0

    tampered = path.replace(f"/{subscription.pk}:", f"/{subscription.pk + 1}:")
    assert client.get(tampered).status_code == 404
    assert client.get(reverse("dashboard:report_unsubscribe", args=["nonsense"])).status_code == 404


def test_staff_subscribe_themselves_to_a_site_they_see_but_not_to_another(clock, client, make_staff, tokyo):
    clock(utc(2026, 11, 1))
    staff = make_staff(email="staff@example.com")
    client.force_login(staff)
    page = client.get(reverse("dashboard:reports"))
    assert page.status_code == 200 and "staff@example.com" in page.content.decode()
    here = f"?site={first_site().domain}"
    answer = client.post(reverse("dashboard:reports") + here, {"frequency": "monthly", "subscribed": "on"})
    assert answer.status_code == 302
    assert list(ReportSubscription.objects.values_list("site__domain", "user__username", "frequency", "is_active")) == [
        (first_site().domain, "staffer", "monthly", True)
    ]
    other = client.post(
        reverse("dashboard:reports") + "?site=tokyo.example.com", {"frequency": "weekly", "subscribed": "on"}
    )
    assert other.status_code == 404
    client.post(reverse("dashboard:reports") + here, {"frequency": "monthly", "subscribed": "off"})
    assert not ReportSubscription.objects.get().is_active
    client.logout()
    assert client.post(reverse("dashboard:reports"), {"frequency": "weekly", "subscribed": "on"}).status_code == 403
    assert ReportSubscription.objects.count() == 1


def test_an_admin_subscribes_a_list_of_addresses(admin_client):
    answer = admin_client.post(
        reverse("admin:beacons_reportsubscription_add"),
        {"site": first_site().pk, "frequency": "weekly", "addresses": "a@example.com\nB@example.com, a@example.com"},
    )
    assert answer.status_code == 302
    assert sorted(ReportSubscription.objects.values_list("email", flat=True)) == ["a@example.com", "b@example.com"]
    refused = admin_client.post(
        reverse("admin:beacons_reportsubscription_add"),
        {"site": first_site().pk, "frequency": "weekly", "addresses": "a@example.com\nnot an address"},
    )
    assert "is not an email address" in refused.content.decode()


# --- What a report says ---------------------------------------------------------------------------


def _weeks_of_visits():
    """Two weeks of page views on a UTC site: the week of 23 November 2026 busier than the one before."""
    first_site_zone("UTC")
    for day, visitor in [(17, "a"), (18, "b"), (24, "a"), (25, "c"), (26, "d")]:
        page_view_at(utc(2026, 11, day, 9), "/", visitor=visitor, source="news.example")
        page_view_at(utc(2026, 11, day, 9, 2), "/pricing", visitor=visitor)
    page_view_at(utc(2026, 11, 27, 12), "/docs", visitor="e")  # a bounce


def test_the_report_figures_are_the_dashboards_for_the_same_dates(clock, client, make_staff):
    clock(utc(2026, 11, 1))
    _weeks_of_visits()
    now = clock(utc(2026, 11, 30, 6))
    report = report_build(site=first_site(), frequency="weekly", now=now)
    client.force_login(make_staff(is_superuser=True))
    page = client.get(reverse("dashboard:index"), {"range": "custom", "start": "2026-11-23", "end": "2026-11-29"})
    kpis = page.context["kpis"]
    dashboard = {"Page views": (f"{kpis['total']:,}", kpis["change_percent"])}
    dashboard |= {card["label"]: (card["value"], card["change_percent"]) for card in kpis["people"]}
    shown = {figure.label: (figure.value, figure.change_percent) for figure in report.figures}
    assert shown == {label: dashboard[label] for label in shown}
    assert set(shown) == {"Page views", "Unique visitors", "Visits", "Bounce rate", "Visit duration"}
    assert shown["Page views"] == ("7", 75)  # 7 this week, 4 the week before
    top = {row["identifier"]: row["count"] for row in page.context["top"]["rows"]}
    assert {row.text: row.count for row in report.top_pages} == top
    sources = [(row["value"], row["count"]) for row in page.context["sources"]["rows"]]
    assert [(row.text, row.count) for row in report.top_sources] == sources
    assert sources == [("Direct / none", 4), ("news.example", 3)]
    before = client.get(reverse("dashboard:index"), {"range": "custom", "start": "2026-11-16", "end": "2026-11-22"})
    assert {figure.label: figure.previous for figure in report.figures}["Page views"] == str(
        before.context["kpis"]["total"]
    )


def test_beacon_text_is_escaped_in_the_html_part(clock, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    first_site_zone("UTC")
    clock(utc(2026, 11, 1))
    subscribe(first_site())
    page_view_at(utc(2026, 11, 24, 9), SCRIPT, source='"><img src=x onerror=alert(2)>')
    ErrorGroup.objects.create(
        site=first_site(),
        definition=BeaconDefinition.objects.get(slug="error"),
        fingerprint="f" * 32,
        title="<b onmouseover=alert(3)>TypeError</b>",
        first_seen=utc(2026, 11, 25),
        last_seen=utc(2026, 11, 25),
        count=3,
    )
    clock(utc(2026, 11, 30, 1))
    reports_send(draw_charts=False)
    [message] = mail.outbox
    html = message.alternatives[0].content
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script" not in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html and "<img src=x" not in html
    assert "&lt;b onmouseover=alert(3)&gt;TypeError&lt;/b&gt;" in html and "<b onmouseover" not in html
    assert SCRIPT in message.body  # the text part is text: shown as written, never run
    assert "3x  <b onmouseover=alert(3)>TypeError</b>" in message.body


# --- A real delivery -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB(A) pixel bytes) of an 8-bit truecolour PNG, filters undone."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks = 8, {}
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        chunks.setdefault(kind, []).append(data[position + 8 : position + 8 + length])
        position += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][0][:10])
    assert depth == 8 and colour in (2, 6)
    size = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(chunks[b"IDAT"]))
    stride, rows, previous = width * size, [], bytearray(width * size)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - size] if i >= size else 0
            up, corner = previous[i], previous[i - size] if i >= size else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                guess = left + up - corner
                near = min((abs(guess - left), 0, left), (abs(guess - up), 1, up), (abs(guess - corner), 2, corner))
                line[i] = (line[i] + near[2]) & 255
        rows.append(bytes(line))
        previous = line
    return width, height, rows


@pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason="kaleido needs Debian's chromium at /usr/bin/chromium")
def test_a_report_is_delivered_over_smtp_with_its_chart_inline(clock, settings):
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received = []

    class Keep(Message):
        def handle_message(self, message):
            received.append(message)

    port = _free_port()
    server = Controller(Keep(message_class=None), hostname="127.0.0.1", port=port)
    server.start()
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        clock(utc(2026, 11, 1))
        subscribe(first_site())
        _weeks_of_visits()
        clock(utc(2026, 11, 30, 6))
        assert reports_send().sent == 1
    finally:
        server.stop()

    [raw] = received
    message = message_from_bytes(raw.as_bytes(), policy=email_policy.default)
    assert message["To"] == "boss@example.com"
    assert message.get_content_type() == "multipart/related"
    alternative, image = message.get_payload()
    assert alternative.get_content_type() == "multipart/alternative"
    text, html = alternative.get_payload()
    assert text.get_content_type() == "text/plain" and "Page views: 7 (before: 4, +75%)" in text.get_content()
    assert html.get_content_type() == "text/html"
    assert image.get_content_type() == "image/png" and image["Content-ID"] == "<chart@beacons>"
    assert 'src="cid:chart@beacons"' in html.get_content()

    png = image.get_content()
    width, height, rows = png_pixels(png)
    assert (width, height) == (2 * reports.CHART_WIDTH, 2 * reports.CHART_HEIGHT)
    size = len(rows[0]) // width
    pixels = [row[i : i + 3] for row in rows for i in range(0, len(row), size)]
    page_view_blue = bytes.fromhex(reports.charts.type_colour("page_view")[1:])
    coloured = sum(1 for pixel in pixels if sum(abs(a - b) for a, b in zip(pixel, page_view_blue)) < 30)
    assert coloured > 0.01 * len(pixels)  # the week's bars are drawn, not a blank image
    assert len(set(pixels)) > 20


class _Output:
    def __init__(self):
        self.text = ""

    def write(self, text):
        self.text += text

    def flush(self):
        pass


def test_a_report_frequency_that_is_not_daily_weekly_or_monthly_is_refused():
    from beacons.periods import finished_period

    with pytest.raises(ValueError, match="unknown report frequency 'hourly'"):
        finished_period("hourly", now=datetime(2026, 12, 2, 9, tzinfo=UTC))


def test_a_chart_that_fails_to_draw_once_is_drawn_again_and_one_that_keeps_failing_is_left_out(monkeypatch, caplog, db):
    from types import SimpleNamespace

    attempts = []

    def draw_failing(times):
        def draw(figure):
            attempts.append(figure)
            if len(attempts) <= times:
                raise RuntimeError("kaleido_scopes is not defined")
            return b"png"

        return draw

    report = SimpleNamespace(site=first_site(), figure={"data": []}, chart_png=None)
    monkeypatch.setattr(reports, "chart_png", draw_failing(1))
    reports.report_chart_draw(report)
    assert report.chart_png == b"png" and len(attempts) == 2
    assert "could not be drawn" not in caplog.text

    attempts.clear()
    report.chart_png = None
    monkeypatch.setattr(reports, "chart_png", draw_failing(2))
    reports.report_chart_draw(report)
    assert report.chart_png is None and len(attempts) == 2
    assert "could not be drawn; sending the report without it" in caplog.text
