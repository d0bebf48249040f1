"""The stats API's figures are the dashboard's figures: every metric, dimension, filter and date range
asked of both, on the demo data, on a fixed clock in the middle of an afternoon."""

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone as django_timezone

from beacons.api.keys import api_key_create
from beacons.models import BeaconDefinition
from beacons.models import Granularity as G

from .conftest import first_site, first_site_zone

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 18, 14, 25, 30, tzinfo=UTC)  # a Wednesday afternoon, minute counts kept
# The API's date_range → the dashboard's range parameter (custom dates: start and end).
PERIODS = [
    ("day", {"range": "today"}),
    ("24h", {"range": "24h"}),
    ("7d", {"range": "7d"}),
    ("30d", {"range": "30d"}),
    ("month", {"range": "month"}),
    ("12mo", {"range": "12m"}),
    (["2026-10-03", "2026-10-29"], {"range": "custom", "start": "2026-10-03", "end": "2026-10-29"}),
    (["2026-11-10", "2026-11-18"], {"range": "custom", "start": "2026-11-10", "end": "2026-11-18"}),
]
PERIOD_IDS = ["day", "24h", "7d", "30d", "month", "12mo", "custom-past", "custom-to-today"]
# API dimension → (dashboard panel, its tab parameter).
DIMENSION_PANELS = {
    "visit:source": ("sources", {"sources": "source"}),
    "visit:utm_campaign": ("sources", {"sources": "utm_campaign"}),
    "visit:utm_medium": ("sources", {"sources": "utm_medium"}),
    "visit:browser": ("devices", {"devices": "browser"}),
    "visit:os": ("devices", {"devices": "os"}),
    "visit:device": ("devices", {"devices": "device"}),
    "visit:country": ("countries", {}),
}


@pytest.fixture
def demo(monkeypatch):
    """Two months of demo traffic (page views with every dimension, downloads, sign-ups with a plan),
    read at ``NOW``."""
    monkeypatch.setattr(django_timezone, "now", lambda: NOW)
    call_command(
        "beacons_demo", "--hits", "2500", "--days", "60", "--errors", "0", "--identifiers", "30", "--seed", "7"
    )


@pytest.fixture
def key():
    return api_key_create(name="tests", sites=[first_site()])[1]


@pytest.fixture
def staff(client, make_staff):
    client.force_login(make_staff(is_superuser=True))
    return client


