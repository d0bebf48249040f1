"""Staff error pages: list, detail, status actions, permissions, escaping; and the done-when check."""

import json
import re
from datetime import timedelta
from importlib import import_module

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from beacons.errors import alerts
from beacons.models import BeaconDefinition, ErrorGroup

pytestmark = pytest.mark.django_db

STACK = "TypeError: x is undefined\n    at pay (https://shop.example/static/checkout.js:41:7)"
FIREFOX_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
XSS = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "</script><script>alert(1)</script>"]


@pytest.fixture(autouse=True)
def error_type(db):
    """The `error` beacon type as the migrations register it (a transactional test may have flushed it)."""
    defaults = next(
        d for d in import_module("beacons.migrations.0002_default_definitions").DEFAULTS if d["slug"] == "error"
    )
    return BeaconDefinition.objects.get_or_create(slug="error", defaults=defaults)[0]


def error(message="TypeError: x is undefined", *, stack=STACK, page="/checkout", **meta) -> dict:
    return {"event_type": "error", "identifier": page, "meta": {"message": message, "stack": stack, **meta}}


@pytest.fixture(autouse=True)
def _alert_settings(settings):
    settings.BEACONS_ALERT_EMAILS = ["oncall@example.com"]
    settings.BEACONS_RATE_LIMIT = 0
    settings.BEACONS_NETWORK_RATE_LIMIT = 0
    yield
    alerts.alerts_wait()
    alerts.alerts_retries_cancel()


@pytest.fixture
def staff_client(make_staff):
    # A superuser: the query pins count the pages' own queries (permissions: test_permissions.py).
    user = make_staff("ops", is_superuser=True)
    client = Client()
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def group(send) -> ErrorGroup:
    send(error())
    return ErrorGroup.objects.get()


def figures(html: str) -> list[dict]:
    return [
        json.loads(body)
        for body in re.findall(r'<script id="[^"]+" type="application/json">(.*?)</script>', html, re.S)
    ]


# --- list ------------------------------------------------------------------------------------


def test_list_shows_groups_with_counts_culprits_and_sparklines(staff_client, send):
    send({"events": [error()] * 3})
    send(error("ReferenceError: gtag is not defined", stack="", page="/"))
    response = staff_client.get(reverse("dashboard:errors"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "TypeError: x is undefined" in html and "ReferenceError: gtag is not defined" in html
    assert "pay (/static/checkout.js)" in html
    assert html.count('class="sparkline"') == 2
    assert 'aria-label="3 in the last 24 hours"' in html


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ("last_seen", ["Early", "Often", "Fresh"]),
        ("count", ["Often", "Early", "Fresh"]),
        ("first_seen", ["Fresh", "Often", "Early"]),
    ],
)
def test_list_sorts_by_last_seen_count_and_first_seen(staff_client, send, order, expected):
    now = timezone.now()
    for title, count, first_hours_ago, last_hours_ago in [("Early", 2, 72, 0), ("Often", 5, 48, 1), ("Fresh", 1, 2, 2)]:
        send({"events": [error(title, stack="")] * count})
        ErrorGroup.objects.filter(title=title).update(
            first_seen=now - timedelta(hours=first_hours_ago), last_seen=now - timedelta(hours=last_hours_ago)
        )
    html = staff_client.get(reverse("dashboard:errors"), {"order": order}).content.decode()
    assert re.findall(r'<a href="/dashboard/errors/\d+/\?site=[^"]+">([^<]+)</a>', html) == expected


def test_list_filters_by_status_page_and_time_range(staff_client, send):
    send(error("On checkout", page="/checkout"))
    send(error("On cart", page="/cart"))
    send(error("Old one", page="/cart"))
    ErrorGroup.objects.filter(title="Old one").update(status="resolved", last_seen="2020-01-01T00:00:00Z")
    url = reverse("dashboard:errors")

    def titles(**params):
        return set(
            re.findall(
                r'<a href="/dashboard/errors/\d+/\?site=[^"]+">([^<]+)</a>',
                staff_client.get(url, params).content.decode(),
            )
        )

    assert titles() == {"On checkout", "On cart"}  # unresolved by default
    assert titles(status="resolved") == {"Old one"}
    assert titles(status="all", page="/cart") == {"On cart", "Old one"}
    assert titles(status="all", range="24h") == {"On checkout", "On cart"}


def test_list_htmx_filter_returns_only_the_results_partial(staff_client, group):
    response = staff_client.get(reverse("dashboard:errors"), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="error-results")
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="error-results"')
    assert "<form" not in html


