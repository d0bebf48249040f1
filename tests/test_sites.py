"""Sites: the rules for their names and origins, the admin, and the cache ingest resolves them through."""

import pytest
from django.core.exceptions import ValidationError

from beacons.domains import InvalidDomain, domain_normalise
from beacons.models import Site


@pytest.mark.parametrize(
    "text, domain",
    [
        ("Shop.Example.COM", "shop.example.com"),
        ("  shop.example.com.  ", "shop.example.com"),
        ("localhost", "localhost"),
        ("127.0.0.1", "127.0.0.1"),
        ("bücher.example", "xn--bcher-kva.example"),
    ],
)
def test_a_domain_is_stored_lower_case_in_its_ascii_form(text, domain):
    assert domain_normalise(text) == domain


@pytest.mark.parametrize(
    "text",
    [
        "",
        "https://shop.example.com",
        "shop.example.com:8443",
        "shop.example.com/path",
        "user@shop.example.com",
        "-shop.example.com",
        "shop..example.com",
        "shop_example.com",
        "a" * 64 + ".example.com",
        ("a" * 60 + ".") * 5 + "com",
        "\x00.example.com",
        None,
        42,
    ],
)
def test_anything_but_a_host_name_is_not_a_domain(text):
    with pytest.raises(InvalidDomain):
        domain_normalise(text)


@pytest.mark.django_db
def test_the_site_form_normalises_the_domain_and_names_each_problem():
    site = Site(domain="Shop.Example.com", name="Shop")
    site.full_clean()
    assert site.domain == "shop.example.com"

    bad = Site(domain="https://shop.example.com/", name="Shop", time_zone="Mars/Olympus", extra_origins="ftp://x\n")
    with pytest.raises(ValidationError) as problem:
        bad.full_clean()
    assert set(problem.value.message_dict) == {"domain", "time_zone", "extra_origins"}
    assert "without http://" in problem.value.message_dict["domain"][0]


@pytest.mark.django_db
def test_extra_origins_take_one_origin_a_line_and_skip_blank_lines():
    site = Site(
        domain="shop.example.com",
        name="Shop",
        time_zone="Europe/Berlin",
        extra_origins="https://checkout.example.net\n\n  http://localhost:3000  \n",
    )
    site.full_clean()
    with pytest.raises(ValidationError):
        Site(domain="b.example.com", name="B", extra_origins="https://ok.example\nhttps://x.example/path").full_clean()


@pytest.mark.django_db
def test_the_admin_lists_searches_and_adds_sites(admin_client, django_user_model):
    staffer = django_user_model.objects.create(username="ann", is_staff=True)
    response = admin_client.post(
        "/admin/beacons/site/add/",
        {
            "domain": "Blog.Example.com",
            "name": "Blog",
            "is_active": "on",
            "time_zone": "Europe/Berlin",
            "extra_origins": "",
            "members": [staffer.pk],
        },
    )
    assert response.status_code == 302, response.content
    site = Site.objects.get(domain="blog.example.com")
    assert list(site.members.all()) == [staffer]
    listing = admin_client.get("/admin/beacons/site/", {"q": "blog"})
    assert b"blog.example.com" in listing.content
    assert admin_client.get(f"/admin/beacons/site/{site.pk}/change/").status_code == 200


def test_the_site_list_names_its_members_escaped_and_says_when_there_are_none(
    admin_client, django_user_model, django_assert_max_num_queries
):
    names = ["dora", "<b>eve</b>", "bob", "carl", "al"]
    users = [django_user_model.objects.create(username=name, is_staff=True) for name in names]
    blog = Site.objects.create(domain="blog.example.com", name="Blog")
    blog.members.set(users)
    Site.objects.create(domain="empty.example.com", name="Nobody's")
    for n in range(10):
        Site.objects.create(domain=f"s{n}.example.com", name=f"Site {n}").members.set(users[:1])
    with django_assert_max_num_queries(8):  # members are read in one query, however many sites
        listing = admin_client.get("/admin/beacons/site/").content.decode()
    assert "&lt;b&gt;eve&lt;/b&gt;, al, bob and 2 more" in listing  # sorted, first three named
    assert "<b>eve</b>" not in listing
    assert "none (superusers only)" in listing


