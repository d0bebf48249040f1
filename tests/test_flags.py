"""Flags and experiments on the server: evaluation, the published payload, the flags JSON, the
exposure and conversion endpoint, the Django helpers and template tag, and the admin's rules."""

import json
import random

import pytest
from django.template import Context, Template
from django.test import Client, RequestFactory
from django.utils import timezone

from beacons import flags
from beacons.experiments import evaluation, payload, recording
from beacons.experiments.evaluation import condition_holds, feature_evaluate, fnv1a32, unit_hash
from beacons.models import (
    Experiment,
    ExperimentConversion,
    ExperimentExposure,
    ExperimentVariation,
    Flag,
    FlagRule,
    Site,
)
from tests.conftest import BROWSER_UA

UNIT = "u" * 22


def make_experiment(site, key="checkout-button", *, weights=(50, 50), status="running", coverage=100, **fields):
    experiment = Experiment.objects.create(
        site=site, key=key, name=key.title(), status=status, coverage=coverage, primary_metric="signup", **fields
    )
    for position, weight in enumerate(weights):
        ExperimentVariation.objects.create(
            experiment=experiment,
            position=position,
            key="control" if position == 0 else chr(ord("a") + position),
            name="Control" if position == 0 else f"Variant {chr(ord('A') + position)}",
            weight=weight,
            config={"colour": ["grey", "green", "blue"][position]},
        )
    return experiment


def units(count, seed=7):
    rng = random.Random(seed)
    return ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(22)) for _ in range(count)]


# --- Hashing and conditions (pure) -------------------------------------------------------------


def test_the_hash_is_growthbooks_fnv1a_on_published_vectors():
    # FNV-1a 32 test vectors, and GrowthBook's own hash cases (its SDKs' shared test corpus).
    assert fnv1a32("") == 0x811C9DC5
    assert fnv1a32("a") == 0xE40C292C
    assert fnv1a32("foobar") == 0xBF9CF968
    assert unit_hash("", "a", 1) == 0.22
    assert unit_hash("", "b", 1) == 0.077
    assert unit_hash("b", "a", 1) == 0.946
    assert unit_hash("seed", "unit", 3) is None


def test_the_hash_agrees_with_growthbooks_python_sdk_on_text_of_every_kind():
    from growthbook.core import gbhash

    rng = random.Random(3)
    alphabet = "abcXYZ019-_./ é€😀"
    for _ in range(3000):
        seed = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12)))
        unit = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 30)))
        assert unit_hash(seed, unit, 1) == gbhash(seed, unit, 1)
        assert unit_hash(seed, unit, 2) == gbhash(seed, unit, 2)


def test_a_non_ascii_unit_hashes_by_utf16_code_units_as_javascript_does():
    assert fnv1a32("é") == ((0x811C9DC5 ^ 0xE9) * 0x01000193) & 0xFFFFFFFF
    emoji = fnv1a32("😀")  # a surrogate pair: two code units
    value = 0x811C9DC5
    for unit in (0xD83D, 0xDE00):
        value = ((value ^ unit) * 0x01000193) & 0xFFFFFFFF
    assert emoji == value


def test_bucket_ranges_give_each_variation_its_weight_of_the_covered_share():
    assert evaluation.bucket_ranges(2, 1, [0.5, 0.5]) == [(0, 0.5), (0.5, 1)]
    assert evaluation.bucket_ranges(3, 0.5, [0.2, 0.3, 0.5]) == [(0, 0.1), (0.2, 0.35), (0.5, 0.75)]
    assert evaluation.bucket_ranges(2, 1.5, [0.5, 0.5]) == [(0, 0.5), (0.5, 1)]  # coverage capped at 1
    assert evaluation.bucket_ranges(2, -1, [0.5, 0.5]) == [(0, 0), (0.5, 0.5)]
    assert evaluation.bucket_ranges(2, 1, [0.7, 0.7]) == [(0, 0.5), (0.5, 1)]  # not adding up to 1: equal
    assert evaluation.bucket_ranges(2, 1, [0.995, 0.0]) == [(0, 0.995), (0.995, 0.995)]  # within 0.01 of 1
    assert evaluation.bucket_ranges(2, 1, [1.0]) == [(0, 0.5), (0.5, 1)]  # one weight for two: equal
    assert evaluation.bucket_ranges(2, 1, None) == [(0, 0.5), (0.5, 1)]


def test_a_position_falls_in_its_half_open_range_or_none():
    ranges = [(0, 0.5), (0.5, 1)]
    assert evaluation.variation_chosen(0, ranges) == 0
    assert evaluation.variation_chosen(0.4999, ranges) == 0
    assert evaluation.variation_chosen(0.5, ranges) == 1
    assert evaluation.variation_chosen(1, ranges) == -1
    assert evaluation.variation_chosen(0.3, [(0, 0.25), (0.5, 0.75)]) == -1


