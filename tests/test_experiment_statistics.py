"""The experiment results page's figures agree with statsmodels and scipy, and say nothing false about
arms with too little data."""

import math

import pytest
from scipy import integrate, stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from beacons.experiments import statistics
from beacons.experiments.statistics import (
    Arm,
    Interval,
    chance_to_beat_exact,
    chance_to_beat_normal,
    compare,
    sample_ratio_check,
)

AGREEMENT = 1e-6  # absolute, against the independent engines

# (control, variant) pairs; the comments say which form of the exact chance (the smallest shape parameter) runs.
FIXTURES = [
    pytest.param(Arm(20, 2), Arm(20, 5), id="small-20-per-arm"),  # control's alpha
    pytest.param(Arm(4_210, 421), Arm(4_210, 484), id="typical-10-vs-11.5-percent"),  # control's alpha
    pytest.param(Arm(1_000_000, 100_000), Arm(1_000_000, 100_400), id="huge-a-million-per-arm"),  # normal
    pytest.param(Arm(4_210, 484), Arm(4_210, 421), id="variant-worse"),  # variant's alpha
    pytest.param(Arm(500, 0), Arm(500, 7), id="no-conversion-in-control"),  # control's alpha
    pytest.param(Arm(500, 9), Arm(500, 0), id="no-conversion-in-variant"),  # variant's alpha
    pytest.param(Arm(300, 300), Arm(300, 280), id="all-converted-in-control"),  # control's beta
    pytest.param(Arm(120, 95), Arm(130, 130), id="all-converted-in-variant"),  # variant's beta
    pytest.param(Arm(50_000, 2_500), Arm(5_000, 270), id="unequal-arms"),  # variant's alpha
    pytest.param(Arm(1_000_000, 990_000), Arm(1_000_000, 989_500), id="huge-high-rates"),  # control's beta
]


def posterior(arm):
    return stats.beta(1 + arm.converted, 1 + arm.units - arm.converted)


def scipy_chance_to_beat(control, variant):
    """P(X_variant > X_control) = ∫ f_variant(x) F_control(x) dx, over where the posteriors have mass."""
    control_posterior, variant_posterior = posterior(control), posterior(variant)
    low = min(control_posterior.ppf(1e-15), variant_posterior.ppf(1e-15))
    high = max(control_posterior.isf(1e-15), variant_posterior.isf(1e-15))
    chance, _ = integrate.quad(
        lambda x: variant_posterior.pdf(x) * control_posterior.cdf(x), low, high, epsabs=1e-13, epsrel=1e-13, limit=500
    )
    return chance


@pytest.mark.parametrize("control, variant", FIXTURES)
def test_p_value_matches_statsmodels_pooled_z_test(control, variant):
    _, expected = proportions_ztest([variant.converted, control.converted], [variant.units, control.units])
    assert compare(control, variant).p_value == pytest.approx(expected, abs=AGREEMENT)


@pytest.mark.parametrize("control, variant", FIXTURES)
def test_difference_interval_matches_statsmodels_wald(control, variant):
    low, high = confint_proportions_2indep(
        variant.converted, variant.units, control.converted, control.units, compare="diff", method="wald"
    )
    interval = compare(control, variant).absolute_interval
    assert interval.low == pytest.approx(low, abs=AGREEMENT)
    assert interval.high == pytest.approx(high, abs=AGREEMENT)


@pytest.mark.parametrize("control, variant", FIXTURES)
def test_relative_interval_matches_statsmodels_log_method_or_is_absent_without_conversions(control, variant):
    interval = compare(control, variant).relative_interval
    if not (control.converted and variant.converted):
        assert interval is None
        return
    low, high = confint_proportions_2indep(
        variant.converted, variant.units, control.converted, control.units, compare="ratio", method="log"
    )
    assert interval.low == pytest.approx(low - 1, abs=AGREEMENT)
    assert interval.high == pytest.approx(high - 1, abs=AGREEMENT)


@pytest.mark.parametrize("control, variant", FIXTURES)
def test_chance_to_beat_control_matches_scipy_integration_of_the_posteriors(control, variant):
    expected = scipy_chance_to_beat(control, variant)
    assert compare(control, variant).chance_to_beat_control == pytest.approx(expected, abs=AGREEMENT)


@pytest.mark.parametrize("control, variant", FIXTURES)
def test_rates_and_uplifts_are_the_variations_against_controls(control, variant):
    comparison = compare(control, variant)
    control_rate, rate = control.converted / control.units, variant.converted / variant.units
    assert (comparison.control_rate, comparison.rate) == (control_rate, rate)
    assert comparison.absolute_uplift == pytest.approx(rate - control_rate, abs=1e-15)
    if control_rate:
        assert comparison.relative_uplift == pytest.approx(rate / control_rate - 1, rel=1e-12)
    else:
        assert comparison.relative_uplift is None


@pytest.mark.parametrize("control, variant", FIXTURES)
def test_chance_to_beat_control_and_to_lose_to_it_add_up_to_one(control, variant):
    forward = compare(control, variant).chance_to_beat_control
    backward = compare(variant, control).chance_to_beat_control
    assert forward + backward == pytest.approx(1.0, abs=1e-9)


