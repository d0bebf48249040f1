"""Which value of a flag, and which variation of an experiment, a unit gets from a published payload.

The payload is GrowthBook's SDK format, and this follows its SDKs' rules for the part of it
``beacons.experiments.payload`` writes: rules in order, each skipped unless its condition
holds; a force rule serves its value to the units whose hash falls in its ``range``; an
experiment rule splits the units its ``coverage`` takes in by ``weights``. The hash is
GrowthBook's (FNV-1a 32, version 2), so every GrowthBook SDK, beacon-flags.js and this module
put a unit in the same variation.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FNV_OFFSET = 0x811C9DC5
FNV_PRIME = 0x01000193
HASH_VERSION = 2
VERSION_OPERATORS = {"$veq", "$vne", "$vgt", "$vgte", "$vlt", "$vlte"}
ORDER_OPERATORS = {"$gt", "$gte", "$lt", "$lte"}


def fnv1a32(text: str) -> int:
    """FNV-1a over UTF-16 code units, as the JavaScript SDK's ``charCodeAt`` loop hashes."""
    value = FNV_OFFSET
    data = text.encode("utf-16-le", "surrogatepass")
    for index in range(0, len(data), 2):
        value = ((value ^ (data[index] | data[index + 1] << 8)) * FNV_PRIME) & 0xFFFFFFFF
    return value


def unit_hash(seed: str, unit: str, version: int = HASH_VERSION) -> float | None:
    """The unit's place in [0, 1) for ``seed``: the same number in every GrowthBook SDK."""
    if version == 2:
        return fnv1a32(str(fnv1a32(seed + unit))) % 10000 / 10000
    if version == 1:
        return fnv1a32(unit + seed) % 1000 / 1000
    return None


def bucket_ranges(count: int, coverage: float, weights: list[float] | None) -> list[tuple[float, float]]:
    """Each variation's share of [0, 1): its weight, of which ``coverage`` is in the experiment."""
    coverage = min(max(coverage, 0.0), 1.0)
    if not weights or len(weights) != count or not 0.99 <= sum(weights) <= 1.01:
        weights = [1 / count] * count
    ranges, start = [], 0.0
    for weight in weights:
        ranges.append((start, start + coverage * weight))
        start += weight
    return ranges


def variation_chosen(position: float, ranges: list[tuple[float, float]]) -> int:
    """The index of the range holding ``position``, or -1 (outside the coverage)."""
    for index, (low, high) in enumerate(ranges):
        if low <= position < high:
            return index
    return -1


def _padded_version(value: object) -> str:
    """A version as a string that compares like the version: "1.10.0" above "1.9.2", "1.0.0" above "1.0.0-rc.1"."""
    text = value if isinstance(value, str) and value else "0"
    parts = re.split(r"[-.]", re.sub(r"(^v|\+.*$)", "", text))
    if len(parts) == 3:
        parts.append("~")
    return "-".join(part.rjust(5) if part.isascii() and part.isdigit() else part for part in parts)


def _same(left: object, right: object) -> bool:
    """JavaScript's ``===`` on JSON values: true is not 1, 1 is 1.0, and two lists or objects are
    never the same (JavaScript compares them by reference)."""
    if isinstance(left, list | dict) or isinstance(right, list | dict):
        return False
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    return left == right


def _deep_same(left: object, right: object) -> bool:
    """Equality of a condition written as a plain value: lists and objects compared by content."""
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(_deep_same(a, b) for a, b in zip(left, right))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_deep_same(left[key], right[key]) for key in left)
    return _same(left, right)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _orderable(left: object, right: object) -> bool:
    return (_number(left) and _number(right)) or (isinstance(left, str) and isinstance(right, str))


def _operator_holds(operator: str, actual: object, expected: object) -> bool:
    if operator == "$eq":
        return _same(actual, expected)
    if operator == "$ne":
        return not _same(actual, expected)
    if operator in ("$in", "$nin"):
        found = isinstance(expected, list) and any(_same(actual, item) for item in expected)
        return found if operator == "$in" else isinstance(expected, list) and not found
    if operator == "$regex":
        try:
            return isinstance(actual, str) and re.search(expected, actual) is not None
        except (re.error, TypeError):
            return False
    if operator == "$exists":
        return (actual is not None) == bool(expected)
    if operator in ORDER_OPERATORS:
        if not _orderable(actual, expected):
            return False
        return {"$gt": actual > expected, "$gte": actual >= expected, "$lt": actual < expected}.get(
            operator, actual <= expected
        )
    if operator in VERSION_OPERATORS:
        if not _orderable(actual, expected):
            return operator == "$vne"
        left, right = _padded_version(actual), _padded_version(expected)
        return {
            "$veq": left == right,
            "$vne": left != right,
            "$vgt": left > right,
            "$vgte": left >= right,
            "$vlt": left < right,
        }.get(operator, left <= right)
    return False  # an operator this payload never holds: the rule is skipped, as an SDK skips it


