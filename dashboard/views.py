"""The staff dashboard: one page, each panel an inline partial with its own URL.

``/dashboard/`` renders every panel (works without JavaScript); a filter change asks for
the same URL with htmx and gets the ``dashboard`` partial back. ``/dashboard/panel/<name>/``
renders one panel (the live counter polls it) and, with ``?format=csv``, downloads exactly
the numbers that panel shows. Data comes only from ``beacons.queries``.

``dashboard_response`` and ``panel_response`` draw a given site with the panels a viewer may see,
linking to ``DashboardLinks``: the staff views here and the shared links' (``share_views``) call them.
"""

import html
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import Promise, cached_property
from django.utils.html import conditional_escape
from django.utils.http import urlencode
from django.utils.safestring import mark_safe

from beacons.counting.buckets import bucket_after, bucket_zone, buckets_between
from beacons.dimensions import ANONYMOUS, SIGNED_IN, dimension_label, property_dimension
from beacons.downloads import csv_response
from beacons.ingest.extraction import UNKNOWN, country_flag, country_name
from beacons.models import Granularity as G
from beacons.models import dimensions_split
from beacons.queries import counters, error_groups, event_types, visitors, visits

from . import charts
from .forms import (
    DEVICE_TABS,
    METRIC_LABELS,
    PAGE_TABS,
    SCALES,
    SOURCE_TABS,
    TOP_SIZES,
    TOP_SORTS,
    DashboardState,
    dashboard_state,
)
from .permissions import PANEL_PERMISSIONS, SITE_PARAMETER, VIEW_COUNTS, permission_required, user_may

SUGGESTION_LIMIT = 20
# However many types are registered (a flood of auto-registered ones), the type choice lists
# at most this many (the chosen one always among them) and the breakdown stacks the busiest
# BREAKDOWN_LIMIT, the rest summed as "Other types".
TYPE_CHOICES_LIMIT = 200
BREAKDOWN_LIMIT = 12


def _state_for_request(request, *, site, choices: bool = True) -> tuple:
    """The type choices, the filter form and the state of ``site``. Without ``choices`` (a panel),
    only the type shown is read, as the one "choice": the same type the page would show."""
    slug = request.GET.get("type", "")[:64]
    if choices:
        definitions = event_types.definitions_listed(limit=TYPE_CHOICES_LIMIT, including=slug)
    else:
        chosen = event_types.definition_chosen(slug=slug, listed=TYPE_CHOICES_LIMIT)
        definitions = [chosen] if chosen else []
    form, state = dashboard_state(params=request.GET, definitions=definitions, now=timezone.now(), site=site)
    return definitions, form, state


def _local(moment):
    return moment.astimezone(bucket_zone())


def _moment_words(moment, *, now) -> str:
    """ "01:00" later today, "3 December 2026 00:00" on a later day."""
    local = _local(moment)
    return f"{local:%H:%M}" if local.date() == _local(now).date() else f"{local.day} {local:%B %Y} {local:%H:%M}"


class SharedReads:
    """The reads several panels of one request need, each run at most once (for a state with a type)."""

    def __init__(self, state: DashboardState):
        self.state = state

    @cached_property
    def points(self) -> list:
        """The chart's buckets: the series panel draws them, the KPI card names the busiest."""
        state = self.state
        return counters.series(
            site=state.site,
            definitions=[state.definition],
            granularity=state.granularity,
            start=state.start,
            end=state.chart_end,
            identifier=state.counter_value,
            dimension=state.dimension,
        )

    @cached_property
    def totals(self) -> counters.Totals:
        """The KPI card's total and change (of the chosen page or item, or of all)."""
        state, comparison = self.state, self.state.kpi_comparison
        return counters.totals(
            site=state.site,
            definitions=[state.definition],
            start=state.start,
            end=state.totals_end,
            identifier=state.counter_value,
            dimension=state.dimension,
            previous_period=(comparison.previous_start, comparison.previous_end),
            compared_end=comparison.current_end,
            cut_granularity=comparison.granularity,
        )

    @cached_property
    def total_of_all(self) -> int:
        """Hits of every page or item in the dates: the shares of the busiest pages and of every
        breakdown are of this."""
        state = self.state
        if not state.counter_value:
            return self.totals.current
        return counters.totals(
            site=state.site, definitions=[state.definition], start=state.start, end=state.totals_end
        ).current


# --- Panels: each returns its template context (and, for CSV, its rows) -----------------


def _percent_change(change: float | None) -> int | None:
    return None if change is None else round(change * 100)


