"""The figures of an experiment's results page: each variation against control, and the sample ratio check.

Pure Python (``math`` and the standard library's ``statistics``), so the page needs no numpy or scipy.
Each figure follows a textbook method, named where it is computed, and the tests check it against
statsmodels and scipy. Degenerate arms never raise, and their figures claim nothing:

- an arm with no units has rate 0.0; the difference's interval is then (-1, 1), every difference a
  rate can have, and the p-value is 1.0;
- no conversion in either arm, or every unit converted in both, gives p-value 1.0 (the pooled
  variance is 0: the test has nothing to measure), and a Wald interval of width 0 at the difference;
- the relative uplift is None when control's rate is 0, and its interval None when an arm has no
  conversion (the log of a zero rate);
- the chance to beat control is computed from the posteriors even then: uniform priors of an arm
  with no units give 0.5 against another such arm.

Counts that are negative, or more conversions than units, raise ValueError: they come from the
database, so they are a bug, not an input to tolerate.
"""

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist

MINIMUM_UNITS = 100  # below this in any arm, the page says "not enough data yet"
SRM_THRESHOLD = 0.001  # a sample ratio p-value below this flags a broken assignment, not bad luck
Z_95 = NormalDist().inv_cdf(0.975)  # two-sided 95 %
# The exact chance to beat control sums one term per unit of a shape parameter (~0.13 s for 100,000);
# past this every shape parameter is over 100,000, where the normal approximation is within ~1e-6 of
# the exact figure for arms of equal size, and within ~3e-4 when one arm has ten times the other's units.
EXACT_TERMS_LIMIT = 100_000
_CONVERGED = 1e-14  # relative size of the last series term or continued-fraction step: ~45 ulps, always reached
_TINY = 1e-300  # modified Lentz: a denominator of exactly 0 is nudged to this rather than divided by


@dataclass(frozen=True)
class Arm:
    """One variation's units (visitors exposed to it) and how many of them converted at least once."""

    units: int
    converted: int

    def __post_init__(self):
        if self.units < 0 or self.converted < 0 or self.converted > self.units:
            raise ValueError(f"an arm needs 0 <= converted <= units, got {self.converted} of {self.units}")

    @property
    def rate(self) -> float:
        return self.converted / self.units if self.units else 0.0


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True)
class Comparison:
    """One variation against control; intervals are 95 %, uplifts are the variation's minus control's."""

    control_rate: float
    rate: float
    absolute_uplift: float
    absolute_interval: Interval
    relative_uplift: float | None
    relative_interval: Interval | None
    p_value: float
    chance_to_beat_control: float
    enough_data: bool


@dataclass(frozen=True)
class SampleRatio:
    p_value: float
    mismatch: bool


def compare(control: Arm, variant: Arm, *, minimum_units: int = MINIMUM_UNITS) -> Comparison:
    """The variation's rate against control's: uplifts with their intervals, the p-value and the chance to beat."""
    control_rate, rate = control.rate, variant.rate
    return Comparison(
        control_rate=control_rate,
        rate=rate,
        absolute_uplift=rate - control_rate,
        absolute_interval=_difference_interval(control, variant),
        relative_uplift=rate / control_rate - 1.0 if control_rate else None,
        relative_interval=_ratio_interval(control, variant),
        p_value=_two_proportion_p_value(control, variant),
        chance_to_beat_control=_chance_to_beat(control, variant),
        enough_data=min(control.units, variant.units) >= minimum_units,
    )


def _difference_interval(control: Arm, variant: Arm) -> Interval:
    """Wald interval of the rates' difference, each arm's own variance (statsmodels' "wald", compare="diff")."""
    if not (control.units and variant.units):
        return Interval(-1.0, 1.0)  # an arm without units says nothing about the difference
    difference = variant.rate - control.rate
    half_width = Z_95 * math.sqrt(_rate_variance(control) + _rate_variance(variant))
    return Interval(difference - half_width, difference + half_width)


def _rate_variance(arm: Arm) -> float:
    return arm.rate * (1.0 - arm.rate) / arm.units


def _ratio_interval(control: Arm, variant: Arm) -> Interval | None:
    """Katz's log interval of the rates' ratio, minus 1 (statsmodels' "log", compare="ratio")."""
    if not (control.converted and variant.converted):
        return None
    log_ratio = math.log(variant.rate / control.rate)
    half_width = Z_95 * math.sqrt(1 / variant.converted - 1 / variant.units + 1 / control.converted - 1 / control.units)
    return Interval(math.expm1(log_ratio - half_width), math.expm1(log_ratio + half_width))


def _two_proportion_p_value(control: Arm, variant: Arm) -> float:
    """Two-sided z-test of equal rates with the pooled variance (statsmodels' proportions_ztest)."""
    if not (control.units and variant.units):
        return 1.0
    pooled = (control.converted + variant.converted) / (control.units + variant.units)
    variance = pooled * (1.0 - pooled) * (1 / control.units + 1 / variant.units)
    if not variance:  # no conversion anywhere, or every unit converted: nothing to tell the arms apart
        return 1.0
    z = (variant.rate - control.rate) / math.sqrt(variance)
    return math.erfc(abs(z) / math.sqrt(2))  # 2 (1 - Phi(|z|)) without losing the far tail to 1 - Phi


def _chance_to_beat(control: Arm, variant: Arm) -> float:
    terms, exact = _cheapest_exact_sum(control, variant)
    chance = exact() if terms <= EXACT_TERMS_LIMIT else chance_to_beat_normal(control=control, variant=variant)
    return min(max(chance, 0.0), 1.0)  # a sum of terms can round a hair past 1, and 1 - it below 0


