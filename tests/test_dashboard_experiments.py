"""Staff experiment pages: list and results, permissions, sites, the sample ratio warning, conflicted
units, the verdict in words (every branch of ``verdicts_for``), the interval chart and escaping."""

import json
import re
from datetime import timedelta
from decimal import Decimal
from html import unescape

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from beacons.experiments.statistics import Comparison, Interval
from beacons.models import Experiment, ExperimentConversion, ExperimentExposure, ExperimentVariation
from beacons.queries.experiments import MetricResults, VariationOutcome
from dashboard import charts
from dashboard.experiment_views import Verdict, verdicts_for
from dashboard.permissions import ADD_EXPERIMENTS, VIEW_COUNTS, VIEW_ERRORS, VIEW_EXPERIMENTS
from tests.conftest import first_site

pytestmark = pytest.mark.django_db

XSS = "<script>alert(1)</script>"


def experiment_with(
    *,
    site=None,
    units=(4210, 4210),
    converted=(421, 485),
    weights=(50, 50),
    conflicted=0,
    name="Bigger sign-up button",
    key="signup-button",
    unit=Experiment.Unit.VISITOR,
    metric="signup",
    variation_names=("Control", "Variant B"),
    **fields,
) -> Experiment:
    """A running experiment on ``metric`` with ``units[i]`` units exposed to variation i, the first
    ``converted[i]`` of them converted (once, for 2 × 9.5 in value), and ``conflicted`` more units
    seen in two variations, each of them converted too (so leaving them out shows)."""
    now = timezone.now()
    experiment = Experiment.objects.create(
        site=site or first_site(),
        key=key,
        name=name,
        status=Experiment.Status.RUNNING,
        unit=unit,
        primary_metric=metric,
        started_at=now - timedelta(days=3),
        **fields,
    )
    for position, (variation_name, weight) in enumerate(zip(variation_names, weights)):
        ExperimentVariation.objects.create(
            experiment=experiment,
            position=position,
            key=f"v{position}",
            name=variation_name,
            weight=Decimal(weight),
            config={"colour": "green"},
        )
    exposures, conversions = [], []
    for variation, (exposed, converting) in enumerate(zip(units, converted)):
        for number in range(exposed):
            unit_id = f"u{variation}-{number}"
            exposures.append(
                ExperimentExposure(experiment=experiment, unit=unit_id, variation=variation, first_seen=now)
            )
            if number < converting:
                conversions.append(
                    ExperimentConversion(
                        experiment=experiment,
                        unit=unit_id,
                        metric=metric,
                        variation=variation,
                        count=2,
                        value_sum=19.0,
                        first_at=now,
                    )
                )
    for number in range(conflicted):
        unit_id = f"both-{number}"
        exposures.append(
            ExperimentExposure(experiment=experiment, unit=unit_id, variation=1, conflicted=True, first_seen=now)
        )
        conversions.append(
            ExperimentConversion(experiment=experiment, unit=unit_id, metric=metric, variation=1, count=1, first_at=now)
        )
    ExperimentExposure.objects.bulk_create(exposures)
    ExperimentConversion.objects.bulk_create(conversions)
    return experiment


@pytest.fixture
def experimenter(make_staff):
    """A staff member of the first site who may view experiments (and nothing else)."""
    client = Client()
    client.force_login(make_staff("experimenter", permissions=(VIEW_EXPERIMENTS,)))
    return client


def results_url(experiment: Experiment) -> str:
    return f"{reverse('dashboard:experiment', kwargs={'pk': experiment.pk})}?site={experiment.site.domain}"


def list_url() -> str:
    return f"{reverse('dashboard:experiments')}?site={first_site().domain}"


