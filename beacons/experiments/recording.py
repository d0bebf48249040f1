"""Exposures and conversions of experiment units: checked against the site's running experiments,
then written exactly (a row per unit, and per unit and metric), so a unit counts once."""

import math
import re
from dataclasses import dataclass
from datetime import datetime
from time import monotonic

from django.conf import settings
from django.db import connection, transaction

from beacons.ingest.parsing import Rejected
from beacons.models import Experiment, ExperimentConversion, ExperimentExposure

MAX_ITEMS = 20  # exposures, and conversions, in one request: beacon-flags.js sends one or two
MAX_CONVERSION_VALUE = 1e12
UNIT_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")
_UNITS_COUNT_SECONDS = 60.0  # how long a process trusts an experiment's count of units against the limit
_units_counted: dict[int, tuple[float, int]] = {}


@dataclass(frozen=True)
class Exposure:
    experiment: str
    variation: str


@dataclass(frozen=True)
class Conversion:
    experiment: str
    metric: str
    value: float


def _text(item: dict, name: str) -> str:
    value = item.get(name)
    if not isinstance(value, str) or not value or len(value) > 64:
        raise Rejected(400, f"{name} must be a text of 1 to 64 characters", name)
    return value


def _items(data: dict, name: str) -> list[dict]:
    items = data.get(name, [])
    if not isinstance(items, list) or len(items) > MAX_ITEMS or not all(isinstance(item, dict) for item in items):
        raise Rejected(400, f"{name} must be a list of at most {MAX_ITEMS} objects", name)
    return items


def _value(item: dict) -> float:
    value = item.get("value", 0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Rejected(400, "value must be a number", "value")
    if abs(value) > MAX_CONVERSION_VALUE:
        raise Rejected(400, f"value must be within ±{MAX_CONVERSION_VALUE:.0e}", "value")
    return float(value)


def events_parse(data: object) -> tuple[list[Exposure], list[Conversion]]:
    """The exposures and conversions of a request body, or ``Rejected`` (400) for any malformed one:
    a request is counted whole or not at all."""
    if not isinstance(data, dict):
        raise Rejected(400, "send a JSON object", "body")
    exposures = [Exposure(_text(item, "experiment"), _text(item, "variation")) for item in _items(data, "exposures")]
    conversions = [
        Conversion(_text(item, "experiment"), _text(item, "metric"), _value(item))
        for item in _items(data, "conversions")
    ]
    if not exposures and not conversions:
        raise Rejected(400, "send at least one exposure or conversion", "body")
    return exposures, conversions


def unit_of(experiment: Experiment, *, unit: object, signed_user: str) -> str:
    """The unit an experiment counts: a signed-in user's keyed hash for user experiments (none
    without a valid token), else the random first-party id the page sent ("" when malformed)."""
    if experiment.unit == Experiment.Unit.USER:
        return signed_user
    return unit if isinstance(unit, str) and UNIT_PATTERN.fullmatch(unit) else ""


def _room_for_units(experiment: Experiment) -> bool:
    """Whether the experiment has recorded fewer units than BEACONS_EXPERIMENT_MAX_UNITS: a flood of
    made-up units must not grow rows without end. Counted in the database at most once a minute per
    process, and by this process's own new units in between."""
    now = monotonic()
    counted_at, units = _units_counted.get(experiment.pk, (-math.inf, 0))
    if now - counted_at > _UNITS_COUNT_SECONDS:
        units = ExperimentExposure.objects.filter(experiment=experiment).count()
        _units_counted[experiment.pk] = (now, units)
    return units < settings.BEACONS_EXPERIMENT_MAX_UNITS


def _upsert_conversion(experiment: Experiment, unit: str, variation: int, conversion: Conversion, at: datetime):
    table = connection.ops.quote_name(ExperimentConversion._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (experiment_id, unit, metric, variation, count, value_sum, first_at) "
            "VALUES (%s, %s, %s, %s, 1, %s, %s) "
            "ON CONFLICT (experiment_id, unit, metric) DO UPDATE "
            f"SET count = {table}.count + 1, value_sum = {table}.value_sum + excluded.value_sum",
            [experiment.pk, unit, conversion.metric, variation, conversion.value, at],
        )


def events_record(
    *,
    site_id: int,
    exposures: list[Exposure],
    conversions: list[Conversion],
    unit: object,
    signed_user: str,
    at: datetime,
) -> None:
    """Record a unit's exposures, then its conversions (a conversion counts only for a unit
    already exposed, in the variation it was exposed to). Items naming an experiment that is
    not running on the site, a variation or metric it does not have, or without a valid unit
    are ignored: a page can hold stale definitions for a minute."""
    keys = {item.experiment for item in [*exposures, *conversions]}
    running = {
        experiment.key: experiment
        for experiment in Experiment.objects.filter(
            site_id=site_id, key__in=keys, status=Experiment.Status.RUNNING
        ).prefetch_related("variations")
    }
    with transaction.atomic():
        for exposure in exposures:
            experiment = running.get(exposure.experiment)
            variation_keys = [variation.key for variation in experiment.variations.all()] if experiment else []
            unit_id = unit_of(experiment, unit=unit, signed_user=signed_user) if experiment else ""
            if unit_id and exposure.variation in variation_keys:
                _exposure_record(experiment, unit_id, variation_keys.index(exposure.variation), at)
        for conversion in conversions:
            experiment = running.get(conversion.experiment)
            unit_id = unit_of(experiment, unit=unit, signed_user=signed_user) if experiment else ""
            exposed = (
                ExperimentExposure.objects.filter(experiment=experiment, unit=unit_id).first() if unit_id else None
            )
            if exposed is not None and conversion.metric in experiment.metrics:
                _upsert_conversion(experiment, unit_id, exposed.variation, conversion, at)


def _exposure_record(experiment: Experiment, unit: str, variation: int, at: datetime) -> None:
    """A new unit's row (within the limit), or an existing unit marked conflicted when it reports
    another variation."""
    existing = ExperimentExposure.objects.filter(experiment=experiment, unit=unit).first()
    if existing is not None:
        if existing.variation != variation and not existing.conflicted:
            ExperimentExposure.objects.filter(pk=existing.pk).update(conflicted=True)
        return
    if not _room_for_units(experiment):
        return
    _, created = ExperimentExposure.objects.get_or_create(
        experiment=experiment, unit=unit, defaults={"variation": variation, "first_seen": at}
    )
    if created:
        counted_at, counted = _units_counted[experiment.pk]
        _units_counted[experiment.pk] = (counted_at, counted + 1)