@pytest.mark.parametrize(
    ("condition", "attributes", "holds"),
    [
        ({"country": {"$eq": "DE"}}, {"country": "DE"}, True),
        ({"country": {"$eq": "DE"}}, {"country": "AT"}, False),
        ({"country": "DE"}, {"country": "DE"}, True),
        ({"country": "DE"}, {}, False),
        ({"country": {"$ne": "DE"}}, {"country": "AT"}, True),
        ({"country": {"$ne": "DE"}}, {"country": "DE"}, False),
        ({"country": {"$in": ["DE", "AT"]}}, {"country": "AT"}, True),
        ({"country": {"$in": ["DE", "AT"]}}, {"country": "CH"}, False),
        ({"country": {"$in": "DE"}}, {"country": "DE"}, False),
        ({"country": {"$nin": ["DE", "AT"]}}, {"country": "CH"}, True),
        ({"country": {"$nin": ["DE", "AT"]}}, {"country": "DE"}, False),
        ({"country": {"$nin": "DE"}}, {"country": "CH"}, False),
        ({"path": {"$regex": "^/pricing"}}, {"path": "/pricing/team"}, True),
        ({"path": {"$regex": "^/pricing"}}, {"path": "/about/pricing"}, False),
        ({"path": {"$regex": "pricing"}}, {"path": "/about/pricing"}, True),
        ({"path": {"$regex": "("}}, {"path": "("}, False),  # a broken pattern matches nothing
        ({"path": {"$regex": "x"}}, {"path": 1}, False),
        ({"signedIn": {"$eq": True}}, {"signedIn": True}, True),
        ({"signedIn": {"$eq": True}}, {"signedIn": 1}, False),  # JavaScript's ===: true is not 1
        ({"plan": {"$eq": 1}}, {"plan": True}, False),
        ({"plan": {"$eq": 1}}, {"plan": 1.0}, True),
        ({"plan": {"$exists": True}}, {"plan": "pro"}, True),
        ({"plan": {"$exists": True}}, {}, False),
        ({"plan": {"$exists": False}}, {}, True),
        ({"age": {"$gt": 17}}, {"age": 18}, True),
        ({"age": {"$gt": 17}}, {"age": 17}, False),
        ({"age": {"$gte": 17}}, {"age": 17}, True),
        ({"age": {"$gte": 17}}, {"age": 18}, True),
        ({"age": {"$gte": 17}}, {"age": 16}, False),
        ({"app": {"$veq": "2.0.0"}}, {"app": "1.0.0"}, False),
        ({"a": {"b": 1}}, {"a": "x"}, False),
        ({"a": "x"}, {"a": {"b": 1}}, False),
        ({"age": {"$lt": 17}}, {"age": 16}, True),
        ({"age": {"$lt": 17}}, {"age": 17}, False),
        ({"age": {"$lte": 17}}, {"age": 17}, True),
        ({"age": {"$lte": 17}}, {"age": 18}, False),
        ({"age": {"$gt": 17}}, {"age": "18"}, False),  # not comparable: no match
        ({"name": {"$gt": "b"}}, {"name": "c"}, True),
        ({"age": {"$gt": 1, "$lt": 3}}, {"age": 2}, True),
        ({"age": {"$gt": 1, "$lt": 3}}, {"age": 3}, False),
        ({"app": {"$vgte": "1.10.0"}}, {"app": "1.9.9"}, False),
        ({"app": {"$vgte": "1.10.0"}}, {"app": "1.10.0"}, True),
        ({"app": {"$vgt": "1.0.0-rc.1"}}, {"app": "1.0.0"}, True),
        ({"app": {"$vgt": "1.0.0"}}, {"app": "1.0.0"}, False),
        ({"app": {"$vlt": "2.0.0"}}, {"app": "v1.99.0+build7"}, True),
        ({"app": {"$vlt": "2.0.0"}}, {"app": "2.0.0"}, False),
        ({"app": {"$vlte": "2.0.0"}}, {"app": "2.0.0"}, True),
        ({"app": {"$veq": "2.0.0"}}, {"app": "v2.0.0"}, True),
        ({"app": {"$veq": "2.0.0"}}, {"app": "2.0.1"}, False),
        ({"app": {"$vne": "2.0.0"}}, {"app": "2.0.1"}, True),
        ({"app": {"$vne": "2.0.0"}}, {"app": 2}, True),  # not comparable: "not equal" holds
        ({"app": {"$vgte": "1.0.0"}}, {"app": None}, False),
        ({"app": {"$vgte": ""}}, {"app": ""}, True),  # both read as version "0"
        ({"app": {"$unknown": 1}}, {"app": 1}, False),
        ({"$and": [{"a": 1}, {"b": 2}]}, {"a": 1, "b": 2}, True),
        ({"$and": [{"a": 1}, {"b": 2}]}, {"a": 1, "b": 3}, False),
        ({"$or": [{"a": 1}, {"b": 2}]}, {"a": 0, "b": 2}, True),
        ({"$or": [{"a": 1}, {"b": 2}]}, {"a": 0, "b": 0}, False),
        ({"$or": []}, {}, True),
        ({"$not": {"a": 1}}, {"a": 2}, True),
        ({"$not": {"a": 1}}, {"a": 1}, False),
        ({"a": 1, "b": 2}, {"a": 1, "b": 3}, False),
        ({"a": {}}, {"a": {}}, True),  # an empty object is a value, compared whole
        ({"a": {"b": [1, 2]}}, {"a": {"b": [1, 2]}}, True),
        ({"a": {"b": [1, 2]}}, {"a": {"b": [1, 3]}}, False),
        ({"a": {"b": [1, 2]}}, {"a": {"b": [1]}}, False),
        ({"a": {"b": 1}}, {"a": {"c": 1}}, False),
        ({"a": [1]}, {"a": 1}, False),
        ({"a": {"$eq": [1]}}, {"a": [1]}, False),  # === on lists: never the same
        ({"a": {"$eq": 1}}, {"a": [1]}, False),
        ({"a": {"$in": [[1]]}}, {"a": [1]}, False),
        ({}, {}, True),
    ],
)
def test_conditions_hold_as_growthbooks_sdks_read_them(condition, attributes, holds):
    from growthbook.core import evalCondition

    assert condition_holds(condition, attributes) is holds
    assert bool(evalCondition(attributes, condition)) is holds  # the same answer from GrowthBook's Python SDK


def test_a_lone_surrogate_in_a_unit_is_hashed_not_refused():
    value = 0x811C9DC5
    for unit in (ord("a"), 0xD800):
        value = ((value ^ unit) * 0x01000193) & 0xFFFFFFFF
    assert fnv1a32("a\ud800") == value


def test_weights_within_a_hundredth_of_one_are_used_as_given():
    assert evaluation.bucket_ranges(2, 1, [0.5, 0.49]) == [(0, 0.5), (0.5, 0.99)]
    assert evaluation.bucket_ranges(2, 1, [0.51, 0.5]) == [(0, 0.51), (0.51, 1.01)]
    assert evaluation.bucket_ranges(2, 1, [0.52, 0.5]) == [(0, 0.5), (0.5, 1)]
    assert evaluation.bucket_ranges(2, 1, [0.5, 0.489]) == [(0, 0.5), (0.5, 1)]


def test_version_strings_compare_part_by_part_and_releases_after_their_candidates():
    padded = evaluation._padded_version
    assert padded("1.2.3") == "    1-    2-    3-~"
    assert padded("v1.2.3+build") == padded("1.2.3")
    assert padded("1.2.3-rc.1") == "    1-    2-    3-rc-    1"
    assert padded("") == padded(None) == "    0"
    assert padded("1.²") == "    1-²"  # only 0-9 are digits, as in JavaScript (Python's isdigit takes "²" too)


FEATURES = {
    "forced": {"defaultValue": False, "rules": [{"condition": {"country": "DE"}, "force": True}]},
    "rollout": {
        "defaultValue": "off",
        "rules": [{"force": "on", "range": [0, 0.3], "hashAttribute": "id", "hashVersion": 2, "seed": "rollout"}],
    },
    "exp": {
        "defaultValue": {"v": 0},
        "rules": [
            {
                "key": "exp",
                "variations": [{"v": 0}, {"v": 1}],
                "weights": [0.5, 0.5],
                "coverage": 1,
                "hashAttribute": "id",
                "hashVersion": 2,
                "seed": "exp",
                "meta": [{"key": "control"}, {"key": "b"}],
            }
        ],
    },
}


def test_a_rule_whose_condition_fails_is_skipped_for_the_default():
    assert feature_evaluate(FEATURES, "forced", {"country": "DE"}).value is True
    assert feature_evaluate(FEATURES, "forced", {"country": "DE"}).source == "force"
    assert feature_evaluate(FEATURES, "forced", {"country": "FR"}).value is False
    assert feature_evaluate(FEATURES, "forced", {"country": "FR"}).source == "defaultValue"


def test_a_forced_value_or_a_default_is_no_experiment_assignment():
    for attributes in ({"country": "DE"}, {"country": "FR"}):
        result = feature_evaluate(FEATURES, "forced", attributes)
        assert (result.hashed, result.experiment, result.variation, result.variation_key) == (False, None, None, None)


def test_a_rollout_range_includes_its_low_edge_and_excludes_its_high_edge():
    unit = units(1)[0]
    edge = unit_hash("edge", unit)

    def served(low, high):
        rule = {"force": True, "range": [low, high], "hashVersion": 2, "seed": "edge"}
        return feature_evaluate({"k": {"defaultValue": False, "rules": [rule]}}, "k", {"id": unit}).value

    assert served(edge, 1) is True
    assert served(0, edge) is False
    assert served(0, edge + 0.0001) is True


def test_a_rollout_without_a_hash_version_hashes_as_version_1():
    rule = {"force": "on", "range": [0, 0.5], "seed": "s"}
    for unit in units(100):
        expected = "on" if unit_hash("s", unit, 1) < 0.5 else "off"
        assert feature_evaluate({"k": {"defaultValue": "off", "rules": [rule]}}, "k", {"id": unit}).value == expected


