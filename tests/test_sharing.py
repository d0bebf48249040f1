"""Shared links: the read-only dashboard under /share/<token>/, its panels, CSVs and embeds, the
password, the limits, the headers, and the admin and staff page that make and revoke links."""

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from beacons.counting.increments import Hit, aggregates_add, increments_for
from beacons.models import BeaconDefinition, SharedLink, Site
from beacons.registry import system_definitions_resolve
from beacons.sharing import (
    PASSWORD_ATTEMPTS_PER_MINUTE,
    shared_link_create,
    shared_link_password_set,
    shared_link_revoke,
)
from dashboard.permissions import VIEW_COUNTS

from .conftest import first_site

pytestmark = pytest.mark.django_db

SHARED_PANELS = ["kpis", "live", "series", "top", "breakdown", "sources", "devices", "countries", "properties"]
CSV_PANELS = ["series", "top", "breakdown", "sources", "devices", "countries", "properties"]
ADD_LINKS, CHANGE_LINKS = "beacons.add_sharedlink", "beacons.change_sharedlink"
# Late on New Year's Eve in UTC: the day, the month and the year all end within the minute.
NOW = datetime(2026, 12, 31, 23, 59, 30, tzinfo=UTC)
SECRET_MESSAGE = "TypeError: token sk_live_SECRET123 of alice@example.com is undefined"
SECRET_STACK = "at checkout (https://shop.example.com/private/SECRETPATH.js:1:2)"


@pytest.fixture
def clock(monkeypatch):
    """Stop the clock at a chosen moment for the views, the links and the queries."""

    def stop_at(moment: datetime) -> datetime:
        monkeypatch.setattr(timezone, "now", lambda: moment)
        return moment

    stop_at(NOW)
    return stop_at


def hits_add(site, identifier, moment, n=1, slug="page_view"):
    definition = BeaconDefinition.objects.get(slug=slug)
    hit = Hit(site.pk, definition.pk, tuple(definition.granularity_codes), identifier)
    aggregates_add(increments=increments_for(hits=[hit] * n, received_at=moment))


@pytest.fixture
def traffic(clock):
    """Page views of the first site on the two days before now and today, on three pages."""
    system_definitions_resolve()
    for days_ago, identifier, n in [(2, "/", 5), (1, "/pricing", 3), (1, "/", 2), (0, "/docs", 1)]:
        hits_add(first_site(), identifier, NOW - timedelta(days=days_ago), n)


@pytest.fixture
def other_site(clock):
    """A second site with its own, different, traffic (and a page name of its own)."""
    site = Site.objects.create(domain="blog.example.org", name="Blog")
    hits_add(site, "/other-site-only", NOW - timedelta(hours=1), 40)
    return site


def share(site=None, **fields) -> tuple[SharedLink, str]:
    """A link to ``site`` (the first site) and its URL."""
    link, token = shared_link_create(site=site or first_site(), **fields)
    return link, reverse("share:index", kwargs={"token": token})


def figure_in(response, figure_id):
    match = re.search(rf'<script id="{figure_id}" type="application/json">(.*?)</script>', response.text, re.S)
    assert match, f"no figure {figure_id}"
    return json.loads(match.group(1))


def csv_rows(response):
    return list(csv.reader(io.StringIO(response.content.decode())))


def every_url(url: str) -> list[str]:
    """The page, every panel, every CSV and every embed of a shared link."""
    urls = [url, f"{url}types/?types=page"]
    urls += [f"{url}panel/{name}/" for name in [*SHARED_PANELS, "identifiers"]]
    urls += [f"{url}panel/{name}/?format=csv" for name in CSV_PANELS]
    urls += [f"{url}embed/{name}/" for name in SHARED_PANELS]
    return urls


# --- Opening a link --------------------------------------------------------------------------


