import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db.models import Sum
from django.urls import reverse

from beacons.counting.buckets import bucket_start
from beacons.counting.increments import Hit, aggregates_add, increments_for
from beacons.models import BeaconAggregate, BeaconDefinition, ErrorGroup, Granularity
from beacons.registry import system_definitions_resolve
from dashboard import charts
from dashboard.charts import plotly_text
from dashboard.forms import PRESETS

from .conftest import first_site, first_site_zone

pytestmark = pytest.mark.django_db

G = Granularity
BREAKDOWN_PANELS = ["sources", "devices", "countries", "properties"]
PANELS = ["kpis", "live", "series", "top", "visitors", "breakdown", "errors", "identifiers", *BREAKDOWN_PANELS]
CSV_PANELS = ["series", "top", "visitors", "breakdown", *BREAKDOWN_PANELS]
XSS = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "</script><script>alert(1)</script>"]
HX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_CURRENT_URL": "http://testserver/dashboard/?range=7d"}


def page_view():
    return BeaconDefinition.objects.get(slug="page_view")


def hits_add(definition, identifier, moment, n=1):
    hit = Hit(first_site().pk, definition.pk, tuple(definition.granularity_codes), identifier)
    aggregates_add(increments=increments_for(hits=[hit] * n, received_at=moment))


def figure_in(response, figure_id):
    match = re.search(
        rf'<script id="{figure_id}" type="application/json">(.*?)</script>', response.content.decode(), re.S
    )
    assert match, f"no figure {figure_id}"
    return json.loads(match.group(1))


def csv_rows(response):
    return list(csv.reader(io.StringIO(response.content.decode())))


@pytest.fixture
def staff(client, make_staff):
    # A superuser: the query pins below count the panels' own queries; the permission check
    # (2 queries for other staff) is pinned in test_permissions.py.
    user = make_staff(is_superuser=True)
    client.force_login(user)
    return client


@pytest.fixture
def traffic():
    """Page views on the two days before today and today, on three pages (and the visit types
    registered, as on any site that has had a visit)."""
    system_definitions_resolve()
    definition = page_view()
    now = datetime.now(UTC)
    for days_ago, identifier, n in [(2, "/", 5), (1, "/pricing", 3), (1, "/", 2), (0, "/docs", 1)]:
        hits_add(definition, identifier, now - timedelta(days=days_ago), n)
    return definition


# --- permissions ---------------------------------------------------------------------------

URLS = [reverse("dashboard:index")] + [reverse("dashboard:panel", args=[name]) for name in PANELS]
URLS += [reverse("dashboard:panel", args=[name]) + "?format=csv" for name in CSV_PANELS]


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("who", ["anonymous", "non-staff"])
def test_visitors_without_staff_rights_are_sent_to_sign_in_and_see_no_data(
    client, django_user_model, traffic, url, who
):
    if who == "non-staff":
        client.force_login(django_user_model.objects.create(username="visitor"))
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=")


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("who", ["anonymous", "non-staff"])
def test_htmx_requests_without_staff_rights_get_403_and_a_redirect_never_a_login_form(
    client, django_user_model, traffic, url, who
):
    if who == "non-staff":
        client.force_login(django_user_model.objects.create(username="visitor"))
    response = client.get(url, **HX)
    assert response.status_code == 403
    assert response["HX-Redirect"] == reverse("login") + "?next=%2Fdashboard%2F%3Frange%3D7d"
    assert b"<form" not in response.content and b"/pricing" not in response.content


@pytest.mark.parametrize("url", URLS)
def test_staff_see_the_page_and_every_panel(staff, traffic, url):
    response = staff.get(url)
    assert response.status_code == 200


def test_non_staff_sign_in_page_explains_the_account_is_not_staff(client, django_user_model):
    client.force_login(django_user_model.objects.create(username="visitor"))
    response = client.get(reverse("dashboard:index"), follow=True)
    assert b"not a staff account" in response.content


def test_navigation_links_dashboard_errors_admin_and_a_post_logout(staff):
    html = staff.get(reverse("dashboard:index")).content.decode()
    assert f'href="{reverse("dashboard:errors")}?site={first_site().domain}"' in html
    assert f'href="{reverse("admin:index")}"' in html
    assert re.search(rf'<form class="logout" method="post" action="{reverse("logout")}">', html)