def test_an_unknown_flag_says_so():
    result = feature_evaluate(FEATURES, "nothing", {"id": UNIT})
    assert (result.value, result.source) == (None, "unknownFeature")
    assert feature_evaluate({"odd": "not an object"}, "odd", {}).source == "unknownFeature"


def test_a_rollout_takes_in_the_units_whose_hash_is_in_its_range_and_none_without_a_unit():
    taken = [u for u in units(2000) if feature_evaluate(FEATURES, "rollout", {"id": u}).value == "on"]
    assert taken == [u for u in units(2000) if unit_hash("rollout", u) < 0.3]
    assert 0.27 < len(taken) / 2000 < 0.33
    assert feature_evaluate(FEATURES, "rollout", {}).value == "off"
    assert feature_evaluate(FEATURES, "rollout", {"id": 12345}).value == "off"  # not a text: no unit


def test_a_rollout_seed_defaults_to_the_flags_key():
    features = {"k": {"defaultValue": 0, "rules": [{"force": 1, "range": [0, 0.5], "hashVersion": 2}]}}
    for unit in units(200):
        expected = 1 if unit_hash("k", unit) < 0.5 else 0
        assert feature_evaluate(features, "k", {"id": unit}).value == expected


def test_an_experiment_assigns_by_the_hash_and_says_which_variation():
    for unit in units(500):
        result = feature_evaluate(FEATURES, "exp", {"id": unit})
        index = 0 if unit_hash("exp", unit) < 0.5 else 1
        assert (result.variation, result.variation_key, result.value) == (index, ["control", "b"][index], {"v": index})
        assert result.hashed and result.source == "experiment" and result.experiment == "exp"


def test_outside_the_coverage_a_unit_gets_the_default_and_no_assignment():
    features = json.loads(json.dumps(FEATURES))
    features["exp"]["rules"][0]["coverage"] = 0.2
    results = [feature_evaluate(features, "exp", {"id": unit}) for unit in units(1000)]
    assigned = [r for r in results if r.source == "experiment"]
    assert 0.16 < len(assigned) / 1000 < 0.24
    assert all(r.value == {"v": 0} and r.variation is None for r in results if r.source == "defaultValue")


def test_forcing_a_variation_wins_over_the_hash_and_is_not_counted():
    unit = next(u for u in units(100) if unit_hash("exp", u) < 0.5)
    result = feature_evaluate(FEATURES, "exp", {"id": unit}, forced={"exp": 1})
    assert (result.variation_key, result.hashed) == ("b", False)
    control = feature_evaluate(FEATURES, "exp", {"id": unit}, forced={"exp": 0})
    assert (control.variation_key, control.hashed) == ("control", False)
    for out_of_range in (2, 7, -1):  # not a variation: the hash decides
        hashed = feature_evaluate(FEATURES, "exp", {"id": unit}, forced={"exp": out_of_range})
        assert (hashed.variation_key, hashed.hashed) == ("control", True)


def test_a_variation_is_forced_by_the_experiments_key_not_the_flags():
    features = {"flag-key": {"rules": [{"key": "exp-key", "variations": ["a", "b"], "hashVersion": 2}]}}
    unit = next(u for u in units(100) if unit_hash("exp-key", u) < 0.5)
    assert feature_evaluate(features, "flag-key", {"id": unit}, forced={"exp-key": 1}).value == "b"
    assert feature_evaluate(features, "flag-key", {"id": unit}, forced={"flag-key": 1}).value == "a"


def test_an_experiment_rule_without_two_variations_or_a_unit_is_skipped():
    one = {"k": {"defaultValue": "d", "rules": [{"key": "k", "variations": ["x"], "hashVersion": 2}]}}
    assert feature_evaluate(one, "k", {"id": UNIT}).value == "d"
    assert feature_evaluate(FEATURES, "exp", {"user": UNIT}).source == "defaultValue"
    unknown_hash = json.loads(json.dumps(FEATURES))
    unknown_hash["exp"]["rules"][0]["hashVersion"] = 9
    assert feature_evaluate(unknown_hash, "exp", {"id": UNIT}).source == "defaultValue"


def test_an_experiment_without_meta_names_its_variations_by_index():
    features = {"k": {"rules": [{"variations": ["a", "b"], "weights": [0, 1], "hashVersion": 2}]}}
    result = feature_evaluate(features, "k", {"id": UNIT})
    assert (result.variation, result.variation_key, result.experiment) == (1, "1", "k")


def test_an_experiment_hashes_on_the_attribute_it_names_with_its_seed():
    features = {
        "k": {
            "rules": [
                {"key": "exp-key", "variations": ["a", "b"], "hashAttribute": "user", "seed": "s", "hashVersion": 2}
            ]
        }
    }
    for unit in units(200):
        expected = "a" if unit_hash("s", unit) < 0.5 else "b"
        result = feature_evaluate(features, "k", {"user": unit, "id": "other"})
        assert (result.value, result.experiment) == (expected, "exp-key")
    assert feature_evaluate(features, "k", {"id": UNIT}).source == "defaultValue"


def test_an_experiment_without_a_seed_hashes_with_its_own_key():
    features = {"flag-key": {"rules": [{"key": "exp-key", "variations": ["a", "b"], "hashVersion": 2}]}}
    for unit in units(200):
        expected = "a" if unit_hash("exp-key", unit) < 0.5 else "b"
        assert feature_evaluate(features, "flag-key", {"id": unit}).value == expected


def test_version_1_hashing_is_read_too():
    features = {"k": {"rules": [{"variations": ["a", "b"], "seed": "s"}]}}  # no hashVersion: 1
    for unit in units(100):
        assert feature_evaluate(features, "k", {"id": unit}).value == ("a" if unit_hash("s", unit, 1) < 0.5 else "b")


# --- The published payload ------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_payload_publishes_flags_rules_and_running_experiments_in_growthbooks_format(site):
    flag = Flag.objects.create(site=site, key="new-checkout", default_value=False)
    FlagRule.objects.create(flag=flag, position=1, attribute="country", operator="in", value="DE, AT", serve=True)
    FlagRule.objects.create(flag=flag, position=2, attribute="", serve=True, rollout=30)
    Flag.objects.create(site=site, key="colour", default_value="grey", variations=["red", "blue"], weights=[25, 75])
    make_experiment(site, coverage=80)
    make_experiment(site, key="draft-one", status="draft")

    published = payload.payload_build(site.id)

    features = published["features"]
    assert features["new-checkout"]["defaultValue"] is False
    first, second = features["new-checkout"]["rules"]
    assert first["id"] == f"rule-{flag.rules.get(position=1).pk}"
    assert first["condition"] == {"country": {"$in": ["DE", "AT"]}} and first["force"] is True
    assert "range" not in first
    assert second["range"] == [0, 0.3] and second["seed"] == "new-checkout" and second["hashVersion"] == 2
    assert second["hashAttribute"] == "id"  # beacon-flags.js makes a unit only for rules that hash "id"
    assert "condition" not in second
    split = features["colour"]["rules"][0]
    assert split["variations"] == ["red", "blue"] and split["weights"] == [0.25, 0.75]
    colour = Flag.objects.get(key="colour")
    assert (split["id"], split["key"], split["hashAttribute"]) == (f"split-{colour.pk}", "colour", "id")
    assert (split["hashVersion"], split["seed"], split["meta"]) == (2, "colour", [{"key": "0"}, {"key": "1"}])
    experiment = features["checkout-button"]["rules"][0]
    checkout_button = Experiment.objects.get(key="checkout-button")
    assert {name: experiment[name] for name in ("id", "key", "name", "seed", "phase", "hashVersion")} == {
        "id": f"experiment-{checkout_button.pk}",
        "key": "checkout-button",
        "name": "Checkout-Button",
        "seed": "checkout-button",
        "phase": "1",
        "hashVersion": 2,
    }
    assert experiment["coverage"] == 0.8 and experiment["weights"] == [0.5, 0.5]
    assert experiment["variations"] == [{"colour": "grey"}, {"colour": "green"}]
    assert experiment["meta"] == [{"key": "control", "name": "Control"}, {"key": "b", "name": "Variant B"}]
    assert experiment["hashAttribute"] == "id"
    assert features["checkout-button"]["defaultValue"] == {"colour": "grey"}
    assert features["draft-one"] == {"defaultValue": {"colour": "grey"}}
    assert published["beacons"]["experiments"] == {"checkout-button": {"unit": "visitor", "metrics": ["signup"]}}