def test_the_site_form_warns_that_a_new_time_zone_does_not_move_counted_days(admin_client, site):
    page = admin_client.get(f"/admin/beacons/site/{site.pk}/change/").content.decode()
    assert "does not move counts already made" in page


# --- ingest: which site a beacon counts for ---------------------------------------------


@pytest.fixture
def shop(db):
    return Site.objects.create(domain="shop.example.com", name="Shop", extra_origins="https://checkout.example.net")


def site_day_count(site, identifier=""):
    from beacons.models import BeaconAggregate, Granularity

    row = BeaconAggregate.objects.filter(
        site=site, definition__slug="page_view", identifier=identifier, granularity=Granularity.DAY
    ).first()
    return row.count if row else 0


def unknown_site_tally():
    from beacons.models import DroppedHits

    row = DroppedHits.objects.filter(reason=DroppedHits.Reason.UNKNOWN_SITE).first()
    return row.count if row else 0


def test_two_sites_count_the_same_page_separately(send, site, shop):
    assert send({"event_type": "page_view", "identifier": "/", "site": "shop.example.com"}).status_code == 204
    assert send({"event_type": "page_view", "identifier": "/", "site": "Shop.Example.com"}).status_code == 204
    assert send({"event_type": "page_view", "identifier": "/"}).status_code == 204  # names none: the first site
    assert (site_day_count(shop, "/"), site_day_count(site, "/")) == (2, 1)
    assert (site_day_count(shop), site_day_count(site)) == (2, 1)


def test_a_batch_names_its_site_once_for_all_its_events(send, site, shop):
    body = {"site": "shop.example.com", "events": [{"event_type": "page_view", "identifier": "/a"}] * 3}
    assert send(body).status_code == 204
    assert (site_day_count(shop, "/a"), site_day_count(site, "/a")) == (3, 0)


@pytest.mark.parametrize("inactive", [False, True])
def test_an_unknown_or_inactive_site_is_refused_counted_as_dropped_and_counts_nothing(send, site, shop, inactive):
    if inactive:
        Site.objects.filter(pk=shop.pk).update(is_active=False)
    named = "shop.example.com" if inactive else "blog.example.com"
    body = {"site": named, "events": [{"event_type": "page_view", "identifier": "/"}] * 2}
    response = send(body)
    assert response.status_code == 403
    assert response.json()["field"] == "site"
    assert named in response.json()["error"]
    assert unknown_site_tally() == 2
    assert (site_day_count(shop), site_day_count(site)) == (0, 0)


@pytest.mark.parametrize(
    "named", ["https://shop.example.com/", "shop.example.com:443", 42, ["shop.example.com"], "x" * 300]
)
def test_a_site_that_is_not_a_host_name_is_a_400_naming_the_field(send, site, named):
    response = send({"event_type": "page_view", "site": named})
    assert response.status_code == 400
    assert response.json()["field"] == "site"
    assert site_day_count(site) == 0 and unknown_site_tally() == 0


def test_without_a_site_field_the_origin_and_then_the_referer_decide(send, site, shop):
    assert (
        send({"event_type": "page_view", "identifier": "/o"}, HTTP_ORIGIN="https://shop.example.com").status_code == 204
    )
    assert (
        send({"event_type": "page_view", "identifier": "/r"}, HTTP_REFERER="http://shop.example.com/r?x=1").status_code
        == 204
    )
    # A page on the checkout origin the shop lists as its own counts for the shop.
    assert (
        send({"event_type": "page_view", "identifier": "/c"}, HTTP_ORIGIN="https://checkout.example.net").status_code
        == 204
    )
    assert [site_day_count(shop, page) for page in ("/o", "/r", "/c")] == [1, 1, 1]
    assert site_day_count(site) == 0


def test_a_referer_of_an_unknown_host_is_an_unknown_site(send, site):
    response = send({"event_type": "page_view"}, HTTP_REFERER="https://blog.example.org/post")
    assert response.status_code == 403 and response.json()["field"] == "site"
    assert unknown_site_tally() == 1


