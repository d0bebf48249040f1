"""Staff pages for grouped JavaScript errors: the list, one group's page, and status changes.

``/dashboard/errors/`` lists groups filtered by GET parameters (each state has a URL; a
filter change asks for the same URL with htmx and gets the ``results`` partial back).
``/dashboard/errors/<pk>/`` shows one group; its Resolve / Ignore / Reopen buttons POST to
``/dashboard/errors/<pk>/status/`` and get the ``status`` partial back. Data comes only
from ``beacons.queries``; status changes go through ``beacons.errors.grouping``.
"""

from dataclasses import dataclass
from datetime import timedelta

from django import forms
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from beacons.errors.grouping import error_group_status_set
from beacons.errors.handlers import alert_audience, alert_emails_on
from beacons.models import IDENTIFIER_MAX_LENGTH, BeaconDefinition, ErrorGroup, Granularity
from beacons.queries import counters, error_groups, event_types
from beacons.useragents import browser_label

from . import charts
from .permissions import CHANGE_ERRORS, VIEW_ERRORS, permission_required

PER_PAGE = 50
OCCURRENCES_SHOWN = 50
SPARK_HOURS = 24
SPARK_WIDTH, SPARK_HEIGHT = 96, 24
PAGE_SUGGESTION_DAYS = 30
# The spans both pages offer (the list adds "Any time"): key in the URL, length, in words.
RANGES = [
    ("24h", timedelta(hours=24), "24 hours"),
    ("7d", timedelta(days=7), "7 days"),
    ("30d", timedelta(days=30), "30 days"),
]
RANGE_LENGTHS = {key: length for key, length, _ in RANGES}
ERROR_TYPES_SHOWN = 10  # error types whose alert audience is shown (and whose pages are suggested), however many exist


class ErrorFilterForm(forms.Form):
    status = forms.ChoiceField(
        choices=[*ErrorGroup.Status.choices, ("all", "Any status")], required=False, initial="unresolved"
    )
    page = forms.CharField(
        required=False,
        max_length=IDENTIFIER_MAX_LENGTH,
        widget=forms.TextInput(
            attrs={"type": "search", "list": "error-pages", "placeholder": "All pages", "autocomplete": "off"}
        ),
    )
    range = forms.ChoiceField(
        label="Seen in",
        choices=[*((key, f"Last {words}") for key, _, words in RANGES), ("all", "Any time")],
        required=False,
        initial="all",
    )
    order = forms.ChoiceField(
        label="Sort by",
        choices=[("last_seen", "Last seen"), ("count", "Occurrences"), ("first_seen", "First seen")],
        required=False,
        initial="last_seen",
    )


def _filters(params) -> tuple[ErrorFilterForm, dict]:
    """Clean filter values and a form showing them; a bad value falls back to its default alone."""
    checked = ErrorFilterForm(params)
    checked.is_valid()
    values = {}
    for name, field in checked.fields.items():
        value = checked.cleaned_data.get(name) if name not in checked.errors else None
        values[name] = value or field.initial or ""
    return ErrorFilterForm(initial=values), values


@dataclass(frozen=True)
class HourlyBars:
    """A group's last 24 hours as a bar sparkline, drawn as inline SVG by the template (numbers only)."""

    total: int
    bars: list[tuple[float, float, float]]  # (x, y, height) per hour
    bar_width: float


def hourly_bars(points: list[tuple[object, int]]) -> HourlyBars:
    peak = max((count for _, count in points), default=0) or 1
    step = SPARK_WIDTH / max(len(points), 1)
    bars = []
    for index, (_, count) in enumerate(points):
        height = 0 if not count else max(1.5, SPARK_HEIGHT * count / peak)
        bars.append((round(index * step, 2), round(SPARK_HEIGHT - height, 2), round(height, 2)))
    return HourlyBars(sum(count for _, count in points), bars, round(max(step - 1, 1), 2))