@pytest.mark.django_db
def test_an_experiment_concluded_without_a_winner_or_running_with_one_variation_serves_control(site):
    concluded = make_experiment(site, key="no-winner", status="concluded")
    lonely = make_experiment(site, key="lonely", weights=(100,))
    running = make_experiment(site, key="with-stale-winner")
    running.winner = running.variations.get(key="b")
    running.save()
    published = payload.payload_build(site.id)
    assert published["features"][concluded.key] == {"defaultValue": {"colour": "grey"}}
    assert published["features"][lonely.key] == {"defaultValue": {"colour": "grey"}}
    assert "rules" in published["features"][running.key]
    assert list(published["beacons"]["experiments"]) == [running.key]


@pytest.mark.django_db
def test_each_site_keeps_its_own_payload(site):
    other = Site.objects.create(domain="other.example", name="Other")
    Flag.objects.create(site=site, key="here")
    Flag.objects.create(site=other, key="there")
    assert list(payload.site_payload(site.id)["features"]) == ["here"]
    assert list(payload.site_payload(other.id)["features"]) == ["there"]


@pytest.mark.django_db
def test_saving_a_rule_or_a_variation_drops_the_kept_payload(site, settings):
    settings.BEACONS_FLAGS_MAX_AGE = 60
    flag = Flag.objects.create(site=site, key="f", default_value=1)
    experiment = make_experiment(site)
    payload.site_payload(site.id)
    FlagRule.objects.create(flag=flag, serve=2)
    assert payload.site_payload(site.id)["features"]["f"]["rules"][0]["force"] == 2
    variation = experiment.variations.get(key="b")
    variation.config = {"colour": "red"}
    variation.save()
    assert payload.site_payload(site.id)["features"][experiment.key]["rules"][0]["variations"][1] == {"colour": "red"}


@pytest.mark.django_db
def test_a_split_without_weights_shares_equally(site):
    Flag.objects.create(site=site, key="f", variations=["a", "b", "c", "d"])
    assert payload.payload_build(site.id)["features"]["f"]["rules"][0]["weights"] == [0.25] * 4


@pytest.mark.django_db
def test_a_flag_switched_off_serves_only_its_default(site):
    flag = Flag.objects.create(site=site, key="f", default_value="safe", enabled=False)
    FlagRule.objects.create(flag=flag, serve="risky")
    assert payload.payload_build(site.id)["features"]["f"] == {"defaultValue": "safe"}


@pytest.mark.django_db
def test_a_concluded_experiment_gives_everyone_the_winner(site):
    experiment = make_experiment(site, status="concluded")
    experiment.winner = experiment.variations.get(key="b")
    experiment.save()
    user_experiment = make_experiment(site, key="for-users", unit="user")
    published = payload.payload_build(site.id)
    assert published["features"]["checkout-button"] == {"defaultValue": {"colour": "green"}}
    assert published["features"]["for-users"]["rules"][0]["hashAttribute"] == "user"
    assert list(published["beacons"]["experiments"]) == [user_experiment.key]


@pytest.mark.django_db
def test_every_operator_becomes_the_condition_it_names(site):
    flag = Flag.objects.create(site=site, key="f")
    cases = {
        "equals": {"path": {"$eq": "/a.b"}},
        "not_equals": {"path": {"$ne": "/a.b"}},
        "in": {"path": {"$in": ["/a.b", "c"]}},
        "not_in": {"path": {"$nin": ["/a.b", "c"]}},
        "contains": {"path": {"$regex": "\\/a\\.b, c"}},
        "starts_with": {"path": {"$regex": "^\\/a\\.b, c"}},
        "version_gte": {"path": {"$vgte": "/a.b, c"}},
        "version_lt": {"path": {"$vlt": "/a.b, c"}},
        "true": {"path": {"$eq": True}},
        "false": {"path": {"$eq": False}},
    }
    for operator, expected in cases.items():
        value = "/a.b" if operator in ("equals", "not_equals") else "/a.b, c"
        rule = FlagRule(flag=flag, attribute="path", operator=operator, value=value, serve=1)
        assert payload.rule_condition(rule) == expected, operator
    assert payload.rule_condition(FlagRule(flag=flag, attribute="", operator="equals", value="x", serve=1)) == {}


def test_a_contains_rule_matches_the_text_literally_in_python_as_in_javascript():
    literal = payload.regex_literal("a.b*(c)?[d]{e}|f^g$h+i/j-k\\l")
    assert condition_holds({"p": {"$regex": literal}}, {"p": "xx a.b*(c)?[d]{e}|f^g$h+i/j-k\\l yy"})
    assert not condition_holds({"p": {"$regex": literal}}, {"p": "aXb*(c)?[d]{e}|f^g$h+i/j-k\\l"})


@pytest.mark.django_db
def test_the_kept_payload_is_dropped_when_a_flag_changes(site, settings):
    settings.BEACONS_FLAGS_MAX_AGE = 60
    flag = Flag.objects.create(site=site, key="f", default_value=1)
    assert payload.site_payload(site.id)["features"]["f"]["defaultValue"] == 1
    Flag.objects.filter(pk=flag.pk).update(default_value=2)  # no signal: the kept copy stays
    assert payload.site_payload(site.id)["features"]["f"]["defaultValue"] == 1
    flag.refresh_from_db()
    flag.enabled = False
    flag.save()
    assert payload.site_payload(site.id)["features"]["f"]["defaultValue"] == 2
    rule = FlagRule.objects.create(flag=flag, serve=3)
    rule.delete()
    flag.delete()
    assert "f" not in payload.site_payload(site.id)["features"]


@pytest.mark.django_db
def test_a_change_saved_by_another_process_is_served_within_half_the_flags_max_age(site, settings, monkeypatch):
    import time

    settings.BEACONS_FLAGS_MAX_AGE = 60
    flag = Flag.objects.create(site=site, key="f", default_value="on")
    assert payload.site_payload(site.id)["features"]["f"]["defaultValue"] == "on"
    Flag.objects.filter(pk=flag.pk).update(enabled=False, default_value="off")  # another process: no signal here
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 29)
    assert payload.site_payload(site.id)["features"]["f"]["defaultValue"] == "on"
    monkeypatch.setattr(time, "time", lambda: now + 30.5)
    assert payload.site_payload(site.id)["features"]["f"]["defaultValue"] == "off"