def ask(client, key, **body):
    response = client.post(
        "/api/v1/query",
        json.dumps({"site": first_site().domain, **body}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )
    assert response.status_code == 200, response.content
    return response.json()


def panel(client, name, **params):
    """What the dashboard shows for ``params`` (its page's context: a panel partial alone does not
    record one)."""
    response = client.get(reverse("dashboard:index"), {"site": first_site().domain, **params})
    assert response.status_code == 200
    return response.context


def rows_of(answer):
    return [(tuple(row["dimensions"]), row["metrics"]) for row in answer["results"]]


@pytest.mark.parametrize(("date_range", "params"), PERIODS, ids=PERIOD_IDS)
def test_totals_and_their_change_equal_the_kpi_card(client, staff, key, demo, date_range, params):
    for slug in ("page_view", "download_click", "signup"):
        answer = ask(
            client,
            key,
            metrics=["events"],
            date_range=date_range,
            event_type=slug,
            include={"comparison": "previous_period"},
        )
        kpis = panel(staff, "kpis", type=slug, **params)["kpis"]
        [row] = answer["results"]
        assert row["metrics"] == [kpis["total"]], slug
        assert row["comparison"]["metrics"] == [kpis["previous"]], slug
        assert row["comparison"]["change"] == [kpis["change_percent"]], slug
    assert kpis["total"] > 0 or date_range in ("day", "24h")  # the sign-ups of the busier periods are not all 0
    pageviews = ask(client, key, metrics=["pageviews", "events"], date_range=date_range, event_type="signup")
    assert pageviews["results"][0]["metrics"][0] == panel(staff, "kpis", type="page_view", **params)["kpis"]["total"]


@pytest.mark.parametrize(("date_range", "params"), PERIODS, ids=PERIOD_IDS)
def test_time_series_equal_the_main_chart_with_its_period_before(client, staff, key, demo, date_range, params):
    shown = 0
    for interval in ("hour", "day", "month"):
        code = {"hour": G.HOUR, "day": G.DAY, "month": G.MONTH}[interval].value
        series = panel(staff, "series", granularity=code, compare="on", **params)
        if series["state"].granularity != code:
            continue  # the dashboard shows these dates in another point size
        answer = ask(
            client,
            key,
            metrics=["events"],
            date_range=date_range,
            dimensions=[f"time:{interval}"],
            include={"comparison": "previous_period"},
        )
        chart = series["series"]["rows"]
        assert [row["metrics"][0] for row in answer["results"]] == [row["count"] for row in chart], interval
        assert [row["comparison"]["metrics"][0] for row in answer["results"]] == [
            row.get("previous_count", 0) for row in chart
        ]
        expected = [
            row["moment"].isoformat() if interval == "hour" else row["moment"].date().isoformat() for row in chart
        ]
        assert [row["dimensions"][0] for row in answer["results"]] == expected
        shown += 1
    assert shown


@pytest.mark.parametrize(("date_range", "params"), PERIODS, ids=PERIOD_IDS)
def test_pages_equal_the_busiest_pages_with_their_change(client, staff, key, demo, date_range, params):
    answer = ask(
        client,
        key,
        metrics=["events"],
        date_range=date_range,
        dimensions=["event:page"],
        include={"comparison": "previous_period"},
    )
    top = panel(staff, "top", compare="on", rows=100, **params)["top"]["rows"]
    assert [(row["dimensions"][0], row["metrics"][0]) for row in answer["results"]] == [
        (row["identifier"], row["count"]) for row in top
    ]
    assert [row["comparison"]["change"][0] for row in answer["results"]] == [row["change_percent"] for row in top]


@pytest.mark.parametrize(("date_range", "params"), PERIODS[2:5], ids=PERIOD_IDS[2:5])
def test_each_dimension_equals_its_breakdown_panel_every_row(client, staff, key, demo, date_range, params):
    for dimension, (name, tab) in DIMENSION_PANELS.items():
        answer = ask(
            client,
            key,
            metrics=["events"],
            date_range=date_range,
            dimensions=[dimension],
            include={"comparison": "previous_period"},
        )
        csv_rows = list(
            csv.reader(
                io.StringIO(
                    staff.get(
                        reverse("dashboard:panel", args=[name]),
                        {"site": first_site().domain, "format": "csv", "compare": "on", **tab, **params},
                    ).content.decode()
                )
            )
        )[1:]
        counted = [(row[0], int(row[2 if name == "countries" else 1])) for row in csv_rows]
        assert [(row["dimensions"][0], row["metrics"][0]) for row in answer["results"]] == counted, dimension
        assert counted, dimension
    signups = ask(
        client, key, metrics=["events"], date_range=date_range, event_type="signup", dimensions=["event:props:plan"]
    )
    properties = panel(staff, "properties", type="signup", **params)["properties"]["rows"]
    assert rows_of(signups)[: len(properties)] == [((row["value"],), [row["count"]]) for row in properties]


@pytest.mark.parametrize(
    "dimension", ["visit:source", "visit:country", "visit:device", "visit:utm_campaign", "event:page"]
)
def test_a_filter_reads_the_same_counters_as_the_dashboard_filtered_by_it(client, staff, key, demo, dimension):
    [(value,), _] = rows_of(ask(client, key, metrics=["events"], dimensions=[dimension], limit=1))[0]
    api_filter = ["is", dimension, [value]]
    code = dimension.removeprefix("visit:")
    dashboard_filter = {"identifier": value} if dimension == "event:page" else {"dim": code, "value": value}
    for date_range, params in PERIODS[2:4]:
        total = ask(client, key, metrics=["events"], date_range=date_range, filters=[api_filter])
        kpis = panel(staff, "kpis", **params, **dashboard_filter)["kpis"]
        assert total["results"][0]["metrics"] == [kpis["total"]]
        assert kpis["total"] > 0
        series = ask(
            client, key, metrics=["events"], date_range=date_range, filters=[api_filter], dimensions=["time:day"]
        )
        chart = panel(staff, "series", granularity="day", **params, **dashboard_filter)["series"]["rows"]
        assert [row["metrics"][0] for row in series["results"]] == [row["count"] for row in chart]


def test_a_filter_on_the_breakdowns_own_dimension_keeps_those_rows(client, key, demo):
    every = dict(rows_of(ask(client, key, metrics=["events"], dimensions=["visit:source"])))
    picked = ask(
        client,
        key,
        metrics=["events"],
        dimensions=["visit:source"],
        filters=[["is", "visit:source", ["Google", "Bing", "nowhere"]]],
    )
    assert rows_of(picked) == sorted(
        [(("Google",), every[("Google",)]), (("Bing",), every[("Bing",)])], key=lambda row: -row[1][0]
    )


def test_event_types_equal_each_types_kpi_card_and_pageviews_only_page_views(client, staff, key, demo):
    answer = ask(client, key, metrics=["events", "pageviews"], date_range="30d", dimensions=["event:type"])
    rows = {row["dimensions"][0]: row["metrics"] for row in answer["results"]}
    assert set(rows) == {"page_view", "download_click", "signup"}
    for slug, (events, pageviews) in rows.items():
        assert events == panel(staff, "kpis", type=slug, range="30d")["kpis"]["total"]
        assert pageviews == (events if slug == "page_view" else 0)
    assert [row["metrics"][0] for row in answer["results"]] == sorted(
        rows_values := [v[0] for v in rows.values()], reverse=True
    )
    assert rows_values


def test_all_is_every_day_from_the_first_counted_one_to_today(client, staff, key, demo):
    answer = ask(client, key, metrics=["events"], date_range="all")
    period = answer["query"]["period"]
    first = period["start"][:10]
    assert (period["name"], period["end"]) == ("all", "2026-11-19T00:00:00+00:00")
    kpis = panel(staff, "kpis", range="custom", start=first, end="2026-11-18")["kpis"]
    assert answer["results"][0]["metrics"] == [kpis["total"]]
    before = (datetime.fromisoformat(period["start"]) - timedelta(days=40)).date().isoformat()
    day_before = ask(client, key, metrics=["events"], date_range=[before, first])
    assert day_before["results"][0]["metrics"] == [
        ask(client, key, metrics=["events"], date_range=[first, first])["results"][0]["metrics"][0]
    ]


def test_the_query_states_the_period_it_counted(client, key, demo):
    answer = ask(client, key, metrics=["events"], date_range="7d")
    assert answer["query"]["period"] == {
        "name": "7d",
        "start": "2026-11-12T00:00:00+00:00",
        "end": "2026-11-19T00:00:00+00:00",
        "counted_to": "2026-11-18T15:00:00+00:00",
        "running": True,
        "time_zone": "UTC",
    }
    past = ask(client, key, metrics=["events"], date_range=["2026-10-01", "2026-10-31"], dimensions=["time:day"])
    assert past["query"]["period"]["running"] is False
    assert past["query"]["period"]["counted_to"] == "2026-11-01T00:00:00+00:00"
    compared = ask(client, key, metrics=["events"], date_range="day", include={"comparison": "previous_period"})
    assert compared["meta"]["comparison"] == {
        "start": "2026-11-17T00:00:00+00:00",
        "end": "2026-11-17T14:25:00+00:00",
        "current_end": "2026-11-18T14:25:00+00:00",
        "read_to": "minute",
    }
    assert compared["meta"]["time_zone"] == "UTC"


def test_the_query_is_echoed_as_it_was_answered(client, key, demo):
    asked = {
        "metrics": ["events", "visitors"],
        "date_range": ["2026-10-01", "2026-10-31"],
        "dimensions": ["visit:source"],
        "filters": [["is", "visit:source", ["Google", "Bing"]]],
        "order_by": [["events", "asc"]],
        "limit": 3,
        "offset": 1,
    }
    echo = ask(client, key, **asked)["query"]
    assert echo == {
        "site": first_site().domain,
        **asked,
        "period": {**echo["period"], "name": "custom"},  # its dates: as the test above
        "include": {"comparison": None},
        "event_type": "page_view",
    }


def test_order_limit_and_offset_page_through_the_rows(client, key, demo):
    every = rows_of(ask(client, key, metrics=["events"], dimensions=["event:page"]))
    assert [count for _, (count,) in every] == sorted((count for _, (count,) in every), reverse=True)
    page = ask(client, key, metrics=["events"], dimensions=["event:page"], limit=5, offset=5)
    assert rows_of(page) == every[5:10]
    assert page["meta"]["total_rows"] == len(every)
    by_name = ask(client, key, metrics=["events"], dimensions=["event:page"], order_by=[["event:page", "asc"]])
    assert rows_of(by_name) == sorted(every)
    fewest = ask(
        client, key, metrics=["events"], dimensions=["event:page"], order_by=[["events", "asc"], ["event:page", "desc"]]
    )
    assert rows_of(fewest) == sorted(every, key=lambda row: (row[1][0], [-ord(c) for c in row[0][0]]))
    newest = ask(
        client, key, metrics=["events"], date_range="7d", dimensions=["time:day"], order_by=[["time:day", "desc"]]
    )
    assert [row[0][0] for row in rows_of(newest)] == [f"2026-11-{day}" for day in range(18, 11, -1)]


def test_get_wrappers_answer_as_the_query_does(client, key, demo):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    base = f"/api/v1/sites/{first_site().domain}"
    summary = client.get(f"{base}/summary", {"period": "7d", "metrics": "events,pageviews"}, **headers).json()
    assert summary["results"] == ask(client, key, metrics=["events", "pageviews"], date_range="7d")["results"]
    series = client.get(f"{base}/timeseries", {"period": "30d", "interval": "day"}, **headers).json()
    assert series["results"] == ask(client, key, metrics=["events"], dimensions=["time:day"])["results"]
    sources = client.get(f"{base}/breakdown/visit:source", {"period": "12mo", "compare": "previous_period"}, **headers)
    assert (
        sources.json()["results"]
        == ask(
            client,
            key,
            metrics=["events"],
            date_range="12mo",
            dimensions=["visit:source"],
            limit=100,
            include={"comparison": "previous_period"},
        )["results"]
    )
    live = client.get(f"{base}/realtime", **headers).json()
    assert live == {"site": first_site().domain, "event_type": "page_view", "events": live["events"], "minutes": 5}


def test_realtime_equals_the_live_card(client, staff, key, demo):
    from .test_dashboard import hits_add

    hits_add(BeaconDefinition.objects.get(slug="page_view"), "/", NOW, n=3)
    live = client.get(f"/api/v1/sites/{first_site().domain}/realtime", HTTP_AUTHORIZATION=f"Bearer {key}").json()
    assert live["events"] == panel(staff, "live")["live"]["count"] >= 3


def test_csv_of_each_endpoint_has_the_json_figures_and_neutralised_formulas(client, key, demo):
    from .test_dashboard import hits_add

    hits_add(BeaconDefinition.objects.get(slug="page_view"), '=HYPERLINK("http://evil")', NOW, n=500)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    base = f"/api/v1/sites/{first_site().domain}"
    as_csv = client.get(f"{base}/breakdown/event:page", {"period": "day", "format": "csv"}, **headers)
    assert as_csv["Content-Type"].startswith("text/csv")
    assert as_csv["Content-Disposition"] == f'attachment; filename="beacons-{first_site().domain}-breakdown.csv"'
    rows = list(csv.reader(io.StringIO(as_csv.content.decode())))
    as_json = client.get(f"{base}/breakdown/event:page", {"period": "day"}, **headers).json()
    assert rows[0] == ["event:page", "events"]
    assert rows[1] == ['\'=HYPERLINK("http://evil")', str(as_json["results"][0]["metrics"][0])]
    assert [row[0] for row in rows[2:]] == [row["dimensions"][0] for row in as_json["results"][1:]]
    accepted = client.post(
        "/api/v1/query",
        json.dumps(
            {
                "site": first_site().domain,
                "metrics": ["events"],
                "date_range": "7d",
                "include": {"comparison": "previous_period"},
            }
        ),
        content_type="application/json",
        HTTP_ACCEPT="text/csv",
        **headers,
    )
    rows = list(csv.reader(io.StringIO(accepted.content.decode())))
    assert rows[0] == ["events", "events (period before)", "events change (%)"]
    assert len(rows) == 2
    for endpoint in ("summary", "timeseries", "realtime"):
        response = client.get(f"{base}/{endpoint}", {"format": "csv"}, **headers)
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/csv"), endpoint


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 10, 24, 22, 5, tzinfo=UTC),  # 00:05 in Berlin on the day the clocks go back
        datetime(2026, 3, 29, 1, 30, tzinfo=UTC),  # 03:30 in Berlin, just after the clocks went forward
        datetime(2026, 11, 30, 22, 59, tzinfo=UTC),  # 23:59 in Berlin on the last day of a month
    ],
    ids=["0005-dst-end", "dst-start", "2359-month-end"],
)
def test_periods_at_awkward_moments_in_another_time_zone_equal_the_dashboard(client, staff, key, monkeypatch, moment):
    first_site_zone("Europe/Berlin")
    monkeypatch.setattr(django_timezone, "now", lambda: moment)
    call_command(
        "beacons_demo", "--hits", "1500", "--days", "40", "--errors", "0", "--identifiers", "10", "--seed", "3"
    )
    for date_range, params in PERIODS[:6]:
        answer = ask(client, key, metrics=["events"], date_range=date_range, include={"comparison": "previous_period"})
        kpis = panel(staff, "kpis", **params)["kpis"]
        [row] = answer["results"]
        assert (row["metrics"], row["comparison"]["metrics"], row["comparison"]["change"]) == (
            [kpis["total"]],
            [kpis["previous"]],
            [kpis["change_percent"]],
        ), date_range
        assert answer["query"]["period"]["time_zone"] == "Europe/Berlin"
    hours = ask(client, key, metrics=["events"], date_range="day", dimensions=["time:hour"])
    chart = panel(staff, "series", range="today", granularity=G.HOUR.value)["series"]["rows"]
    assert [(row["dimensions"][0], row["metrics"][0]) for row in hours["results"]] == [
        (row["moment"].isoformat(), row["count"]) for row in chart
    ]
    assert hours["results"][0]["dimensions"][0].endswith(("+01:00", "+02:00"))