def test_admin_links_back_to_the_dashboard(staff):
    html = staff.get(reverse("admin:index")).content.decode()
    assert f'href="{reverse("dashboard:index")}">Dashboard</a>' in html


def test_pages_load_no_inline_script_and_send_a_strict_csp(staff, traffic):
    response = staff.get(reverse("dashboard:index"))
    scripts = re.findall(r"<script([^>]*)>", response.content.decode())
    assert scripts and all("src=" in attributes or 'type="application/json"' in attributes for attributes in scripts)
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    assert "/static/vendor/plotly.min.js" in response.content.decode()


# --- filters and URL state -----------------------------------------------------------------


@pytest.mark.parametrize("preset", [value for value, _ in PRESETS])
@pytest.mark.parametrize("granularity", ["", "H", "D", "MO", "Y"])
@pytest.mark.parametrize("compare", [False, True])
def test_every_filter_combination_renders(staff, traffic, preset, granularity, compare):
    params = {"type": "page_view", "range": preset, "granularity": granularity}
    if preset == "custom":
        params |= {"start": "2026-01-01", "end": "2026-03-31"}
    if compare:
        params["compare"] = "on"
    response = staff.get(reverse("dashboard:index"), params)
    assert response.status_code == 200
    assert response.context["state"].title in response.content.decode()


def test_filter_by_identifier_and_other_event_type_render(staff, traffic):
    downloads = BeaconDefinition.objects.create(slug="download_click", name="Brochure downloads")
    hits_add(downloads, "brochure.pdf", datetime.now(UTC), 4)
    response = staff.get(reverse("dashboard:index"), {"type": "download_click", "identifier": "brochure.pdf"})
    assert response.context["kpis"]["total"] == 4
    assert "Brochure downloads of brochure.pdf per day" in response.content.decode()


def test_url_state_round_trips_through_the_form_and_panel_links(staff, traffic):
    params = {
        "type": "page_view",
        "identifier": "/pricing",
        "range": "custom",
        "start": "2026-10-01",
        "end": "2026-10-31",
        "granularity": "D",
        "compare": "on",
    }
    response = staff.get(reverse("dashboard:index"), params)
    state = response.context["state"]
    assert state.params == {"site": first_site().domain, **params}
    form = response.context["form"]
    assert {name: form[name].value() for name in ["type", "identifier", "range", "start", "end", "granularity"]} == {
        key: value for key, value in params.items() if key != "compare"
    }
    assert form["compare"].value() is True
    assert state.title == "Page views of /pricing per day, 1–31 October 2026"
    again = staff.get(reverse("dashboard:index") + "?" + state.query).context["state"]
    assert (again.params, again.title, again.start, again.end) == (state.params, state.title, state.start, state.end)
    assert (
        f"{reverse('dashboard:panel', args=['live'])}?{state.query}".replace("&", "&amp;") in response.content.decode()
    )


def test_filter_form_works_without_javascript_and_pushes_url_with_htmx(staff, traffic):
    html = staff.get(reverse("dashboard:index")).content.decode()
    form = re.search(r'<form id="filters"[^>]*>', html).group(0)
    assert 'method="get"' in form and f'action="{reverse("dashboard:index")}"' in form
    assert 'hx-get="/dashboard/"' in form and 'hx-push-url="true"' in form and 'hx-trigger="change, submit"' in form


def test_htmx_filter_change_returns_only_the_dashboard_fragment(staff, traffic):
    response = staff.get(reverse("dashboard:index"), {"range": "7d"}, **HX)
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="dashboard"') and "<html" not in html


def test_unreadable_filters_fall_back_to_defaults_instead_of_failing(staff, traffic):
    response = staff.get(
        reverse("dashboard:index"),
        {
            "type": "gone",
            "range": "yesterday-ish",
            "start": "31/31/2026",
            "granularity": "fortnight",
            "identifier": "x" * 999,
        },
    )
    assert response.status_code == 200
    state = response.context["state"]
    assert (state.definition.slug, state.preset, state.granularity, state.identifier) == ("page_view", "30d", G.DAY, "")
    assert "not understood" in response.content.decode()


def test_too_many_points_switch_to_a_coarser_bucket_with_a_notice(staff, traffic):
    response = staff.get(reverse("dashboard:index"), {"range": "12m", "granularity": "H"})
    assert response.context["state"].granularity == G.DAY
    assert "too many to read" in response.content.decode()