def test_a_link_opens_the_dashboard_without_signing_in_and_shows_no_admin_or_site_switcher(client, traffic):
    _, url = share()
    response = client.get(url)
    assert response.status_code == 200
    html = response.text
    assert "Page views" in html and "/pricing" in html
    assert figure_in(response, "fig-series")["data"]
    assert "/admin/" not in html and 'href="/dashboard' not in html and "Log out" not in html
    assert "site-switcher" not in html
    assert 'id="errors"' not in html
    assert '<meta name="robots" content="noindex">' in html
    # Every link, partial and CSV of the page stays under the shared URL.
    assert f'href="{url}panel/series/?format=csv' in html
    assert f'hx-get="{url}panel/live/' in html
    assert f'hx-get="{url}panel/identifiers/"' in html


def test_a_staff_member_opening_a_link_sees_the_shared_page_not_the_staff_one(client, traffic, make_staff):
    client.force_login(make_staff(is_superuser=True))
    _, url = share()
    html = client.get(url).text
    assert "/admin/" not in html and "Log out" not in html and 'id="errors"' not in html


@pytest.mark.parametrize("url", ["", "types/?types=p", *(f"panel/{n}/" for n in SHARED_PANELS), "embed/series/"])
def test_every_answer_under_share_is_noindex_no_referrer_and_never_cached(client, traffic, url):
    _, base = share()
    response = client.get(base + url)
    assert response.status_code == 200
    assert response["X-Robots-Tag"] == "noindex, nofollow"
    assert response["Referrer-Policy"] == "no-referrer"
    assert set(response["Cache-Control"].split(", ")) == {"private", "no-store"}


def missing(client, url: str):
    response = client.get(url)
    assert response.status_code == 404
    assert response["X-Robots-Tag"] == "noindex, nofollow" and response["Referrer-Policy"] == "no-referrer"
    return response.content


def test_unknown_revoked_and_expired_links_get_the_same_404_on_every_url(client, traffic, clock):
    _, open_url = share()
    revoked, revoked_url = share()
    shared_link_revoke(link=revoked)
    _, expired_url = share(expires_at=NOW)  # expires at this very moment
    unknown_url = open_url[:-5] + ("AAAA/" if not open_url.endswith("AAAA/") else "BBBB/")
    answers = set()
    for url in [unknown_url, revoked_url, expired_url, "/share/x/", f"/share/{'a' * 500}/"]:
        for each in every_url(url):
            answers.add(missing(client, each))
    assert len(answers) == 1
    assert b"does not open anything" in answers.pop()


def test_a_link_opens_until_its_expiry_and_not_from_that_moment_on(client, traffic, clock):
    expiry = datetime(2027, 1, 1, 0, 0, tzinfo=UTC)
    _, url = share(expires_at=expiry)
    clock(expiry - timedelta(microseconds=1))
    assert client.get(url).status_code == 200
    clock(expiry)
    assert client.get(url).status_code == 404


def test_a_revoked_link_stops_opening_at_once_even_in_a_session_that_opened_it(client, traffic):
    link, url = share(password="open sesame")
    assert client.post(url, {"password": "open sesame"}).status_code == 302
    assert client.get(url).status_code == 200
    shared_link_revoke(link=link)
    assert client.get(url).status_code == 404
    assert client.get(f"{url}panel/series/?format=csv").status_code == 404


def test_last_opened_is_written_at_most_once_a_minute(client, traffic, clock):
    link, url = share()
    client.get(url)
    link.refresh_from_db()
    assert link.last_used_at == NOW
    clock(NOW + timedelta(seconds=59))
    client.get(url)
    link.refresh_from_db()
    assert link.last_used_at == NOW
    clock(NOW + timedelta(seconds=61))
    client.get(url)
    link.refresh_from_db()
    assert link.last_used_at == NOW + timedelta(seconds=61)


def test_a_shared_dashboard_refuses_posts(client, traffic):
    _, url = share()
    assert client.post(url, {"range": "7d"}).status_code == 405


# --- Password ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["", "panel/series/", "panel/top/?format=csv", "embed/series/", "types/?types=p"])
def test_without_the_password_every_url_shows_the_password_form_and_no_counts(client, traffic, path):
    _, url = share(password="open sesame")
    response = client.get(url + path)
    assert response.status_code == 403
    assert 'type="password"' in response.text
    assert "/pricing" not in response.text and "fig-series" not in response.text


