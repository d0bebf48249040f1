"""Staff pages for A/B experiments: the site's list, and one experiment's results in numbers, charts and words.

``/dashboard/experiments/`` lists the site's experiments; ``/dashboard/experiments/<pk>/`` shows one:
units per variation, the sample ratio check, per metric a table and an interval chart, and for the
primary metric a verdict in plain words (``verdicts_for``). Data comes only from
``beacons.queries.experiments``; the figures from ``beacons.experiments.statistics``.
"""

import json
from dataclasses import dataclass
from decimal import Decimal

from django.http import Http404
from django.shortcuts import render

from beacons.experiments.statistics import MINIMUM_UNITS, Comparison
from beacons.models import Experiment
from beacons.queries.experiments import (
    ExperimentResults,
    MetricResults,
    experiment_of_site,
    experiment_results,
    experiments_listed,
)

from . import charts
from .permissions import ADD_EXPERIMENTS, VIEW_EXPERIMENTS, permission_required, user_may

# The chance to beat control from which a variation reads as likely better (and, one minus it, likely worse).
LIKELY_BETTER = 0.95
LIKELY_WORSE = 0.05
UNIT_WORDS = {Experiment.Unit.VISITOR: "visitors", Experiment.Unit.USER: "signed-in users"}
PERCENT = "\u00a0%"  # a no-break space: a line never starts with the percent sign
INTERVAL = f"95{PERCENT} interval"


@dataclass(frozen=True)
class Verdict:
    """What the primary metric says, in one sentence; ``tone`` (better, worse, unclear, waiting,
    untrusted) picks its colour."""

    tone: str
    words: str


# --- Numbers in words ------------------------------------------------------------------------


def _sign(value: float, text: str) -> str:
    """``text`` (the figure's size) after a plus for a positive ``value``, a minus for a negative one,
    nothing when it reads as zero ("0.0")."""
    if not any(digit not in "0." for digit in text):
        return text
    return ("+" if value > 0 else "−") + text


def signed_percent(share: float) -> str:
    """0.152 -> "+15 %", -0.034 -> "−3.4 %": one decimal below 10 %, whole percents above."""
    value = share * 100
    return _sign(value, f"{abs(value):.{1 if abs(value) < 9.95 else 0}f}") + PERCENT


def signed_points(share: float) -> str:
    """A difference of rates in percentage points: 0.0152 -> "+1.52"."""
    value = share * 100
    return _sign(value, f"{abs(value):.2f}")


def rate_words(rate: float) -> str:
    """0.1152 -> "11.52 %"."""
    return f"{rate * 100:.2f}{PERCENT}"


def chance_words(chance: float) -> str:
    """0.97 -> "97 %"; never "100 %" or "0 %" unless it is exactly that."""
    if 0.995 <= chance < 1:
        return f"over 99{PERCENT}"
    if 0 < chance < 0.005:
        return f"under 1{PERCENT}"
    return f"{chance * 100:.0f}{PERCENT}"


def p_value_words(p_value: float) -> str:
    """A p-value as the tables show it: "0.012", or "< 0.001" for any smaller one."""
    return "< 0.001" if p_value < 0.001 else f"{p_value:.3f}"


def _p_value_sentence(p_value: float) -> str:
    """ "p < 0.001" or "p = 0.012"."""
    words = p_value_words(p_value)
    return f"p {words}" if words.startswith("<") else f"p = {words}"


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _weight(weight: Decimal) -> str:
    return f"{weight.normalize():f}{PERCENT}"


