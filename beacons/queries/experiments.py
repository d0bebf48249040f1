"""Reads of experiments: the site's list with units exposed, and one experiment's results per
variation and metric, compared with control (``beacons.experiments.statistics``)."""

from dataclasses import dataclass

from django.db.models import Case, Count, Q, Sum, When

from beacons.experiments.statistics import Arm, Comparison, SampleRatio, compare, sample_ratio_check
from beacons.models import Experiment, ExperimentConversion, ExperimentExposure, ExperimentVariation, Site
from beacons.queries.counters import site_id_of

NO_SAMPLE_RATIO = SampleRatio(p_value=1.0, mismatch=False)


@dataclass(frozen=True)
class VariationOutcome:
    """One variation on one metric: units exposed, units converted, conversions, their value, and
    (not for control) the comparison with control."""

    variation: ExperimentVariation
    units: int
    converted: int
    conversions: int
    value_sum: float
    comparison: Comparison | None

    @property
    def rate(self) -> float:
        return self.converted / self.units if self.units else 0.0


@dataclass(frozen=True)
class MetricResults:
    metric: str
    outcomes: list[VariationOutcome]  # control first


@dataclass(frozen=True)
class ExperimentResults:
    experiment: Experiment
    variations: list[ExperimentVariation]
    units: list[int]  # per variation, conflicted units left out
    conflicted: int  # units seen in two variations: left out of every figure
    sample_ratio: SampleRatio
    metrics: list[MetricResults]  # the primary metric first

    @property
    def total_units(self) -> int:
        return sum(self.units)


def experiments_listed(*, site: Site | int) -> list[tuple[Experiment, int]]:
    """The site's experiments, running ones first then the newest, each with its units exposed (one query)."""
    experiments = (
        Experiment.objects.filter(site_id=site_id_of(site))
        .annotate(units=Count("exposures", filter=Q(exposures__conflicted=False)))
        .order_by(
            Case(
                When(status=Experiment.Status.RUNNING, then=0),
                When(status=Experiment.Status.DRAFT, then=1),
                default=2,
            ),
            "-created_at",
        )
    )
    return [(experiment, experiment.units) for experiment in experiments]


def experiment_of_site(*, site: Site | int, pk: int) -> Experiment | None:
    """One experiment of the site (with its winner), or None (one query)."""
    return Experiment.objects.select_related("winner").filter(site_id=site_id_of(site), pk=pk).first()


def experiment_results(experiment: Experiment) -> ExperimentResults:
    """Per variation: units exposed (each once; a unit in two variations left out and counted
    apart), and per metric the units that converted, conversions and value (three queries)."""
    variations = list(experiment.variations.all())
    exposures = ExperimentExposure.objects.filter(experiment=experiment)
    units_by_variation = dict(
        exposures.filter(conflicted=False).values_list("variation").annotate(units=Count("pk")).order_by()
    )
    units = [units_by_variation.get(index, 0) for index in range(len(variations))]
    conflicted = exposures.filter(conflicted=True).count()
    conversions = (
        ExperimentConversion.objects.filter(experiment=experiment, metric__in=experiment.metrics)
        .exclude(unit__in=exposures.filter(conflicted=True).values("unit"))
        .values("metric", "variation")
        .annotate(converted=Count("pk"), conversions=Sum("count"), value_sum=Sum("value_sum"))
        .order_by()
    )
    by_metric = {(row["metric"], row["variation"]): row for row in conversions}
    metrics = []
    for metric in experiment.metrics:
        arms = [
            (variation, units[index], by_metric.get((metric, index), {})) for index, variation in enumerate(variations)
        ]
        control = Arm(units=arms[0][1], converted=arms[0][2].get("converted", 0)) if arms else None
        outcomes = []
        for index, (variation, exposed, row) in enumerate(arms):
            converted = row.get("converted", 0)
            outcomes.append(
                VariationOutcome(
                    variation=variation,
                    units=exposed,
                    converted=converted,
                    conversions=row.get("conversions", 0),
                    value_sum=row.get("value_sum") or 0.0,
                    comparison=compare(control, Arm(units=exposed, converted=converted)) if index else None,
                )
            )
        metrics.append(MetricResults(metric=metric, outcomes=outcomes))
    weights = [float(variation.weight) for variation in variations]
    return ExperimentResults(
        experiment=experiment,
        variations=variations,
        units=units,
        conflicted=conflicted,
        # Weights are more than 0 (the admin's rule); one saved before that rule is left unchecked.
        sample_ratio=sample_ratio_check(units, weights) if len(variations) >= 2 and all(weights) else NO_SAMPLE_RATIO,
        metrics=metrics,
    )