def _value_matches(expected: object, actual: object) -> bool:
    if isinstance(expected, dict) and expected and all(key.startswith("$") for key in expected):
        return all(_operator_holds(operator, actual, value) for operator, value in expected.items())
    return _deep_same(actual, expected)


def condition_holds(condition: Mapping[str, Any], attributes: Mapping[str, Any]) -> bool:
    """GrowthBook's condition language, the part Beacons' rules write: attributes compared with
    ``$eq``, ``$ne``, ``$in``, ``$nin``, ``$regex``, ``$exists``, ``$gt``… and the version
    operators ``$vgte``…, joined by ``$and``, ``$or`` and ``$not``."""
    for key, expected in condition.items():
        if key == "$and":
            holds = all(condition_holds(part, attributes) for part in expected)
        elif key == "$or":
            holds = not expected or any(condition_holds(part, attributes) for part in expected)
        elif key == "$not":
            holds = not condition_holds(expected, attributes)
        else:
            holds = _value_matches(expected, attributes.get(key))
        if not holds:
            return False
    return True


@dataclass(frozen=True)
class FeatureResult:
    """A flag's value for one unit, and where it came from: ``force`` (a rule), ``experiment``,
    ``defaultValue`` or ``unknownFeature``; for an experiment, the variation (index and key)."""

    value: Any
    source: str
    experiment: str | None = None
    variation: int | None = None
    variation_key: str | None = None
    hashed: bool = False  # assigned by the hash (not forced): what exposures count


def _hash_value(attributes: Mapping[str, Any], rule: Mapping[str, Any]) -> str:
    value = attributes.get(rule.get("hashAttribute") or "id")
    return value if isinstance(value, str) else ""


def _experiment_result(rule: Mapping[str, Any], variation: int, *, feature_key: str, hashed: bool) -> FeatureResult:
    meta = rule.get("meta") or []
    return FeatureResult(
        value=rule["variations"][variation],
        source="experiment",
        experiment=rule.get("key") or feature_key,
        variation=variation,
        variation_key=meta[variation].get("key", str(variation)) if variation < len(meta) else str(variation),
        hashed=hashed,
    )


def _experiment_variation(rule: Mapping[str, Any], attributes: Mapping[str, Any], *, feature_key: str) -> int:
    unit = _hash_value(attributes, rule)
    if not unit:
        return -1
    position = unit_hash(rule.get("seed") or rule.get("key") or feature_key, unit, rule.get("hashVersion") or 1)
    if position is None:
        return -1
    coverage = rule.get("coverage")
    ranges = bucket_ranges(len(rule["variations"]), 1.0 if coverage is None else coverage, rule.get("weights"))
    return variation_chosen(position, ranges)


def _in_rollout(rule: Mapping[str, Any], attributes: Mapping[str, Any], *, feature_key: str) -> bool:
    if "range" not in rule:
        return True
    unit = _hash_value(attributes, rule)
    position = unit_hash(rule.get("seed") or feature_key, unit, rule.get("hashVersion") or 1) if unit else None
    low, high = rule["range"]
    return position is not None and low <= position < high


def feature_evaluate(
    features: Mapping[str, Any],
    key: str,
    attributes: Mapping[str, Any],
    *,
    forced: Mapping[str, int] | None = None,
) -> FeatureResult:
    """The value of feature ``key`` for a unit with ``attributes`` (``id``: its random unit,
    ``user``: a signed-in user's keyed hash, and what targeting reads). ``forced`` maps
    experiment keys to a variation index (debugging): it wins over the hash and is not counted."""
    feature = features.get(key)
    if not isinstance(feature, Mapping):
        return FeatureResult(None, "unknownFeature")
    for rule in feature.get("rules") or []:
        if rule.get("condition") and not condition_holds(rule["condition"], attributes):
            continue
        if "force" in rule:
            result = FeatureResult(rule["force"], "force") if _in_rollout(rule, attributes, feature_key=key) else None
        else:
            result = _experiment_rule_result(rule, attributes, feature_key=key, forced=forced or {})
        if result is not None:
            return result
    return FeatureResult(feature.get("defaultValue"), "defaultValue")


def _experiment_rule_result(
    rule: Mapping[str, Any], attributes: Mapping[str, Any], *, feature_key: str, forced: Mapping[str, int]
) -> FeatureResult | None:
    """The variation an experiment rule gives: forced (debugging), else by the hash; None when the
    rule does not take the unit in (or is not an experiment of two variations or more)."""
    variations = rule.get("variations") or []
    if len(variations) < 2:
        return None
    forced_variation = forced.get(rule.get("key") or feature_key)
    if forced_variation is not None and 0 <= forced_variation < len(variations):
        return _experiment_result(rule, forced_variation, feature_key=feature_key, hashed=False)
    variation = _experiment_variation(rule, attributes, feature_key=feature_key)
    if variation >= 0:
        return _experiment_result(rule, variation, feature_key=feature_key, hashed=True)
    return None