@pytest.mark.django_db
def test_without_a_cache_lifetime_the_payload_is_read_every_time(site, settings):
    settings.BEACONS_FLAGS_MAX_AGE = 1
    assert payload.server_cache_seconds() == 0
    flag = Flag.objects.create(site=site, key="f", default_value=1)
    payload.site_payload(site.id)
    Flag.objects.filter(pk=flag.pk).update(default_value=2)
    assert payload.site_payload(site.id)["features"]["f"]["defaultValue"] == 2


# --- GET /beacon/flags/<site>.json ----------------------------------------------------------------


@pytest.mark.django_db
def test_the_flags_json_is_the_payload_with_what_the_server_knows_of_the_visitor(site, beacon_client):
    Flag.objects.create(site=site, key="f", default_value=True)
    response = beacon_client.get(f"/beacon/flags/{site.domain}.json", REMOTE_ADDR="81.2.69.142")
    assert response.status_code == 200
    body = response.json()
    assert body["features"]["f"] == {"defaultValue": True}
    assert body["beacons"]["attributes"] == {
        "site": site.domain,
        "country": "GB",
        "device": "desktop",
        "browser": "Chrome",
        "os": "Linux",
    }
    assert response["Cache-Control"] == "private, max-age=30"
    assert "User-Agent" in response["Vary"]
    again = beacon_client.get(
        f"/beacon/flags/{site.domain}.json", REMOTE_ADDR="81.2.69.142", HTTP_IF_NONE_MATCH=response["ETag"]
    )
    assert again.status_code == 304 and again["ETag"] == response["ETag"] and not again.content


@pytest.mark.django_db
def test_the_flags_json_of_an_unknown_or_inactive_site_is_not_found(site, beacon_client):
    assert beacon_client.get("/beacon/flags/nowhere.example.json").status_code == 404
    assert beacon_client.get("/beacon/flags/bad%20name.json").status_code == 404
    site.is_active = False
    site.save()
    assert beacon_client.get(f"/beacon/flags/{site.domain}.json").status_code == 404
    assert beacon_client.post(f"/beacon/flags/{site.domain}.json").status_code == 405


@pytest.mark.django_db
def test_the_flags_json_may_be_read_by_the_sites_own_pages_only(site, beacon_client):
    own = beacon_client.get(f"/beacon/flags/{site.domain}.json", HTTP_ORIGIN=f"https://{site.domain}")
    assert own["Access-Control-Allow-Origin"] == f"https://{site.domain}"
    other = beacon_client.get(f"/beacon/flags/{site.domain}.json", HTTP_ORIGIN="https://evil.example")
    assert "Access-Control-Allow-Origin" not in other


# --- POST /beacon/experiments ---------------------------------------------------------------------


def post_events(client, body, **headers):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post("/beacon/experiments", data=data, content_type="text/plain", **headers)


@pytest.mark.django_db
def test_an_exposure_counts_a_unit_once_and_its_conversions_once_per_metric(site, beacon_client):
    experiment = make_experiment(site, secondary_metrics="purchase")
    expose = {"site": site.domain, "unit": UNIT, "exposures": [{"experiment": experiment.key, "variation": "b"}]}
    assert post_events(beacon_client, expose).status_code == 204
    assert post_events(beacon_client, expose).status_code == 204
    convert = {
        "site": site.domain,
        "unit": UNIT,
        "conversions": [
            {"experiment": experiment.key, "metric": "signup"},
            {"experiment": experiment.key, "metric": "purchase", "value": 12.5},
            {"experiment": experiment.key, "metric": "purchase", "value": 7.5},
        ],
    }
    assert post_events(beacon_client, convert).status_code == 204

    exposure = ExperimentExposure.objects.get()
    assert (exposure.unit, exposure.variation, exposure.conflicted) == (UNIT, 1, False)
    rows = {row.metric: row for row in ExperimentConversion.objects.all()}
    assert (rows["signup"].count, rows["signup"].variation) == (1, 1)
    assert (rows["purchase"].count, rows["purchase"].value_sum) == (2, 20.0)


@pytest.mark.django_db
def test_a_unit_reported_in_a_second_variation_is_marked_conflicted(site, beacon_client):
    experiment = make_experiment(site)
    for variation in ("control", "b", "control"):
        body = {
            "site": site.domain,
            "unit": UNIT,
            "exposures": [{"experiment": experiment.key, "variation": variation}],
        }
        assert post_events(beacon_client, body).status_code == 204
    exposure = ExperimentExposure.objects.get()
    assert (exposure.variation, exposure.conflicted) == (0, True)


@pytest.mark.django_db
def test_what_does_not_belong_to_a_running_experiment_is_ignored(site, beacon_client):
    running = make_experiment(site)
    draft = make_experiment(site, key="draft-one", status="draft")
    other_site = Site.objects.create(domain="other.example", name="Other")
    elsewhere = make_experiment(other_site, key="elsewhere")
    body = {
        "site": site.domain,
        "unit": UNIT,
        "exposures": [
            {"experiment": draft.key, "variation": "b"},
            {"experiment": elsewhere.key, "variation": "b"},
            {"experiment": running.key, "variation": "zzz"},
            {"experiment": "nothing", "variation": "b"},
        ],
        "conversions": [
            {"experiment": running.key, "metric": "signup"},  # not exposed yet
        ],
    }
    assert post_events(beacon_client, body).status_code == 204
    assert not ExperimentExposure.objects.exists() and not ExperimentConversion.objects.exists()
    post_events(
        beacon_client,
        {
            **body,
            "exposures": [{"experiment": running.key, "variation": "b"}],
            "conversions": [{"experiment": running.key, "metric": "not-a-metric"}],
        },
    )
    assert ExperimentExposure.objects.count() == 1 and not ExperimentConversion.objects.exists()


@pytest.mark.django_db
def test_a_malformed_unit_counts_nothing(site, beacon_client):
    experiment = make_experiment(site)
    for unit in ("short", "x" * 65, "spaces are not allowed", 12345678901234567890, None):
        body = {"site": site.domain, "unit": unit, "exposures": [{"experiment": experiment.key, "variation": "b"}]}
        assert post_events(beacon_client, body).status_code == 204
    assert not ExperimentExposure.objects.exists()