def test_a_wrong_password_shows_the_form_again_and_the_right_one_opens_the_page_asked_for(client, traffic):
    _, url = share(password="open sesame")
    wrong = client.post(f"{url}panel/top/?format=csv", {"password": "open sesame "})
    assert wrong.status_code == 403 and "not right" in wrong.text
    right = client.post(f"{url}panel/top/?format=csv", {"password": "open sesame"})
    assert right.status_code == 302 and right["Location"] == f"{url}panel/top/?format=csv"
    rows = csv_rows(client.get(right["Location"]))
    assert [row[0] for row in rows[1:]] == ["/", "/pricing", "/docs"]


def test_the_password_is_remembered_for_that_link_only_and_forgotten_when_it_changes(client, traffic):
    link, url = share(password="first")
    _, other_url = share(password="first")
    client.post(url, {"password": "first"})
    assert client.get(url).status_code == 200
    assert client.get(other_url).status_code == 403  # the same password, another link: asked again
    assert Client().get(url).status_code == 403  # another browser: asked again
    shared_link_password_set(link, "second")
    link.save()
    assert client.get(url).status_code == 403


def test_only_a_hash_of_the_token_and_of_the_password_is_stored(traffic):
    link, url = share(password="open sesame")
    token = url.split("/")[2]
    stored = SharedLink.objects.filter(pk=link.pk).values().get()
    assert token not in json.dumps(stored, default=str)
    assert "open sesame" not in json.dumps(stored, default=str)
    assert len(token) >= 43


def test_password_attempts_are_limited_per_link_and_address_even_the_right_one_then(client, traffic, clock):
    clock(datetime(2026, 12, 31, 23, 59, 0, tzinfo=UTC))
    link, url = share(password="right")
    _, other_url = share(password="right")
    for _ in range(PASSWORD_ATTEMPTS_PER_MINUTE):
        assert client.post(url, {"password": "wrong"}, REMOTE_ADDR="203.0.113.9").status_code == 403
    clock(datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC))
    refused = client.post(url, {"password": "right"}, REMOTE_ADDR="203.0.113.9")
    assert refused.status_code == 429 and refused["Retry-After"] == "60" and "Too many attempts" in refused.text
    assert client.get(url).status_code == 403  # not opened
    # Another address, and another link from the same address, are not held back.
    assert Client().post(url, {"password": "right"}, REMOTE_ADDR="203.0.113.10").status_code == 302
    assert Client().post(other_url, {"password": "right"}, REMOTE_ADDR="203.0.113.9").status_code == 302
    # The next minute (the next year, too) it may be tried again.
    clock(datetime(2027, 1, 1, 0, 0, 0, tzinfo=UTC))
    assert client.post(url, {"password": "right"}, REMOTE_ADDR="203.0.113.9").status_code == 302
    assert client.get(url).status_code == 200


def test_an_overlong_password_is_cut_not_a_500(client, traffic):
    _, url = share(password="right")
    response = client.post(url, {"password": "x" * 100_000})
    assert response.status_code == 403


# --- What a link may see -----------------------------------------------------------------------


def test_a_link_shows_its_own_site_whatever_site_the_url_names(client, traffic, other_site):
    _, url = share()
    for path in ["", "panel/top/", "panel/kpis/", "embed/top/"]:
        html = client.get(f"{url}{path}?site={other_site.domain}").text
        assert "/other-site-only" not in html and "Blog" not in html
    assert "/other-site-only" not in client.get(f"{url}panel/top/?format=csv&site={other_site.domain}").text
    # The other site's link shows the other site only.
    _, blog_url = share(other_site)
    assert "/other-site-only" in client.get(f"{blog_url}panel/top/?format=csv").text
    assert "/pricing" not in client.get(f"{blog_url}panel/top/?format=csv&site={first_site().domain}").text


@pytest.fixture
def errors_with_secrets(send, settings):
    """An error whose message and stack hold private data, grouped as ingest groups it."""
    settings.BEACONS_RATE_LIMIT = 0
    settings.BEACONS_NETWORK_RATE_LIMIT = 0
    settings.BEACONS_ALERT_EMAILS = []
    body = {
        "event_type": "error",
        "identifier": "/checkout",
        "meta": {"message": SECRET_MESSAGE, "stack": SECRET_STACK},
    }
    assert send(body).status_code in (200, 202, 204)