def test_live_panel_polls_every_10_seconds_and_pauses_when_hidden(staff, traffic):
    html = staff.get(reverse("dashboard:index")).content.decode()
    live = re.search(r'<div id="live"[^>]*>', html).group(0)
    assert 'hx-trigger="every 10s, tabvisible"' in live and "data-poll-when-visible" in live


# --- numbers -------------------------------------------------------------------------------


def test_series_is_gap_filled_with_zeros(staff):
    definition = page_view()
    hits_add(definition, "/", datetime(2026, 3, 1, 12, tzinfo=UTC), 2)
    hits_add(definition, "/", datetime(2026, 3, 3, 12, tzinfo=UTC), 5)
    response = staff.get(reverse("dashboard:index"), {"range": "custom", "start": "2026-03-01", "end": "2026-03-04"})
    trace = figure_in(response, "fig-series")["data"][0]
    assert trace["x"] == ["2026-03-01T00:00", "2026-03-02T00:00", "2026-03-03T00:00", "2026-03-04T00:00"]
    assert trace["y"] == [2, 0, 5, 0]


def test_time_axis_is_in_the_sites_time_zone(staff):
    first_site_zone("America/New_York")
    # 03:30 UTC on 10 March is 23:30 on 9 March in New York.
    hits_add(page_view(), "/", datetime(2026, 3, 10, 3, 30, tzinfo=UTC), 7)
    response = staff.get(
        reverse("dashboard:index"), {"range": "custom", "start": "2026-03-09", "end": "2026-03-10", "granularity": "H"}
    )
    figure = figure_in(response, "fig-series")
    trace = figure["data"][0]
    assert trace["x"][0] == "2026-03-09T00:00" and len(trace["x"]) == 48
    assert trace["y"][trace["x"].index("2026-03-09T23:00")] == 7
    assert figure["layout"]["xaxis"]["title"]["text"] == "Time in America/New_York"


def test_kpis_show_total_change_busiest_bucket_and_live_now(staff):
    definition = page_view()
    now = datetime.now(UTC)
    hits_add(definition, "/", now - timedelta(days=40), 4)  # the 30 days before
    hits_add(definition, "/", now - timedelta(days=3), 6)
    hits_add(definition, "/a", now, 2)
    response = staff.get(reverse("dashboard:index"))
    html = response.content.decode()
    assert response.context["kpis"]["total"] == 8
    assert "up 50%" in html and re.search(r"vs [^<(]+ \(4\)", html)  # the running hour is in the total only
    assert "Busiest day" in html and "6 page views" in html
    assert response.context["live"]["count"] == 2
    assert re.search(
        r"<div class=\"kpi-value\">2</div>\s*<div class=\"kpi-note\">all page views in the last 5 minutes", html
    )


def test_change_says_no_previous_data_when_the_period_before_is_empty(staff, traffic):
    assert "no previous data" in staff.get(reverse("dashboard:panel", args=["kpis"])).content.decode()


def test_top_identifiers_show_share_and_link_to_filter_the_dashboard(staff, traffic):
    response = staff.get(reverse("dashboard:index"))
    rows = response.context["top"]["rows"]
    assert [(row["identifier"], row["count"], row["share"]) for row in rows] == [
        ("/", 7, 63.6),
        ("/pricing", 3, 27.3),
        ("/docs", 1, 9.1),
    ]
    site = first_site().domain
    assert (
        f'href="/dashboard/?site={site}&amp;type=page_view&amp;range=30d&amp;identifier=%2Fpricing"'
        in response.content.decode()
    )


def controls(html: str, opening: str) -> list[tuple[str, bool, str]]:
    """The links of one row of table controls: (text, marked current, query)."""
    span = re.search(rf"{re.escape(opening)}(.*?)</span>", html, re.S).group(1)
    return [
        (text, bool(current), query.replace("&amp;", "&"))
        for query, current, text in re.findall(
            r'<a href="/dashboard/\?([^"]*)"[^>]*?( aria-current="true")?>([^<]+)</a>', span
        )
    ]