@permission_required(VIEW_ERRORS)
def error_list(request, site):
    form, values = _filters(request.GET)
    now = timezone.now()
    span = RANGE_LENGTHS.get(values["range"])  # None: any time
    groups = error_groups.error_groups_filtered(
        site=site,
        status="" if values["status"] == "all" else values["status"],
        page=values["page"].strip(),
        since=now - span if span else None,
        order=values["order"],
    )
    page = Paginator(groups, PER_PAGE).get_page(request.GET.get("p"))
    hourly = error_groups.error_hourly(
        group_ids=[group.pk for group in page], start=now - timedelta(hours=SPARK_HOURS - 1), end=now
    )
    rows = [(group, hourly_bars(hourly[group.pk])) for group in page]
    query = request.GET.copy()
    query.pop("p", None)
    context = {"form": form, "values": values, "page_obj": page, "rows": rows, "query": query.urlencode()}
    if request.htmx and request.htmx.target == "error-results":
        return render(request, "dashboard/errors/list.html#results", context)
    error_types = event_types.definitions_listed(kind=BeaconDefinition.Kind.ERROR, limit=ERROR_TYPES_SHOWN)
    context["page_suggestions"] = (
        counters.top_identifiers(
            site=site, definitions=error_types, start=now - timedelta(days=PAGE_SUGGESTION_DAYS), end=now, limit=30
        )
        if error_types
        else []
    )
    context["audiences"] = [(definition, alert_audience(definition=definition)) for definition in error_types]
    context["emails_on"] = alert_emails_on()
    return render(request, "dashboard/errors/list.html", context)


def _occurrence_rows(group: ErrorGroup) -> list[dict]:
    rows = []
    for event in error_groups.error_occurrences(group=group, limit=OCCURRENCES_SHOWN):
        meta = event.meta
        rows.append(
            {
                "event": event,
                "message": _as_text(meta.get("message")),
                "stack": _as_text(meta.get("stack")),
                "where": ":".join(_as_text(meta.get(key)) for key in ("source", "line", "col") if meta.get(key)),
                "browser": browser_label(event.user_agent),
            }
        )
    return rows


def _as_text(value) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _group_or_404(site, pk: int, related: tuple[str, ...] = ("definition",)) -> ErrorGroup:
    group = error_groups.error_group_of_site(site=site, pk=pk, related=related)
    if group is None:
        raise Http404("No such error on this site.")
    return group


@permission_required(VIEW_ERRORS)
def error_detail(request, pk: int, site):
    group = _group_or_404(site, pk, ("definition", "status_changed_by"))
    range_key = request.GET.get("range") if request.GET.get("range") in RANGE_LENGTHS else "7d"
    now = timezone.now()
    points = error_groups.error_hourly(group_ids=[group.pk], start=now - RANGE_LENGTHS[range_key], end=now)[group.pk]
    context = {
        "group": group,
        "range_key": range_key,
        "ranges": [(key, words) for key, _, words in RANGES],
        "figure": charts.series_figure(name="Occurrences", granularity=Granularity.HOUR, points=points),
        "in_range": sum(count for _, count in points),
        "pages": error_groups.error_pages(group=group, limit=20),
        "browsers": error_groups.error_browsers(group=group, limit=10),
        "occurrences": _occurrence_rows(group),
        "audience": alert_audience(definition=group.definition),
        "emails_on": alert_emails_on(),
    }
    return render(request, "dashboard/errors/detail.html", context)


@require_POST
@permission_required(CHANGE_ERRORS)
def error_status(request, pk: int, site):
    group = _group_or_404(site, pk)
    status = request.POST.get("status", "")
    if status not in ErrorGroup.Status.values:
        return HttpResponseBadRequest("status must be unresolved, resolved or ignored", content_type="text/plain")
    error_group_status_set(group=group, status=status, user=request.user)
    if request.htmx:
        return render(request, "dashboard/errors/detail.html#status", {"group": group})
    return redirect(f"{reverse('dashboard:error_detail', args=[group.pk])}?{request.site_choice.query}")