@pytest.mark.django_db
def test_a_user_experiment_counts_only_a_signed_in_users_valid_token(site, beacon_client, settings):
    from beacons.ingest import identity

    settings.BEACONS_IDENTIFY_USERS = True
    experiment = make_experiment(site, unit="user")
    body = {"site": site.domain, "unit": UNIT, "exposures": [{"experiment": experiment.key, "variation": "b"}]}
    post_events(beacon_client, body)
    post_events(beacon_client, {**body, "uid": identity.user_token(7)[:-2] + "xx"})  # forged signature
    assert not ExperimentExposure.objects.exists()
    post_events(beacon_client, {**body, "uid": identity.user_token(7)})
    assert ExperimentExposure.objects.get().unit == identity.user_hash(7)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        json.dumps({"site": "x"}),
        json.dumps({"exposures": "x"}),
        json.dumps({"exposures": [1]}),
        json.dumps({"exposures": [{"experiment": "e"}]}),
        json.dumps({"exposures": [{"experiment": "", "variation": "b"}]}),
        json.dumps({"exposures": [{"experiment": "e" * 65, "variation": "b"}]}),
        json.dumps({"exposures": [{"experiment": "e", "variation": "b"}] * 21}),
        json.dumps({"conversions": [{"experiment": "e", "metric": "m", "value": "12"}]}),
        json.dumps({"conversions": [{"experiment": "e", "metric": "m", "value": True}]}),
        json.dumps({"conversions": [{"experiment": "e", "metric": "m", "value": 1e13}]}),
        '{"conversions": [{"experiment": "e", "metric": "m", "value": NaN}]}',
        '{"conversions": [{"experiment": "e", "metric": "m", "value": Infinity}]}',
    ],
)
def test_a_malformed_request_is_refused_whole_and_counts_nothing(site, beacon_client, body):
    experiment = make_experiment(site, key="e")
    ExperimentExposure.objects.create(experiment=experiment, unit=UNIT, variation=1, first_seen=timezone.now())
    response = post_events(beacon_client, body)
    assert response.status_code == 400
    assert "error" in response.json()
    assert not ExperimentConversion.objects.exists() and ExperimentExposure.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("[]", "body"),
        (json.dumps({"site": "x"}), "body"),
        (json.dumps({"exposures": {}}), "exposures"),
        (json.dumps({"conversions": [{"experiment": "e", "metric": ""}]}), "metric"),
        (json.dumps({"conversions": [{"experiment": "e", "metric": "m", "value": "1"}]}), "value"),
        (json.dumps({"conversions": [{"experiment": "e", "metric": "m", "value": -1e13}]}), "value"),
    ],
)
def test_a_refusal_names_the_field_at_fault(site, beacon_client, body, field):
    response = post_events(beacon_client, body)
    assert (response.status_code, response.json()["field"]) == (400, field)


@pytest.mark.django_db
def test_the_longest_keys_and_the_most_items_allowed_count(site, beacon_client):
    key = "k" * 64
    experiment = make_experiment(site, key=key)
    experiment.variations.filter(key="b").update(key="v" * 32)
    exposures = [{"experiment": key, "variation": "v" * 32}] * 20
    body = {
        "site": site.domain,
        "unit": UNIT,
        "exposures": exposures,
        "conversions": [{"experiment": key, "metric": "signup"}] * 20,
    }
    assert post_events(beacon_client, body).status_code == 204
    assert ExperimentExposure.objects.get().variation == 1
    assert (ExperimentConversion.objects.get().count, ExperimentConversion.objects.get().value_sum) == (20, 0)


@pytest.mark.django_db
def test_the_largest_conversion_value_allowed_counts(site, beacon_client):
    experiment = make_experiment(site, key="e")
    ExperimentExposure.objects.create(experiment=experiment, unit=UNIT, variation=1, first_seen=timezone.now())
    body = {"site": site.domain, "unit": UNIT, "conversions": [{"experiment": "e", "metric": "signup", "value": -1e12}]}
    assert post_events(beacon_client, body).status_code == 204
    assert ExperimentConversion.objects.get().value_sum == -1e12


@pytest.mark.django_db
def test_experiment_events_follow_ingests_rules_for_bots_privacy_sites_and_methods(site, beacon_client):
    experiment = make_experiment(site)
    body = {"site": site.domain, "unit": UNIT, "exposures": [{"experiment": experiment.key, "variation": "b"}]}
    bot = Client(HTTP_USER_AGENT="Googlebot/2.1 (+http://www.google.com/bot.html)")
    assert post_events(bot, body).status_code == 204
    assert post_events(beacon_client, body, HTTP_DNT="1").status_code == 204
    assert post_events(beacon_client, body, HTTP_SEC_GPC="1").status_code == 204
    assert not ExperimentExposure.objects.exists()
    assert post_events(beacon_client, {**body, "site": "unknown.example"}).status_code == 403
    assert post_events(beacon_client, body, HTTP_ORIGIN="https://evil.example").status_code == 403
    assert beacon_client.get("/beacon/experiments").status_code == 405
    preflight = beacon_client.options("/beacon/experiments", HTTP_ORIGIN=f"https://{site.domain}")
    assert preflight.status_code == 204 and preflight["Access-Control-Allow-Origin"] == f"https://{site.domain}"
    assert not ExperimentExposure.objects.exists()
    assert post_events(beacon_client, body, HTTP_ORIGIN=f"https://{site.domain}").status_code == 204
    assert ExperimentExposure.objects.count() == 1


@pytest.mark.django_db
def test_experiment_events_share_the_rate_limit_and_the_body_limit(site, beacon_client, settings):
    settings.BEACONS_RATE_LIMIT = 3
    experiment = make_experiment(site)
    body = {"site": site.domain, "unit": UNIT, "exposures": [{"experiment": experiment.key, "variation": "b"}] * 3}
    assert post_events(beacon_client, body).status_code == 204
    assert post_events(beacon_client, {**body, "unit": "v" * 22}).status_code == 429
    assert ExperimentExposure.objects.count() == 1
    settings.BEACONS_MAX_BODY_BYTES = 100
    assert post_events(beacon_client, {**body, "pad": "x" * 200}).status_code == 413


@pytest.mark.django_db
def test_past_the_unit_limit_new_units_are_not_recorded(site, beacon_client, settings):
    settings.BEACONS_EXPERIMENT_MAX_UNITS = 2
    experiment = make_experiment(site)
    for unit in units(4):
        body = {"site": site.domain, "unit": unit, "exposures": [{"experiment": experiment.key, "variation": "b"}]}
        post_events(beacon_client, body)
    assert ExperimentExposure.objects.count() == 2


@pytest.mark.django_db
def test_the_unit_limit_is_counted_again_after_a_minute(site, monkeypatch):
    experiment = make_experiment(site)
    now = [1000.0]
    monkeypatch.setattr(recording, "monotonic", lambda: now[0])
    assert recording._room_for_units(experiment)
    ExperimentExposure.objects.bulk_create(
        ExperimentExposure(experiment=experiment, unit=unit, variation=0, first_seen=timezone.now())
        for unit in units(3)
    )
    from django.conf import settings

    monkeypatch.setattr(settings, "BEACONS_EXPERIMENT_MAX_UNITS", 3)
    now[0] += 60
    assert recording._room_for_units(experiment)  # the count of a minute ago: 0
    now[0] += 0.5
    assert not recording._room_for_units(experiment)


