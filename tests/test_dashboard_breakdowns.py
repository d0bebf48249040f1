"""The breakdown panels (Sources, Devices, Countries, Properties) and the dimension filter a click on a row sets."""

import csv
import io
import json
import re

import pytest
from django.urls import reverse

from beacons.models import BeaconDefinition
from dashboard.charts import plotly_text

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_CURRENT_URL": "http://testserver/dashboard/"}
IPHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
HOSTILE = '=cmd|"/c calc"!A0<script>alert(1)</script>'


@pytest.fixture
def staff(client, make_staff):
    client.force_login(make_staff(is_superuser=True))
    return client


@pytest.fixture
def visits(send):
    """Page views: 3 from Google on desktop in Great Britain, 2 from a newsletter on iPhones in the
    US (campaign "spring", medium "email"), 1 direct from an unknown address on /docs."""

    def view(identifier="/", **headers):
        body = {"event_type": "page_view", "identifier": identifier, **headers.pop("body", {})}
        assert send(body, **headers).status_code == 204

    for _ in range(3):
        view(body={"referrer": "https://www.google.co.uk/"}, REMOTE_ADDR="81.2.69.142")
    for _ in range(2):
        view(
            "/pricing",
            body={"utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "spring"},
            HTTP_USER_AGENT=IPHONE_UA,
            REMOTE_ADDR="8.8.8.8",
        )
    view("/docs", REMOTE_ADDR="10.0.0.1")


def rows_of(response, name):
    return [(row["text"], row["count"]) for row in response.context[name]["rows"]]


def test_each_panel_lists_its_values_most_counted_first_with_their_share(staff, visits):
    page = staff.get(reverse("dashboard:index"))
    assert rows_of(page, "sources") == [("Google", 3), ("newsletter", 2), ("Direct / none", 1)]
    assert [row["share"] for row in page.context["sources"]["rows"]] == [50.0, 33.3, 16.7]
    assert rows_of(page, "devices") == [("Chrome", 4), ("Mobile Safari", 2)]
    assert rows_of(page, "countries") == [("United Kingdom", 3), ("United States", 2), ("(unknown)", 1)]
    html = page.content.decode()
    assert "🇬🇧" in html and "🇺🇸" in html
    assert "<h2>Sources</h2>" in html and "<h2>Devices</h2>" in html and "<h2>Countries</h2>" in html


def test_tabs_are_links_that_show_another_dimension_with_or_without_htmx(staff, visits):
    page = staff.get(reverse("dashboard:index"))
    assert 'href="/dashboard/?site=' in page.content.decode()
    assert "sources=utm_campaign" in page.content.decode() and "devices=device" in page.content.decode()
    navs = re.findall(r'<nav class="table-controls tabs".*?</nav>', page.content.decode())
    tabs = [label for nav in navs for label in re.findall(r">([^<]+)</a>", nav)]
    assert tabs == [
        *("Pages", "Entry pages", "Exit pages"),
        *("Sources", "Campaigns", "Media", "Browsers", "Operating systems", "Device types"),
    ]
    campaigns = staff.get(reverse("dashboard:index"), {"sources": "utm_campaign", "devices": "device"})
    assert rows_of(campaigns, "sources") == [("spring", 2)]
    assert rows_of(campaigns, "devices") == [("desktop", 4), ("mobile", 2)]
    partial = staff.get(reverse("dashboard:panel", args=["sources"]), {"sources": "utm_medium"}, **HX)
    assert partial.status_code == 200 and "<h2>Sources</h2>" in partial.content.decode()
    assert re.search(r'title="Show only these">email</a>', partial.content.decode())
    bad = staff.get(reverse("dashboard:index"), {"sources": "nonsense", "devices": "<b>"})
    assert bad.status_code == 200 and rows_of(bad, "sources")[0] == ("Google", 3)


def test_the_properties_panel_shows_the_chosen_types_declared_properties(staff, send):
    BeaconDefinition.objects.create(
        slug="signup", name="Sign-ups", granularities="H,D,MO,Y", property_keys="plan,method"
    )
    for plan, method in [("pro", "google"), ("pro", "email"), ("free", "email")]:
        assert send({"event_type": "signup", "meta": {"plan": plan, "method": method}}).status_code == 204
    page = staff.get(reverse("dashboard:index"), {"type": "signup"})
    assert rows_of(page, "properties") == [("pro", 2), ("free", 1)]
    assert "property=method" in page.content.decode()
    assert rows_of(staff.get(reverse("dashboard:index"), {"type": "signup", "property": "method"}), "properties") == [
        ("email", 2),
        ("google", 1),
    ]
    # A custom type keeps no built-in dimension: its panels say so, and how to change it.
    assert "Sign-ups does not keep source counts" in page.content.decode()
    assert "Page views declares no properties" in staff.get(reverse("dashboard:index")).content.decode()


def test_a_csv_has_every_row_with_the_country_name_and_neutralised_formulas(staff, send, half_past_noon, visits):
    for i in range(12):
        assert send({"event_type": "page_view", "identifier": "/", "utm_source": f"partner-{i:02}"}).status_code == 204
    assert send({"event_type": "page_view", "identifier": "/", "utm_source": HOSTILE}).status_code == 204
    page = staff.get(reverse("dashboard:index"))
    assert len(page.context["sources"]["rows"]) == 10
    assert "The 10 most counted; the CSV has every one." in page.content.decode()
    assert "All 3." in page.content.decode()  # the three countries
    response = staff.get(reverse("dashboard:panel", args=["sources"]), {"format": "csv", "compare": "on"})
    assert response["Content-Disposition"].startswith("attachment")
    table = list(csv.reader(io.StringIO(response.content.decode())))
    assert table[0] == [
        *("Page views: Source", "count", "visitors", "share of total (%)"),
        *("period before", "change", "change (%)"),
    ]
    assert len(table) == 1 + 3 + 12 + 1
    assert ["'" + HOSTILE, "1", "1", "5.3", "0", "0", ""] in table  # today: no whole day to compare yet
    countries = list(csv.reader(io.StringIO(staff.get("/dashboard/panel/countries/?format=csv").content.decode())))
    assert countries[0] == ["Page views: Country", "country", "count", "visitors", "share of total (%)"]
    assert ["GB", "United Kingdom", "3", "1", "15.8"] in countries  # one visitor read the three pages


def test_each_value_shows_its_visitors_beside_its_page_views(staff, visits):
    page = staff.get(reverse("dashboard:index"))
    sources = [(row["text"], row["count"], row["visitors"].visitors) for row in page.context["sources"]["rows"]]
    assert sources == [("Google", 3, 1), ("newsletter", 2, 1), ("Direct / none", 1, 1)]
    devices = [(row["text"], row["count"], row["visitors"].visitors) for row in page.context["devices"]["rows"]]
    assert devices == [("Chrome", 4, 2), ("Mobile Safari", 2, 1)]
    assert re.search(r"Google</a></td>\s*<td class=\"num\">3</td>\s*<td class=\"num\">1</td>", page.content.decode())


@pytest.fixture
def half_past_noon(monkeypatch):
    """12:30: the last 24 hours run from yesterday 13:00 (at 23:30 they would be today, a whole day)."""
    from datetime import UTC, datetime

    from django.utils import timezone

    monkeypatch.setattr(timezone, "now", lambda: datetime(2026, 12, 2, 12, 30, tzinfo=UTC))


def test_dates_that_cut_a_day_show_a_dash_for_a_values_visitors(staff, half_past_noon, visits):
    page = staff.get(reverse("dashboard:index"), {"range": "24h"})
    assert [row["visitors"] for row in page.context["sources"]["rows"]] == [None, None, None]
    assert "Visitors: “–”, as they are kept per day and these dates cut a day." in page.content.decode()
    table = list(csv.reader(io.StringIO(staff.get("/dashboard/panel/sources/?format=csv&range=24h").content.decode())))
    assert table[0] == ["Page views: Source", "count", "share of total (%)"]


def test_clicking_a_row_filters_the_cards_and_chart_and_a_chip_removes_it(staff, visits):
    page = staff.get(reverse("dashboard:index"))
    google = page.context["sources"]["rows"][0]
    assert google["query"].endswith("dim=source&value=Google")
    filtered = staff.get(f"{reverse('dashboard:index')}?{google['query']}")
    assert filtered.context["kpis"]["total"] == 3
    assert sum(row["count"] for row in filtered.context["series"]["rows"]) == 3
    assert filtered.context["sources"]["rows"][0]["selected"]
    html = filtered.content.decode()
    assert "filtered by Source: Google" in html
    assert "All pages of every visitor: counters do not combine a page with Source: Google." in html
    assert "counters do not combine browser with Source: Google" in html
    assert "Every type, not filtered by Source: Google." in html
    assert "Page views with Source: Google per day" in html
    chip = re.search(r'<a class="chip" href="([^"]+)"[^>]*title="Remove the filter"', html).group(1)
    assert staff.get(chip.replace("&amp;", "&")).context["kpis"]["total"] == 6


def test_a_page_and_a_value_together_read_the_value_over_all_pages_and_say_so(staff, visits):
    page = staff.get(reverse("dashboard:index"), {"identifier": "/docs", "dim": "country", "value": "GB"})
    assert page.context["kpis"]["total"] == 3  # GB's page views, all on "/"
    assert "Counters do not combine a page with Country: GB" in page.content.decode()


@pytest.mark.parametrize(
    "params, notice",
    [
        ({"dim": "nonsense", "value": "x"}, "The filter in this address was not understood"),
        ({"dim": "prop:<script>", "value": "x"}, "The filter in this address was not understood"),
        ({"dim": "source", "value": "x" * 121}, "The filter in this address was not understood"),
        ({"dim": "prop:plan", "value": "pro"}, "Page views keeps no Property “plan” counts"),
    ],
)
def test_a_filter_that_cannot_be_read_falls_back_to_all_with_a_notice(staff, visits, params, notice):
    page = staff.get(reverse("dashboard:index"), {**params, "range": "7d"})
    assert page.status_code == 200
    assert page.context["state"].dimension == "" and page.context["state"].preset == "7d"
    assert page.context["kpis"]["total"] == 6
    assert notice in page.content.decode()


def test_a_filter_reads_days_when_the_type_keeps_no_hourly_breakdowns(staff, visits):
    page = staff.get(reverse("dashboard:index"), {"range": "today", "dim": "source", "value": "Google"})
    assert page.context["state"].granularity == "D"
    assert page.context["kpis"]["total"] == 3


def test_dimension_values_are_escaped_in_tables_the_chip_and_the_chart(staff, send):
    assert send({"event_type": "page_view", "identifier": "/", "utm_source": HOSTILE}).status_code == 204
    page = staff.get(reverse("dashboard:index"), {"dim": "source", "value": HOSTILE})
    assert page.context["kpis"]["total"] == 1
    for response in [page, staff.get(reverse("dashboard:panel", args=["sources"]), **HX)]:
        assert "<script>alert(1)" not in response.content.decode()
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.content.decode()
    figure = json.loads(
        re.search(r'<script id="fig-series" type="application/json">(.*?)</script>', page.content.decode(), re.S).group(
            1
        )
    )
    assert figure["data"][0]["name"] == plotly_text("Page views with Source: " + HOSTILE)


def test_breakdown_panels_run_a_pinned_number_of_queries(staff, visits, django_assert_num_queries):
    # session, user, sites, registry; the type's total (the shares); the values; their visitors.
    for name in ["sources", "devices", "countries"]:
        with django_assert_num_queries(7):
            staff.get(reverse("dashboard:panel", args=[name]), {"compare": "on"}, **HX)
    # Filtered, the whole page reads the value's totals and series and the unfiltered total besides,
    # and the value's visitors (3 sketch reads) and visits (1), the busiest pages' visitors (1) and
    # the visitors of the values of sources, devices and countries (3) and the Visitors panel (8).
    with django_assert_num_queries(30):
        staff.get(reverse("dashboard:index"), {"dim": "source", "value": "Google"})


@pytest.mark.parametrize("name", ["sources", "countries"])
def test_a_breakdown_csv_reads_its_rows_once(staff, visits, django_assert_num_queries, name):
    # session, user, sites, registry; every value, the type's total, the values' visitors: as the
    # panel, not the panel's page of rows and then every row again.
    with django_assert_num_queries(7):
        response = staff.get(reverse("dashboard:panel", args=[name]), {"format": "csv", "compare": "on"})
    assert response["Content-Type"].startswith("text/csv")


def test_a_running_week_s_sources_are_compared_over_the_same_elapsed_whole_days(staff, half_past_noon):
    """Sources are kept per day. At 12:30 on 2 December the week (26 November to today) is compared
    with 19 to 25 November up to the same elapsed whole days: 26 November to 1 December against 19
    to 24 November. Cut at 12:30 instead, a day's rows are read whole: today's hit would count
    against all of 25 November (change -1 instead of +1)."""
    from .conftest import page_view_at, utc

    for moment in [utc(2026, 11, 27, 10), utc(2026, 11, 27, 11), utc(2026, 12, 2, 10)]:  # this week
        page_view_at(moment, "/", source="Google")
    page_view_at(utc(2026, 11, 20, 10), "/", source="Google")  # the week before, within the elapsed days
    for hour in (20, 21, 22):
        page_view_at(utc(2026, 11, 25, hour), "/", source="Google")  # its last day: not elapsed this week
    asked = {"range": "7d", "compare": "on"}
    page = staff.get(reverse("dashboard:index"), asked)
    google = next(row for row in page.context["sources"]["rows"] if row["text"] == "Google")
    assert (google["count"], google["previous"], google["change"]) == (3, 1, 1)
    assert "change vs 19–24 November 2026" in page.content.decode()
    # Filtered by that source, the card reads the same rows and compares the same days.
    card = staff.get(reverse("dashboard:index"), {**asked, "dim": "source", "value": "Google"}).context["kpis"]
    assert (card["total"], card["previous"], card["change_percent"]) == (3, 1, 100)