def test_a_page_of_one_site_cannot_send_for_another(send, site, shop):
    other = Site.objects.create(domain="blog.example.com", name="Blog")
    response = send({"event_type": "page_view", "site": "shop.example.com"}, HTTP_ORIGIN="https://blog.example.com")
    assert response.status_code == 403
    assert response.json()["field"] == "origin"
    assert (site_day_count(shop), site_day_count(other)) == (0, 0)
    ok = send({"event_type": "page_view", "site": "shop.example.com"}, HTTP_ORIGIN="https://checkout.example.net")
    assert ok.status_code == 204 and site_day_count(shop) == 1


def test_origins_every_site_accepts_name_no_site_and_may_send_for_any(send, site, shop, settings):
    settings.BEACONS_ALLOWED_ORIGINS = ["https://partner.example"]
    assert send({"event_type": "page_view"}, HTTP_ORIGIN="https://partner.example").status_code == 204
    named = send({"event_type": "page_view", "site": "shop.example.com"}, HTTP_ORIGIN="https://partner.example")
    assert named.status_code == 204
    assert (site_day_count(site), site_day_count(shop)) == (1, 1)


def test_a_preflight_is_answered_for_a_sites_extra_origin_and_refused_for_a_stranger(beacon_client, shop):
    allowed = beacon_client.options("/beacon", HTTP_ORIGIN="https://checkout.example.net")
    assert allowed.status_code == 204
    assert allowed["Access-Control-Allow-Origin"] == "https://checkout.example.net"
    assert beacon_client.options("/beacon", HTTP_ORIGIN="https://evil.example").status_code == 403


def test_the_image_beacon_takes_its_site_from_the_query(beacon_client, site, shop):
    response = beacon_client.get("/beacon/page_view.gif", {"i": "/mail", "site": "shop.example.com"})
    assert response.status_code == 200 and response["Content-Type"] == "image/gif"
    assert site_day_count(shop, "/mail") == 1
    refused = beacon_client.get("/beacon/page_view.gif", {"i": "/mail", "site": "nope.example.com"})
    assert refused.status_code == 403 and site_day_count(shop, "/mail") == 1


def test_sites_are_read_once_per_process_not_per_hit(send, shop, django_assert_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    assert send({"event_type": "page_view", "site": "shop.example.com"}).status_code == 204
    with CaptureQueriesContext(connection) as queries:
        for _ in range(3):
            assert send({"event_type": "page_view", "site": "shop.example.com"}).status_code == 204
    assert not [q for q in queries.captured_queries if Site._meta.db_table in q["sql"]]


def test_a_new_or_switched_off_site_applies_at_once_in_this_process(send, site):
    assert send({"event_type": "page_view", "site": "new.example.com"}).status_code == 403
    new = Site.objects.create(domain="new.example.com", name="New")
    assert send({"event_type": "page_view", "site": "new.example.com"}).status_code == 204
    new.is_active = False
    new.save()
    assert send({"event_type": "page_view", "site": "new.example.com"}).status_code == 403


def test_cached_sites_are_served_while_the_database_is_down(send, shop, monkeypatch):
    from django.db import OperationalError

    from beacons import sites

    assert send({"event_type": "page_view", "site": "shop.example.com"}).status_code == 204

    def database_down(now):
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(sites, "SITES_CACHE_SECONDS", 0)  # stale: the database is asked
    monkeypatch.setattr(sites, "_sites_load", database_down)
    assert sites.sites_cached().by_domain["shop.example.com"].id == shop.pk
    sites.sites_cache_clear()  # a process that never read them answers 503
    assert send({"event_type": "page_view", "site": "shop.example.com"}).status_code == 503


def test_the_tag_names_the_site_of_the_requests_host(rf, site, shop, settings):
    from django.template import Context, Template

    settings.ALLOWED_HOSTS = ["shop.example.com", "testserver"]
    template = Template("{% load beacons %}{% beacon_script %}")
    on_shop = template.render(Context({"request": rf.get("/", HTTP_HOST="shop.example.com:8000")}))
    assert 'data-site="shop.example.com"' in on_shop
    elsewhere = template.render(Context({"request": rf.get("/", HTTP_HOST="testserver")}))
    assert "data-site" not in elsewhere
    chosen = Template('{% load beacons %}{% beacon_script site="other.example" %}').render(Context({}))
    assert 'data-site="other.example"' in chosen
