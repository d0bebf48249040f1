"""The {% beacon_script %} tag, the demo page and the shipped client file (no browser needed)."""

import gzip
import re

import pytest
from django.template import Context, Template, TemplateSyntaxError

from bench import client_size


def render(arguments: str = "", **context) -> str:
    return Template("{% load beacons %}{% beacon_script " + arguments + " %}").render(Context(context))


def test_default_tag_loads_the_minified_client_deferred_with_this_sites_endpoint():
    assert render() == '<script defer src="/static/beacons/beacon.min.js" data-endpoint="/beacon"></script>'


def test_options_become_data_attributes_that_beacon_js_reads():
    html = render(
        "batch_size=20 batch_timeout=1000 debug=True direct_page_views=False hash=True query_string=True "
        'require_consent=True consent_cookie="cookie_ok" respect_do_not_track=False page_views=True errors=False'
    )

    assert ' data-batch-size="20"' in html
    assert ' data-batch-timeout="1000"' in html
    assert ' data-debug="true"' in html
    assert ' data-direct-page-views="false"' in html
    assert ' data-hash="true"' in html
    assert ' data-query-string="true"' in html
    assert ' data-require-consent="true"' in html
    assert ' data-consent-cookie="cookie_ok"' in html
    assert ' data-respect-do-not-track="false"' in html
    assert ' data-page-views="true"' in html
    assert ' data-errors="false"' in html


def test_every_option_the_tag_accepts_is_read_by_beacon_js():
    from beacons.templatetags.beacons import OPTIONS

    source = client_size.SOURCE.read_text()
    for attribute in OPTIONS.values():
        camel = re.sub(r"-(\w)", lambda m: m.group(1).upper(), attribute.removeprefix("data-"))
        assert f'option("{camel}"' in source, attribute


@pytest.mark.parametrize(
    "value",
    ['"><script>alert(1)</script>', 'https://x.example/beacon?a=1&b="2"', "' onload='alert(1)"],
)
def test_option_values_are_escaped(value):
    html = render("endpoint=value consent_cookie=value", value=value)

    assert "<script>alert" not in html
    assert html.count("<script") == 1
    assert html.count('"') == 6  # src, data-endpoint and data-consent-cookie quoted, nothing else
    assert "'" not in html


def test_values_marked_safe_are_still_escaped():
    from django.utils.safestring import mark_safe

    html = render("endpoint=value", value=mark_safe('"><img src=x onerror=alert(1)>'))

    assert "<img" not in html
    assert 'data-endpoint="&quot;&gt;&lt;img' in html


def test_a_page_may_choose_the_readable_file_or_another_url():
    assert 'src="/static/beacons/beacon.js"' in render('src="beacons/beacon.js"')
    assert 'src="https://cdn.example/b.js"' in render('src="https://cdn.example/b.js"')
    assert 'src="/static/beacons/beacon.min.js"' in render("src=missing")


def test_an_option_from_a_missing_variable_is_left_to_the_default():
    html = render("debug=missing endpoint=missing_too")

    assert "data-debug" not in html  # "" would read as on in beacon.js
    assert 'data-endpoint="/beacon"' in html


def test_an_unknown_option_is_a_template_error():
    with pytest.raises(TemplateSyntaxError, match="batchsize"):
        render("batchsize=3")


def test_demo_pages_render_the_tag_and_no_inline_script(client, db):
    for path in ("/demo/", "/demo/pricing", "/demo/spa"):
        response = client.get(path)

        assert response.status_code == 200
        html = response.content.decode()
        assert 'src="/static/beacons/beacon.min.js"' in html
        assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", html))  # the CSP allows no inline script
        assert "'unsafe-inline'" not in response["Content-Security-Policy"].split("script-src")[1].split(";")[0]


def test_an_unknown_demo_route_is_not_found(client):
    assert client.get("/demo/nothing-here").status_code == 404


def test_served_client_is_within_its_size_budget():
    served = client_size.MINIFIED.read_bytes()
    zipped = len(gzip.compress(served, compresslevel=9, mtime=0))
    print(f"beacon.min.js: {len(served)} bytes, {zipped} bytes gzipped (budget {client_size.BUDGET_GZIP_BYTES})")

    assert zipped <= client_size.BUDGET_GZIP_BYTES


def test_minified_client_is_regenerated_from_the_current_source():
    pytest.importorskip("calmjs.parse", reason="the minifier is in the test extra")

    assert client_size.MINIFIED.read_text() == client_size.minify(client_size.SOURCE.read_text()), (
        "beacon.min.js is stale: run .venv/bin/python bench/client_size.py --write"
    )