@pytest.mark.django_db
def test_the_storage_being_down_is_a_503_not_a_500(site, beacon_client, monkeypatch):
    from django.db import OperationalError

    def down(**kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr("beacons.ingest.views.experiment_events_record", down)
    experiment = make_experiment(site)
    body = {"site": site.domain, "unit": UNIT, "exposures": [{"experiment": experiment.key, "variation": "b"}]}
    response = post_events(beacon_client, body)
    assert response.status_code == 503 and response["Retry-After"] == "5"


# --- Django helpers and the template tag ---------------------------------------------------------


def page_request(path="/pricing", unit=UNIT, **meta):
    request = RequestFactory().get(path, HTTP_USER_AGENT=BROWSER_UA, **meta)
    if unit:
        request.COOKIES["beacons_unit"] = unit
    from django.contrib.auth.models import AnonymousUser

    request.user = AnonymousUser()
    return request


@pytest.mark.django_db
def test_the_server_gives_the_same_variation_as_the_hash_and_counts_the_exposure(site):
    experiment = make_experiment(site)
    for unit in units(40):
        expected = "control" if unit_hash(experiment.key, unit) < 0.5 else "b"
        assert flags.variant(page_request(unit=unit), experiment.key) == expected
    assert ExperimentExposure.objects.count() == 40
    assert flags.variant(page_request(unit=""), experiment.key) is None
    assert flags.variant(page_request(unit="bad unit"), experiment.key) is None
    assert flags.variant(page_request(HTTP_DNT="1"), experiment.key) is None
    assert ExperimentExposure.objects.count() == 40


@pytest.mark.django_db
def test_a_flag_value_follows_its_rules_for_the_request_and_passed_attributes(site):
    flag = Flag.objects.create(site=site, key="beta", default_value="no")
    FlagRule.objects.create(flag=flag, position=0, attribute="plan", operator="equals", value="pro", serve="pro-yes")
    FlagRule.objects.create(flag=flag, position=1, attribute="path", operator="starts_with", value="/pri", serve="yes")
    assert flags.value(page_request("/pricing"), "beta") == "yes"
    assert flags.value(page_request("/about"), "beta") == "no"
    assert flags.value(page_request("/about"), "beta", plan="pro") == "pro-yes"
    assert flags.value(page_request(), "unknown", default="fallback") == "fallback"
    assert flags.value(page_request(), "unknown") is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    "attributes", [{"tags": ["a"]}, {"plan": {"a": 1}}, {"id": "x" * 22}, {"user": "u"}, {"signedIn": True}]
)
def test_a_page_cannot_pass_units_or_lists_as_attributes(site, attributes):
    with pytest.raises(TypeError):
        flags.value(page_request(), "beta", **attributes)


@pytest.mark.django_db
def test_a_signed_in_user_is_their_experiments_unit_on_the_server(site, settings, django_user_model):
    from beacons.ingest import identity

    settings.BEACONS_IDENTIFY_USERS = True
    experiment = make_experiment(site, unit="user")
    user = django_user_model.objects.create(username="ann")
    request = page_request(unit="")
    request.user = user
    expected = "control" if unit_hash(experiment.key, identity.user_hash(user.pk)) < 0.5 else "b"
    assert flags.variant(request, experiment.key) == expected
    assert ExperimentExposure.objects.get().unit == identity.user_hash(user.pk)
    flag = Flag.objects.create(site=site, key="members", default_value=False)
    FlagRule.objects.create(flag=flag, attribute="signedIn", operator="true", serve=True)
    assert flags.value(request, "members") is True
    assert flags.value(page_request(), "members") is False
    settings.BEACONS_IDENTIFY_USERS = False  # the browser only knows a signed-in user from data-uid
    del request._beacons_flags
    assert flags.value(request, "members") is False


@pytest.mark.django_db
def test_the_flag_tag_renders_the_part_the_flag_chooses(site):
    flag = Flag.objects.create(site=site, key="banner", default_value=False)
    FlagRule.objects.create(flag=flag, attribute="plan", operator="equals", value="pro", serve=True)
    template = Template('{% load beacons %}{% flag "banner" plan=plan %}ON{% else %}OFF{% endflag %}')
    assert template.render(Context({"request": page_request(), "plan": "pro"})) == "ON"
    assert template.render(Context({"request": page_request(), "plan": "free"})) == "OFF"
    assert template.render(Context({"plan": "pro"})) == "OFF"  # no request: the safe side
    only_on = Template('{% load beacons %}{% flag "banner" plan="pro" %}ON{% endflag %}')
    assert only_on.render(Context({"request": page_request()})) == "ON"
    flag.enabled = False
    flag.save()
    assert only_on.render(Context({"request": page_request()})) == ""


def test_the_flag_tag_refuses_a_malformed_use():
    from django.template import TemplateSyntaxError

    with pytest.raises(TemplateSyntaxError):
        Template("{% load beacons %}{% flag %}x{% endflag %}")
    with pytest.raises(TemplateSyntaxError):
        Template('{% load beacons %}{% flag "a" loose %}x{% endflag %}')


@pytest.mark.django_db
def test_the_flags_script_tag_names_the_site_and_escapes_its_options(site, settings):
    request = RequestFactory().get("/", HTTP_HOST=site.domain)
    html = Template("{% load beacons %}{% beacon_flags_script debug=True %}").render(Context({"request": request}))
    assert html == (
        f'<script defer src="/static/beacons/beacon-flags.min.js" data-debug="true" data-site="{site.domain}"></script>'
    )
    hostile = Template("{% load beacons %}{% beacon_flags_script site=name %}").render(
        Context({"request": request, "name": '"><script>'})
    )
    assert "<script>" not in hostile.replace("<script defer", "")


# --- The admin ---------------------------------------------------------------------------------------


def variation_form(prefix, rows, *, initial=0):
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for index, row in enumerate(rows):
        for name, value in row.items():
            data[f"{prefix}-{index}-{name}"] = value
    return data


def experiment_form(site, **fields):
    return {
        "site": str(site.pk),
        "key": "homepage",
        "name": "Homepage",
        "hypothesis": "",
        "status": "draft",
        "coverage": "100",
        "unit": "visitor",
        "primary_metric": "signup",
        "secondary_metrics": "",
        **fields,
    }


@pytest.mark.django_db
def test_the_admin_refuses_weights_that_do_not_add_up_and_a_single_variation(admin_client, site):
    rows = [
        {"position": "0", "key": "control", "name": "Control", "weight": "50", "config": "{}"},
        {"position": "1", "key": "b", "name": "B", "weight": "40", "config": "{}"},
    ]
    response = admin_client.post(
        "/admin/beacons/experiment/add/", {**experiment_form(site), **variation_form("variations", rows)}
    )
    assert response.status_code == 200 and "add up to 100" in response.content.decode()
    response = admin_client.post(
        "/admin/beacons/experiment/add/",
        {**experiment_form(site), **variation_form("variations", [{**rows[0], "weight": "100"}])},
    )
    assert "two variations or more" in response.content.decode()
    assert not Experiment.objects.exists()
    rows[1]["weight"] = "50"
    response = admin_client.post(
        "/admin/beacons/experiment/add/", {**experiment_form(site), **variation_form("variations", rows)}
    )
    assert response.status_code == 302
    assert list(Experiment.objects.get().variations.values_list("key", flat=True)) == ["control", "b"]


@pytest.mark.django_db
def test_the_admin_refuses_changing_weights_while_the_experiment_runs_and_records_who_started_it(admin_client, site):
    experiment = make_experiment(site, key="homepage", status="draft")
    variations = list(experiment.variations.all())
    rows = [
        {
            "id": str(v.pk),
            "experiment": str(experiment.pk),
            "position": str(v.position),
            "key": v.key,
            "name": v.name,
            "weight": "50",
            "config": json.dumps(v.config),
        }
        for v in variations
    ]
    url = f"/admin/beacons/experiment/{experiment.pk}/change/"
    started = admin_client.post(
        url, {**experiment_form(site, status="running"), **variation_form("variations", rows, initial=2)}
    )
    assert started.status_code == 302
    experiment.refresh_from_db()
    assert experiment.status == "running" and experiment.started_at is not None

    rows[0]["weight"], rows[1]["weight"] = "30", "70"
    refused = admin_client.post(
        url, {**experiment_form(site, status="running"), **variation_form("variations", rows, initial=2)}
    )
    assert "cannot change while the experiment runs" in refused.content.decode()
    assert [float(v.weight) for v in experiment.variations.all()] == [50, 50]

    page = admin_client.get(url).content.decode()
    assert "Changes (newest first)" in page and "admin" in page and "Changed Status" in page