def test_hours_of_the_day_the_clocks_go_back_come_in_time_order(client, key, monkeypatch):
    """25 hours, 02:00 twice: summer time's first, though its label sorts after winter time's as text."""
    first_site_zone("Europe/Berlin")
    monkeypatch.setattr(django_timezone, "now", lambda: datetime(2026, 10, 26, 12, tzinfo=UTC))
    answer = ask(client, key, metrics=["events"], date_range=["2026-10-25", "2026-10-25"], dimensions=["time:hour"])
    labels = [row["dimensions"][0] for row in answer["results"]]
    assert labels[2:4] == ["2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00"]
    assert len(labels) == 25 and [datetime.fromisoformat(label) for label in labels] == sorted(
        datetime.fromisoformat(label) for label in labels
    )


VISIT_CARDS = {
    "visitors": "Unique visitors",
    "visits": "Visits",
    "views_per_visit": "Views per visit",
    "bounce_rate": "Bounce rate",
    "visit_duration": "Visit duration",
}


@pytest.mark.parametrize(("date_range", "params"), PERIODS[:6])
def test_visitor_and_visit_metrics_equal_the_dashboards_cards(client, staff, key, demo, date_range, params):
    metrics = list(VISIT_CARDS)
    answer = ask(client, key, metrics=metrics, date_range=date_range, include={"comparison": "previous_period"})
    cards = {card["label"]: card for card in panel(staff, "kpis", **params)["kpis"]["people"]}
    [row] = answer["results"]
    for metric, value, change in zip(metrics, row["metrics"], row["comparison"]["change"], strict=True):
        card = cards[VISIT_CARDS[metric]]
        assert change == card["change_percent"], metric
        if metric in ("visitors", "visits"):
            assert f"{value:,}" == card["value"], metric
    assert row["metrics"][0] > 0 and row["metrics"][1] > 0


