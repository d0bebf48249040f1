"""Flags and experiments in a real headless Chromium on the demo page, against a live test server:
beacon-flags.js, the flags JSON, the exposure and conversion endpoint and the results page together."""

import pytest

from beacons.experiments.evaluation import unit_hash
from beacons.models import ExperimentConversion, ExperimentExposure, Flag, FlagRule
from beacons.queries.experiments import experiment_results
from tests.test_client_browser import context, page, wait_until, wait_until_quiet  # noqa: F401 (fixtures)
from tests.test_flags import make_experiment

from .conftest import BROWSER_UA, first_site

pytestmark = pytest.mark.browser


@pytest.fixture
def demo_flags(transactional_db):
    site = first_site()
    Flag.objects.create(site=site, key="demo-banner", default_value=True)
    checkout = Flag.objects.create(site=site, key="new-checkout", default_value=False)
    FlagRule.objects.create(flag=checkout, attribute="path", operator="starts_with", value="/demo/pricing", serve=True)
    experiment = make_experiment(site, key="signup-button")
    for variation, label in zip(experiment.variations.all(), ("Sign up", "Start free"), strict=True):
        variation.config = {"label": label}
        variation.save()
    return experiment


def unit_cookie(browser_context) -> str:
    return next(cookie["value"] for cookie in browser_context.cookies() if cookie["name"] == "beacons_unit")


def expected_variation(experiment, unit: str) -> str:
    return "control" if unit_hash(experiment.key, unit) < 0.5 else "b"


def test_a_flag_shows_an_element_and_its_kill_switch_hides_it_for_the_next_visitor(browser, demo_flags, live_server):
    first = browser.new_context(base_url=live_server.url, user_agent=BROWSER_UA)
    page_one = first.new_page()
    page_one.goto("/demo/")
    page_one.wait_for_selector("#banner", state="visible")
    assert page_one.locator("#new-checkout").count() == 0  # the server's {% flag %}: not on this path
    page_one.goto("/demo/pricing")
    assert page_one.locator("#new-checkout").is_visible()
    first.close()

    banner = Flag.objects.get(key="demo-banner")
    banner.enabled = False
    banner.save()
    banner.default_value = False
    banner.save()
    second = browser.new_context(base_url=live_server.url, user_agent=BROWSER_UA)
    page_two = second.new_page()
    page_two.goto("/demo/")
    page_two.wait_for_function("() => document.getElementById('variant').textContent !== '…'")
    assert page_two.locator("#banner").is_hidden()
    second.close()
    wait_until_quiet(seconds=0.5)


def test_an_experiment_assigns_by_the_hash_exposes_once_and_converts_once_per_unit(context, page, demo_flags):  # noqa: F811
    experiment = demo_flags
    page.goto("/demo/")
    page.wait_for_function("() => document.getElementById('variant').textContent !== '…'")
    unit = unit_cookie(context)
    variation = expected_variation(experiment, unit)
    assert page.locator("#variant").text_content() == variation
    assert page.locator("#signup").text_content() == {"control": "Sign up", "b": "Start free"}[variation]
    wait_until(lambda: ExperimentExposure.objects.filter(unit=unit).exists(), "the exposure")

    page.reload()
    page.wait_for_function("() => document.getElementById('variant').textContent !== '…'")
    page.click("#signup")
    page.click("#signup")
    wait_until(lambda: ExperimentConversion.objects.filter(unit=unit, count=2).exists(), "two conversions of the unit")
    wait_until_quiet(seconds=0.5)
    exposure = ExperimentExposure.objects.get()
    assert (exposure.unit, exposure.variation) == (unit, ["control", "b"].index(variation))
    results = experiment_results(experiment)
    index = ["control", "b"].index(variation)
    assert results.units[index] == 1 and sum(results.units) == 1
    signup = results.metrics[0].outcomes[index]
    assert (signup.units, signup.converted, signup.conversions) == (1, 1, 2)
    assert not page.problems


def test_two_visitors_land_in_the_variations_their_units_hash_to_and_the_results_page_counts_them(
    browser, demo_flags, live_server, admin_client
):
    experiment = demo_flags
    seen = {}
    for _ in range(2):
        visitor = browser.new_context(base_url=live_server.url, user_agent=BROWSER_UA)
        visitor_page = visitor.new_page()
        visitor_page.goto("/demo/")
        visitor_page.wait_for_function("() => document.getElementById('variant').textContent !== '…'")
        unit = unit_cookie(visitor)
        assert visitor_page.locator("#variant").text_content() == expected_variation(experiment, unit)
        seen[unit] = expected_variation(experiment, unit)
        visitor_page.click("#signup")
        wait_until(lambda unit=unit: ExperimentConversion.objects.filter(unit=unit).exists(), "the conversion")
        visitor.close()
    wait_until_quiet(seconds=0.5)
    assert len(seen) == 2
    assert dict(ExperimentExposure.objects.values_list("unit", "variation")) == {
        unit: ["control", "b"].index(variation) for unit, variation in seen.items()
    }
    results = admin_client.get(f"/dashboard/experiments/{experiment.pk}/?site={experiment.site.domain}")
    assert results.status_code == 200
    assert "2 visitors" in results.content.decode()