def test_no_error_message_or_stack_appears_anywhere_under_share(client, traffic, errors_with_secrets):
    from beacons.models import ErrorGroup

    assert ErrorGroup.objects.exists()
    _, url = share()
    for each in every_url(url) + [f"{url}?type=error", f"{url}panel/top/?type=error&format=csv"]:
        response = client.get(each)
        assert response.status_code == 200, each
        for secret in ("SECRET123", "alice@example.com", "SECRETPATH", "/dashboard/errors"):
            assert secret not in response.text, (each, secret)
    for each in [f"{url}panel/errors/", f"{url}embed/errors/", f"{url}errors/", f"{url}panel/errors/?format=csv"]:
        assert client.get(each).status_code == 404


QUERIES = ["", "range=7d&compare=on", "range=custom&start=2026-12-29&end=2026-12-31&granularity=H", "identifier=/"]


@pytest.mark.parametrize("query", QUERIES)
def test_figures_and_csvs_under_share_equal_the_staff_dashboards_for_the_same_query(client, traffic, make_staff, query):
    staff = Client()
    staff.force_login(make_staff(is_superuser=True))
    _, url = share()
    staff_page, shared_page = staff.get(f"/dashboard/?{query}"), client.get(f"{url}?{query}")
    for figure in ("fig-series", "fig-breakdown"):
        assert figure_in(shared_page, figure) == figure_in(staff_page, figure)
    for name in CSV_PANELS:
        staff_csv = staff.get(f"/dashboard/panel/{name}/?format=csv&{query}")
        shared_csv = client.get(f"{url}panel/{name}/?format=csv&{query}")
        assert shared_csv.status_code == staff_csv.status_code
        assert shared_csv.content == staff_csv.content, name
    kpi_text = re.compile(r'<div class="kpi-value[^"]*">(.*?)</div>', re.S)
    staff_kpis = kpi_text.findall(staff.get(f"/dashboard/panel/kpis/?{query}").text)
    assert staff_kpis and kpi_text.findall(client.get(f"{url}panel/kpis/?{query}").text) == staff_kpis


# --- Embeds and framing --------------------------------------------------------------------------


def frame_ancestors(response) -> list[str]:
    policy = dict(
        part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";") if " " in part.strip()
    )
    return policy["frame-ancestors"].split()


def test_an_embed_may_be_framed_by_the_sites_own_origins_only(client, traffic):
    site = first_site()
    site.extra_origins = "https://checkout.example.net\nhttp://localhost:3000"
    site.save()
    _, url = share()
    response = client.get(f"{url}embed/series/")
    assert response.status_code == 200
    assert "X-Frame-Options" not in response
    assert frame_ancestors(response) == sorted(
        [f"https://{site.domain}", f"http://{site.domain}", "https://checkout.example.net", "http://localhost:3000"]
    )
    assert "script-src 'self'" in response["Content-Security-Policy"]  # the rest of the policy is kept


def test_an_embed_is_the_panel_alone_with_its_figure_and_links_that_stay_in_the_frame(client, traffic):
    _, url = share()
    response = client.get(f"{url}embed/top/")
    html = response.text
    assert "site-header" not in html and 'id="filters"' not in html and "htmx" not in html
    assert 'id="top"' in html and 'id="series"' not in html
    assert f'href="{url}embed/top/?' in html  # a row filters this embed, inside the frame
    series = client.get(f"{url}embed/series/?range=7d")
    assert figure_in(series, "fig-series")["data"]
    assert "Content-Security-Policy" in series and '<meta name="robots" content="noindex">' in series.text


def test_an_unknown_panel_embed_is_404(client, traffic):
    _, url = share()
    assert missing(client, f"{url}embed/nothing/") == missing(client, "/share/unknown/")


@pytest.mark.parametrize("path", ["", "panel/series/", "panel/top/?format=csv", "types/?types=p"])
def test_every_other_shared_answer_refuses_to_be_framed(client, traffic, path):
    _, url = share()
    response = client.get(url + path)
    assert response["X-Frame-Options"] == "DENY"
    assert frame_ancestors(response) == ["'self'"]