def test_visit_metrics_of_a_period_without_visits_are_null(client, key):
    answer = ask(client, key, metrics=["visits", "bounce_rate", "visit_duration"], date_range="day")
    assert answer["results"] == [{"dimensions": [], "metrics": [0, None, None], "comparison": None}]


def people_cards(staff, **params) -> dict[str, str]:
    """The dashboard's visitor and visit cards (label → the value shown) for ``params``."""
    return {card["label"]: card["value"] for card in panel(staff, "kpis", **params)["kpis"]["people"]}


def shown_like_a_card(metric: str, value) -> str:
    """An API figure written as the dashboard's card writes it."""
    if metric == "bounce_rate":
        return "–" if value is None else f"{round(value)}%"
    if metric == "views_per_visit":
        return "–" if value is None else f"{value:.2f}"
    return f"{value:,}"


def test_visitors_and_visits_per_day_equal_the_cards_of_each_day(client, staff, key, demo):
    metrics = ["visitors", "visits", "bounce_rate", "views_per_visit"]
    answer = ask(client, key, metrics=metrics, date_range="7d", dimensions=["time:day"])
    days = [row["dimensions"][0] for row in answer["results"]]
    assert days == [(NOW.date() - timedelta(days=back)).isoformat() for back in range(6, -1, -1)]
    for row in answer["results"]:
        day = row["dimensions"][0]
        cards = people_cards(staff, range="custom", start=day, end=day)
        shown = [cards[VISIT_CARDS[metric]] for metric in metrics]
        assert [shown_like_a_card(m, v) for m, v in zip(metrics, row["metrics"], strict=True)] == shown, day
    visits_by_day = [row["metrics"][1] for row in answer["results"]]
    [total] = ask(client, key, metrics=["visits"], date_range="7d")["results"]
    assert sum(visits_by_day) == total["metrics"][0] > 0  # visits add up over days; visitors need not


