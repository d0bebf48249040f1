"""beacon-flags.js, the browser's flags and experiments: its size, that it gives every unit what the
server and the GrowthBook SDKs give it, and what it stores and sends (run in Node with a fake page)."""

import base64
import gzip
import json
import random
import re
from pathlib import Path

import pytest
from growthbook import GrowthBook

from beacons.experiments.evaluation import feature_evaluate
from beacons.experiments.payload import payload_build
from beacons.models import Experiment, ExperimentVariation, Flag, FlagRule
from bench import client_size
from tests.npm_packages import node_json, npm_package_dir

FLAGS_JS = client_size.FLAGS.source
TAG_JS = client_size.TAG.source
GROWTHBOOK_NPM = "@growthbook/growthbook@1"
SERVER_ATTRIBUTES = {"country": "DE", "device": "desktop", "browser": "Chrome", "os": "Linux"}
PAGE_HOST = "shop.example.com"
PAGE_PATH = "/pricing"
PAGE = {"flags": str(FLAGS_JS), "host": PAGE_HOST, "path": PAGE_PATH}  # the fake page's script and location
USER_TOKEN = "0123456789abcdef0123456789abcdef:signature"

# A fake page for beacon-flags.js (and beacon.js): each load of `loads` runs the scripts in a fresh vm
# context, as a browser would on a new page, with cookies and localStorage kept across loads.
PAGE_JS = r"""
const fs = require("fs");
const vm = require("vm");
const nodeCrypto = require("crypto");

const input = JSON.parse(fs.readFileSync(0, "utf8"));
console.log = console.warn; // stdout carries the answer alone, whatever a package logs
const browser = { cookies: {}, cookieWrites: [], storage: {} };
Object.assign(browser.cookies, input.cookies || {});

const settle = () => new Promise((resolve) => setImmediate(resolve));
const plain = (value) => (value === undefined ? null : JSON.parse(JSON.stringify(value)));

async function pageLoad(load) {
  const sent = [];
  const fetched = [];
  const logs = [];
  const thrown = [];
  const timers = [];
  const listeners = {};
  const listen = (type, fn) => (listeners[type] = listeners[type] || []).push(fn);
  const elements = (load.elements || []).map((dataset) => ({ dataset, hidden: true }));
  const document = {
    currentScript: null,
    readyState: "complete",
    referrer: "",
    visibilityState: "visible",
    get cookie() {
      return Object.entries(browser.cookies).map(([name, value]) => name + "=" + value).join("; ");
    },
    set cookie(text) {
      browser.cookieWrites.push(text);
      const pair = text.split(";")[0];
      browser.cookies[pair.slice(0, pair.indexOf("=")).trim()] = pair.slice(pair.indexOf("=") + 1);
    },
    querySelectorAll: () => elements,
    addEventListener: listen,
  };
  const navigator = {
    doNotTrack: load.doNotTrack || null,
    globalPrivacyControl: !!load.globalPrivacyControl,
    sendBeacon(url, body) {
      sent.push({ url, body });
      return true;
    },
  };
  const page = {
    document,
    navigator,
    location: { hostname: input.host, pathname: input.path, protocol: "https:", search: "", hash: "" },
    localStorage: {
      getItem: (key) => (key in browser.storage ? browser.storage[key] : null),
      setItem: (key, value) => (browser.storage[key] = String(value)),
      removeItem: (key) => delete browser.storage[key],
    },
    crypto: { getRandomValues: (array) => nodeCrypto.randomFillSync(array) },
    btoa,
    Blob,
    URLSearchParams,
    history: { pushState() {}, replaceState() {} },
    console: { log: (...parts) => logs.push(parts.map(String).join(" ")) },
    fetch(url, options) {
      fetched.push({ url, options: plain(options) });
      if (input.payload === null) return Promise.reject(new TypeError("Failed to fetch"));
      return Promise.resolve({ ok: true, status: 200, json: () => Promise.resolve(plain(input.payload)) });
    },
    setTimeout: (fn) => timers.push(fn),
    clearTimeout() {},
    addEventListener: listen,
  };
  page.window = page;
  const context = vm.createContext(page);
  const run = (code) => {
    try {
      return plain(vm.runInContext(code, context));
    } catch (error) {
      thrown.push(String(error));
      return null;
    }
  };
  const runTimers = () => {
    while (timers.length) {
      try {
        timers.shift()();
      } catch (error) {
        thrown.push(String(error)); // what window.onerror would see
      }
    }
  };
  if (load.before) run(load.before);
  for (const script of load.scripts || [{ path: input.flags }]) {
    const name = script.path.split("/").pop();
    document.currentScript = { src: "https://stats.example/static/beacons/" + name, dataset: script.dataset || load.dataset || {} };
    run(fs.readFileSync(script.path, "utf8"));
  }
  document.currentScript = null;
  const early = (load.early || []).map(run);
  await settle();
  await settle();
  const results = (load.calls || []).map(run);
  runTimers();
  (listeners.pagehide || []).forEach((fn) => fn({ persisted: false }));
  runTimers();
  const bodies = [];
  for (const { url, body } of sent) bodies.push({ url, body: JSON.parse(typeof body === "string" ? body : await body.text()) });
  return { early, results, sent: bodies, fetched, hidden: elements.map((element) => element.hidden), logs, thrown, context };
}

async function agreement() {
  const { GrowthBook } = require(input.sdk);
  const load = await pageLoad({ dataset: { debug: "true" } });
  const client = [];
  const sdk = [];
  for (const attributes of input.units) {
    const growthbook = new GrowthBook({ features: input.payload.features, attributes });
    for (const key of input.keys) {
      const own = load.context.beacons.evaluate(key, attributes);
      client.push([plain(own.value), own.variation || null]);
      const theirs = growthbook.evalFeature(key);
      sdk.push([plain(theirs.value), theirs.source === "experiment" ? theirs.experimentResult.key : null]);
    }
  }
  return { client, sdk, thrown: load.thrown };
}

async function main() {
  if (input.sdk) return agreement();
  const loads = [];
  for (const load of input.loads) {
    const { context, ...seen } = await pageLoad(load);
    loads.push(seen);
  }
  return { loads, cookies: browser.cookies, cookieWrites: browser.cookieWrites, storage: browser.storage };
}

main().then((output) => process.stdout.write(JSON.stringify(output)));
"""


