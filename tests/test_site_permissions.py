"""Staff see the sites they are members of (superusers: all): every dashboard page, partial, CSV
and action answers 404 for a site the user may not see, on top of the model permissions."""

from datetime import UTC, datetime

import pytest
from django.test import Client
from django.urls import reverse

from beacons.counting.increments import Hit, aggregates_add, increments_for
from beacons.models import BeaconDefinition, ErrorGroup, Site

from .conftest import first_site

pytestmark = pytest.mark.django_db

BREAKDOWN_PANELS = ["sources", "devices", "countries", "properties"]
URLS = [
    "/dashboard/",
    "/dashboard/?range=7d",
    "/dashboard/?dim=source&value=shop-secret-source",
    *(
        f"/dashboard/panel/{name}/"
        for name in ["kpis", "live", "series", "top", "breakdown", "identifiers", *BREAKDOWN_PANELS, "errors"]
    ),
    *(f"/dashboard/panel/{name}/?format=csv" for name in ["series", "top", "breakdown", *BREAKDOWN_PANELS]),
    "/dashboard/types/?types=page",
    "/dashboard/errors/",
    "/dashboard/errors/?status=all",
    "/dashboard/errors/{pk}/",
]
SHOP_PAGE = "/shop-secret-offer"
SHOP_ERROR = "TypeError: shop basket exploded"


@pytest.fixture
def shop(send):
    """A second site with a counted page and an error group of its own."""
    site = Site.objects.create(domain="shop.example.com", name="Shop")
    page_view = BeaconDefinition.objects.get(slug="page_view")
    hit = Hit(site.pk, page_view.pk, tuple(page_view.granularity_codes), SHOP_PAGE)
    aggregates_add(increments=increments_for(hits=[hit] * 4, received_at=datetime.now(UTC)))
    body = {"event_type": "error", "identifier": "/cart", "meta": {"message": SHOP_ERROR}, "site": site.domain}
    assert send(body).status_code == 204
    return site


@pytest.fixture
def shop_group(shop) -> ErrorGroup:
    return ErrorGroup.objects.get(site=shop)


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


USERS = {
    "member of the first site": lambda make_staff, shop: make_staff("first"),
    "member of the shop": lambda make_staff, shop: make_staff("shopper", sites=[shop]),
    "member of no site": lambda make_staff, shop: make_staff("nowhere", sites=[]),
    "superuser": lambda make_staff, shop: make_staff("root", is_superuser=True, sites=[]),
}
MAY_SEE = {
    "member of the first site": {"first"},
    "member of the shop": {"shop"},
    "member of no site": set(),
    "superuser": {"first", "shop"},
}


@pytest.mark.parametrize("who", USERS)
@pytest.mark.parametrize("which", ["first", "shop", "unknown"])
@pytest.mark.parametrize("url", URLS)
def test_every_page_partial_and_csv_answers_404_for_a_site_the_user_may_not_see(
    make_staff, shop, shop_group, who, which, url
):
    domain = {"first": first_site().domain, "shop": shop.domain, "unknown": "nowhere.example.com"}[which]
    url = url.format(pk=shop_group.pk if which == "shop" else 0)
    if "/errors/0/" in url:  # the first site's own group, so only the site decides the answer
        url = url.replace("/0/", f"/{_first_site_group().pk}/")
    separator = "&" if "?" in url else "?"
    response = login(USERS[who](make_staff, shop)).get(f"{url}{separator}site={domain}")
    if which in MAY_SEE[who]:
        assert response.status_code == 200, (who, which, url)
    else:
        assert response.status_code == 404, (who, which, url)
        assert SHOP_PAGE.encode() not in response.content and b"basket" not in response.content


def _first_site_group() -> ErrorGroup:
    group = ErrorGroup.objects.filter(site=first_site()).first()
    if group is None:
        now = datetime.now(UTC)
        group = ErrorGroup.objects.create(
            site=first_site(),
            definition=BeaconDefinition.objects.get(slug="error"),
            fingerprint="first",
            title="First site error",
            first_seen=now,
            last_seen=now,
            count=1,
        )
    return group


@pytest.mark.parametrize("who", ["member of the first site", "member of the shop", "superuser"])
def test_an_error_status_change_needs_the_groups_site(make_staff, shop, shop_group, who):
    client = login(USERS[who](make_staff, shop))
    url = reverse("dashboard:error_status", args=[shop_group.pk])
    response = client.post(f"{url}?site={shop.domain}", {"status": "resolved"})
    shop_group.refresh_from_db()
    if "shop" in MAY_SEE[who]:
        assert response.status_code == 302 and shop_group.status == "resolved"
    else:
        assert response.status_code == 404 and shop_group.status == "unresolved"
    # Through a site the user may see, another site's group is not found either.
    other = client.post(f"{url}?site={first_site().domain}", {"status": "ignored"})
    shop_group.refresh_from_db()
    assert shop_group.status != "ignored"
    assert other.status_code == 404


def test_without_a_site_in_the_url_the_first_site_the_user_may_see_is_shown(make_staff, shop):
    shopper = login(make_staff("shopper", sites=[shop]))
    response = shopper.get("/dashboard/")
    assert response.context["state"].site == shop
    assert response.context["kpis"]["total"] == 4
    assert SHOP_PAGE in response.content.decode()


def test_each_site_breaks_down_only_its_own_visits(make_staff, shop, send):
    body = {"event_type": "page_view", "identifier": "/", "utm_source": "shop-secret-source", "site": shop.domain}
    assert send(body).status_code == 204
    root = login(make_staff("root", is_superuser=True))
    for url in ["/dashboard/", "/dashboard/panel/sources/", "/dashboard/panel/sources/?format=csv"]:
        separator = "&" if "?" in url else "?"
        assert "shop-secret-source" not in root.get(f"{url}{separator}site={first_site().domain}").content.decode()
        assert "shop-secret-source" in root.get(f"{url}{separator}site={shop.domain}").content.decode()
    filtered = root.get("/dashboard/", {"site": shop.domain, "dim": "source", "value": "shop-secret-source"})
    assert filtered.context["kpis"]["total"] == 1


def test_each_site_shows_only_its_own_counts_and_errors(make_staff, shop):
    root = login(make_staff("root", is_superuser=True))
    first = root.get("/dashboard/", {"site": first_site().domain}).content.decode()
    assert SHOP_PAGE not in first and "basket" not in first
    on_shop = root.get("/dashboard/", {"site": shop.domain}).content.decode()
    assert SHOP_PAGE in on_shop and "basket" in on_shop
    assert "basket" not in root.get("/dashboard/errors/", {"site": first_site().domain}).content.decode()


def test_the_switcher_lists_the_users_sites_and_every_link_keeps_the_site(make_staff, shop):
    Site.objects.create(domain="blog.example.com", name="Blog")
    user = make_staff("both", sites=[first_site(), shop])
    html = login(user).get("/dashboard/", {"site": shop.domain}).content.decode()
    switcher = html.split('class="site-switcher"')[1].split("</nav>")[0]
    assert f'href="/dashboard/?site={first_site().domain}"' in switcher
    assert 'href="/dashboard/?site=shop.example.com" aria-current="true"' in switcher
    assert "blog.example.com" not in html  # not a member
    assert '<input type="hidden" name="site" value="shop.example.com">' in html
    assert 'href="/dashboard/panel/series/?format=csv&amp;site=shop.example.com&amp;' in html  # the CSV link
    errors = login(user).get("/dashboard/errors/", {"site": shop.domain}).content.decode()
    assert 'href="/dashboard/errors/?site=shop.example.com" aria-current="true"' in errors