@pytest.mark.parametrize(
    "params", [{"status": "bogus"}, {"range": "1y"}, {"order": "pk"}, {"p": "x"}, {"page": "a" * 400}]
)
def test_list_survives_bad_parameters(staff_client, group, params):
    assert staff_client.get(reverse("dashboard:errors"), params).status_code == 200


def test_list_query_count_does_not_grow_with_groups(staff_client, send, django_assert_num_queries):
    send({"events": [error(f"Error in {name}", stack="") for name in ("a", "b", "c", "d", "e")]})
    # session, user, paginator count, groups, sparklines, error types, page suggestions
    with django_assert_num_queries(8):  # the sites the user may see: one more
        staff_client.get(reverse("dashboard:errors"))


# --- detail ----------------------------------------------------------------------------------


def test_detail_shows_chart_pages_browsers_and_latest_occurrences(staff_client, send, beacon_client):
    send({"events": [error(page="/checkout")] * 2 + [error(page="/cart")]})
    Client(HTTP_USER_AGENT=FIREFOX_UA).post("/beacon", json.dumps(error()), content_type="application/json")
    group = ErrorGroup.objects.get()
    response = staff_client.get(reverse("dashboard:error_detail", args=[group.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    [figure] = figures(html)
    assert sum(figure["data"][0]["y"]) == 4
    assert 'data-figure="error-chart"' in html
    assert re.search(r"/checkout</td><td class=\"num\">3<", html)
    assert re.search(r"Chrome 131</td><td class=\"num\">3<", html) and "Firefox 133" in html
    assert html.count('<tr class="occurrence">') == 4
    assert "at pay (https://shop.example/static/checkout.js:41:7)" in html


def test_detail_query_count_does_not_grow_with_occurrences(staff_client, send, django_assert_num_queries):
    send({"events": [error(page=f"/p{n}") for n in range(40)]})
    group = ErrorGroup.objects.get()
    # session, user, group, hourly chart, pages, browsers, occurrences
    with django_assert_num_queries(8):  # the sites the user may see: one more
        staff_client.get(reverse("dashboard:error_detail", args=[group.pk]))


def test_detail_lists_at_most_fifty_occurrences(staff_client, send):
    send({"events": [error()] * 50})
    send({"events": [error()] * 5})
    html = staff_client.get(reverse("dashboard:error_detail", args=[ErrorGroup.objects.get().pk])).content.decode()
    assert html.count('<tr class="occurrence">') == 50


def test_detail_of_unknown_group_is_404(staff_client):
    assert staff_client.get(reverse("dashboard:error_detail", args=[999999])).status_code == 404


@pytest.mark.parametrize("status", ["resolved", "ignored", "unresolved"])
def test_status_buttons_change_status_via_htmx_and_record_who(staff_client, group, status):
    ErrorGroup.objects.filter(pk=group.pk).update(status="ignored" if status == "unresolved" else "unresolved")
    response = staff_client.post(
        reverse("dashboard:error_status", args=[group.pk]), {"status": status}, HTTP_HX_REQUEST="true"
    )
    group.refresh_from_db()
    assert response.status_code == 200
    assert response.content.decode().lstrip().startswith('<div id="error-status"')
    assert f"by {staff_client.user.username}" in response.content.decode()
    assert (group.status, group.status_changed_by) == (status, staff_client.user)
    assert (group.resolved_at is not None) == (status == "resolved")


def test_status_post_without_htmx_redirects_back_to_the_group(staff_client, group):
    response = staff_client.post(reverse("dashboard:error_status", args=[group.pk]), {"status": "resolved"})
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('dashboard:error_detail', args=[group.pk])}?site={group.site.domain}"


def test_status_post_with_a_bad_status_is_400(staff_client, group):
    response = staff_client.post(reverse("dashboard:error_status", args=[group.pk]), {"status": "deleted"})
    assert response.status_code == 400
    group.refresh_from_db()
    assert group.status == "unresolved"


def test_status_post_needs_the_csrf_token(make_staff, group):
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_staff("ops2"))
    response = client.post(reverse("dashboard:error_status", args=[group.pk]), {"status": "resolved"})
    assert response.status_code == 403
    page = client.get(reverse("dashboard:error_detail", args=[group.pk])).content.decode()
    assert 'name="csrfmiddlewaretoken"' in page


# --- permissions -------------------------------------------------------------------------------


@pytest.fixture
def clients(django_user_model, make_staff):
    anonymous = Client()
    member = Client()
    member.force_login(django_user_model.objects.create_user("visitor"))
    inactive_staff = Client()
    inactive_staff.force_login(django_user_model.objects.create_user("gone", is_staff=True))
    django_user_model.objects.filter(username="gone").update(is_active=False)
    staff = Client()
    staff.force_login(make_staff("ops"))
    return {"anonymous": anonymous, "member": member, "inactive_staff": inactive_staff, "staff": staff}


@pytest.mark.parametrize(
    ("who", "page", "htmx", "action"),
    [
        ("anonymous", 302, 403, 403),
        ("member", 302, 403, 403),
        ("inactive_staff", 302, 403, 403),
        ("staff", 200, 200, 200),
    ],
)
def test_permission_matrix(clients, group, who, page, htmx, action):
    client = clients[who]
    for url in (reverse("dashboard:errors"), reverse("dashboard:error_detail", args=[group.pk])):
        response = client.get(url)
        assert response.status_code == page
        if page == 302:
            assert response["Location"].startswith(reverse("login"))
    response = client.get(reverse("dashboard:errors"), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="error-results")
    assert response.status_code == htmx
    response = client.post(
        reverse("dashboard:error_status", args=[group.pk]), {"status": "ignored"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == action
    group.refresh_from_db()
    assert group.status == ("ignored" if who == "staff" else "unresolved")


def test_status_action_refuses_get(staff_client, group):
    assert staff_client.get(reverse("dashboard:error_status", args=[group.pk])).status_code == 405


# --- escaping ------------------------------------------------------------------------------------


def test_error_text_is_escaped_in_list_and_detail(staff_client, send):
    for attack in XSS:
        send(error(attack, stack=f"{attack}\n    at {attack} (https://x.example/{attack}.js:1:1)", page=f"/p{attack}"))
    html = staff_client.get(reverse("dashboard:errors")).content.decode()
    for group in ErrorGroup.objects.all():
        html += staff_client.get(reverse("dashboard:error_detail", args=[group.pk])).content.decode()
    for attack in XSS:
        assert attack not in html
    assert "&lt;script&gt;alert(&lt;num&gt;)&lt;/script&gt;" in html  # the masked title, escaped
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # the message as sent, escaped
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    for figure in figures(html):  # chart JSON cannot close its <script>
        assert "</script" not in json.dumps(figure)


def test_pages_send_no_inline_script(staff_client, group):
    for url in (reverse("dashboard:errors"), reverse("dashboard:error_detail", args=[group.pk])):
        html = staff_client.get(url).content.decode()
        assert not re.search(r"<script(?![^>]*\b(src|type=\"application/json\")=?)[^>]*>", html)


# --- done when ------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_done_when_300_copies_and_one_other_error_give_two_groups_two_emails_and_a_staff_view(send, make_staff):
    # Alerts go out after each commit: from a background thread (PostgreSQL, file SQLite) or,
    # on the suite's in-memory SQLite, in the committing thread.
    for _ in range(6):
        assert send({"events": [error()] * 50}).status_code == 204
        alerts.alerts_wait()
    assert send(error("ReferenceError: gtag is not defined", stack="", page="/")).status_code == 204
    alerts.alerts_wait()

    assert sorted(ErrorGroup.objects.values_list("count", flat=True)) == [1, 300]
    assert sorted(message.subject for message in mail.outbox) == [
        "[Beacons] New error on /: ReferenceError: gtag is not defined",
        "[Beacons] New error on /checkout: TypeError: x is undefined",
    ]
    assert all(message.to == ["oncall@example.com"] for message in mail.outbox)

    assert Client().get(reverse("dashboard:errors")).status_code == 302
    staff = Client()
    staff.force_login(make_staff("ops"))
    html = staff.get(reverse("dashboard:errors")).content.decode()
    assert "TypeError: x is undefined" in html and "ReferenceError: gtag is not defined" in html
    assert 'aria-label="300 in the last 24 hours"' in html and 'aria-label="1 in the last 24 hours"' in html
    for group in ErrorGroup.objects.all():
        detail = staff.get(reverse("dashboard:error_detail", args=[group.pk])).content.decode()
        assert sum(figures(detail)[0]["data"][0]["y"]) == group.count


# --- words: titles, times, who is told (issue 11) ---------------------------------------------


def error_link_texts(html: str) -> list[str]:
    return re.findall(r'<a href="/dashboard/errors/\d+/\?site=[^"]+">([^<]+)</a>', html)


def test_list_and_detail_title_an_error_by_its_latest_message_not_its_mask(staff_client, send):
    send(error("TypeError: Cannot read properties of undefined (reading 'price')"))
    send(error("TypeError: Cannot read properties of undefined (reading 'total')"))
    group = ErrorGroup.objects.get()  # one group: the quoted part is masked in the grouping key
    assert group.title == "TypeError: Cannot read properties of undefined (reading <str>)"

    listed = staff_client.get(reverse("dashboard:errors")).content.decode()
    detail = staff_client.get(reverse("dashboard:error_detail", args=[group.pk])).content.decode()

    assert error_link_texts(listed) == ["TypeError: Cannot read properties of undefined (reading &#x27;total&#x27;)"]
    assert (
        '<h1 class="headline error-title">TypeError: Cannot read properties of undefined (reading &#x27;total&#x27;)</h1>'
        in detail
    )
    assert "Grouped as <code>TypeError: Cannot read properties of undefined (reading &lt;str&gt;)</code>" in detail


def test_an_older_occurrence_arriving_late_does_not_replace_the_title(staff_client, send):
    send(error("Item 7 missing"))
    group = ErrorGroup.objects.get()
    ErrorGroup.objects.update(last_seen=timezone.now() + timedelta(minutes=5))  # as if a newer one came first
    send(error("Item 8 missing"))
    group.refresh_from_db()
    assert (group.title, group.message, group.count) == ("Item <num> missing", "Item 7 missing", 2)


def test_error_title_from_the_message_is_escaped_on_list_and_detail(staff_client, send):
    send(error(XSS[0]))
    group = ErrorGroup.objects.get()
    for url in (reverse("dashboard:errors"), reverse("dashboard:error_detail", args=[group.pk])):
        html = staff_client.get(url).content.decode()
        assert XSS[0] not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_last_seen_reads_just_now_then_the_largest_unit(staff_client, send):
    send(error("First"))
    html = staff_client.get(reverse("dashboard:errors")).content.decode()
    assert ">just now</time>" in html and "0\xa0minutes" not in html
    ErrorGroup.objects.update(last_seen=timezone.now() - timedelta(hours=3, minutes=20))
    html = staff_client.get(reverse("dashboard:errors")).content.decode()
    assert ">3\xa0hours ago</time>" in html


@pytest.mark.parametrize("page", ["list", "detail"])
def test_error_pages_say_who_will_be_told(staff_client, send, settings, django_user_model, page):
    settings.BEACONS_ALERT_EMAILS = []
    settings.ADMINS = []
    send(error())
    group = ErrorGroup.objects.get()
    url = reverse("dashboard:errors") if page == "list" else reverse("dashboard:error_detail", args=[group.pk])

    html = staff_client.get(url).content.decode()
    assert "Nobody will be told about new JavaScript errors" in html

    django_user_model.objects.create_superuser("boss", "boss@shop.example", "x")
    html = " ".join(staff_client.get(url).content.decode().split())
    assert "are emailed to <strong>boss@shop.example</strong> (the superusers&#x27; addresses" in html
    assert "Nobody will be told" not in html

    settings.BEACONS_ALERT_EMAILS = ["oncall@example.com"]
    html = " ".join(staff_client.get(url).content.decode().split())
    assert "are emailed to <strong>oncall@example.com</strong> (BEACONS_ALERT_EMAILS)" in html


# --- the 24 h / 7 d / 30 d spans: one list for both pages --------------------------------------


def test_list_and_detail_offer_the_same_spans(staff_client, group):
    listed = re.findall(
        r'<option value="(\w+)"[^>]*>(Last \d[^<]+|Any time)</option>',
        staff_client.get(reverse("dashboard:errors")).content.decode(),
    )
    assert listed == [("24h", "Last 24 hours"), ("7d", "Last 7 days"), ("30d", "Last 30 days"), ("all", "Any time")]
    detail = staff_client.get(reverse("dashboard:error_detail", args=[group.pk]), {"range": "30d"}).content.decode()
    links = re.findall(r'<a href="\?range=(\w+)&amp;site=[^"]+"( aria-current="true")?>([^<]+)</a>', detail)
    assert links == [("24h", "", "24 hours"), ("7d", "", "7 days"), ("30d", ' aria-current="true"', "30 days")]
    assert "1 in the last 30 days." in detail


def test_detail_with_an_unknown_span_shows_seven_days(staff_client, group):
    detail = staff_client.get(reverse("dashboard:error_detail", args=[group.pk]), {"range": "all"}).content.decode()
    assert f'<a href="?range=7d&amp;site={group.site.domain}" aria-current="true">7 days</a>' in detail


def test_occurrences_read_meta_and_name_the_browser(staff_client, send):
    send(error("Boom", source="https://shop.example/app.js", line=3, col=9), HTTP_USER_AGENT=FIREFOX_UA)
    group = ErrorGroup.objects.get()
    BeaconEventModel = group.occurrences.model
    BeaconEventModel.objects.create(
        site=group.site,
        definition=group.definition,
        received_at=timezone.now(),
        payload={"meta": "not an object"},
        error_group=group,
    )
    html = staff_client.get(reverse("dashboard:error_detail", args=[group.pk])).content.decode()
    assert "https://shop.example/app.js:3:9" in html and "Firefox 133" in html
