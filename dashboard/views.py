"""The staff dashboard: one page, each panel an inline partial with its own URL.

``/dashboard/`` renders every panel (works without JavaScript); a filter change asks for
the same URL with htmx and gets the ``dashboard`` partial back. ``/dashboard/panel/<name>/``
renders one panel (the live counter polls it) and, with ``?format=csv``, downloads exactly
the numbers that panel shows. Data comes only from ``beacons.queries``.
"""

import csv
from functools import wraps

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpResponse
from django.shortcuts import render, resolve_url
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.http import urlencode

from beacons import queries
from beacons.buckets import bucket_zone, buckets_between
from beacons.models import Granularity as G
from beacons.transfer import cell_neutralise

from . import charts
from .forms import DashboardState, dashboard_state, period_label

TOP_LIMIT = 10
SUGGESTION_LIMIT = 20
# However many types are registered (a flood of auto-registered ones), the type choice lists
# at most this many (the chosen one always among them) and the breakdown stacks the busiest
# BREAKDOWN_LIMIT, the rest summed as "Other types".
TYPE_CHOICES_LIMIT = 200
BREAKDOWN_LIMIT = 12


def staff_required(view):
    """Staff only. Others are sent to sign in; an htmx request gets 403 and an HX-Redirect
    instead, so a login form never lands inside a chart box."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        user = request.user
        if user.is_authenticated and user.is_active and user.is_staff:
            return view(request, *args, **kwargs)
        if request.htmx:
            page = request.htmx.current_url_abs_path or reverse("dashboard:index")
            response = HttpResponse("Sign in as staff to see the dashboard.", status=403, content_type="text/plain")
            response["HX-Redirect"] = f"{resolve_url(settings.LOGIN_URL)}?{urlencode({'next': page})}"
            return response
        return redirect_to_login(request.get_full_path())

    return wrapper


def _state(request) -> tuple:
    definitions = queries.definitions_listed(limit=TYPE_CHOICES_LIMIT, including=request.GET.get("type", "")[:64])
    form, state = dashboard_state(params=request.GET, definitions=definitions, now=timezone.now())
    return definitions, form, state


def _local(moment):
    return moment.astimezone(bucket_zone())


# --- Panels: each returns its template context (and, for CSV, its rows) -----------------


def kpis_panel(state: DashboardState, definitions) -> dict:
    if state.definition is None:
        return {"kpis": None}
    totals = queries.totals(
        definitions=[state.definition], start=state.start, end=state.totals_end, identifier=state.identifier
    )
    points = queries.series(
        definitions=[state.definition], granularity=state.granularity, start=state.start, end=state.chart_end,
        identifier=state.identifier,
    )  # fmt: skip
    busiest = max(points, key=lambda point: point[1]) if any(count for _, count in points) else None
    change = totals.change
    return {
        "kpis": {
            "total": totals.current,
            "previous": totals.previous,
            "previous_label": period_label(totals.previous_start, totals.previous_end, G.DAY),
            "change_percent": None if change is None else round(change * 100),
            "busiest_label": charts.bucket_label(busiest[0], state.granularity) if busiest else "",
            "busiest_count": busiest[1] if busiest else 0,
        }
    }


def series_panel(state: DashboardState, definitions) -> dict:
    if state.definition is None:
        return {"series": None}
    points = queries.series(
        definitions=[state.definition], granularity=state.granularity, start=state.start, end=state.chart_end,
        identifier=state.identifier,
    )  # fmt: skip
    previous = None
    if state.compare:
        previous = queries.series(
            definitions=[state.definition], granularity=state.granularity, start=state.previous_start,
            end=state.start, identifier=state.identifier,
        )[: len(points)]  # fmt: skip
    rows = []
    for i, (moment, count) in enumerate(points):
        row = {"moment": _local(moment), "label": charts.bucket_label(moment, state.granularity), "count": count}
        if previous is not None and i < len(previous):
            row["previous_moment"] = _local(previous[i][0])
            row["previous_label"] = charts.bucket_label(previous[i][0], state.granularity)
            row["previous_count"] = previous[i][1]
        rows.append(row)
    figure = charts.series_figure(name=state.subject, granularity=state.granularity, points=points, previous=previous)
    headings = [state.per.capitalize(), state.definition.name]
    if previous is not None:
        headings += ["Period before", state.definition.name]
    table = table_html(
        headings,
        (
            [row["label"], row["count"]] + ([row["previous_label"], row["previous_count"]] if "previous_label" in row else [])
            for row in rows
        ),
    )
    return {"series": {"rows": rows, "table": table, "figure": figure, "empty": not any(count for _, count in points)}}


def _series_csv(state, context):
    tz = bucket_zone().key
    header = [f"{state.per} starting ({tz})", state.subject]
    if state.compare:
        header += [f"previous period {state.per} starting ({tz})", "previous period"]
    body = [
        [row["moment"].isoformat(), row["count"]]
        + ([row["previous_moment"].isoformat(), row["previous_count"]] if "previous_moment" in row else [])
        for row in context["series"]["rows"]
    ]
    return [header, *body]


def top_panel(state: DashboardState, definitions) -> dict:
    if state.definition is None:
        return {"top": None}
    rows = queries.top_identifiers(definitions=[state.definition], start=state.start, end=state.totals_end, limit=TOP_LIMIT)
    total = queries.totals(definitions=[state.definition], start=state.start, end=state.totals_end).current
    return {
        "top": {
            "rows": [
                {
                    "identifier": identifier,
                    "count": count,
                    "share": round(100 * count / total, 1) if total else 0,
                    "query": urlencode({**state.params, "identifier": identifier}),
                    "selected": identifier == state.identifier,
                }
                for identifier, count in rows
            ],
            "total": total,
        }
    }


def _top_csv(state, context):
    rows = [[row["identifier"], row["count"], row["share"]] for row in context["top"]["rows"]]
    return [[f"{state.definition.name}: page or item", "count", "share of total (%)"], *rows]


def breakdown_panel(state: DashboardState, definitions) -> dict:
    if not definitions:
        return {"breakdown": None}
    top = queries.series_of_top_definitions(
        granularity=state.granularity, start=state.start, end=state.chart_end, limit=BREAKDOWN_LIMIT
    )
    named = [(name, [count for _, count in points]) for name, points in top if any(count for _, count in points)]
    moments = list(buckets_between(state.start, state.chart_end, state.granularity))
    figure = charts.stacked_figure(granularity=state.granularity, x=moments, stacks=named)
    rows = [
        (_local(moment), charts.bucket_label(moment, state.granularity), [counts[i] for _, counts in named])
        for i, moment in enumerate(moments)
    ]
    table = table_html([state.per.capitalize(), *(name for name, _ in named)], ([label, *counts] for _, label, counts in rows))
    return {"breakdown": {"names": [name for name, _ in named], "rows": rows, "table": table, "figure": figure, "empty": not named}}


def _breakdown_csv(state, context):
    header = [f"{state.per} starting ({bucket_zone().key})", *context["breakdown"]["names"]]
    return [header, *[[moment.isoformat(), *counts] for moment, _, counts in context["breakdown"]["rows"]]]


def live_panel(state: DashboardState, definitions) -> dict:
    count = queries.live_count(definitions=[state.definition]) if state.definition else None
    return {"live": {"count": count}}


def errors_panel(state: DashboardState, definitions) -> dict:
    groups = queries.error_groups_latest(limit=8)
    return {"error_groups": [(group, charts.bucket_label(group.last_seen, G.MINUTE)) for group in groups]}


def identifiers_panel(state: DashboardState, definitions, contains: str = "") -> dict:
    """Type-ahead suggestions: the busiest identifiers containing what was typed."""
    if state.definition is None:
        return {"suggestions": []}
    rows = queries.top_identifiers(
        definitions=[state.definition], start=state.start, end=state.totals_end, limit=SUGGESTION_LIMIT,
        contains=contains,
    )  # fmt: skip
    return {"suggestions": [identifier for identifier, _ in rows]}


PANELS = {
    "kpis": kpis_panel,
    "live": live_panel,
    "series": series_panel,
    "top": top_panel,
    "breakdown": breakdown_panel,
    "errors": errors_panel,
}
CSV_ROWS = {"series": _series_csv, "top": _top_csv, "breakdown": _breakdown_csv}


# --- Views --------------------------------------------------------------------------------


@staff_required
def index(request):
    definitions, form, state = _state(request)
    context = {"form": form, "state": state, "definitions": definitions}
    for panel in PANELS.values():
        context.update(panel(state, definitions))
    template = "dashboard/index.html#dashboard" if request.htmx else "dashboard/index.html"
    return render(request, template, context)


@staff_required
def panel(request, name: str):
    if name == "identifiers":
        definitions, form, state = _state(request)
        context = identifiers_panel(state, definitions, contains=request.GET.get("identifier", "")[:256])
        return render(request, "dashboard/index.html#identifier-options", context)
    if name not in PANELS:
        raise Http404("no such panel")
    definitions, form, state = _state(request)
    context = {"state": state, **PANELS[name](state, definitions)}
    if request.GET.get("format") == "csv" and name in CSV_ROWS and context.get(name):
        return csv_response(rows=CSV_ROWS[name](state, context), filename=f"beacons-{name}.csv")
    return render(request, f"dashboard/index.html#{name}", context)


def table_html(headings: list[str], rows) -> str:
    """The "show as table" table: text escaped, numbers right-aligned with thousands
    separators. Built here because the template engine takes tens of ms for ~1,000 rows."""
    rows = [list(row) for row in rows]
    numeric = [bool(rows) and isinstance(value, int) for value in (rows[0] if rows else headings)]

    def cell(value) -> str:
        return f'<td class="num">{value:,}</td>' if isinstance(value, int) else f"<td>{escape(value)}</td>"

    number_class = ' class="num"'
    head = "".join(
        f'<th scope="col"{number_class if is_number else ""}>{escape(heading)}</th>'
        for heading, is_number in zip(headings, numeric)
    )
    body = "".join("<tr>" + "".join(cell(value) for value in row) + "</tr>" for row in rows)
    return mark_safe(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def csv_response(*, rows, filename: str) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    writer = csv.writer(response)
    for row in rows:
        writer.writerow([cell_neutralise(value) if isinstance(value, str) else value for value in row])
    return response