def test_visitors_per_source_and_visits_per_entry_page_equal_the_filtered_cards(client, staff, key, demo):
    by_source = ask(
        client, key, metrics=["pageviews", "visitors", "visits"], date_range="30d", dimensions=["visit:source"]
    )
    pageviews = ask(client, key, metrics=["pageviews"], date_range="30d", dimensions=["visit:source"])
    assert [row["dimensions"] for row in by_source["results"]] == [row["dimensions"] for row in pageviews["results"]]
    for row in by_source["results"][:4]:
        [source] = row["dimensions"]
        cards = people_cards(staff, range="30d", dim="source", value=source)
        assert [f"{row['metrics'][1]:,}", f"{row['metrics'][2]:,}"] == [cards["Unique visitors"], cards["Visits"]]
        assert 0 < row["metrics"][1] <= row["metrics"][0], source  # a visitor has at least one page view
    entries = ask(client, key, metrics=["visits", "bounce_rate"], date_range="30d", dimensions=["event:page"])
    visits_by_entry = [row["metrics"][0] for row in entries["results"]]
    assert visits_by_entry == sorted(visits_by_entry, reverse=True) and len(visits_by_entry) > 3
    for row in entries["results"][:3]:
        [page] = row["dimensions"]
        cards = people_cards(staff, range="30d", identifier=page)
        assert [f"{row['metrics'][0]:,}", shown_like_a_card("bounce_rate", row["metrics"][1])] == [
            cards["Visits"],
            cards["Bounce rate"],
        ], page
    [total] = ask(client, key, metrics=["visits"], date_range="30d")["results"]
    assert sum(visits_by_entry) == total["metrics"][0]  # every visit has one entry page