def test_the_staff_dashboard_still_refuses_to_be_framed(client, traffic, make_staff):
    client.force_login(make_staff(is_superuser=True))
    response = client.get("/dashboard/")
    assert response["X-Frame-Options"] == "DENY" and frame_ancestors(response) == ["'self'"]


# --- Making and revoking links: the staff page ---------------------------------------------------


def staff_with(make_staff, *permissions, sites=None) -> Client:
    client = Client()
    client.force_login(make_staff(permissions=(VIEW_COUNTS, *permissions), sites=sites))
    return client


@pytest.mark.parametrize(("permissions", "status"), [((), 403), ((ADD_LINKS,), 200)])
def test_the_share_page_needs_the_admins_add_permission(make_staff, traffic, permissions, status):
    staff = staff_with(make_staff, *permissions)
    assert staff.get("/dashboard/share/").status_code == status
    assert staff.post("/dashboard/share/", {"label": "x"}).status_code == status
    assert SharedLink.objects.count() == (1 if status == 200 else 0)
    assert ('href="/dashboard/share/' in staff.get("/dashboard/").text) is (status == 200)


def test_anonymous_visitors_are_sent_to_sign_in_from_the_share_page(client):
    response = client.get("/dashboard/share/")
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_the_share_page_shows_a_new_links_url_once_and_it_opens_the_dashboard(make_staff, traffic, client):
    staff = staff_with(make_staff, ADD_LINKS)
    response = staff.post(
        f"/dashboard/share/?site={first_site().domain}",
        {"label": "Investors", "password": "", "expires_at": "2027-01-31T12:00"},
    )
    found = re.search(r'value="(http://testserver/share/[\w-]+/)"', response.text)
    assert found, "the new link's URL is shown"
    link = SharedLink.objects.get()
    assert (link.label, link.site, link.created_by.username) == ("Investors", first_site(), "staffer")
    assert link.expires_at == datetime(2027, 1, 31, 12, 0, tzinfo=UTC)  # typed in the site's zone (UTC here)
    assert set(response["Cache-Control"].split(", ")) == {"private", "no-store"}
    assert client.get(found.group(1)).status_code == 200
    assert found.group(1) not in staff.get("/dashboard/share/").text  # shown once only


def test_the_share_page_refuses_an_expiry_in_the_past(make_staff, traffic):
    staff = staff_with(make_staff, ADD_LINKS)
    response = staff.post("/dashboard/share/", {"expires_at": "2026-12-31T23:59"})
    assert "Choose a moment in the future" in response.text
    assert not SharedLink.objects.exists()


def test_revoking_from_the_share_page_needs_the_change_permission_and_a_site_of_ones_own(
    make_staff, traffic, other_site, client
):
    link, url = share()
    blog_link, blog_url = share(other_site)
    adder = staff_with(make_staff, ADD_LINKS)
    assert "Revoke" not in adder.get("/dashboard/share/").text
    assert adder.post(f"/dashboard/share/{link.pk}/revoke/").status_code == 403
    user = make_staff("changer", permissions=(VIEW_COUNTS, ADD_LINKS, CHANGE_LINKS))
    changer = Client()
    changer.force_login(user)
    assert "Revoke" in changer.get("/dashboard/share/").text
    # A link of a site the user is not a member of: as if it did not exist.
    assert changer.post(f"/dashboard/share/{blog_link.pk}/revoke/").status_code == 404
    assert changer.post(f"/dashboard/share/{blog_link.pk}/revoke/?site={other_site.domain}").status_code == 404
    assert changer.get(f"/dashboard/share/{link.pk}/revoke/").status_code == 405
    response = changer.post(f"/dashboard/share/{link.pk}/revoke/?site={first_site().domain}")
    assert response.status_code == 302
    assert client.get(url).status_code == 404 and client.get(blog_url).status_code == 200
    link.refresh_from_db()
    assert link.revoked_at == NOW and "revoked" in changer.get("/dashboard/share/").text


# --- The admin -------------------------------------------------------------------------------------


def admin_user(make_staff, *codenames, sites=None, permissions=(VIEW_COUNTS,)):
    user = make_staff("linker", permissions=permissions, sites=sites)
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(content_type__app_label="beacons", codename=codename))
    client = Client()
    client.force_login(user)
    return client