def test_identical_arms_are_a_coin_toss():
    assert compare(Arm(4_210, 421), Arm(4_210, 421)).chance_to_beat_control == pytest.approx(0.5, abs=1e-9)
    assert compare(Arm(20, 20), Arm(20, 20)).chance_to_beat_control == pytest.approx(0.5, abs=1e-9)
    assert compare(Arm(1_000_000, 100_000), Arm(1_000_000, 100_000)).chance_to_beat_control == 0.5


def test_a_decisive_difference_keeps_a_tiny_p_value_instead_of_rounding_to_zero():
    control, variant = Arm(1_000_000, 100_000), Arm(1_000_000, 105_000)
    _, expected = proportions_ztest([variant.converted, control.converted], [variant.units, control.units])
    p_value = compare(control, variant).p_value
    assert 0 < p_value < 1e-30
    assert p_value == pytest.approx(expected, rel=1e-9)


def test_not_enough_data_until_both_arms_reach_the_minimum():
    assert statistics.MINIMUM_UNITS == 100
    assert not compare(Arm(99, 10), Arm(100, 10)).enough_data
    assert not compare(Arm(100, 10), Arm(99, 10)).enough_data
    assert compare(Arm(100, 10), Arm(100, 12)).enough_data
    assert not compare(Arm(100, 10), Arm(100, 12), minimum_units=101).enough_data
    assert compare(Arm(20, 2), Arm(20, 5), minimum_units=20).enough_data


def test_an_arm_without_units_claims_nothing():
    empty, control = Arm(0, 0), Arm(150, 12)
    comparison = compare(empty, control)
    assert (comparison.control_rate, comparison.rate, comparison.absolute_uplift) == (0.0, 0.08, 0.08)
    assert comparison.absolute_interval == Interval(-1.0, 1.0)
    assert (comparison.relative_uplift, comparison.relative_interval) == (None, None)
    assert comparison.p_value == 1.0
    assert not comparison.enough_data
    assert comparison.chance_to_beat_control == pytest.approx(scipy_chance_to_beat(empty, control), abs=AGREEMENT)

    backwards = compare(control, empty)
    assert backwards.absolute_interval == Interval(-1.0, 1.0)
    assert backwards.relative_uplift == -1.0
    assert backwards.relative_interval is None
    assert backwards.p_value == 1.0
    assert compare(empty, empty).chance_to_beat_control == pytest.approx(0.5, abs=1e-12)


def test_no_conversion_anywhere_gives_p_value_one_and_an_interval_of_no_width():
    comparison = compare(Arm(200, 0), Arm(180, 0))
    assert comparison.p_value == 1.0
    assert comparison.absolute_interval == Interval(0.0, 0.0)
    assert (comparison.relative_uplift, comparison.relative_interval) == (None, None)
    assert comparison.chance_to_beat_control == pytest.approx(
        scipy_chance_to_beat(Arm(200, 0), Arm(180, 0)), abs=AGREEMENT
    )


def test_every_unit_converted_in_both_arms_gives_p_value_one():
    comparison = compare(Arm(200, 200), Arm(150, 150))
    assert comparison.p_value == 1.0
    assert comparison.absolute_interval == Interval(0.0, 0.0)
    assert comparison.relative_uplift == 0.0
    assert comparison.relative_interval == Interval(0.0, 0.0)


@pytest.mark.parametrize(
    "units, converted", [(-1, 0), (10, -1), (10, 11)], ids=["negative-units", "negative-conversions", "more-than-units"]
)
def test_impossible_counts_fail_loudly(units, converted):
    with pytest.raises(ValueError, match="0 <= converted <= units"):
        Arm(units, converted)


def test_the_exact_chance_is_summed_up_to_100_000_terms_and_approximated_past_them():
    # control's alpha, 1 + 99,999 conversions, is the smallest shape parameter: 100,000 terms
    control, variant = Arm(1_000_000, 99_999), Arm(1_000_000, 100_400)
    exact = chance_to_beat_exact(control=control, variant=variant)
    assert exact != chance_to_beat_normal(control=control, variant=variant)
    assert compare(control, variant).chance_to_beat_control == exact

    control = Arm(1_000_000, 100_000)  # 100,001 terms
    normal = chance_to_beat_normal(control=control, variant=variant)
    assert compare(control, variant).chance_to_beat_control == normal


@pytest.mark.parametrize(
    "control, variant",
    [
        (Arm(1_000_000, 99_999), Arm(1_000_000, 100_400)),
        (Arm(1_000_000, 99_999), Arm(1_000_000, 99_999)),
        (Arm(1_000_000, 99_999), Arm(1_000_000, 101_000)),
        (Arm(1_000_000, 899_999), Arm(1_000_000, 899_500)),
        (Arm(1_000_000, 99_999), Arm(10_000_000, 1_001_000)),
    ],
    ids=["slightly-better", "identical", "clearly-better", "high-rates-slightly-worse", "ten-times-the-units"],
)
def test_exact_and_approximate_chances_agree_near_the_threshold(control, variant):
    exact = chance_to_beat_exact(control=control, variant=variant)
    assert chance_to_beat_normal(control=control, variant=variant) == pytest.approx(exact, abs=1e-3)