def chance_to_beat_exact(*, control: Arm, variant: Arm) -> float:
    """P(variant's rate > control's) under Beta(1 + converted, 1 + units - converted) posteriors, exactly."""
    return _cheapest_exact_sum(control, variant)[1]()


def chance_to_beat_normal(*, control: Arm, variant: Arm) -> float:
    """The same chance with each posterior replaced by the normal of its mean and variance: the branch
    ``compare`` takes past ``EXACT_TERMS_LIMIT`` terms."""
    (control_mean, control_variance), (mean, variance) = _beta_moments(control), _beta_moments(variant)
    return 0.5 * math.erfc((control_mean - mean) / math.sqrt(2 * (control_variance + variance)))


def _beta_moments(arm: Arm) -> tuple[float, float]:
    alpha, beta = _posterior(arm)
    total = alpha + beta
    return alpha / total, alpha * beta / (total * total * (total + 1))


def _posterior(arm: Arm) -> tuple[int, int]:
    """The (alpha, beta) of the arm's Beta posterior from a uniform prior."""
    return 1 + arm.converted, 1 + arm.units - arm.converted


def _cheapest_exact_sum(control: Arm, variant: Arm) -> tuple[int, Callable[[], float]]:
    """How many terms, and how to sum them, for the cheapest of four exact forms of P(X1 > X0).

    ``_beats`` sums over the winner's alpha; the same chance is also 1 - P(X0 > X1) (a sum over
    control's alpha), and, since 1 - X is Beta(beta, alpha), P(1 - X0 > 1 - X1) or its complement
    (sums over a beta). An arm that converts rarely, or almost always, costs few terms however big.
    """
    control_alpha, control_beta = _posterior(control)
    alpha, beta = _posterior(variant)
    forms = [
        (alpha, lambda: _beats(control_alpha, control_beta, alpha, beta)),
        (control_alpha, lambda: 1.0 - _beats(alpha, beta, control_alpha, control_beta)),
        (control_beta, lambda: _beats(beta, alpha, control_beta, control_alpha)),
        (beta, lambda: 1.0 - _beats(control_beta, control_alpha, beta, alpha)),
    ]
    return min(forms, key=lambda form: form[0])


def _beats(loser_alpha: int, loser_beta: int, winner_alpha: int, winner_beta: int) -> float:
    """P(W > L) for L ~ Beta(loser_alpha, loser_beta) and W ~ Beta(winner_alpha, winner_beta), integer
    winner_alpha: Evan Miller's closed form, a sum of winner_alpha positive terms

        sum over i < winner_alpha of B(loser_alpha + i, loser_beta + winner_beta)
                                     / ((winner_beta + i) B(1 + i, winner_beta) B(loser_alpha, loser_beta)).

    Each term is the one before times a ratio of small integers, so only the first needs log-gamma
    (whose rounding, about 1e-9 at a million units, bounds the error); terms are kept as logarithms,
    as the first alone can underflow.
    """
    log_term = _log_beta(loser_alpha, loser_beta + winner_beta) - _log_beta(loser_alpha, loser_beta)
    log_terms = []
    for i in range(winner_alpha):
        log_terms.append(log_term)
        log_term += math.log((loser_alpha + i) * (winner_beta + i)) - math.log(
            (i + 1) * (loser_alpha + loser_beta + winner_beta + i)
        )
    largest = max(log_terms)
    return math.exp(largest) * math.fsum(math.exp(term - largest) for term in log_terms)


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def sample_ratio_check(units: Sequence[int], weights: Sequence[float]) -> SampleRatio:
    """Chi-square goodness of fit of each variation's units to the split its weights ask for.

    A mismatch means units did not reach the variations as assigned (a redirect that loses some, a
    bot filtered from one arm): the experiment's figures cannot be trusted. No units yet: p-value 1.0.
    """
    if len(units) != len(weights) or len(units) < 2:
        raise ValueError(
            f"one weight per variation, two variations or more: {len(units)} units, {len(weights)} weights"
        )
    if any(count < 0 for count in units):
        raise ValueError(f"unit counts cannot be negative: {list(units)}")
    if not all(math.isfinite(weight) and weight > 0 for weight in weights):
        raise ValueError(f"weights must be positive numbers: {list(weights)}")
    total = sum(units)
    if not total:
        return SampleRatio(p_value=1.0, mismatch=False)
    weight_total = math.fsum(weights)
    expected = [total * weight / weight_total for weight in weights]
    statistic = math.fsum((count - wanted) ** 2 / wanted for count, wanted in zip(units, expected))
    p_value = _upper_regularized_gamma((len(units) - 1) / 2, statistic / 2)
    return SampleRatio(p_value=p_value, mismatch=p_value < SRM_THRESHOLD)


def _upper_regularized_gamma(a: float, x: float) -> float:
    """Q(a, x) = Γ(a, x) / Γ(a) for a > 0, x >= 0, to ~1e-13 relative (Numerical Recipes' gammq):
    P's series below x = a + 1, where it converges fast and Q is not small, so 1 - P loses little;
    above, Lentz's continued fraction for Q itself, which keeps full relative precision deep in the tail."""
    if not x:
        return 1.0
    scale = math.exp(a * math.log(x) - x - math.lgamma(a))  # x^a e^-x / Γ(a)
    if x < a + 1:
        term = total = 1 / a
        denominator = a
        while abs(term) >= abs(total) * _CONVERGED:
            denominator += 1
            term *= x / denominator
            total += term
        return 1.0 - total * scale
    b = x + 1 - a
    c, d = math.inf, 1 / b
    fraction = d
    for i in itertools.count(1):
        an = -i * (i - a)
        b += 2
        d = 1 / (an * d + b or _TINY)
        c = b + an / c or _TINY
        step = d * c
        fraction *= step
        if abs(step - 1) < _CONVERGED:
            return fraction * scale