def test_busiest_pages_show_10_rows_most_viewed_first_unless_asked_otherwise(staff, traffic):
    html = staff.get(reverse("dashboard:index"), {"range": "7d", "compare": "on"}).content.decode()
    rows = controls(html, "<span>Rows ")
    assert [(text, current) for text, current, _ in rows] == [("10", True), ("50", False), ("100", False)]
    assert "rows=" not in rows[0][2] and "rows=50" in rows[1][2] and "rows=100" in rows[2][2]
    sorts = controls(html, "<span>Sort by ")
    assert [(text, current) for text, current, _ in sorts] == [("most views", True), ("biggest change", False)]
    assert "sort=" not in sorts[0][2] and "sort=change" in sorts[1][2]
    html = staff.get(reverse("dashboard:index"), {"range": "7d", "compare": "on", "rows": "50", "sort": "change"})
    html = html.content.decode()
    assert [current for _, current, _ in controls(html, "<span>Rows ")] == [False, True, False]
    assert [current for _, current, _ in controls(html, "<span>Sort by ")] == [False, True]


def test_breakdown_is_stacked_unless_each_type_is_asked_on_its_own_scale(staff, traffic):
    html = staff.get(reverse("dashboard:index"), {"range": "7d"}).content.decode()
    scales = controls(html, '<span class="table-controls">')
    assert [(text, current) for text, current, _ in scales] == [
        ("Stacked", True),
        ("Each type on its own scale", False),
    ]
    assert "scale=" not in scales[0][2] and "scale=own" in scales[1][2]


def test_the_filters_are_labelled_and_the_dates_are_date_pickers(staff, traffic):
    html = staff.get(reverse("dashboard:index")).content.decode()
    form = re.search(r'<form id="filters".*?</form>', html, re.S).group(0)
    assert re.findall(r'<label for="id_\w+">([^<]+)</label>', form) == [
        "Event type",
        "Page",
        "Dates",
        "From",
        "To",
        "One point per",
        "Compare with the period before",
    ]
    for name in ("start", "end"):
        assert re.search(rf'<input type="date" name="{name}"', form)


def test_breakdown_stacks_every_event_type_over_the_same_buckets(staff, traffic):
    downloads = BeaconDefinition.objects.create(slug="download_click", name="Brochure downloads")
    hits_add(downloads, "brochure.pdf", datetime.now(UTC), 4)
    figure = figure_in(staff.get(reverse("dashboard:panel", args=["breakdown"])), "fig-breakdown")
    assert figure["layout"]["barmode"] == "stack"
    assert sorted((trace["name"], sum(trace["y"])) for trace in figure["data"]) == [
        ("Brochure downloads", 4),
        ("Page views", 11),
    ]
    assert len({tuple(trace["x"]) for trace in figure["data"]}) == 1


def test_errors_panel_lists_latest_unresolved_groups_linking_to_their_page(staff):
    definition = BeaconDefinition.objects.get(slug="error")
    now = datetime.now(UTC)
    group = ErrorGroup.objects.create(
        site=first_site(),
        definition=definition,
        fingerprint="a",
        title="TypeError: x is undefined",
        first_seen=now,
        last_seen=now,
        count=3,
    )
    ErrorGroup.objects.create(
        site=first_site(),
        definition=definition,
        fingerprint="b",
        title="Old and fixed",
        first_seen=now,
        last_seen=now,
        count=1,
        status="resolved",
    )
    html = staff.get(reverse("dashboard:panel", args=["errors"])).content.decode()
    detail = f"{reverse('dashboard:error_detail', args=[group.pk])}?site={first_site().domain}"
    assert f'href="{detail}">TypeError: x is undefined</a>' in html
    assert "Old and fixed" not in html


def test_empty_period_shows_the_snippet_and_the_registry_instead_of_a_blank_chart(staff):
    html = staff.get(reverse("dashboard:index")).content.decode()
    assert 'data-figure="fig-series"' not in html
    assert "&lt;script defer src=" in html and reverse("admin:beacons_beacondefinition_changelist") in html


def test_identifier_type_ahead_suggests_matching_busiest_identifiers(staff, traffic):
    response = staff.get(reverse("dashboard:panel", args=["identifiers"]), {"identifier": "PRI"}, **HX)
    assert response.content.decode() == '<option value="/pricing">'


# --- CSV -----------------------------------------------------------------------------------