def test_the_admin_makes_a_link_for_a_site_of_ones_own_and_shows_its_url_once(make_staff, traffic, other_site):
    admin = admin_user(make_staff, "add_sharedlink", "view_sharedlink", "change_sharedlink")
    form = admin.get(reverse("admin:beacons_sharedlink_add")).text
    assert first_site().domain in form and other_site.domain not in form
    refused = admin.post(reverse("admin:beacons_sharedlink_add"), {"site": other_site.pk, "label": "x"})
    assert refused.status_code == 200 and not SharedLink.objects.exists()
    response = admin.post(
        reverse("admin:beacons_sharedlink_add"), {"site": first_site().pk, "label": "Board", "new_password": "pw"}
    )
    found = re.search(r'value="(http://testserver/share/[\w-]+/)"', response.text)
    assert found and "shown only this once" in response.text
    link = SharedLink.objects.get()
    assert link.password and link.password != "pw" and link.created_by.username == "linker"
    assert found.group(1) not in admin.get(reverse("admin:beacons_sharedlink_change", args=[link.pk])).text


def test_the_admin_lets_only_those_who_may_read_counts_make_a_link(make_staff, traffic):
    admin = admin_user(make_staff, "add_sharedlink", "view_sharedlink", permissions=())
    assert admin.get(reverse("admin:beacons_sharedlink_add")).status_code == 403
    assert admin.post(reverse("admin:beacons_sharedlink_add"), {"site": first_site().pk}).status_code == 403
    assert not SharedLink.objects.exists()


def test_the_admin_lists_and_revokes_only_links_of_ones_own_sites(make_staff, traffic, other_site, client):
    link, url = share(label="Mine")
    blog_link, blog_url = share(other_site, label="Theirs")
    admin = admin_user(make_staff, "view_sharedlink", "change_sharedlink")
    listing = admin.get(reverse("admin:beacons_sharedlink_changelist")).text
    assert "Mine" in listing and "Theirs" not in listing
    assert admin.get(reverse("admin:beacons_sharedlink_change", args=[blog_link.pk])).status_code == 302
    response = admin.post(
        reverse("admin:beacons_sharedlink_changelist"),
        {"action": "revoke", "_selected_action": [link.pk, blog_link.pk]},
    )
    assert response.status_code == 302
    assert client.get(url).status_code == 404 and client.get(blog_url).status_code == 200


def test_unticking_active_in_the_admin_revokes_and_a_new_password_replaces_the_old(make_staff, traffic, client):
    link, url = share(password="old")
    admin = admin_user(make_staff, "view_sharedlink", "change_sharedlink")
    change = reverse("admin:beacons_sharedlink_change", args=[link.pk])
    admin.post(change, {"label": "x", "new_password": "new", "is_active": "on"})
    assert client.post(url, {"password": "old"}).status_code == 403
    assert client.post(url, {"password": "new"}).status_code == 302
    admin.post(change, {"label": "x", "remove_password": "on", "is_active": "on"})
    assert Client().get(url).status_code == 200
    admin.post(change, {"label": "x"})
    link.refresh_from_db()
    assert not link.is_active and link.revoked_at == NOW
    assert client.get(url).status_code == 404


@pytest.mark.parametrize("path", ["", *(f"panel/{name}/" for name in SHARED_PANELS)])
def test_a_shared_page_or_panel_runs_the_staff_ones_panel_queries_and_one_for_the_link(
    client, traffic, make_staff, path
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    staff = Client()
    staff.force_login(make_staff(is_superuser=True))
    _, url = share()
    client.get(url + path)  # the first opening writes its last-used time
    staff.get(f"/dashboard/{path}")
    with CaptureQueriesContext(connection) as staff_queries:
        staff.get(f"/dashboard/{path}")
    with CaptureQueriesContext(connection) as shared_queries:
        client.get(url + path)
    # Staff: the session, the user and their sites (3); a link: the link with its site (1). The rest is the
    # panels', less the error panel's one on the whole page.
    error_panel = 1 if path == "" else 0
    assert len(shared_queries) == len(staff_queries) - 3 + 1 - error_panel