def _duration_words(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m {rest:02d}s" if minutes else f"{rest}s"


def _people_cards(state: DashboardState) -> list[dict]:
    """Visitor and visit cards of a page-view type: unique visitors, visits, views per visit,
    bounce rate and visit duration, each with its change on the period the total is compared with
    (the same elapsed part). Of the chosen page (visits: entering at it) or dimension value."""
    comparison = state.kpi_comparison
    scope = {"site": state.site, "identifier": state.counter_value, "dimension": state.dimension}
    cards = []
    try:
        definitions = [state.definition]
        # The elapsed part is cut to the sketches' buckets (hours for the site, days for a page or
        # value), so both periods are read to the same moment; the stats API compares the same way.
        kept = visitors.sketch_granularities(
            definitions, per_value=bool(state.counter_value), dimension=state.dimension
        )
        cut = state.comparison_read_to(granularity_codes=kept)
        now = visitors.visitors(definitions=definitions, start=state.start, end=state.totals_end, **scope)
        compared = visitors.visitors(
            definitions=definitions, start=state.start, end=cut.current_end or state.totals_end, **scope
        )
        before = visitors.visitors(definitions=definitions, start=cut.previous_start, end=cut.previous_end, **scope)
        cards.append(
            {
                "label": "Unique visitors",
                "metric": "visitors",
                "value": f"{now.visitors:,}",
                "estimate": now.estimate,
                "change_percent": _percent_change(
                    (compared.visitors - before.visitors) / before.visitors if before.visitors else None
                ),
                "compared_label": cut.label,
            }
        )
    except (visitors.SketchesNotKept, counters.DimensionNotKept):
        pass
    found = visits.visits_totals(
        start=state.start,
        end=state.totals_end,
        previous_period=(comparison.previous_start, comparison.previous_end),
        compared_end=comparison.current_end,
        cut_granularity=comparison.granularity,
        **scope,
    )
    figures = found.current
    views_per_visit = figures.views_per_visit
    bounce_rate = figures.bounce_rate
    cards += [
        {
            "label": "Visits",
            "metric": "visits",
            "value": f"{figures.visits:,}",
            "change_percent": _percent_change(found.change("visits")),
        },
        {
            "label": "Views per visit",
            "metric": "views_per_visit",
            "value": "–" if views_per_visit is None else f"{views_per_visit:.2f}",
            "change_percent": _percent_change(found.change("views_per_visit")),
        },
        {
            "label": "Bounce rate",
            "metric": "bounce_rate",
            "value": "–" if bounce_rate is None else f"{round(bounce_rate * 100)}%",
            "change_percent": _percent_change(found.change("bounce_rate")),
        },
        {
            "label": "Visit duration",
            "metric": "visit_duration",
            "value": _duration_words(figures.duration),
            "change_percent": _percent_change(found.change("duration")),
        },
    ]
    for card in cards:
        card |= _metric_link(state, card["metric"])
    return cards


def _metric_link(state: DashboardState, metric: str) -> dict:
    """A KPI card's link: the dashboard charting ``metric``, and whether it is the one charted."""
    return {"query": state.query_with(metric=metric if metric != "views" else ""), "current": state.metric == metric}


def kpis_panel(state: DashboardState, definitions, reads: SharedReads) -> dict:
    if state.definition is None:
        return {"kpis": None}
    comparison = state.kpi_comparison
    totals, points = reads.totals, reads.points
    busiest = max(points, key=lambda point: point[1]) if any(count for _, count in points) else None
    change = totals.change
    return {
        "kpis": {
            "total": totals.current,
            "previous": totals.previous,
            "previous_label": comparison.label,
            # Nothing is comparable yet (the first minute or hour of the period): when it will be.
            "compared_from": ""
            if comparison.label
            else _moment_words(bucket_after(comparison.current_end, comparison.granularity), now=state.now),
            "compared_unit": G(comparison.granularity).label,
            "change_percent": None if change is None else round(change * 100),
            "busiest_label": charts.bucket_label(busiest[0], state.granularity) if busiest else "",
            "busiest_count": busiest[1] if busiest else 0,
            "people": _people_cards(state) if state.counts_visitors else [],
            "link": _metric_link(state, "views") if state.counts_visitors else None,
        }
    }


def _partial_notes(state: DashboardState, moments) -> list[str]:
    """For each bucket: "" when whole and finished, " so far" while it runs, " (part inside the dates)"
    when the chosen dates cut it."""
    notes = []
    for moment in moments:
        following = bucket_after(moment, state.granularity)
        if moment <= state.now < following:
            notes.append(" so far")
        elif moment < state.start or following > state.end:
            notes.append(" (part inside the dates)")
        else:
            notes.append("")
    return notes


# A visit metric's VisitFigures attribute and how one value reads (in the table, the hover and the CSV).
VISIT_METRICS = {
    "visits": "visits",
    "bounce_rate": "bounce_rate",
    "visit_duration": "duration",
    "views_per_visit": "views_per_visit",
}
# (d3 number format, suffix) of a metric on the chart; counts are whole numbers
METRIC_FORMATS = {"bounce_rate": (".1f", "%"), "visit_duration": (",.0f", " s"), "views_per_visit": (".2f", "")}


def _metric_value(metric: str, value):
    """A metric of one bucket as charted: bounce rate in percent (1 decimal), duration in whole
    seconds, views per visit to 2 decimals; None stays None (no visits: no rate)."""
    if value is None or metric in ("views", "visitors", "visits"):
        return value
    if metric == "bounce_rate":
        return round(100 * value, 1)
    return round(value) if metric == "visit_duration" else round(value, 2)


def _metric_text(metric: str, value) -> object:
    """A bucket's value in the "show as table" table: an int (thousands separated), or words."""
    if value is None:
        return "–"
    if metric == "bounce_rate":
        return f"{value:.1f}%"
    if metric == "visit_duration":
        return _duration_words(value)
    if metric == "views_per_visit":
        return f"{value:.2f}"
    return value


def _metric_points(state: DashboardState, *, start, end) -> list[tuple]:
    """(bucket, value) of ``state.metric`` over [start, end): visitors from the sketches (None
    for a bucket they cannot answer), visit metrics each from its own bucket's counts (a bounce
    rate is the bucket's bounces ÷ its visits, never an average of rates)."""
    scope = {"site": state.site, "granularity": state.granularity, "start": start, "end": end}
    scope |= {"identifier": state.counter_value, "dimension": state.dimension}
    if state.metric == "views":
        return counters.series(definitions=[state.definition], **scope)
    if state.metric == "visitors":
        found = visitors.visitors_series(definitions=[state.definition], **scope)
        return [(moment, None if count is None else count.visitors) for moment, count in found]
    attribute = VISIT_METRICS[state.metric]
    return [
        (moment, _metric_value(state.metric, figures.metric(attribute)))
        for moment, figures in visits.visits_series(**scope)
    ]


def series_panel(state: DashboardState, definitions, reads: SharedReads) -> dict:
    if state.definition is None:
        return {"series": None}
    try:
        points = (
            reads.points if state.metric == "views" else _metric_points(state, start=state.start, end=state.chart_end)
        )
    except (visitors.SketchesNotKept, counters.DimensionNotKept):
        return {"series": _series_unavailable(state)}
    previous = None
    if state.compare:
        previous_start, previous_end = state.previous_period
        previous = _metric_points(state, start=previous_start, end=previous_end)[: len(points)]
    notes = _partial_notes(state, [moment for moment, _ in points])
    rows = []
    for i, (moment, count) in enumerate(points):
        label = charts.bucket_label(moment, state.granularity) + notes[i]
        row = {"moment": _local(moment), "label": label, "count": count}
        if previous is not None and i < len(previous):
            row["previous_moment"] = _local(previous[i][0])
            row["previous_label"] = charts.bucket_label(previous[i][0], state.granularity)
            row["previous_count"] = previous[i][1]
        rows.append(row)
    empty = not any(count for _, count in points)
    number_format, suffix = METRIC_FORMATS.get(state.metric, (",", ""))
    figure = charts.series_figure(
        name=state.chart_subject,
        granularity=state.granularity,
        points=points,
        previous=previous,
        notes=notes,
        colour=charts.type_colour(state.definition.slug),
        number_format=number_format,
        suffix=suffix,
    )
    measure = state.definition.name if state.metric == "views" else METRIC_LABELS[state.metric]
    headings = [state.per.capitalize(), measure]
    if previous is not None:
        headings += ["Period before", measure]
    table = data_table(
        headings,
        (
            [row["label"], _metric_text(state.metric, row["count"])]
            + (
                [row["previous_label"], _metric_text(state.metric, row["previous_count"])]
                if "previous_label" in row
                else []
            )
            for row in rows
        ),
    )
    matches = []
    if (
        empty and state.identifier and not state.dimension and state.metric == "views"
    ):  # say why: no such page in these dates, and which pages do match
        matches = counters.top_identifiers(
            site=state.site,
            definitions=[state.definition],
            start=state.start,
            end=state.totals_end,
            limit=5,
            contains=state.identifier,
        )
    return {
        "series": {
            "rows": rows,
            "table": table,
            "figure": figure,
            "empty": empty,
            "matches": [
                {"identifier": identifier, "count": count, "query": state.query_with(identifier=identifier)}
                for identifier, count in matches
            ],
        }
    }


def _series_unavailable(state: DashboardState) -> dict:
    """The series panel when no sketch answers the chosen points: why, and the link that does."""
    day = G.DAY.value
    return {
        "rows": [],
        "empty": False,
        "unavailable": f"Visitors of a page or a value are kept per day, not per {state.per}.",
        "day_query": state.query_with(granularity=day) if day in state.granularities else "",
    }


METRIC_UNITS = {"bounce_rate": " (%)", "visit_duration": " (seconds)"}


def _series_csv(state, context):
    tz = bucket_zone().key
    header = [f"{state.per} starting ({tz})", state.chart_subject + METRIC_UNITS.get(state.metric, "")]
    if state.compare:
        header += [f"previous period {state.per} starting ({tz})", "previous period"]
    body = [
        [row["moment"].isoformat(), _blank(row["count"])]
        + ([row["previous_moment"].isoformat(), _blank(row["previous_count"])] if "previous_moment" in row else [])
        for row in context["series"]["rows"]
    ]
    return [header, *body]


def _page_visitors(state: DashboardState, pages: list[str]) -> dict | None:
    """{page: VisitorCount} of ``pages`` over the dates, or None when no sketch answers them
    exactly (pages keep visitors per day: "Last 24 hours" cuts two days)."""
    try:
        return visitors.visitors_of_values(
            site=state.site, definitions=[state.definition], start=state.start, end=state.totals_end, values=pages
        )
    except (visitors.SketchesNotKept, counters.DimensionNotKept):
        return None


def _views_rows(state: DashboardState, reads: SharedReads, *, limit, offset, shown) -> tuple[list[dict], dict]:
    """The busiest pages by the type's count, with share, change (with Compare) and visitors (of the
    ``shown`` first only: None for all)."""
    comparison = state.kpi_comparison
    found = counters.identifiers_compared(
        site=state.site,
        definitions=[state.definition],
        start=state.start,
        end=state.totals_end,
        previous_period=(comparison.previous_start, comparison.previous_end) if state.compare else None,
        compared_end=comparison.current_end,
        cut_granularity=comparison.granularity,
        order="change" if state.sort == "change" else "count",
        limit=limit,
        offset=offset,
    )
    total = reads.total_of_all
    people = _page_visitors(state, [row.identifier for row in found[:shown]]) if state.counts_visitors else None
    rows = []
    for row in found:
        ratio = row.change_ratio
        rows.append(
            {
                "identifier": row.identifier,
                "count": row.count,
                "share": round(100 * row.count / total, 1) if total else 0,
                "visitors": people.get(row.identifier) if people is not None else None,
                "previous": row.previous,
                "change": row.change,
                "change_percent": None if ratio is None else round(ratio * 100),
            }
        )
    return rows, {"total": total, "visitors_kept": people is not None}


def _entry_rows(state: DashboardState, reads: SharedReads, *, limit, offset, shown) -> tuple[list[dict], dict]:
    """Entry pages by the visits that started on them, with those visits' bounce rate and duration."""
    found = visits.visits_by_entry(site=state.site, start=state.start, end=state.totals_end, limit=limit, offset=offset)
    rows = []
    for row in found:
        figures = row.current
        bounce_rate = figures.bounce_rate
        rows.append(
            {
                "identifier": row.identifier,
                "visits": figures.visits,
                "bounce_rate": None if bounce_rate is None else round(100 * bounce_rate),
                "duration_seconds": None if figures.duration is None else round(figures.duration),
                "duration": _duration_words(figures.duration),
            }
        )
    return rows, {}


def _exit_rows(state: DashboardState, reads: SharedReads, *, limit, offset, shown) -> tuple[list[dict], dict]:
    """Exit pages by the visits that ended on them, with the share of the page's views that ended one."""
    found = visits.exits_by_page(
        site=state.site,
        page_views=[state.definition],
        start=state.start,
        end=state.totals_end,
        limit=limit,
        offset=offset,
    )
    rows = [
        {
            "identifier": row.identifier,
            "exits": row.exits,
            "page_views": row.page_views,
            "exit_rate": None if row.exit_rate is None else round(100 * row.exit_rate, 1),
        }
        for row in found
    ]
    return rows, {}


PAGE_TAB_ROWS = {"views": _views_rows, "entry": _entry_rows, "exit": _exit_rows}


def top_panel(state: DashboardState, definitions, reads: SharedReads, *, every_row: bool = False) -> dict:
    """The busiest pages (or, on its tabs, entry and exit pages), a page of ``state.rows`` (every
    row for the CSV), with their change on the period before when Compare is on."""
    if state.definition is None:
        return {"top": None}
    size = state.rows
    offset = 0 if every_row else (state.page - 1) * size
    # One row more than shown says whether there is a next page.
    found, extra = PAGE_TAB_ROWS[state.pages_tab](
        state, reads, limit=None if every_row else size + 1, offset=offset, shown=None if every_row else size
    )
    more = not every_row and len(found) > size
    rows = found if every_row else found[:size]
    for row in rows:
        row["query"] = state.query_with(identifier=row["identifier"], page="")
        row["selected"] = row["identifier"] == state.identifier
    tabs = [
        {
            "label": label,
            "query": state.query_with(pages=value if value != PAGE_TABS[0][0] else "", page="", sort=""),
            "current": value == state.pages_tab,
        }
        for value, label in PAGE_TABS
    ]
    return {
        "top": {
            **extra,
            "tab": state.pages_tab,
            "tabs": tabs if state.counts_visitors else [],
            "rows": rows,
            "first": offset + 1,
            "last": offset + len(rows),
            "next_query": state.query_with(page=state.page + 1) if more else "",
            "previous_query": state.query_with(page=state.page - 1 if state.page > 2 else "") if state.page > 1 else "",
            "compared_label": state.kpi_comparison.label or "the period before (nothing comparable yet)",
            "sizes": [
                (size, state.query_with(rows=size if size != TOP_SIZES[0] else "", page="")) for size in TOP_SIZES
            ],
            "sorts": [
                (value, label, state.query_with(sort=value if value != "views" else "", page=""))
                for value, label in TOP_SORTS
            ],
        }
    }


def _top_csv(state, context):
    top = context["top"]
    rows = top["rows"]
    if state.pages_tab == "entry":
        header = ["entry page", "visits", "bounce rate (%)", "visit duration (seconds)"]
        body = [[r["identifier"], r["visits"], _blank(r["bounce_rate"]), _blank(r["duration_seconds"])] for r in rows]
        return [header, *body]
    if state.pages_tab == "exit":
        header = ["exit page", "exits", "page views", "exit rate (%)"]
        return [header, *[[r["identifier"], r["exits"], r["page_views"], _blank(r["exit_rate"])] for r in rows]]
    people = top.get("visitors_kept") and state.counts_visitors
    header = [
        f"{state.definition.name}: page or item",
        "count",
        *(["visitors"] if people else []),
        "share of total (%)",
    ]
    if state.compare:
        header += ["period before", "change", "change (%)"]
    body = [
        [row["identifier"], row["count"], *([row["visitors"].visitors] if people else []), row["share"]]
        + ([row["previous"], row["change"], _blank(row["change_percent"])] if state.compare else [])
        for row in rows
    ]
    return [header, *body]


def _blank(value) -> object:
    """A CSV cell: "" for a figure that does not exist (no visits, no previous count)."""
    return "" if value is None else value


SMALL_MULTIPLES_LIMIT = 12  # types drawn one under the other; the busiest ones when there are more


def breakdown_panel(state: DashboardState, definitions, reads: SharedReads) -> dict:
    if not definitions:
        return {"breakdown": None}
    top = counters.series_of_top_definitions(
        site=state.site, granularity=state.granularity, start=state.start, end=state.chart_end, limit=BREAKDOWN_LIMIT
    )
    named = [
        (name, slug, [count for _, count in points]) for name, slug, points in top if any(count for _, count in points)
    ]
    moments = list(buckets_between(state.start, state.chart_end, state.granularity))
    left_out = 0
    if state.scale == "own":
        shown = sorted(named, key=lambda item: -sum(item[2]))[:SMALL_MULTIPLES_LIMIT]
        left_out = len(named) - len(shown)
        figure = charts.small_multiples_figure(
            granularity=state.granularity, x=moments, stacks=[s for s in named if s in shown]
        )
    else:
        figure = charts.stacked_figure(granularity=state.granularity, x=moments, stacks=named)
    rows = [
        (_local(moment), charts.bucket_label(moment, state.granularity), [counts[i] for _, _, counts in named])
        for i, moment in enumerate(moments)
    ]
    table = data_table(
        [state.per.capitalize(), *(name for name, _, _ in named)], ([label, *counts] for _, label, counts in rows)
    )
    return {
        "breakdown": {
            "names": [name for name, _, _ in named],
            "rows": rows,
            "table": table,
            "figure": figure,
            "empty": not named,
            "left_out": left_out,
            "scales": [
                (value, label, state.query_with(scale=value if value != "stacked" else "")) for value, label in SCALES
            ],
        }
    }


def _breakdown_csv(state, context):
    header = [f"{state.per} starting ({bucket_zone().key})", *context["breakdown"]["names"]]
    return [header, *[[moment.isoformat(), *counts] for moment, _, counts in context["breakdown"]["rows"]]]


def live_panel(state: DashboardState, definitions, reads: SharedReads) -> dict:
    count = (
        counters.live_count(site=state.site, definitions=[state.definition], identifier=state.identifier)
        if state.definition
        else None
    )
    people = (
        visitors.live_visitors(site=state.site, definitions=[state.definition])
        if state.definition and not state.identifier and not state.dimension
        else None
    )
    return {"live": {"count": count, "visitors": people.visitors if people else None}}


def errors_panel(state: DashboardState, definitions, reads: SharedReads) -> dict:
    groups = error_groups.error_groups_latest(site=state.site, limit=8)
    return {"error_groups": [(group, charts.bucket_label(group.last_seen, G.MINUTE)) for group in groups]}


def identifiers_panel(state: DashboardState, definitions, contains: str = "") -> dict:
    """Type-ahead suggestions: the busiest identifiers containing what was typed."""
    if state.definition is None:
        return {"suggestions": []}
    rows = counters.top_identifiers(
        site=state.site,
        definitions=[state.definition],
        start=state.start,
        end=state.totals_end,
        limit=SUGGESTION_LIMIT,
        contains=contains,
    )
    return {"suggestions": [identifier for identifier, _ in rows]}


# --- The Visitors panel: signed-in vs anonymous visitors (seed 004) -------------------------------

IDENTITY_LINES = [(SIGNED_IN, "Signed-in visitors"), (ANONYMOUS, "Anonymous visitors")]
IDENTITY_COLOURS = {SIGNED_IN: "#047857", ANONYMOUS: "#94a3b8"}  # green: the conversions; grey: the rest


def _signed_in_shares(state: DashboardState) -> tuple:
    """(the share of signed-in visitors over the dates or None, its relative change or None, the
    ``Comparison`` read): both periods by ``kpi_comparison``'s rule, cut to the days identity
    sketches keep. Raises ``SketchesNotKept`` when no sketch answers the dates themselves."""
    definitions = [state.definition]
    allowed = visitors.sketch_granularities(definitions, per_value=True, dimension=visitors.IDENTITY)
    comparison = state.comparison_read_to(granularity_codes=allowed)
    scope = {"site": state.site, "definitions": definitions, "exact": True}
    now = visitors.signed_in_share(start=state.start, end=state.totals_end, **scope)
    try:
        compared = (
            visitors.signed_in_share(start=state.start, end=comparison.current_end, **scope)
            if comparison.current_end
            else now
        )
        before = visitors.signed_in_share(start=comparison.previous_start, end=comparison.previous_end, **scope)
    except visitors.SketchesNotKept:
        return now, None, comparison
    change = None
    if compared.share is not None and before.share:
        change = (compared.share - before.share) / before.share
    return now, change, comparison


def visitors_panel(state: DashboardState, definitions, reads: SharedReads) -> dict:
    """Signed-in and anonymous visitors per bucket (per day at the finest: identity sketches are
    kept per day) and the conversion rate (signed-in ÷ all visitors) with its change. Page-view
    types keeping the identity breakdown only; of the whole site, whatever the page or filter."""
    if not state.counts_visitors or visitors.IDENTITY not in state.definition.dimension_codes:
        return {"visitors": None}
    granularity = state.granularity if state.granularity not in (G.MINUTE, G.HOUR) else G.DAY
    end = state.period.chart_end(granularity)
    lines = [
        visitors.visitors_series(
            site=state.site,
            definitions=[state.definition],
            granularity=granularity,
            start=state.start,
            end=end,
            dimension=visitors.IDENTITY,
            identifier=value,
        )
        for value, _ in IDENTITY_LINES
    ]
    moments = [moment for moment, _ in lines[0]]
    counts = [[None if count is None else count.visitors for _, count in line] for line in lines]
    signed_in_seen = any(counts[0])
    panel = {
        "per": G(granularity).label,
        "rows": [
            (_local(moment), charts.bucket_label(moment, granularity), [line[i] for line in counts])
            for i, moment in enumerate(moments)
        ],
        "names": [label for _, label in IDENTITY_LINES],
        # Nothing to tell apart: users are not identified (one sentence says so instead of a chart).
        "not_identified": not settings.BEACONS_IDENTIFY_USERS and not signed_in_seen,
        "empty": not any(any(line) for line in counts),
        "days_cut": any(n is None for line in counts for n in line),
    }
    try:
        share, change, comparison = _signed_in_shares(state)
        panel |= {
            "share": None if share.share is None else round(100 * share.share, 1),
            "signed_in": share.signed_in,
            "all": share.all,
            "change_percent": _percent_change(change),
            "compared_label": comparison.label,
        }
    except visitors.SketchesNotKept:
        panel |= {"share": None, "cut": True}
    panel["figure"] = charts.stacked_figure(
        granularity=granularity,
        x=moments,
        stacks=[(label, value, line) for (value, label), line in zip(IDENTITY_LINES, counts)],
        y_title="Visitors",
        colours=IDENTITY_COLOURS,
    )
    panel["table"] = data_table(
        [G(granularity).label.capitalize(), *panel["names"]],
        ([label, *(_metric_text("visitors", n) for n in values)] for _, label, values in panel["rows"]),
    )
    return {"visitors": panel}


def _visitors_csv(state, context):
    panel = context["visitors"]
    header = [f"{panel['per']} starting ({bucket_zone().key})", "signed-in visitors", "anonymous visitors"]
    return [header, *[[moment.isoformat(), *map(_blank, values)] for moment, _, values in panel["rows"]]]


# --- Breakdown panels: a dimension's values, one tab per dimension -----------------------------

BREAKDOWN_ROWS = 10  # values a breakdown panel lists; its CSV has every one


def _breakdown_tabs(name: str, state: DashboardState) -> list[tuple[str, str, str]]:
    """(dimension code, tab label, the tab's parameter value) of panel ``name``."""
    if name == "sources":
        return [(code, label, code) for code, label in SOURCE_TABS]
    if name == "devices":
        return [(code, label, code) for code, label in DEVICE_TABS]
    if name == "countries":
        return [("country", "Countries", "")]
    keys = dimensions_split(state.definition.property_keys) if state.definition else []
    return [(property_dimension(key), key, key) for key in keys]


TAB_PARAMETERS = {"sources": "sources", "devices": "devices", "properties": "property"}
CHOSEN_TABS = {
    "sources": lambda state: state.sources_tab,
    "devices": lambda state: state.devices_tab,
    "countries": lambda state: "country",
    "properties": lambda state: property_dimension(state.property_tab) if state.property_tab else "",
}
BREAKDOWN_TITLES = {"sources": "Sources", "devices": "Devices", "countries": "Countries", "properties": "Properties"}


def value_shown(dimension: str, value: str) -> tuple[str, str]:
    """(text, flag) staff read for a dimension value: a country's name and flag, else the value itself."""
    if dimension == "country":
        return (UNKNOWN, "") if value == UNKNOWN else (country_name(value), country_flag(value))
    return value, ""


def _value_visitors(state: DashboardState, dimension: str, values: list[str]) -> dict | None:
    """{value: VisitorCount} of ``values`` of ``dimension`` over the dates, or None when no sketch
    answers them exactly (values keep visitors per day)."""
    try:
        return visitors.visitors_of_values(
            site=state.site,
            definitions=[state.definition],
            start=state.start,
            end=state.totals_end,
            values=values,
            dimension=dimension,
        )
    except (visitors.SketchesNotKept, counters.DimensionNotKept):
        return None


def dimension_breakdown_panel(name: str, state: DashboardState, reads: SharedReads, *, every_row: bool = False) -> dict:
    """The values of the chosen tab's dimension with their count, share of the type's hits and (with
    Compare) change; or, when the type keeps no such counters, only what to tick in the registry."""
    if state.definition is None:
        return {name: None}
    chosen = CHOSEN_TABS[name](state)
    parameter = TAB_PARAMETERS.get(name)
    tabs = [
        {
            "label": label,
            "query": state.query_with(**{parameter: value}) if parameter else state.query,
            "current": code == chosen,
        }
        for code, label, value in _breakdown_tabs(name, state)
    ]
    panel = {
        "name": name,
        "title": BREAKDOWN_TITLES[name],
        "tabs": tabs if len(tabs) > 1 else [],
        "dimension": chosen,
        "label": dimension_label(chosen) if chosen else "",
        "kept": bool(chosen) and chosen in state.definition.dimension_codes,
        "rows": [],
    }
    if not panel["kept"]:
        return {name: panel}
    found = counters.breakdown(
        site=state.site,
        definition=state.definition,
        dimension=chosen,
        start=state.start,
        end=state.totals_end,
        limit=None if every_row else BREAKDOWN_ROWS + 1,
        compare=state.breakdown_comparison if state.compare else None,
        total=reads.total_of_all,
    )
    panel["more"] = not every_row and len(found) > BREAKDOWN_ROWS
    shown = found[: None if every_row else BREAKDOWN_ROWS]
    people = _value_visitors(state, chosen, [row.value for row in shown]) if state.counts_visitors else None
    panel["visitors_kept"] = people is not None
    for row in shown:
        text, flag = value_shown(chosen, row.value)
        ratio = row.change_ratio
        panel["rows"].append(
            {
                "value": row.value,
                "text": text,
                "flag": flag,
                "count": row.count,
                "visitors": people[row.value] if people is not None else None,
                "share": round(100 * row.share, 1) if row.share is not None else 0,
                "previous": row.previous,
                "change": row.change,
                "change_percent": None if ratio is None else round(ratio * 100),
                "query": state.query_with(dim=chosen, value=row.value, page=""),
                "selected": state.dimension == chosen and state.value == row.value,
            }
        )
    panel["total"] = reads.total_of_all
    panel["compared_label"] = state.breakdown_comparison.label or "the period before (nothing comparable yet)"
    return {name: panel}


def _breakdown_panel_csv(name: str):
    def rows(state, context):
        panel = context[name]
        country = panel["dimension"] == "country"
        header = [f"{state.definition.name}: {panel['label']}", *(["country"] if country else [])]
        people = panel.get("visitors_kept")
        header += ["count", *(["visitors"] if people else []), "share of total (%)"]
        if state.compare:
            header += ["period before", "change", "change (%)"]
        body = [
            [row["value"], *([row["text"]] if country else []), row["count"]]
            + ([row["visitors"].visitors] if people else [])
            + [row["share"]]
            + (
                [row["previous"], row["change"], "" if row["change_percent"] is None else row["change_percent"]]
                if state.compare
                else []
            )
            for row in panel["rows"]
        ]
        return [header, *body]

    return rows


def _breakdown_panel_view(name: str):
    def panel(state: DashboardState, definitions, reads: SharedReads, *, every_row: bool = False) -> dict:
        return dimension_breakdown_panel(name, state, reads, every_row=every_row)

    return panel


BREAKDOWN_PANELS = ["sources", "devices", "countries", "properties"]

PANELS = {
    "kpis": kpis_panel,
    "live": live_panel,
    "series": series_panel,
    "top": top_panel,
    "breakdown": breakdown_panel,
    **{name: _breakdown_panel_view(name) for name in BREAKDOWN_PANELS},
    "visitors": visitors_panel,
    "errors": errors_panel,
}
CSV_ROWS = {
    "series": _series_csv,
    "top": _top_csv,
    "breakdown": _breakdown_csv,
    "visitors": _visitors_csv,
    **{name: _breakdown_panel_csv(name) for name in BREAKDOWN_PANELS},
}
# Panels whose CSV has every row, not the page of rows shown: read with ``every_row`` for it.
CSV_EVERY_ROW = {"top", *BREAKDOWN_PANELS}


# --- Views --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DashboardLinks:
    """Where a dashboard's own links, partials and CSVs point: the staff URLs, or a shared link's.
    Panels live at ``panel`` + ``<name>/``, under the index (both URL confs say so)."""

    index: str
    home: str  # the dashboard as it opens (Reset)
    panel: str
    type_search: str
    shared: bool = False  # no admin links, no set-up hints
    base_template: str = "base.html"


def staff_links(site) -> DashboardLinks:
    index = reverse("dashboard:index")
    return DashboardLinks(
        index=index,
        home=f"{index}?{urlencode({SITE_PARAMETER: site.domain})}",
        panel=f"{index}panel/",
        type_search=reverse("dashboard:type_search"),
    )


def panels_permitted(user) -> dict:
    """The panels ``user`` may see (some need more than VIEW_COUNTS)."""
    return {name: panel for name, panel in PANELS.items() if user_may(user, *PANEL_PERMISSIONS.get(name, ()))}


def dashboard_response(request, *, site, panels: dict, links: DashboardLinks):
    """The dashboard of ``site`` with ``panels`` (the ones the viewer may see), linking to ``links``:
    the page, or its ``dashboard`` partial for htmx."""
    definitions, form, state = _state_for_request(request, site=site)
    context = {"form": form, "state": state, "definitions": definitions, "links": links}
    # Only when the choices are cut short is there a type the select cannot offer.
    context["type_search_offered"] = len(definitions) >= TYPE_CHOICES_LIMIT
    context["may_view_errors"] = "errors" in panels
    reads = SharedReads(state)
    for panel in panels.values():
        context.update(panel(state, definitions, reads))
    template = "dashboard/index.html#dashboard" if request.htmx else "dashboard/index.html"
    return render(request, template, context)


def panel_response(request, *, name: str, site, panels: dict, links: DashboardLinks, template: str = ""):
    """Panel ``name`` of ``site`` (404 unless among ``panels``): its partial (or ``template``), or with
    ``?format=csv`` its CSV. ``identifiers`` answers the type-ahead suggestions."""
    if name == "identifiers":
        definitions, form, state = _state_for_request(request, site=site, choices=False)
        context = identifiers_panel(state, definitions, contains=request.GET.get("identifier", "")[:256])
        return render(request, "dashboard/index.html#identifier-options", context)
    if name not in panels:
        raise Http404("no such panel")
    definitions, form, state = _state_for_request(request, site=site, choices=False)
    csv = request.GET.get("format") == "csv" and name in CSV_ROWS
    # The CSV's rows are read once, all of them, instead of the page shown and then every row again.
    every_row = {"every_row": True} if csv and name in CSV_EVERY_ROW else {}
    context = {"state": state, "links": links, "name": name}
    context |= panels[name](state, definitions, SharedReads(state), **every_row)
    if csv and context.get(name):
        return csv_response(rows=CSV_ROWS[name](state, context), filename=f"beacons-{site.domain}-{name}.csv")
    return render(request, template or f"dashboard/index.html#{name}", context)


@permission_required(VIEW_COUNTS)
def index(request, site):
    return dashboard_response(request, site=site, panels=panels_permitted(request.user), links=staff_links(site))


@permission_required(VIEW_COUNTS)
def panel(request, name: str, site):
    if name in PANELS and not user_may(request.user, *PANEL_PERMISSIONS.get(name, ())):
        raise PermissionDenied
    return panel_response(request, name=name, site=site, panels=PANELS, links=staff_links(site))


def data_table(headings: list[str], rows) -> dict:
    """A "show as table" table for the ``data-table`` partial of ``index.html``: its ``html``, every
    cell escaped, numbers with thousands separators. Written here, not by a template loop: a chart
    of 720 hours made the loop the slowest part of its panel (about 60 ms)."""
    cells = [[(f"{value:,}", True) if isinstance(value, int) else (value, False) for value in row] for row in rows]
    numeric = [is_number for _, is_number in cells[0]] if cells else [False] * len(headings)
    head = "".join(
        f'<th scope="col"{NUMBER_CLASS if is_number else ""}>{conditional_escape(heading)}</th>'
        for heading, is_number in zip(headings, numeric)
    )
    body = "".join(
        "<tr>"
        + "".join(f"<td{NUMBER_CLASS if is_number else ''}>{_cell_escape(text)}</td>" for text, is_number in row)
        + "</tr>"
        for row in cells
    )
    return {"html": mark_safe(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")}


NUMBER_CLASS = ' class="num"'


def _cell_escape(text) -> str:
    """``conditional_escape`` without its lazy-text wrapper, which cost more than the escaping in
    a table of 720 rows: safe text as it is, any other escaped (Django's ``escape`` is ``html.escape``)."""
    if isinstance(text, Promise):
        text = str(text)
    return text.__html__() if hasattr(text, "__html__") else html.escape(str(text))


TYPE_SEARCH_LIMIT = 20  # types a type search answers with, however many match
TYPE_SEARCH_MAX_LENGTH = 64  # a type's slug is at most 64 characters


@permission_required(VIEW_COUNTS)
def type_search(request, site):
    return type_search_response(request, site=site, links=staff_links(site))


def type_search_response(request, *, site, links: DashboardLinks):
    """Types beyond the listed choices: the first TYPE_SEARCH_LIMIT whose name or event type
    contains what was typed, each a link to the dashboard showing it (the rest of the state kept)."""
    _, _, state = _state_for_request(request, site=site, choices=False)
    text = request.GET.get("types", "").strip()[:TYPE_SEARCH_MAX_LENGTH]
    found = event_types.definitions_matching(text=text, limit=TYPE_SEARCH_LIMIT) if text else []
    matches = [
        {"name": d.name, "slug": d.slug, "query": state.query_with(type=d.slug, identifier="", page="")} for d in found
    ]
    context = {"type_matches": matches, "type_text": text, "links": links}
    return render(request, "dashboard/index.html#type-matches", context)