def test_series_csv_is_exactly_the_charted_data(staff, traffic):
    params = {"range": "7d", "compare": "on"}
    figure = figure_in(staff.get(reverse("dashboard:panel", args=["series"]), params), "fig-series")
    response = staff.get(reverse("dashboard:panel", args=["series"]), params | {"format": "csv"})
    assert response["Content-Type"].startswith("text/csv") and "attachment" in response["Content-Disposition"]
    header, *rows = csv_rows(response)
    assert header[1] == "Page views" and header[3] == "previous period"
    assert [row[0][:16] for row in rows] == figure["data"][0]["x"]
    assert [int(row[1]) for row in rows] == figure["data"][0]["y"]
    assert [int(row[3]) for row in rows] == figure["data"][1]["y"]
    assert sum(int(row[1]) for row in rows) == 11


def test_top_and_breakdown_csv_match_their_panels(staff, traffic):
    top = staff.get(reverse("dashboard:index")).context["top"]["rows"]
    rows = csv_rows(staff.get(reverse("dashboard:panel", args=["top"]), {"format": "csv"}))[1:]
    # the traffic fixture writes counters only: no page has a visitor
    assert rows == [[row["identifier"], str(row["count"]), "0", str(row["share"])] for row in top]
    figure = figure_in(staff.get(reverse("dashboard:panel", args=["breakdown"])), "fig-breakdown")
    header, *rows = csv_rows(staff.get(reverse("dashboard:panel", args=["breakdown"]), {"format": "csv"}))
    assert header[1:] == [trace["name"] for trace in figure["data"]]
    assert [[int(value) for value in row[1:]] for row in rows] == [
        list(ys) for ys in zip(*(t["y"] for t in figure["data"]))
    ]


def test_csv_cells_that_a_spreadsheet_would_run_as_formulas_are_neutralised(staff):
    now = datetime.now(UTC)
    for identifier in ['=HYPERLINK("http://evil")', "+1", "-2", "@SUM(A1)", "/safe"]:
        hits_add(page_view(), identifier, now)
    rows = csv_rows(staff.get(reverse("dashboard:panel", args=["top"]), {"format": "csv"}))[1:]
    assert sorted(row[0] for row in rows) == ["'+1", "'-2", '\'=HYPERLINK("http://evil")', "'@SUM(A1)", "/safe"]


# --- attacker-controlled text --------------------------------------------------------------


def test_hostile_identifiers_meta_and_names_never_appear_unescaped(staff, send):
    for text in XSS:
        assert send({"event_type": "page_view", "identifier": text, "meta": {"note": text}}).status_code == 204
        assert (
            send({"event_type": "error", "identifier": text, "meta": {"message": text, "stack": text}}).status_code
            == 204
        )
    BeaconDefinition.objects.create(slug="hostile", name=XSS[1] + XSS[2])
    hits_add(BeaconDefinition.objects.get(slug="hostile"), XSS[0], datetime.now(UTC), 3)

    responses = []
    for slug in ["page_view", "hostile"]:
        for identifier in ["", XSS[0]]:
            params = {"type": slug, "identifier": identifier, "compare": "on"}
            responses.append(staff.get(reverse("dashboard:index"), params))
            responses += [staff.get(reverse("dashboard:panel", args=[name]), params, **HX) for name in PANELS]
            responses.append(
                staff.get(reverse("dashboard:panel", args=["identifiers"]), {"type": slug, "identifier": "<"})
            )
    assert all(response.status_code == 200 for response in responses)
    for response in responses:
        body = response.content.decode()
        for text in XSS:
            assert text not in body
        assert "<img" not in body and "alert(1)</script>" not in body

    # In figures the text is entity-escaped for Plotly (which shows it literally).
    figure = figure_in(responses[0], "fig-series")
    page = staff.get(reverse("dashboard:index"), {"type": "page_view", "identifier": XSS[0]})
    assert figure_in(page, "fig-series")["data"][0]["name"] == plotly_text("Page views of " + XSS[0])
    assert "&lt;script&gt;" in json.dumps(
        figure_in(staff.get(reverse("dashboard:index"), {"type": "hostile"}), "fig-breakdown")
    )
    assert figure["data"]

    # CSV carries the real text, as a download that no browser renders as a page.
    csv_response = staff.get(reverse("dashboard:panel", args=["top"]), {"format": "csv"})
    assert csv_response["Content-Disposition"].startswith("attachment")
    assert csv_response["X-Content-Type-Options"] == "nosniff"
    assert csv_response["Content-Type"].startswith("text/csv")