@pytest.fixture(scope="session")
def page_js(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("beacon-flags") / "page.js"
    path.write_text(PAGE_JS)
    return path


def definitions_create(site) -> None:
    """The flags and experiments of the brief: a 30 % rollout, a targeted rollout, a three-way split,
    a 50/50 experiment on visitors and a three-way experiment on signed-in users over 80 % of them."""
    rollout = Flag.objects.create(site=site, key="new-checkout", default_value=False)
    FlagRule.objects.create(flag=rollout, serve=True, rollout=30)
    targeted = Flag.objects.create(site=site, key="eu-banner", default_value=False)
    FlagRule.objects.create(
        flag=targeted, attribute="country", operator=FlagRule.Operator.IN, value="DE, AT", serve=True, rollout=50
    )
    Flag.objects.create(
        site=site, key="button-color", default_value="grey", variations=["red", "green", "blue"], weights=[20, 30, 50]
    )
    checkout = Experiment.objects.create(
        site=site,
        key="checkout-button",
        name="Checkout button",
        status=Experiment.Status.RUNNING,
        primary_metric="signup",
        secondary_metrics="purchase",
    )
    for position, (key, label) in enumerate([("control", "Buy"), ("b", "Buy now")]):
        ExperimentVariation.objects.create(
            experiment=checkout, position=position, key=key, name=key, weight=50, config={"label": label}
        )
    pricing = Experiment.objects.create(
        site=site,
        key="pricing-page",
        name="Pricing page",
        status=Experiment.Status.RUNNING,
        coverage=80,
        unit=Experiment.Unit.USER,
        primary_metric="upgrade",
    )
    for position, (key, weight) in enumerate([("control", 50), ("annual", 30), ("monthly", 20)]):
        ExperimentVariation.objects.create(
            experiment=pricing, position=position, key=key, name=key, weight=weight, config={"plan": key}
        )


def served_payload(site) -> dict:
    """What GET /beacon/flags/<site>.json answers: the payload and the server's attributes."""
    payload = payload_build(site.id)
    payload["beacons"]["attributes"] = SERVER_ATTRIBUTES
    return payload


def unit_random(rng: random.Random) -> str:
    """A unit as beacon-flags.js makes one: 16 random bytes, base64url, 22 characters."""
    return base64.urlsafe_b64encode(rng.randbytes(16)).decode().rstrip("=")


def browse(page_js: Path, payload: dict | None, *loads: dict, cookies: dict | None = None) -> dict:
    """Page loads one after the other in one browser (cookies and localStorage kept): each dict may set
    dataset (the script tag's data- attributes), doNotTrack, globalPrivacyControl, elements (their
    datasets), before (code run before the scripts), early (expressions right after them, before the
    definitions arrive) and calls (expressions once they have). ``payload`` None: the fetch fails."""
    return node_json(
        script=page_js,
        data={**PAGE, "payload": payload, "loads": list(loads), "cookies": cookies or {}},
    )


def server_sees(payload: dict, key: str, *, unit: str | None = None, user: str | None = None):
    """What evaluation.py (the Django server) gives the page's unit for ``key``."""
    attributes = {**SERVER_ATTRIBUTES, "site": PAGE_HOST, "path": PAGE_PATH, "signedIn": user is not None}
    attributes |= {"id": unit} if unit else {}
    attributes |= {"user": user} if user else {}
    return feature_evaluate(payload["features"], key, attributes)


def unit_cookie(output: dict) -> str | None:
    return output["cookies"].get("beacons_unit")


# --- The shipped file ---


def test_served_flags_client_is_within_its_size_budget():
    served = client_size.FLAGS.minified.read_bytes()
    zipped = len(gzip.compress(served, compresslevel=9, mtime=0))
    print(
        f"beacon-flags.min.js: {len(served)} bytes, {zipped} bytes gzipped (budget {client_size.FLAGS.budget_gzip_bytes})"
    )

    assert zipped <= client_size.FLAGS.budget_gzip_bytes


def test_minified_flags_client_is_regenerated_from_the_current_source():
    pytest.importorskip("calmjs.parse", reason="the minifier is in the test extra")

    assert client_size.FLAGS.minified.read_text() == client_size.client_minify(client_size.FLAGS), (
        "beacon-flags.min.js is stale: run .venv/bin/python bench/client_size.py --write"
    )


# --- The same answer everywhere ---


@pytest.mark.django_db
def test_browser_server_and_both_growthbook_sdks_give_every_unit_the_same_value_and_variation(site, page_js):
    definitions_create(site)
    payload = served_payload(site)
    keys = sorted(payload["features"])
    rng = random.Random(20240611)
    units = []
    for _ in range(10_000 // len(keys)):
        attributes = {"id": unit_random(rng), "site": PAGE_HOST, "path": PAGE_PATH, "signedIn": False}
        attributes |= {**SERVER_ATTRIBUTES, "country": rng.choice(["DE", "AT", "CH", "FR", "US"])}
        if rng.random() < 0.7:
            attributes |= {"user": rng.randbytes(16).hex(), "signedIn": True}
        units.append(attributes)

    answers = node_json(
        script=page_js,
        data={
            **PAGE,
            "sdk": str(npm_package_dir(GROWTHBOOK_NPM)),
            "payload": payload,
            "units": units,
            "keys": keys,
        },
    )
    server, python_sdk = [], []
    for attributes in units:
        growthbook = GrowthBook(attributes=attributes, features=payload["features"])
        for key in keys:
            ours = feature_evaluate(payload["features"], key, attributes)
            server.append([ours.value, ours.variation_key])
            theirs = growthbook.eval_feature(key)
            python_sdk.append([theirs.value, theirs.experimentResult.key if theirs.source == "experiment" else None])

    assert answers["thrown"] == []
    pairs = len(units) * len(keys)
    assert len(server) == len(answers["client"]) == len(answers["sdk"]) == len(python_sdk) == pairs == 10_000
    disagreements = [
        (units[index // len(keys)]["id"], keys[index % len(keys)], answer)
        for index, answer in enumerate(zip(server, answers["client"], answers["sdk"], python_sdk))
        if not answer[0] == answer[1] == answer[2] == answer[3]
    ]
    print(f"{pairs} (unit, key) pairs compared, {len(disagreements)} disagreements")
    assert disagreements == []
    for offset, key in enumerate(keys):  # not a comparison of defaults: units get different answers
        assert len({json.dumps(answer) for answer in server[offset :: len(keys)]}) > 1, key


@pytest.mark.django_db
def test_a_30_percent_rollout_reaches_30_percent_of_units(site):
    definitions_create(site)
    payload = served_payload(site)
    rng = random.Random(7)

    reached = sum(server_sees(payload, "new-checkout", unit=unit_random(rng)).value is True for _ in range(10_000))

    print(f"30 % rollout: {reached / 100:.2f} % of 10,000 units")
    assert 2850 <= reached <= 3150


# --- What the page stores and sends ---

READS = [
    "beacons.getVariant('checkout-button')",
    "beacons.flag('new-checkout')",
    "beacons.isInVariant('pricing-page', 'annual')",
    "beacons.trackConversion('checkout-button', 'signup', 12.5)",
]


@pytest.mark.django_db
@pytest.mark.parametrize("privacy", [{"doNotTrack": "1"}, {"globalPrivacyControl": True}])
def test_under_do_not_track_or_global_privacy_control_nothing_is_stored_or_sent(site, page_js, privacy):
    definitions_create(site)

    output = browse(page_js, served_payload(site), {**privacy, "dataset": {"uid": USER_TOKEN}, "calls": READS})

    (load,) = output["loads"]
    assert load["sent"] == []
    assert output["cookieWrites"] == []
    assert output["storage"] == {}
    assert load["results"][:3] == [None, False, False]  # no unit: every hashed rule serves its default
    assert load["thrown"] == []


@pytest.mark.django_db
def test_a_page_that_does_not_respect_do_not_track_counts_as_usual(site, page_js):
    definitions_create(site)

    output = browse(
        page_js, served_payload(site), {"doNotTrack": "1", "dataset": {"respectDoNotTrack": "false"}, "calls": READS}
    )

    assert unit_cookie(output)
    assert output["loads"][0]["sent"]


@pytest.mark.django_db
def test_without_consent_nothing_is_stored_or_sent_and_once_given_the_unit_is_made(site, page_js):
    definitions_create(site)
    dataset = {"requireConsent": "true", "consentCookie": "cookies_ok"}

    refused = browse(page_js, served_payload(site), {"dataset": dataset, "calls": READS}, cookies={"cookies_ok": "no"})
    given = browse(page_js, served_payload(site), {"dataset": dataset, "calls": READS}, cookies={"cookies_ok": "yes"})

    assert refused["loads"][0]["sent"] == [] and unit_cookie(refused) is None and refused["storage"] == {}
    assert unit_cookie(given) and given["loads"][0]["sent"]


@pytest.mark.django_db
def test_the_unit_cookie_is_made_only_when_a_rule_splits_by_it(site, page_js):
    Flag.objects.create(site=site, key="always-on", default_value=True)
    targeted = Flag.objects.create(site=site, key="de-only", default_value=False)
    FlagRule.objects.create(
        flag=targeted, attribute="country", operator=FlagRule.Operator.EQUALS, value="DE", serve=True
    )
    calls = ["beacons.flag('always-on')", "beacons.flag('de-only')"]

    without_split = browse(page_js, served_payload(site), {"calls": calls})
    FlagRule.objects.create(
        flag=Flag.objects.create(site=site, key="half", default_value=False), serve=True, rollout=50
    )
    with_split = browse(page_js, served_payload(site), {"calls": [*calls, "beacons.flag('half')"]})

    assert without_split["loads"][0]["results"] == [True, True]  # targeting needs no unit
    assert without_split["cookieWrites"] == []
    (written,) = with_split["cookieWrites"]
    assert re.fullmatch(r"beacons_unit=[A-Za-z0-9_-]{22}; path=/; max-age=31536000; SameSite=Lax; Secure", written)


@pytest.mark.django_db
def test_an_experiment_on_signed_in_users_makes_no_unit_cookie(site, page_js):
    definitions_create(site)
    Flag.objects.filter(site=site).delete()
    Experiment.objects.filter(key="checkout-button").delete()
    payload = served_payload(site)

    output = browse(page_js, payload, {"dataset": {"uid": USER_TOKEN}, "calls": ["beacons.getVariant('pricing-page')"]})

    assert output["cookieWrites"] == []
    user = USER_TOKEN.split(":")[0]
    assert output["loads"][0]["results"] == [server_sees(payload, "pricing-page", user=user).variation_key]


@pytest.mark.django_db
def test_the_page_and_the_server_give_the_unit_in_the_cookie_the_same_variations(site, page_js):
    definitions_create(site)
    payload = served_payload(site)
    rng = random.Random(3)
    keys = ["new-checkout", "eu-banner", "button-color", "checkout-button", "pricing-page"]

    for unit in (unit_random(rng) for _ in range(8)):
        user = rng.randbytes(16).hex()
        calls = [f"beacons.flag('{key}')" for key in keys] + [f"beacons.getVariant('{key}')" for key in keys]
        output = browse(
            page_js, payload, {"dataset": {"uid": f"{user}:sig"}, "calls": calls}, cookies={"beacons_unit": unit}
        )

        served = [server_sees(payload, key, unit=unit, user=user) for key in keys]
        assert output["loads"][0]["results"] == [result.value for result in served] + [
            result.variation_key for result in served
        ]
        assert output["cookieWrites"] == []  # the unit already there is kept


@pytest.mark.django_db
def test_an_exposure_is_sent_once_per_experiment_and_not_again_on_the_next_page(site, page_js):
    definitions_create(site)
    payload = served_payload(site)
    reads = [
        "beacons.getVariant('checkout-button')",
        "beacons.isInVariant('checkout-button', 'b')",
        "beacons.flag('checkout-button')",
        "beacons.getVariant('pricing-page')",
    ]

    output = browse(page_js, payload, {"dataset": {"uid": USER_TOKEN}, "calls": reads}, {"calls": reads})

    first, second = output["loads"]
    unit, user = unit_cookie(output), USER_TOKEN.split(":")[0]
    expected = [
        {"experiment": key, "variation": server_sees(payload, key, unit=unit, user=user).variation_key}
        for key in ("checkout-button", "pricing-page")
        if server_sees(payload, key, unit=unit, user=user).hashed
    ]
    assert first["sent"] == [
        {
            "url": "https://stats.example/beacon/experiments",
            "body": {"site": PAGE_HOST, "unit": unit, "uid": USER_TOKEN, "exposures": expected},
        }
    ]
    assert second["sent"] == []
    assert json.loads(output["storage"]["beacons_exposed"])["checkout-button"] == unit


@pytest.mark.django_db
def test_a_flag_split_is_never_reported_as_an_exposure(site, page_js):
    definitions_create(site)

    output = browse(page_js, served_payload(site), {"calls": ["beacons.getVariant('button-color')"]})

    assert output["loads"][0]["results"][0] in {"0", "1", "2"}
    assert output["loads"][0]["sent"] == []


@pytest.mark.django_db
def test_force_variant_works_only_with_debug_and_is_never_reported(site, page_js):
    definitions_create(site)
    payload = served_payload(site)
    unit = "AAAAAAAAAAAAAAAAAAAAAA"
    hashed = server_sees(payload, "checkout-button", unit=unit).variation_key
    other = "b" if hashed == "control" else "control"
    calls = [f"beacons.forceVariant('checkout-button', '{other}')", "beacons.getVariant('checkout-button')"]

    plain_page = browse(page_js, payload, {"calls": calls}, cookies={"beacons_unit": unit})
    debug_page = browse(
        page_js, payload, {"dataset": {"debug": "true"}, "calls": calls}, cookies={"beacons_unit": unit}
    )
    by_index = browse(
        page_js,
        payload,
        {"dataset": {"debug": "true"}, "calls": ["beacons.forceVariant('checkout-button', 1)", *calls[1:]]},
    )

    assert plain_page["loads"][0]["results"][1] == hashed
    assert [body["body"]["exposures"] for body in plain_page["loads"][0]["sent"]] == [
        [{"experiment": "checkout-button", "variation": hashed}]
    ]
    assert debug_page["loads"][0]["results"][1] == other
    assert debug_page["loads"][0]["sent"] == []
    assert by_index["loads"][0]["results"][1] == "b"


@pytest.mark.django_db
def test_reset_assignments_makes_a_new_unit_that_is_reported_again(site, page_js):
    definitions_create(site)
    calls = [
        "beacons.getVariant('checkout-button')",
        "beacons.resetAssignments()",
        "beacons.getVariant('checkout-button')",
    ]

    output = browse(page_js, served_payload(site), {"dataset": {"debug": "true"}, "calls": calls})

    first, second = (write.split(";")[0].removeprefix("beacons_unit=") for write in output["cookieWrites"])
    sent = output["loads"][0]["sent"]
    assert first != second
    assert [body["body"]["unit"] for body in sent] == [first, second]
    assert all(len(body["body"]["exposures"]) == 1 for body in sent)


@pytest.mark.django_db
def test_conversions_are_sent_only_for_the_experiments_own_metrics(site, page_js):
    definitions_create(site)
    calls = [
        "beacons.trackConversion('checkout-button', 'signup', 12.5)",
        "beacons.trackConversion('checkout-button', 'purchase')",
        "beacons.trackConversion('checkout-button', 'newsletter')",  # not one of its metrics
        "beacons.trackConversion('new-checkout', 'signup')",  # a flag, not an experiment
        "beacons.trackConversion('no-such-experiment', 'signup')",
        "beacons.trackConversion('checkout-button', 'signup', 'a lot')",  # not a number: no value
    ]

    output = browse(page_js, served_payload(site), {"early": calls[:1], "calls": calls[1:]})

    (request,) = output["loads"][0]["sent"]
    assert request["body"]["conversions"] == [
        {"experiment": "checkout-button", "metric": "signup", "value": 12.5},
        {"experiment": "checkout-button", "metric": "purchase"},
        {"experiment": "checkout-button", "metric": "signup"},
    ]
    assert "exposures" not in request["body"]


@pytest.mark.django_db
def test_a_conversion_outside_the_experiments_share_of_traffic_is_not_sent(site, page_js):
    definitions_create(site)
    payload = served_payload(site)
    rng = random.Random(11)
    outside = next(
        user
        for user in (rng.randbytes(16).hex() for _ in range(1000))
        if not server_sees(payload, "pricing-page", user=user).hashed
    )

    output = browse(
        page_js,
        payload,
        {"dataset": {"uid": f"{outside}:sig"}, "calls": ["beacons.trackConversion('pricing-page', 'upgrade')"]},
    )

    assert output["loads"][0]["sent"] == []


@pytest.mark.django_db
def test_at_most_20_exposures_go_in_one_request(site, page_js):
    for number in range(25):
        experiment = Experiment.objects.create(
            site=site,
            key=f"test-{number}",
            name=f"Test {number}",
            status=Experiment.Status.RUNNING,
            primary_metric="signup",
        )
        for position, key in enumerate(["control", "b"]):
            ExperimentVariation.objects.create(experiment=experiment, position=position, key=key, name=key)
    calls = [f"beacons.getVariant('test-{number}')" for number in range(25)]

    output = browse(page_js, served_payload(site), {"calls": calls})

    assert [len(request["body"]["exposures"]) for request in output["loads"][0]["sent"]] == [20, 5]


@pytest.mark.django_db
def test_markup_shows_what_the_flags_and_the_variation_say_and_counts_the_variation_as_seen(site, page_js):
    definitions_create(site)
    payload = served_payload(site)
    unit = "BBBBBBBBBBBBBBBBBBBBBB"
    variation = server_sees(payload, "checkout-button", unit=unit).variation_key
    other = "b" if variation == "control" else "control"
    rollout = server_sees(payload, "new-checkout", unit=unit).value
    elements = [
        {"flag": "new-checkout"},
        {"flagOff": "new-checkout"},
        {"variant": f"checkout-button:{variation}"},
        {"variant": f"checkout-button:{other}"},
        {"flag": "no-such-flag"},
    ]

    output = browse(page_js, payload, {"elements": elements}, cookies={"beacons_unit": unit})

    (load,) = output["loads"]
    assert load["hidden"] == [not rollout, rollout, False, True, True]
    (request,) = load["sent"]
    assert request["body"]["exposures"] == [{"experiment": "checkout-button", "variation": variation}]


@pytest.mark.django_db
def test_attributes_the_page_sets_are_targeted_and_shown_but_cannot_replace_the_units(site, page_js):
    definitions_create(site)
    pro = Flag.objects.create(site=site, key="pro-tools", default_value=False)
    FlagRule.objects.create(flag=pro, attribute="plan", operator=FlagRule.Operator.EQUALS, value="pro", serve=True)
    members = Flag.objects.create(site=site, key="members-area", default_value=False)
    FlagRule.objects.create(flag=members, attribute="signedIn", operator=FlagRule.Operator.IS_TRUE, serve=True)
    payload = served_payload(site)
    unit = "CCCCCCCCCCCCCCCCCCCCCC"
    reads = ["beacons.flag('pro-tools')", "beacons.flag('members-area')", "beacons.getVariant('checkout-button')"]
    calls = [*reads, "beacons.setAttributes({plan: 'pro', signedIn: true, id: 'someone-else', user: 'x'})", *reads]

    output = browse(
        page_js, payload, {"elements": [{"flag": "pro-tools"}], "calls": calls}, cookies={"beacons_unit": unit}
    )

    (load,) = output["loads"]
    hashed = server_sees(payload, "checkout-button", unit=unit).variation_key
    assert load["results"][:3] == [False, False, hashed]
    assert load["results"][4:] == [True, True, hashed]  # the unit stays the cookie's
    assert load["hidden"] == [False]  # shown once the attribute was set


@pytest.mark.django_db
def test_the_definitions_are_fetched_once_without_cookies_from_the_endpoint_for_the_site(site, page_js):
    definitions_create(site)
    dataset = {"endpoint": "https://beacons.example.org", "site": "www.example.com"}

    output = browse(
        page_js, served_payload(site), {"dataset": dataset, "calls": ["beacons.getVariant('checkout-button')"]}
    )

    (load,) = output["loads"]
    assert load["fetched"] == [
        {"url": "https://beacons.example.org/beacon/flags/www.example.com.json", "options": {"credentials": "omit"}}
    ]
    assert load["sent"][0]["url"] == "https://beacons.example.org/beacon/experiments"
    assert load["sent"][0]["body"]["site"] == "www.example.com"


@pytest.mark.django_db
def test_ready_callbacks_run_once_the_definitions_are_in_and_at_once_after(site, page_js):
    definitions_create(site)
    record = "window.seen = []; beacons.ready(function () { seen.push(beacons.flag('button-color')); })"

    early = [record, "seen", "beacons.flag('button-color')"]

    output = browse(page_js, served_payload(site), {"early": early, "calls": ["seen", f"{record}, seen"]})

    (load,) = output["loads"]
    assert load["early"][1:] == [[], None]  # not yet loaded: nothing known
    assert load["results"][0][0] in {"red", "green", "blue"}
    assert len(load["results"][1]) == 1


def test_a_failed_load_still_runs_ready_callbacks_with_nothing_known(page_js):
    calls = ["window.seen = 0; beacons.ready(function () { seen += 1; })", "seen", "beacons.flag('new-checkout')"]

    output = browse(page_js, None, {"early": calls[:1], "calls": calls[1:]})

    (load,) = output["loads"]
    assert load["results"] == [1, None]
    assert load["thrown"] == [] and load["sent"] == [] and output["cookieWrites"] == []


def test_an_error_in_a_ready_callback_is_the_pages_and_does_not_stop_the_others(page_js):
    calls = [
        "window.seen = 0; beacons.ready(function () { throw new Error('page bug'); }); beacons.ready(function () { seen += 1; })",
    ]

    output = browse(page_js, {"features": {}, "beacons": {"experiments": {}}}, {"early": calls, "calls": ["seen"]})

    (load,) = output["loads"]
    assert load["results"] == [1]
    assert load["thrown"] == ["Error: page bug"]  # thrown on its own, where window.onerror sees it


@pytest.mark.parametrize(
    "payload",
    [
        {"features": {"broken": {"rules": [None]}}},
        {"features": {"broken": {"rules": [{"condition": {"$and": 3}, "force": True}]}}},
        {"features": {"broken": {"rules": [{"variations": [1, 2], "weights": "x", "coverage": "y"}]}}},
        {"features": None, "beacons": "x"},
        [],
    ],
)
def test_malformed_definitions_never_throw_into_the_page(page_js, payload):
    calls = ["beacons.flag('broken')", "beacons.getVariant('broken')", "beacons.isInVariant('broken', 0)"]

    output = browse(page_js, payload, {"calls": calls})

    (load,) = output["loads"]
    assert load["thrown"] == []
    assert load["results"][:2] == [None, None]  # as for an unknown flag
    assert not load["results"][2]


@pytest.mark.parametrize("order", [["flags", "tag"], ["tag", "flags"]])
def test_a_page_with_both_clients_in_either_order_keeps_both_apis(page_js, order):
    paths = {"flags": str(FLAGS_JS), "tag": str(TAG_JS)}
    check = "[typeof beacons.track, typeof beacons.flag, typeof beacons.getVariant, typeof beacons.error]"

    output = browse(page_js, None, {"scripts": [{"path": paths[name]} for name in order], "calls": [check]})

    (load,) = output["loads"]
    assert load["results"] == [["function"] * 4]
    assert load["thrown"] == []