def test_visitor_and_visit_series_carry_the_period_before(client, key, demo):
    answer = ask(
        client,
        key,
        metrics=["visitors", "visits"],
        date_range="7d",
        dimensions=["time:day"],
        include={"comparison": "previous_period"},
    )
    earlier = ask(
        client,
        key,
        metrics=["visitors", "visits"],
        date_range=[(NOW.date() - timedelta(days=13)).isoformat(), (NOW.date() - timedelta(days=7)).isoformat()],
        dimensions=["time:day"],
    )
    before = [row["comparison"]["metrics"] for row in answer["results"]]
    whole_days = [row["metrics"] for row in earlier["results"]]
    assert before[:-1] == whole_days[:-1]
    # The running day is compared with the same hours of the day a week before, as the chart does.
    assert [0, 0] < before[-1] and all(a <= b for a, b in zip(before[-1], whole_days[-1], strict=True))
    assert before[-1][1] < whole_days[-1][1]


def test_rows_without_a_rate_sort_below_every_rate_either_way(client, key, demo):
    asked = {"metrics": ["visits", "bounce_rate"], "date_range": "day", "dimensions": ["time:hour"]}
    falling = ask(client, key, **asked, order_by=[["bounce_rate", "desc"]])["results"]
    rising = ask(client, key, **asked, order_by=[["bounce_rate", "asc"]])["results"]
    rates = [row["metrics"][1] for row in falling]
    assert None in rates and rates[0] is not None  # hours after now have no visits, so no rate
    known = [rate for rate in rates if rate is not None]
    assert rates == known + [None] * (len(rates) - len(known)) and known == sorted(known, reverse=True)
    assert [row["metrics"][1] for row in rising] == [None] * (len(rates) - len(known)) + sorted(known)


