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