def test_plotly_text_escapes_markup_and_template_placeholders():
    assert plotly_text("<b>x</b> & %{y}") == "&lt;b&gt;x&lt;/b&gt; &amp; &#37;{y}"


# --- query counts: each partial costs a fixed number of queries, whatever the data --------

# Every request: session + user (2), the sites the user may see (1) and the registry (1).
# A breakdown panel: the type's total (its shares) and its values; Properties of page views none (they declare none).
# The KPI cards of page views: unique visitors of the period, of its compared part and of the
# period before (3 sketch reads), and the visit figures (1). Live now: its visitors (1).
# The busiest pages: their counts and the visitors of the pages shown (1). The Visitors panel:
# signed-in and anonymous visitors per bucket (2), and signed-in and all visitors of the period,
# of its compared part and of the period before (6).
QUERIES = {
    **{"kpis": 10, "live": 6, "series": 5, "top": 7, "visitors": 12, "breakdown": 5, "errors": 5, "identifiers": 5},
    **{"sources": 6, "devices": 6, "countries": 6, "properties": 4},
}


@pytest.mark.parametrize("name", PANELS)
def test_each_partial_runs_a_pinned_number_of_queries(staff, traffic, django_assert_num_queries, name):
    with django_assert_num_queries(QUERIES[name]):
        assert staff.get(reverse("dashboard:panel", args=[name]), {"range": "12m"}, **HX).status_code == 200


def test_compare_adds_one_query_and_the_whole_page_runs_twenty_seven(staff, traffic, django_assert_num_queries):
    with django_assert_num_queries(6):
        staff.get(reverse("dashboard:panel", args=["series"]), {"compare": "on"}, **HX)
    # session, user, sites, registry; totals and series once each (shared by the KPI card, the
    # chart and the busiest pages); live, busiest pages, breakdown, latest errors; the values of
    # sources, devices and countries (their shares are of the total already read); the visitor
    # and visit cards (4), live visitors (1), the busiest pages' visitors (1) and the Visitors panel (8).
    with django_assert_num_queries(27):
        staff.get(reverse("dashboard:index"))
    # One page chosen: the busiest pages' shares still need the total of all, and live now counts
    # no visitors (its sketches are of the whole site).
    with django_assert_num_queries(27):
        staff.get(reverse("dashboard:index"), {"identifier": "/pricing"})


def test_with_one_page_chosen_the_card_counts_it_and_shares_stay_of_all_pages(staff, traffic):
    response = staff.get(reverse("dashboard:index"), {"identifier": "/pricing"})
    assert response.context["kpis"]["total"] == 3
    assert response.context["top"]["total"] == 11
    assert [(row["identifier"], row["share"]) for row in response.context["top"]["rows"]] == [
        ("/", 63.6),
        ("/pricing", 27.3),
        ("/docs", 9.1),
    ]


# --- demo data -----------------------------------------------------------------------------


def test_demo_data_counters_agree_in_every_granularity(settings):
    from beacons.models import Site

    call_command("beacons_demo", hits=5000, identifiers=30, days=40, errors=15, seed=1)
    shop = Site.objects.get(domain="shop.example.com")  # the second demo site: a quarter of the traffic
    for site, page_views in ((first_site(), 5000), (shop, 1250)):
        # visits keep demo hours for their last 35 days only: tests/test_commands.py checks them
        for definition in BeaconDefinition.objects.exclude(slug__startswith="beacons:"):
            rows = BeaconAggregate.objects.filter(site=site, definition=definition, dimension="")
            totals = {
                g: rows.filter(identifier="", granularity=g).aggregate(n=Sum("count"))["n"]
                for g in definition.granularity_codes
            }
            fine = {G.SECOND, G.MINUTE}
            coarse = {g: n for g, n in totals.items() if g not in fine}
            assert len(set(coarse.values())) == 1, (site.domain, definition.slug, totals)
            if definition.slug == "page_view":
                assert coarse[G.HOUR] == page_views
            for granularity in definition.granularity_codes:
                by_identifier = (
                    rows.filter(granularity=granularity, dimension="")
                    .exclude(identifier="")
                    .aggregate(n=Sum("count"))["n"]
                )
                assert by_identifier == totals[granularity]
        assert ErrorGroup.objects.filter(site=site).exists()
    # Minute counts cover only the last two days, and match the hours they fall in.
    definition = page_view()
    minutes = BeaconAggregate.objects.filter(
        site=first_site(), definition=definition, identifier="", granularity=G.MINUTE
    )
    first = minutes.order_by("period_start").first().period_start
    assert first >= datetime.now(UTC) - timedelta(days=2, hours=1)
    hours = BeaconAggregate.objects.filter(
        site=first_site(),
        definition=definition,
        identifier="",
        granularity=G.HOUR,
        period_start__gte=bucket_start(first, G.HOUR) + timedelta(hours=1),
    )
    assert (
        minutes.filter(period_start__gte=bucket_start(first, G.HOUR) + timedelta(hours=1)).aggregate(n=Sum("count"))[
            "n"
        ]
        == hours.aggregate(n=Sum("count"))["n"]
    )
    assert ErrorGroup.objects.exists()