def test_visitors_per_source_compare_the_same_whole_days_before(client, key, demo):
    comparing = {"comparison": "previous_period"}
    days_before_dates = [(NOW.date() - timedelta(days=13)).isoformat(), (NOW.date() - timedelta(days=8)).isoformat()]
    answer = ask(
        client,
        key,
        metrics=["visitors"],
        date_range="7d",
        dimensions=["visit:source"],
        include=comparing,
    )
    assert answer["results"] and any(row["comparison"]["metrics"][0] for row in answer["results"])
    google = next(row for row in answer["results"] if row["dimensions"] == ["Google"])
    days_before = ask(
        client,
        key,
        metrics=["visitors"],
        date_range=days_before_dates,
        filters=[["is", "visit:source", ["Google"]]],
    )
    # Today is running: the week before is read to the same elapsed whole days (visitors are kept per day).
    assert google["comparison"]["metrics"] == days_before["results"][0]["metrics"]
    # ... and the change compares it with this week's elapsed whole days, not with all of this week.
    this_week = [(NOW.date() - timedelta(days=6)).isoformat(), (NOW.date() - timedelta(days=1)).isoformat()]
    [compared] = ask(
        client, key, metrics=["visitors"], date_range=this_week, filters=[["is", "visit:source", ["Google"]]]
    )["results"]
    before = days_before["results"][0]["metrics"][0]
    assert google["comparison"]["change"] == [round(100 * (compared["metrics"][0] - before) / before)]
    assert compared["metrics"][0] != google["metrics"][0]  # today's visitors make the difference
    # A page's visitors are kept per day too: the same whole days.
    by_page = ask(client, key, metrics=["visitors"], date_range="7d", dimensions=["event:page"], include=comparing)
    top = by_page["results"][0]
    page_before = ask(
        client,
        key,
        metrics=["visitors"],
        date_range=days_before_dates,
        filters=[["is", "event:page", top["dimensions"]]],
    )
    assert top["comparison"]["metrics"] == page_before["results"][0]["metrics"]


