"""A site's flags and experiments as a GrowthBook SDK payload: what beacon-flags.js, the Django
helpers and every GrowthBook SDK evaluate, kept per process for half the flags' cache lifetime."""

import re
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from beacons.experiments.evaluation import HASH_VERSION
from beacons.models import Experiment, ExperimentVariation, Flag, FlagRule

UNIT_ATTRIBUTE = {Experiment.Unit.VISITOR: "id", Experiment.Unit.USER: "user"}
_CACHE_KEY = "beacons:flags:payload:{site_id}"
# What JavaScript's RegExp and Python's re both read as the character itself once escaped.
_REGEX_SPECIAL = re.compile(r"[.*+?^${}()|[\]\\/-]")


def regex_literal(text: str) -> str:
    return _REGEX_SPECIAL.sub(lambda match: "\\" + match.group(0), text)


def _listed(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def rule_condition(rule: FlagRule) -> dict[str, Any]:
    """The GrowthBook condition a rule's attribute, operator and value mean ({} for everyone)."""
    if not rule.attribute:
        return {}
    operator = FlagRule.Operator
    test = {
        operator.EQUALS: {"$eq": rule.value},
        operator.NOT_EQUALS: {"$ne": rule.value},
        operator.IN: {"$in": _listed(rule.value)},
        operator.NOT_IN: {"$nin": _listed(rule.value)},
        operator.CONTAINS: {"$regex": regex_literal(rule.value)},
        operator.STARTS_WITH: {"$regex": "^" + regex_literal(rule.value)},
        operator.VERSION_AT_LEAST: {"$vgte": rule.value},
        operator.VERSION_BELOW: {"$vlt": rule.value},
        operator.IS_TRUE: {"$eq": True},
        operator.IS_FALSE: {"$eq": False},
    }[rule.operator]
    return {rule.attribute: test}


def _fractions(percentages: list[Any]) -> list[float]:
    """Weights as fractions of 1 (the SDKs fall back to equal weights unless they add up to 1 ± 0.01)."""
    total = sum(Decimal(str(weight)) for weight in percentages)
    return [float(Decimal(str(weight)) / total) for weight in percentages] if total else []


def _flag_feature(flag: Flag) -> dict[str, Any]:
    if not flag.enabled:
        return {"defaultValue": flag.default_value}
    rules = []
    for rule in flag.rules.all():
        published: dict[str, Any] = {"id": f"rule-{rule.pk}", "force": rule.serve}
        condition = rule_condition(rule)
        if condition:
            published["condition"] = condition
        if rule.rollout < 100:
            # A range, not "coverage": SDKs disagree whether a hash equal to the coverage is in.
            published |= {
                "range": [0, float(rule.rollout / 100)],
                "hashAttribute": "id",
                "hashVersion": HASH_VERSION,
                "seed": flag.key,
            }
        rules.append(published)
    if len(flag.variations) >= 2:
        rules.append(
            {
                "id": f"split-{flag.pk}",
                "key": flag.key,
                "variations": flag.variations,
                "weights": _fractions(flag.weights) or [1 / len(flag.variations)] * len(flag.variations),
                "hashAttribute": "id",
                "hashVersion": HASH_VERSION,
                "seed": flag.key,
                "meta": [{"key": str(index)} for index in range(len(flag.variations))],
            }
        )
    return {"defaultValue": flag.default_value, "rules": rules} if rules else {"defaultValue": flag.default_value}


def _experiment_feature(experiment: Experiment) -> dict[str, Any]:
    variations: list[ExperimentVariation] = list(experiment.variations.all())
    if experiment.status == Experiment.Status.CONCLUDED and experiment.winner_id:
        winner = next((v for v in variations if v.pk == experiment.winner_id), None)
        return {"defaultValue": winner.config if winner else None}
    control = variations[0].config if variations else None
    if experiment.status != Experiment.Status.RUNNING or len(variations) < 2:
        return {"defaultValue": control}
    return {
        "defaultValue": control,
        "rules": [
            {
                "id": f"experiment-{experiment.pk}",
                "key": experiment.key,
                "name": experiment.name,
                "variations": [variation.config for variation in variations],
                "weights": _fractions([variation.weight for variation in variations]),
                "coverage": float(experiment.coverage / 100),
                "hashAttribute": UNIT_ATTRIBUTE[experiment.unit],
                "hashVersion": HASH_VERSION,
                "seed": experiment.key,
                "meta": [{"key": variation.key, "name": variation.name} for variation in variations],
                "phase": "1",
            }
        ],
    }


def payload_build(site_id: int) -> dict[str, Any]:
    """The site's payload, read from the database: ``features`` (GrowthBook's format: a flag or an
    experiment each) and ``beacons`` (what GrowthBook SDKs ignore: the running experiments, whose
    exposures and conversions beacon-flags.js sends, with their unit and metrics)."""
    features: dict[str, Any] = {}
    for flag in Flag.objects.filter(site_id=site_id).prefetch_related("rules").order_by("key"):
        features[flag.key] = _flag_feature(flag)
    running: dict[str, Any] = {}
    experiments = Experiment.objects.filter(site_id=site_id).prefetch_related("variations").order_by("key")
    for experiment in experiments:
        features[experiment.key] = _experiment_feature(experiment)
        if experiment.status == Experiment.Status.RUNNING and "rules" in features[experiment.key]:
            running[experiment.key] = {"unit": experiment.unit, "metrics": experiment.metrics}
    return {"features": features, "beacons": {"experiments": running}}


def server_cache_seconds() -> int:
    """How long a process keeps a payload: half of BEACONS_FLAGS_MAX_AGE, browsers keep it the other
    half, so a change (a kill switch) reaches every page within BEACONS_FLAGS_MAX_AGE seconds."""
    return max(settings.BEACONS_FLAGS_MAX_AGE // 2, 0)


def site_payload(site_id: int) -> dict[str, Any]:
    key = _CACHE_KEY.format(site_id=site_id)
    payload = cache.get(key)
    if payload is None:
        payload = payload_build(site_id)
        if server_cache_seconds():
            cache.set(key, payload, server_cache_seconds())
    return payload


def _site_id_of(instance) -> int | None:
    if isinstance(instance, Flag | Experiment):
        return instance.site_id
    owner = getattr(instance, "flag", None) or getattr(instance, "experiment", None)
    return owner.site_id if owner is not None else None


@receiver([post_save, post_delete], sender=Flag)
@receiver([post_save, post_delete], sender=FlagRule)
@receiver([post_save, post_delete], sender=Experiment)
@receiver([post_save, post_delete], sender=ExperimentVariation)
def _payload_changed(sender, instance, **kwargs) -> None:
    try:
        site_id = _site_id_of(instance)
    except (Flag.DoesNotExist, Experiment.DoesNotExist):  # deleted with its flag or experiment
        return
    if site_id is not None:
        cache.delete(_CACHE_KEY.format(site_id=site_id))