@pytest.mark.django_db
def test_a_concluded_experiment_needs_its_own_winner(admin_client, site):
    experiment = make_experiment(site, key="homepage")
    other = make_experiment(site, key="other")
    rows = [
        {
            "id": str(v.pk),
            "experiment": str(experiment.pk),
            "position": str(v.position),
            "key": v.key,
            "name": v.name,
            "weight": "50",
            "config": json.dumps(v.config),
        }
        for v in experiment.variations.all()
    ]
    url = f"/admin/beacons/experiment/{experiment.pk}/change/"
    no_winner = admin_client.post(
        url, {**experiment_form(site, status="concluded"), **variation_form("variations", rows, initial=2)}
    )
    assert "names its winner" in no_winner.content.decode()
    foreign = other.variations.first()
    wrong = admin_client.post(
        url,
        {
            **experiment_form(site, status="concluded", winner=str(foreign.pk)),
            **variation_form("variations", rows, initial=2),
        },
    )
    assert wrong.status_code == 200
    winner = experiment.variations.get(key="b")
    done = admin_client.post(
        url,
        {
            **experiment_form(site, status="concluded", winner=str(winner.pk)),
            **variation_form("variations", rows, initial=2),
        },
    )
    assert done.status_code == 302
    experiment.refresh_from_db()
    assert experiment.winner == winner and experiment.stopped_at is not None
    assert payload.payload_build(site.id)["features"]["homepage"] == {"defaultValue": {"colour": "green"}}


@pytest.mark.django_db
def test_a_flag_and_an_experiment_of_a_site_cannot_share_a_key(site):
    from django.core.exceptions import ValidationError

    make_experiment(site, key="same")
    with pytest.raises(ValidationError, match="experiment of this site"):
        Flag(site=site, key="same").full_clean()
    Flag.objects.create(site=site, key="flag-key")
    with pytest.raises(ValidationError, match="flag of this site"):
        Experiment(site=site, key="flag-key", name="x", primary_metric="signup").full_clean()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("variations", "weights", "problem"),
    [
        ({"a": 1}, [], "variations"),
        (["a", "b"], "50,50", "weights"),
        (["a", "b"], [50, True], "weights"),
        (["a", "b"], [50, -5], "weights"),
        (["a", "b"], [50, 40], "weights"),
        (["a", "b"], [100], "weights"),
    ],
)
def test_a_flags_split_needs_a_weight_per_variation_adding_up_to_100(site, variations, weights, problem):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as raised:
        Flag(site=site, key="f", variations=variations, weights=weights).full_clean()
    assert problem in raised.value.message_dict
    Flag(site=site, key="f", variations=["a", "b"], weights=[33.33, 66.67]).full_clean()
    Flag(site=site, key="f", variations=["a", "b"], weights=[]).full_clean()


@pytest.mark.django_db
def test_the_kill_switch_action_turns_flags_off_and_logs_it(admin_client, site):
    flag = Flag.objects.create(site=site, key="risky", default_value=False)
    FlagRule.objects.create(flag=flag, serve=True)
    assert flags.value(page_request(), "risky") is True
    response = admin_client.post(
        "/admin/beacons/flag/", {"action": "switch_off", "_selected_action": [str(flag.pk)]}, follow=True
    )
    assert response.status_code == 200
    assert flags.value(page_request(), "risky") is False  # the kept payload was dropped with the save
    from django.contrib.admin.models import LogEntry

    assert LogEntry.objects.filter(object_id=str(flag.pk)).exists()


@pytest.mark.django_db
def test_staff_see_and_pick_only_their_sites_flags(client, make_staff, site):
    from django.contrib.auth.models import Permission

    other = Site.objects.create(domain="other.example", name="Other")
    Flag.objects.create(site=site, key="mine")
    theirs = Flag.objects.create(site=other, key="theirs")
    staff = make_staff(permissions=())
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["view_flag", "change_flag", "add_flag"]))
    client.force_login(staff)
    listing = client.get("/admin/beacons/flag/").content.decode()
    assert "mine" in listing and "theirs" not in listing
    assert client.get(f"/admin/beacons/flag/{theirs.pk}/change/").status_code == 302  # the admin's "not found"
    form = client.get("/admin/beacons/flag/add/").content.decode()
    assert site.domain in form and "other.example" not in form


# --- Results ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_experiments_are_listed_running_then_drafts_then_the_ended_newest_first(site):
    from beacons.queries.experiments import experiments_listed

    stopped = make_experiment(site, key="stopped", status="stopped")
    draft = make_experiment(site, key="draft", status="draft")
    running = make_experiment(site, key="running")
    concluded = make_experiment(site, key="concluded", status="concluded")
    ExperimentExposure.objects.create(experiment=running, unit=UNIT, variation=0, first_seen=timezone.now())
    ExperimentExposure.objects.create(
        experiment=running, unit="c" * 22, variation=1, conflicted=True, first_seen=timezone.now()
    )
    listed = experiments_listed(site=site)
    assert [experiment.key for experiment, _ in listed] == [running.key, draft.key, concluded.key, stopped.key]
    assert [units for _, units in listed] == [1, 0, 0, 0]


@pytest.mark.django_db
def test_a_variation_nobody_reached_reads_as_zero_everywhere(site):
    from beacons.queries.experiments import experiment_results

    experiment = make_experiment(site, weights=(50, 25, 25))
    now = timezone.now()
    ExperimentExposure.objects.bulk_create(
        ExperimentExposure(experiment=experiment, unit=unit, variation=1, first_seen=now) for unit in units(3)
    )
    ExperimentConversion.objects.create(
        experiment=experiment, unit=units(3)[0], metric="signup", variation=1, count=2, value_sum=5, first_at=now
    )
    results = experiment_results(experiment)
    assert results.units == [0, 3, 0] and results.total_units == 3 and results.conflicted == 0
    control, b, c = results.metrics[0].outcomes
    assert (control.units, control.converted, control.conversions, control.value_sum, control.rate) == (
        0,
        0,
        0,
        0.0,
        0.0,
    )
    assert (b.units, b.converted, b.conversions, b.value_sum) == (3, 1, 2, 5.0)
    assert b.rate == pytest.approx(1 / 3)
    assert (c.units, c.converted, c.conversions) == (0, 0, 0)
    assert control.comparison is None and b.comparison is not None


@pytest.mark.django_db
def test_a_split_with_a_weight_of_zero_saved_before_the_rule_is_not_checked(site):
    from beacons.queries.experiments import experiment_results

    experiment = make_experiment(site)
    experiment.variations.filter(key="b").update(weight=0)
    ExperimentExposure.objects.bulk_create(
        ExperimentExposure(experiment=experiment, unit=unit, variation=0, first_seen=timezone.now())
        for unit in units(500)
    )
    assert experiment_results(experiment).sample_ratio.mismatch is False
    lonely = make_experiment(site, key="lonely", weights=(100,))
    assert experiment_results(lonely).sample_ratio.mismatch is False
    experiment.variations.filter(key="b").update(weight=50)
    assert experiment_results(experiment).sample_ratio.mismatch is True  # 500 / 0 on a 50/50 split