@pytest.mark.parametrize("control, variant", [(Arm(20, 2), Arm(20, 5)), (Arm(300, 300), Arm(50, 3))])
def test_the_approximation_is_the_normal_of_the_posteriors_mean_and_variance(control, variant):
    control_posterior, variant_posterior = posterior(control), posterior(variant)
    spread = math.sqrt(control_posterior.var() + variant_posterior.var())
    expected = stats.norm.cdf((variant_posterior.mean() - control_posterior.mean()) / spread)
    assert chance_to_beat_normal(control=control, variant=variant) == pytest.approx(expected, abs=1e-12)


def scipy_sample_ratio_p_value(units, weights):
    expected = [sum(units) * weight / sum(weights) for weight in weights]
    return stats.chisquare(units, expected).pvalue


def test_sample_ratio_mismatch_is_flagged_for_5500_against_4500_on_a_50_50_split():
    check = sample_ratio_check([5_500, 4_500], [0.5, 0.5])
    assert check.mismatch
    assert check.p_value == pytest.approx(scipy_sample_ratio_p_value([5_500, 4_500], [0.5, 0.5]), rel=1e-10)


def test_5050_against_4950_on_a_50_50_split_is_chance():
    check = sample_ratio_check([5_050, 4_950], [50, 50])
    assert not check.mismatch
    assert check.p_value == pytest.approx(scipy_sample_ratio_p_value([5_050, 4_950], [50, 50]), rel=1e-10)


def test_a_three_way_split_with_unequal_weights_is_checked_against_its_own_weights():
    even_for_its_weights = sample_ratio_check([5_040, 2_490, 2_470], [2, 1, 1])
    assert not even_for_its_weights.mismatch
    assert even_for_its_weights.p_value == pytest.approx(
        scipy_sample_ratio_p_value([5_040, 2_490, 2_470], [2, 1, 1]), rel=1e-10
    )
    assert sample_ratio_check([5_040, 2_490, 2_470], [0.5, 0.25, 0.25]).p_value == pytest.approx(
        even_for_its_weights.p_value, rel=1e-12
    )
    assert sample_ratio_check([3_340, 3_330, 3_330], [2, 1, 1]).mismatch
    assert not sample_ratio_check([3_340, 3_330, 3_330], [1, 1, 1]).mismatch


def test_a_variation_that_received_no_units_is_a_mismatch():
    assert sample_ratio_check([0, 120], [1, 1]).mismatch


@pytest.mark.parametrize(
    "units, weights",
    [
        ([5_000, 5_000], [1, 1]),  # no deviation at all
        ([5_000, 5_001], [1, 1]),  # tiny statistic: P's series
        ([1_000, 1_010, 990], [1, 1, 1]),
        ([5_100, 4_900], [1, 1]),  # statistic 4, x = 2 past a + 1 = 1.5: the continued fraction
        ([5_500, 4_500], [1, 1]),  # deep tail
        ([700, 800, 650, 720, 910, 660, 705, 730], [1] * 8),  # 7 degrees of freedom
        ([2_500, 2_000, 2_400, 2_600, 2_450], [1, 1, 1, 1, 1]),
        ([9_100, 880], [9, 1]),
        ([120, 95, 101], [1, 1, 1]),
    ],
)
def test_sample_ratio_p_value_matches_scipy_chisquare_to_1e_10_relative(units, weights):
    assert sample_ratio_check(units, weights).p_value == pytest.approx(
        scipy_sample_ratio_p_value(units, weights), rel=1e-10, abs=0
    )


def test_no_units_yet_is_no_mismatch():
    assert sample_ratio_check([0, 0, 0], [1, 2, 1]) == statistics.SampleRatio(p_value=1.0, mismatch=False)


def test_a_p_value_exactly_at_the_threshold_is_not_a_mismatch(monkeypatch):
    p_value = sample_ratio_check([5_050, 4_950], [1, 1]).p_value
    monkeypatch.setattr(statistics, "SRM_THRESHOLD", p_value)
    assert not sample_ratio_check([5_050, 4_950], [1, 1]).mismatch
    monkeypatch.setattr(statistics, "SRM_THRESHOLD", math.nextafter(p_value, 1.0))
    assert sample_ratio_check([5_050, 4_950], [1, 1]).mismatch


@pytest.mark.parametrize(
    "units, weights, message",
    [
        ([100, 100], [1, 1, 1], "one weight per variation"),
        ([100, 100, 100], [1, 1], "one weight per variation"),
        ([100], [1], "two variations or more"),
        ([100, -1], [1, 1], "cannot be negative"),
        ([100, 100], [1, 0], "positive numbers"),
        ([100, 100], [1, -1], "positive numbers"),
        ([100, 100], [1, math.inf], "positive numbers"),
        ([100, 100], [1, math.nan], "positive numbers"),
    ],
)
def test_a_sample_ratio_check_of_impossible_inputs_fails_loudly(units, weights, message):
    with pytest.raises(ValueError, match=message):
        sample_ratio_check(units, weights)