def _listed(items: list[str]) -> str:
    """["a", "b", "c"] -> "a, b and c"."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _per_variation(units: list[int], unit_words: str) -> str:
    """ "4,210 visitors per variation", or "4,950 to 5,050 visitors per variation" when they differ."""
    low, high = min(units), max(units)
    return f"{low:,} {unit_words} per variation" if low == high else f"{low:,} to {high:,} {unit_words} per variation"


# --- Verdicts -----------------------------------------------------------------------------------


def uplift_tone(comparison: Comparison) -> str:
    """better, worse or unclear: where the chance to beat control stands against the thresholds
    (unclear whatever the chance while an arm has too few units)."""
    if not comparison.enough_data:
        return "unclear"
    if comparison.chance_to_beat_control >= LIKELY_BETTER:
        return "better"
    if comparison.chance_to_beat_control <= LIKELY_WORSE:
        return "worse"
    return "unclear"


def _uplift_words(comparison: Comparison) -> str:
    """ "+15 % (95 % interval +2.4 % to +29 %)"; in percentage points when control never converted
    (no relative uplift) or an arm has no conversion (no relative interval)."""
    if comparison.relative_interval is not None:
        interval = comparison.relative_interval
        return (
            f"{signed_percent(comparison.relative_uplift)} "
            f"({INTERVAL} {signed_percent(interval.low)} to {signed_percent(interval.high)})"
        )
    interval = comparison.absolute_interval
    return (
        f"{signed_points(comparison.absolute_uplift)} percentage points "
        f"({INTERVAL} {signed_points(interval.low)} to {signed_points(interval.high)})"
    )


def verdicts_for(*, metric: MetricResults, unit_words: str, sample_ratio_mismatch: bool) -> list[Verdict]:
    """What ``metric`` says of each variation against control (the first outcome), in plain words.

    One verdict that stands for all when the split is off (nothing can be trusted), when there is no
    variation beside control, or when an arm has fewer than MINIMUM_UNITS units (the smallest named);
    else one per variation: likely better at a chance to beat control of LIKELY_BETTER or more, likely
    worse at LIKELY_WORSE or less, else no clear difference yet."""
    if sample_ratio_mismatch:
        return [Verdict("untrusted", "No verdict while the split is off: fix how variations are assigned or counted.")]
    if len(metric.outcomes) < 2:
        return [Verdict("waiting", "No variation to compare with control yet.")]
    control, *variants = metric.outcomes
    if not all(outcome.comparison.enough_data for outcome in variants):
        fewest = min(outcome.units for outcome in metric.outcomes)
        return [
            Verdict(
                "waiting",
                f"Not enough data yet: {fewest:,} of the {MINIMUM_UNITS:,} {unit_words} per variation needed.",
            )
        ]
    verdicts = []
    for outcome in variants:
        comparison = outcome.comparison
        tone = uplift_tone(comparison)
        headline = {
            "better": f"{outcome.variation} is likely better",
            "worse": f"{outcome.variation} is likely worse",
            "unclear": f"No clear difference yet between {outcome.variation} and control",
        }[tone]
        verdicts.append(
            Verdict(
                tone,
                f"{headline}: {chance_words(comparison.chance_to_beat_control)} chance to beat control, "
                f"{_uplift_words(comparison)} on {metric.metric}, "
                f"{_per_variation([control.units, outcome.units], unit_words)}.",
            )
        )
    return verdicts


def sample_ratio_warning(*, results: ExperimentResults, unit_words: str) -> str:
    """The split in words when the sample ratio check flags it, else ""."""
    if not results.sample_ratio.mismatch:
        return ""
    return (
        f"The split is off: {_listed([f'{units:,}' for units in results.units])} {unit_words} where "
        f"{' / '.join(_weight(variation.weight) for variation in results.variations)} was set "
        f"({_p_value_sentence(results.sample_ratio.p_value)}). Something assigns or counts one variation more "
        "often — fix that before trusting these results."
    )


# --- Pages -------------------------------------------------------------------------------------


def _metric_section(metric: MetricResults, *, position: int) -> dict:
    """One metric's table rows (figures as text) and its interval chart (None when no variation has an interval)."""
    rows, intervals = [], []
    for outcome in metric.outcomes:
        comparison = outcome.comparison
        row = {
            "variation": outcome.variation,
            "units": outcome.units,
            "converted": outcome.converted,
            "rate": rate_words(outcome.rate),
            "conversions": outcome.conversions,
            "value": _number(outcome.value_sum),
        }
        if comparison is not None:
            absolute, relative = comparison.absolute_interval, comparison.relative_interval
            row |= {
                "absolute": signed_points(comparison.absolute_uplift),
                "absolute_interval": f"{signed_points(absolute.low)} to {signed_points(absolute.high)}",
                "relative": "–" if comparison.relative_uplift is None else signed_percent(comparison.relative_uplift),
                "relative_interval": ""
                if relative is None
                else f"{signed_percent(relative.low)} to {signed_percent(relative.high)}",
                "p_value": p_value_words(comparison.p_value),
                "chance": chance_words(comparison.chance_to_beat_control),
                "tone": uplift_tone(comparison),
            }
            if relative is not None:
                intervals.append(
                    (str(outcome.variation), comparison.relative_uplift, relative.low, relative.high, row["tone"])
                )
        rows.append(row)
    figure = charts.uplift_intervals_figure(intervals=intervals) if intervals else None
    return {
        "metric": metric.metric,
        "primary": position == 0,
        "rows": rows,
        "figure": figure,
        "figure_id": f"uplift-{position}",
    }


@permission_required(VIEW_EXPERIMENTS)
def experiment_list(request, site):
    rows = [(experiment, units, UNIT_WORDS[experiment.unit]) for experiment, units in experiments_listed(site=site)]
    context = {"experiments": rows, "may_add": user_may(request.user, ADD_EXPERIMENTS)}
    return render(request, "dashboard/experiments/list.html", context)


@permission_required(VIEW_EXPERIMENTS)
def experiment_detail(request, pk: int, site):
    experiment = experiment_of_site(site=site, pk=pk)
    if experiment is None:
        raise Http404("No such experiment on this site.")
    results = experiment_results(experiment)
    unit_words = UNIT_WORDS[experiment.unit]
    context = {
        "experiment": experiment,
        "results": results,
        "unit_words": unit_words,
        "variations": [
            {
                "variation": variation,
                "weight": _weight(variation.weight),
                "units": units,
                "config": json.dumps(variation.config, ensure_ascii=False),
            }
            for variation, units in zip(results.variations, results.units)
        ],
        "sample_ratio_warning": sample_ratio_warning(results=results, unit_words=unit_words),
        "verdicts": verdicts_for(
            metric=results.metrics[0], unit_words=unit_words, sample_ratio_mismatch=results.sample_ratio.mismatch
        ),
        "metrics": [_metric_section(metric, position=position) for position, metric in enumerate(results.metrics)],
    }
    return render(request, "dashboard/experiments/detail.html", context)