def test_visits_per_source_carry_the_period_before_and_add_up_to_the_total(client, key, demo):
    asked = {"metrics": ["visits"], "date_range": "7d", "include": {"comparison": "previous_period"}}
    by_source = ask(client, key, **asked, dimensions=["visit:source"])["results"]
    [total] = ask(client, key, **asked)["results"]
    plain = ask(client, key, metrics=["visits"], date_range="7d", dimensions=["visit:source"])["results"]
    assert [row["metrics"] for row in by_source] == [row["metrics"] for row in plain]
    assert sum(row["metrics"][0] for row in by_source) == total["metrics"][0] > 0  # one entry source a visit
    # Sources are kept per day: the running week is compared over the same elapsed whole days (read to
    # the hour, the week before gave its whole last day against today's first hours: 146 against 134).
    days_before = [(NOW.date() - timedelta(days=13)).isoformat(), (NOW.date() - timedelta(days=8)).isoformat()]
    [whole_days] = ask(client, key, metrics=["visits"], date_range=days_before)["results"]
    assert sum(row["comparison"]["metrics"][0] for row in by_source) == whole_days["metrics"][0] > 0
    assert whole_days["metrics"][0] < total["comparison"]["metrics"][0]  # the total is read to the hour


def test_a_filter_on_the_breakdowns_dimension_picks_its_rows_of_visits_too(client, key, demo):
    asked = {"metrics": ["visits", "bounce_rate"], "date_range": "30d", "dimensions": ["visit:source"]}
    every = dict(rows_of(ask(client, key, **asked)))
    picked = ask(client, key, **asked, filters=[["is", "visit:source", ["Google", "Bing", "nowhere"]]])
    assert dict(rows_of(picked)) == {key: every[key] for key in [("Google",), ("Bing",)]}
    # Rates are answered to two decimals.
    rates = [metrics[1] for metrics in every.values() if metrics[1] is not None]
    assert rates and all(round(rate, 2) == rate for rate in rates) and any(round(rate, 1) != rate for rate in rates)


def test_a_month_of_days_is_compared_with_a_shorter_month_before(client, key, demo, monkeypatch):
    """December has 31 days, November 30: the 31st day has no day before it to compare with (0), for
    visitors and visit metrics as for counts (an index past the shorter month was a 500)."""
    monkeypatch.setattr(django_timezone, "now", lambda: datetime(2026, 12, 31, 12, tzinfo=UTC))
    answer = ask(
        client,
        key,
        metrics=["events", "visitors", "visits"],
        date_range="month",
        dimensions=["time:day"],
        include={"comparison": "previous_period"},
    )
    rows = answer["results"]
    assert len(rows) == 31 and rows[-1]["dimensions"] == ["2026-12-31"]
    assert rows[-1]["comparison"]["metrics"] == [0, 0, 0]
    assert rows[0]["comparison"]["metrics"][0] > 0  # 1 November, from the demo


def test_hours_are_answered_up_to_10000_rows(client, key):
    # 416 days are 9,984 hours; 417 days 10,008.
    for days, status in [(416, 200), (417, 400)]:
        last = date(2024, 1, 1) + timedelta(days=days - 1)
        response = client.post(
            "/api/v1/query",
            json.dumps(
                {
                    "site": first_site().domain,
                    "metrics": ["events"],
                    "date_range": ["2024-01-01", last.isoformat()],
                    "dimensions": ["time:hour"],
                }
            ),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {key}",
        )
        assert response.status_code == status, (days, response.content[:200])