def text_of(html: str) -> str:
    """The page's words, tags dropped and spaces collapsed, as a reader sees them."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def figures(html: str) -> list[dict]:
    return [
        json.loads(body)
        for body in re.findall(r'<script id="[^"]+" type="application/json">(.*?)</script>', html, re.S)
    ]


# --- list ------------------------------------------------------------------------------------


def test_list_shows_each_experiment_with_key_status_units_dates_and_results_link(experimenter):
    experiment = experiment_with(units=(120, 130), converted=(10, 12), conflicted=2)
    response = experimenter.get(list_url())
    html = response.content.decode()
    assert response.status_code == 200
    assert set(response["Cache-Control"].split(", ")) == {"private", "no-store"}
    words = text_of(html)
    assert "Bigger sign-up button signup-button" in words
    assert "running" in words
    assert "250 visitors" in words  # conflicted units left out
    assert f"{timezone.localtime(experiment.started_at):%-d %b %Y}" in words
    assert html.count(f'href="{results_url(experiment)}"') == 2  # the name and "Results →"


def test_list_runs_a_fixed_number_of_queries(experimenter, django_assert_num_queries):
    for number in range(3):
        experiment_with(units=(5, 5), converted=(1, 1), key=f"exp-{number}")
    url = list_url()
    # session, user, user and group permissions, sites, experiments with their units
    with django_assert_num_queries(6):
        assert experimenter.get(url).status_code == 200


def test_empty_list_links_to_the_admin_add_page_when_the_user_may_add(make_staff):
    client = Client()
    client.force_login(make_staff("adder", permissions=(VIEW_EXPERIMENTS, ADD_EXPERIMENTS)))
    html = client.get(list_url()).content.decode()
    assert "No experiments on this site yet." in html
    assert f'href="{reverse("admin:beacons_experiment_add")}?site={first_site().pk}"' in html


def test_empty_list_says_who_may_create_when_the_user_may_not_add(experimenter):
    html = experimenter.get(list_url()).content.decode()
    assert "No experiments on this site yet." in html
    assert reverse("admin:beacons_experiment_add") not in html
    assert "may not create experiments" in html


def test_navigation_links_to_experiments_for_those_who_may_see_them(experimenter, make_staff):
    nav = re.compile(r'<a href="/dashboard/experiments/\?site=[^"]+"[^>]*>Experiments</a>')
    assert nav.search(experimenter.get(list_url()).content.decode())
    counter = Client()
    counter.force_login(make_staff("counter", permissions=(VIEW_COUNTS, VIEW_ERRORS)))
    assert not nav.search(counter.get(f"{reverse('dashboard:errors')}?site={first_site().domain}").content.decode())


# --- permissions and sites ----------------------------------------------------------------------


@pytest.mark.parametrize("page", ["list", "results"])
@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("anonymous", 302),
        ("active non-staff with the permission", 302),
        ("inactive staff with the permission", 302),
        ("staff without the permission", 403),
        ("staff with the permission", 200),
    ],
)
def test_pages_need_active_staff_with_the_view_permission(make_staff, page, who, status):
    experiment = experiment_with(units=(10, 10), converted=(1, 1))
    client = Client()
    if who != "anonymous":
        permissions = (VIEW_COUNTS, VIEW_ERRORS) if who == "staff without the permission" else (VIEW_EXPERIMENTS,)
        fields = {"is_staff": "non-staff" not in who, "is_active": "inactive" not in who}
        client.force_login(make_staff("someone", permissions=permissions, **fields))
    url = list_url() if page == "list" else results_url(experiment)
    response = client.get(url)
    assert response.status_code == status
    assert "no-store" in response["Cache-Control"]
    if status == 302:
        assert response["Location"].startswith(reverse("login"))


def test_an_experiment_of_another_site_is_not_found(make_staff, tokyo):
    theirs = experiment_with(site=tokyo, units=(10, 10), converted=(1, 1))
    both = Client()
    both.force_login(make_staff("both", permissions=(VIEW_EXPERIMENTS,), sites=[first_site(), tokyo]))
    url = reverse("dashboard:experiment", kwargs={"pk": theirs.pk})
    assert both.get(f"{url}?site={first_site().domain}").status_code == 404  # asked on the other site
    assert both.get(f"{url}?site={tokyo.domain}").status_code == 200
    member = Client()
    member.force_login(make_staff("member", permissions=(VIEW_EXPERIMENTS,)))
    assert member.get(f"{url}?site={tokyo.domain}").status_code == 404  # not one of their sites
    assert member.get(f"{url}?site={first_site().domain}").status_code == 404


# --- results --------------------------------------------------------------------------------------


def test_results_show_units_rates_uplifts_and_the_verdict_in_words(experimenter):
    experiment = experiment_with(hypothesis="A bigger button gets more sign-ups.", secondary_metrics="purchase")
    response = experimenter.get(results_url(experiment))
    html = response.content.decode()
    words = text_of(html)
    assert response.status_code == 200
    assert "Hypothesis: A bigger button gets more sign-ups." in words
    assert "Units exposed 8,420 visitors" in words
    assert "Control (control) v0 50 % 4,210" in words
    assert "Variant B v1 50 % 4,210" in words
    assert "Nobody was seen in two variations." in words
    # Control: 421 of 4,210 converted (10 %), twice each for 19.0; B: 485 (11.52 %).
    assert "Control (control) 4,210 421 10.00 % 842 7,999 baseline" in words
    # 485/421 - 1 = +15.2 %; Katz: exp(ln 1.152 ± 1.96 √(1/485 - 1/4210 + 1/421 - 1/4210)) - 1 = +1.8 % … +30 %.
    assert "Variant B 4,210 485 11.52 % 970 9,215 +1.52 +0.20 to +2.84 +15 % +1.8 % to +30 % 0.024 99 %" in words
    assert (
        "Variant B is likely better: 99 % chance to beat control, +15 % (95 % interval +1.8 % to +30 %) "
        "on signup, 4,210 visitors per variation." in words
    )
    assert 'class="num tone-better"' in html
    assert words.index("signup primary metric") < words.index("purchase")
    assert "Sample ratio mismatch" not in words


def test_results_draw_an_interval_chart_per_metric_from_the_server(experimenter):
    experiment = experiment_with(secondary_metrics="purchase")
    html = experimenter.get(results_url(experiment)).content.decode()
    (figure,) = figures(html)  # purchase has no conversion: no interval, no chart
    (trace,) = figure["data"]
    assert trace["x"] == [pytest.approx(15.2019, abs=1e-3)]
    assert trace["error_x"]["arrayminus"] == [pytest.approx(15.2019 - 1.8311, abs=1e-3)]
    assert trace["error_x"]["array"] == [pytest.approx(30.3283 - 15.2019, abs=1e-3)]
    assert figure["layout"]["xaxis"]["zeroline"] is True
    assert figure["layout"]["xaxis"]["range"][0] < 0 < figure["layout"]["xaxis"]["range"][1]
    assert [label["text"] for label in figure["layout"]["annotations"]] == ["control", "Variant B"]
    assert 'data-figure="uplift-0"' in html
    assert "No interval to draw yet" in html


def test_results_run_a_fixed_number_of_queries(experimenter, django_assert_num_queries):
    experiment = experiment_with(units=(50, 50), converted=(5, 6), secondary_metrics="purchase, refund")
    url = results_url(experiment)
    # session, user, user and group permissions, sites, the experiment, its variations, units, conflicted, conversions
    with django_assert_num_queries(10):
        assert experimenter.get(url).status_code == 200


@pytest.mark.parametrize(
    ("units", "warned"),
    [((5500, 4500), True), ((5050, 4950), False)],
)
def test_sample_ratio_mismatch_is_warned_in_plain_words(experimenter, units, warned):
    experiment = experiment_with(units=units, converted=(500, 500))
    words = text_of(experimenter.get(results_url(experiment)).content.decode())
    warning = (
        "The split is off: 5,500 and 4,500 visitors where 50 % / 50 % was set (p < 0.001). Something assigns "
        "or counts one variation more often — fix that before trusting these results."
    )
    assert (warning in words) is warned
    assert ("Sample ratio mismatch" in words) is warned
    assert ("No verdict while the split is off" in words) is warned


def test_below_the_minimum_the_verdict_says_how_much_data_is_missing(experimenter):
    experiment = experiment_with(units=(40, 55), converted=(4, 20))  # B would read as better with more units
    html = experimenter.get(results_url(experiment)).content.decode()
    words = text_of(html)
    assert "Not enough data yet: 40 of the 100 visitors per variation needed." in words
    assert "likely better" not in words
    assert 'class="num tone-better"' not in html  # neither the table nor the chart colours it better yet
    (figure,) = figures(html)
    assert figure["data"][0]["marker"]["color"] == charts.UPLIFT_COLOURS["unclear"]


def test_units_seen_in_two_variations_are_left_out_and_said(experimenter):
    experiment = experiment_with(units=(200, 200), converted=(20, 30), conflicted=3)
    words = text_of(experimenter.get(results_url(experiment)).content.decode())
    assert "3 visitors seen in two variations are left out of every figure on this page." in words
    assert "Units exposed 400 visitors" in words
    assert "Variant B 200 30 15.00 % 60" in words  # neither the 3 units nor their conversions


def test_user_experiments_count_signed_in_users(experimenter):
    experiment = experiment_with(unit=Experiment.Unit.USER, units=(30, 30), converted=(3, 3))
    words = text_of(experimenter.get(results_url(experiment)).content.decode())
    assert "Not enough data yet: 30 of the 100 signed-in users per variation needed." in words
    assert "Units exposed 60 signed-in users" in words


def test_text_from_the_database_is_escaped_everywhere(experimenter):
    experiment = experiment_with(
        name=XSS,
        key=XSS,
        hypothesis=XSS,
        variation_names=(XSS, f"B {XSS}"),
        metric=XSS,
    )
    ExperimentVariation.objects.filter(experiment=experiment).update(config={"label": XSS})
    for url in (list_url(), results_url(experiment)):
        html = experimenter.get(url).content.decode()
        assert "<script>alert" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    (figure,) = figures(experimenter.get(results_url(experiment)).content.decode())
    assert figure["data"][0]["name"] == "B &lt;script&gt;alert(1)&lt;/script&gt;"
    assert figure["layout"]["annotations"][1]["text"] == "B &lt;script&gt;alert(1)&lt;/script&gt;"


# --- the verdict -----------------------------------------------------------------------------------


def comparison(
    *, chance: float, relative=0.152, relative_interval=(0.018, 0.303), enough=True, absolute=0.0152
) -> Comparison:
    return Comparison(
        control_rate=0.1,
        rate=0.1 + absolute,
        absolute_uplift=absolute,
        absolute_interval=Interval(absolute - 0.013, absolute + 0.013),
        relative_uplift=relative,
        relative_interval=Interval(*relative_interval) if relative_interval else None,
        p_value=0.02,
        chance_to_beat_control=chance,
        enough_data=enough,
    )


def metric_of(*variants: tuple[str, int, Comparison], control_units: int = 4210) -> MetricResults:
    control = VariationOutcome(ExperimentVariation(key="control", name="Control"), control_units, 421, 421, 0.0, None)
    outcomes = [
        VariationOutcome(ExperimentVariation(key=name.lower(), name=name), units, 485, 485, 0.0, found)
        for name, units, found in variants
    ]
    return MetricResults(metric="signup", outcomes=[control, *outcomes])


def verdicts(metric: MetricResults, unit_words="visitors", mismatch=False) -> list[Verdict]:
    """The verdicts, their no-break spaces (before each "%") read as spaces."""
    found = verdicts_for(metric=metric, unit_words=unit_words, sample_ratio_mismatch=mismatch)
    return [Verdict(verdict.tone, verdict.words.replace("\xa0", " ")) for verdict in found]


def test_verdict_likely_better_from_a_95_percent_chance_to_beat_control():
    assert verdicts(metric_of(("Variant B", 4210, comparison(chance=0.95)))) == [
        Verdict(
            "better",
            "Variant B is likely better: 95 % chance to beat control, +15 % (95 % interval +1.8 % to +30 %) "
            "on signup, 4,210 visitors per variation.",
        )
    ]


def test_verdict_likely_worse_from_a_5_percent_chance_to_beat_control():
    found = comparison(chance=0.003, relative=-0.12, relative_interval=(-0.21, -0.03))
    assert verdicts(metric_of(("Variant B", 4300, found))) == [
        Verdict(
            "worse",
            "Variant B is likely worse: under 1 % chance to beat control, −12 % (95 % interval −21 % to −3.0 %) "
            "on signup, 4,210 to 4,300 visitors per variation.",
        )
    ]
    assert verdicts(metric_of(("Variant B", 4210, comparison(chance=0.05))))[0].tone == "worse"


@pytest.mark.parametrize("chance", [0.0501, 0.62, 0.9499])
def test_verdict_between_the_thresholds_is_no_clear_difference(chance):
    (verdict,) = verdicts(metric_of(("Variant B", 4210, comparison(chance=chance, relative_interval=(-0.04, 0.11)))))
    assert verdict.tone == "unclear"
    assert verdict.words.startswith("No clear difference yet between Variant B and control: ")
    assert "(95 % interval −4.0 % to +11 %)" in verdict.words


def test_verdict_without_a_relative_interval_speaks_in_percentage_points():
    found = comparison(chance=0.999, relative=None, relative_interval=None, absolute=0.004)
    (verdict,) = verdicts(metric_of(("Variant B", 4210, found)))
    assert "over 99 % chance to beat control, +0.40 percentage points (95 % interval −0.90 to +1.70) on signup" in (
        verdict.words
    )


def test_verdict_waits_for_the_minimum_in_every_variation():
    metric = metric_of(("B", 150, comparison(chance=0.99)), ("C", 40, comparison(chance=0.99, enough=False)))
    assert verdicts(metric, unit_words="signed-in users") == [
        Verdict("waiting", "Not enough data yet: 40 of the 100 signed-in users per variation needed.")
    ]


def test_verdict_gives_one_sentence_per_variation():
    metric = metric_of(("B", 4210, comparison(chance=0.97)), ("C", 4210, comparison(chance=0.5)))
    assert [verdict.tone for verdict in verdicts(metric)] == ["better", "unclear"]


def test_verdict_is_withheld_while_the_split_is_off():
    (verdict,) = verdicts(metric_of(("Variant B", 4210, comparison(chance=0.99))), mismatch=True)
    assert verdict.tone == "untrusted"
    assert "split is off" in verdict.words


def test_verdict_without_a_variation_beside_control():
    assert verdicts(metric_of())[0] == Verdict("waiting", "No variation to compare with control yet.")
    assert verdicts(MetricResults(metric="signup", outcomes=[]))[0].tone == "waiting"