def test_demo_if_empty_skips_when_page_views_exist_and_reset_starts_over(capsys):
    call_command("beacons_demo", hits=500, identifiers=10, days=5, errors=0)
    count = BeaconAggregate.objects.count()
    call_command("beacons_demo", if_empty=True, hits=500, identifiers=10, days=5, errors=0)
    assert BeaconAggregate.objects.count() == count
    assert "nothing to do" in capsys.readouterr().out
    call_command("beacons_demo", reset=True, hits=500, identifiers=10, days=5, errors=0)
    total = BeaconAggregate.objects.filter(
        site=first_site(), definition__slug="page_view", identifier="", granularity=G.DAY
    ).aggregate(n=Sum("count"))["n"]
    assert total == 500


def test_show_as_table_lists_the_same_numbers_as_the_chart(staff, traffic):
    response = staff.get(reverse("dashboard:panel", args=["series"]), {"range": "7d"})
    figure = figure_in(response, "fig-series")
    table = re.search(r'<details class="as-table">.*?<tbody>(.*?)</tbody>', response.content.decode(), re.S).group(1)
    counts = [int(value.replace(",", "")) for value in re.findall(r'<td class="num">([\d,]+)</td>', table)]
    assert counts == figure["data"][0]["y"] and "<summary>Show as table</summary>" in response.content.decode()


def test_show_as_table_escapes_text_and_separates_thousands(staff):
    hostile = BeaconDefinition.objects.create(slug="hostile", name="<b>Bold</b> & co")
    now = datetime.now(UTC)
    hits_add(hostile, "/", now, 1234)
    html = staff.get(
        reverse("dashboard:panel", args=["breakdown"]), {"range": "today", "granularity": "D"}
    ).content.decode()
    table = re.search(r'<details class="as-table">.*?(<table>.*?</table>)', html, re.S).group(1)
    day = charts.bucket_label(bucket_start(now, G.DAY), G.DAY)
    assert table == (
        '<table><thead><tr><th scope="col">Day</th><th scope="col" class="num">&lt;b&gt;Bold&lt;/b&gt; &amp; co</th>'
        f'</tr></thead><tbody><tr><td>{day}</td><td class="num">1,234</td></tr></tbody></table>'
    )


def test_type_names_keep_their_capitals_mid_sentence(staff):
    html = staff.get(reverse("dashboard:index"), {"type": "error"}).content.decode()
    assert "javascript errors" not in html
    assert '<div class="kpi-note">JavaScript errors, ' in html
    html = staff.get(reverse("dashboard:index"), {"type": "page_view"}).content.decode()
    assert '<div class="kpi-note">page views, ' in html


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Page views", "page views"),
        ("JavaScript errors", "JavaScript errors"),
        ("API calls", "API calls"),
        ("Sign-ups", "sign-ups"),
        ("iOS installs", "iOS installs"),
        ("", ""),
    ],
)
def test_in_sentence_lowers_only_a_plainly_capitalised_first_word(name, expected):
    from dashboard.templatetags.dashboard import in_sentence

    assert in_sentence(name) == expected


def test_dashboard_calls_the_registry_event_types(staff):
    BeaconDefinition.objects.all().delete()
    html = staff.get(reverse("dashboard:index")).content.decode()
    assert "<h1>No event types yet</h1>" in html and "Add an event type in the" in html
    assert "beacon type" not in html.lower()
