"""The stats API's query: a validated question (site, metrics, period, dimensions, filters) answered
from ``beacons.queries`` with exactly the reads the dashboard's panels make.

Modelled on Plausible's Stats API v2. What the counters hold decides what can be asked: a
counter is kept per page and per dimension value, never per page *and* value, so a breakdown
takes one dimension (a time dimension, or one other), and a filter one value of one dimension
(``counters.counter_filter``), except a filter on the breakdown's own dimension, which only picks
its rows. Anything else is a ``QueryError`` naming the field, never a guessed figure.

A metric is one entry of ``METRICS``: its name → a function of the resolved ``Ask`` that returns
``{row key: Figure}`` (the row key is the tuple of dimension values, ``()`` without dimensions).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.utils.functional import cached_property

from beacons.counting.buckets import bucket_zone
from beacons.dimensions import BUILT_IN, InvalidDimension, property_dimension, property_key_check
from beacons.models import BeaconDefinition, Granularity, Site
from beacons.periods import EARLIEST_DAY, LATEST_DAYS_AHEAD, MAX_CUSTOM_DAYS, ComparedCut, Period, local_today
from beacons.queries import counters, event_types, visitors, visits
from beacons.registry import VisitSlug

G = Granularity
PAGE_VIEW = BeaconDefinition.Kind.PAGE_VIEW

# date_range names → the dashboard's presets (``beacons.periods``); "all" is computed per site.
DATE_RANGES = {"day": "today", "24h": "24h", "7d": "7d", "30d": "30d", "month": "month", "12mo": "12m", "all": "all"}
TIME_DIMENSIONS = {"time:hour": G.HOUR.value, "time:day": G.DAY.value, "time:month": G.MONTH.value}
PAGE, TYPE = "event:page", "event:type"
VISIT_PREFIX, PROPS_PREFIX = "visit:", "event:props:"
VISIT_DIMENSIONS = {f"{VISIT_PREFIX}{code}": code for code in BUILT_IN}
FILTER_OPERATORS = ("is",)
MAX_ROWS = 10_000  # the largest ``limit``, and the most buckets a time dimension may have
TYPES_LIMIT = 200  # types an event:type breakdown reads, as the dashboard lists at most


class QueryError(ValueError):
    """A question the API cannot answer: 400 with ``message`` naming ``field``."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.message, self.field = message, field


@dataclass(frozen=True)
class Figure:
    """One metric of one row: its ``value``, and with a comparison the ``previous`` period's value and
    the current value up to the comparison's cut (``compared``; None: all of it)."""

    value: float | None  # a count, or a rate (None: no visits to make one of)
    previous: float | None = None
    compared: float | None = None

    @property
    def change_percent(self) -> int | None:
        """The change on the previous period in whole percent, as the dashboard rounds it; None without one."""
        current = self.value if self.compared is None else self.compared
        if not self.previous or current is None:
            return None
        return round(100 * (current - self.previous) / self.previous)


def counter_dimension(name: str, *, field: str) -> str:
    """The counter dimension code of an API dimension name (``event:page`` → "", ``visit:source`` →
    "source", ``event:props:plan`` → "prop:plan")."""
    if name == PAGE:
        return ""
    if name in VISIT_DIMENSIONS:
        return VISIT_DIMENSIONS[name]
    if name.startswith(PROPS_PREFIX):
        try:
            return property_dimension(property_key_check(name.removeprefix(PROPS_PREFIX)))
        except InvalidDimension as problem:
            raise QueryError(f"{field}: {problem}", field) from None
    known = ", ".join([*TIME_DIMENSIONS, PAGE, TYPE, *VISIT_DIMENSIONS, f"{PROPS_PREFIX}<key>"])
    raise QueryError(f"{field}: {name[:64]!r} is not a dimension; use one of {known}", field)


def definition_checked(slug: str) -> BeaconDefinition:
    """The event type ``slug`` names; a ``QueryError`` when none is registered."""
    found = event_types.definition_of(slug=slug)
    if found is None:
        raise QueryError(f"event_type: no event type {slug[:64]!r} is registered", "event_type")
    return found


@dataclass(frozen=True)
class Filter:
    dimension: str  # the API name
    code: str  # the counter dimension ("" for pages)
    values: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Question:
    """A query as asked, checked for shape (the schema did types and lengths)."""

    site: Site
    metrics: list[str]
    date_range: str | tuple[date, date]
    dimensions: list[str]
    filters: list[tuple[str, str, list[str]]]
    order_by: list[tuple[str, str]] | None
    limit: int
    offset: int
    compare: bool
    event_type: str


class Ask:
    """A question resolved: the period, the type, the breakdown and the filter, each checked against
    what the counters hold. Metric functions read it."""

    def __init__(self, question: Question, *, now: datetime):
        self.question = question
        self.site = question.site
        self.now = now
        self.definition = definition_checked(question.event_type)
        self.period, self.range_name = self._period(question.date_range)
        self.granularity: str | None = None  # a time dimension's bucket size
        self.dimension: str | None = None  # the other dimension's API name
        self.dimension_code = ""  # its counter dimension ("" for event:page and event:type)
        self._dimensions(question.dimensions)
        self._buckets_check()
        self.row_filter: Filter | None = None  # a filter on the breakdown's own dimension: picks rows
        self.counter_filter: Filter | None = None  # a filter read from the value's counters
        self._filters(question.filters)
        self.compare = question.compare
        self.figures_read: dict[tuple[int, ...], dict[tuple, Figure]] = {}  # by the ids of the types read

    # --- resolving -----------------------------------------------------------------------

    def _period(self, date_range) -> tuple[Period, str]:
        if isinstance(date_range, tuple):
            first, last = date_range
            today = local_today(self.now)
            if last < first:
                raise QueryError("date_range: the first day is after the last", "date_range")
            if first < EARLIEST_DAY or last > today + timedelta(days=LATEST_DAYS_AHEAD):
                raise QueryError(
                    f"date_range: days from {EARLIEST_DAY.isoformat()} to {LATEST_DAYS_AHEAD} days after today",
                    "date_range",
                )
            if (last - first).days > MAX_CUSTOM_DAYS:
                raise QueryError(f"date_range: at most {MAX_CUSTOM_DAYS} days", "date_range")
            return Period.of("custom", now=self.now, start_day=first, end_day=last), "custom"
        preset = DATE_RANGES.get(date_range)
        if preset is None:
            names = ", ".join(DATE_RANGES)
            raise QueryError(
                f"date_range: {date_range[:32]!r} is not a period; use one of {names}, or [from, to]", "date_range"
            )
        if preset == "all":
            first = counters.first_counted(site=self.site)
            today = local_today(self.now)
            first_day = (
                max(first.astimezone(bucket_zone()).date(), today - timedelta(days=MAX_CUSTOM_DAYS)) if first else today
            )
            return Period.of("custom", now=self.now, start_day=min(first_day, today), end_day=today), "all"
        return Period.of(preset, now=self.now), date_range

    def _dimensions(self, names: list[str]) -> None:
        if len(set(names)) != len(names):
            raise QueryError("dimensions: a dimension is named twice", "dimensions")
        for i, name in enumerate(names):
            field = f"dimensions.{i}"
            if name in TIME_DIMENSIONS:
                if self.granularity:
                    raise QueryError(f"{field}: one time dimension at a time", field)
                self.granularity = TIME_DIMENSIONS[name]
            else:
                code = counter_dimension(name, field=field) if name != TYPE else ""
                if self.dimension:
                    raise QueryError(
                        f"{field}: {self.dimension} and {name} together are not available: counters are kept per "
                        "page and per dimension value, not per combination; ask one of them",
                        field,
                    )
                self.dimension, self.dimension_code = name, code
        if self.granularity and self.dimension:
            raise QueryError(
                f"dimensions: a time dimension with {self.dimension} is not available yet; ask the breakdown with "
                f"a filter on one value ({self.dimension} is […]) and a time dimension instead",
                "dimensions",
            )

    def _buckets_check(self) -> None:
        """A time dimension has at most ``MAX_ROWS`` buckets (estimated from the period's length). Only
        hours can be more: no period has more than ``MAX_CUSTOM_DAYS`` + 1 days."""
        if self.granularity == G.HOUR:
            if (self.period.chart_end(G.HOUR) - self.period.start) / timedelta(hours=1) > MAX_ROWS:
                raise QueryError(
                    f"dimensions: hours of this period are more than {MAX_ROWS:,} rows; use a coarser one", "dimensions"
                )

    def _filters(self, filters) -> None:
        for i, (operator, name, values) in enumerate(filters):
            field = f"filters.{i}"
            if operator not in FILTER_OPERATORS:
                raise QueryError(f"{field}: operator {operator[:16]!r} is not available; use “is”", field)
            if name == TYPE or name in TIME_DIMENSIONS:
                hint = " (ask one type with event_type)" if name == TYPE else ""
                raise QueryError(f"{field}: filtering on {name} is not available{hint}", field)
            code = counter_dimension(name, field=f"{field}.1")
            if not values:
                raise QueryError(f"{field}: name at least one value", field)
            found = Filter(name, code, tuple(values))
            if name == self.dimension:
                if self.row_filter:
                    raise QueryError(f"{field}: one filter per dimension", field)
                self.row_filter = found
                continue
            if self.counter_filter or self.dimension:
                other = self.dimension or self.counter_filter.dimension
                raise QueryError(
                    f"{field}: {name} with {other} is not available: counters hold one dimension value at a time, "
                    "not combinations",
                    field,
                )
            if len(values) != 1:
                raise QueryError(f"{field}: one value at a time (counters do not add values up)", field)
            self.counter_filter = found

    # --- what the metric functions read ------------------------------------------------------

    @property
    def by_type(self) -> bool:
        return self.dimension == TYPE

    @cached_property
    def listed_types(self) -> list[BeaconDefinition]:
        return event_types.definitions_listed(limit=TYPES_LIMIT)

    @cached_property
    def page_view_types(self) -> list[BeaconDefinition]:
        return event_types.definitions_listed(limit=TYPES_LIMIT, kind=PAGE_VIEW)

    @property
    def reads_dimension_rows(self) -> bool:
        """Whether the counter figures read a dimension's rows (a breakdown by a visit dimension or a
        property, or a filter on one), which are kept per day and coarser, not per hour."""
        return bool(self.dimension_code or (self.counter_filter and self.counter_filter.code))

    def comparison(self, definitions: list[BeaconDefinition]) -> ComparedCut:
        """What the change compares, as the dashboard's KPI card does for these types: a running
        period is cut at the same elapsed point, in whole buckets of the rows read (a dimension's
        rows: whole days, or a day's partial rows would be read whole on one side only)."""
        kept = [
            d.dimension_granularity_codes if self.reads_dimension_rows else d.granularity_codes for d in definitions
        ]
        common = [g for g in kept[0] if all(g in codes for codes in kept)]
        retention = min(d.fine_retention_days for d in definitions)
        return self.period.comparison(granularity_codes=common, fine_retention_days=retention)

    def reads(self, definitions: list[BeaconDefinition]) -> tuple[str, str]:
        """(dimension, value) the totals and series of ``definitions`` read: the filter's counters, or the total."""
        if self.counter_filter is None:
            return "", ""
        chosen = self.counter_filter
        for definition in definitions:
            try:
                if chosen.code:
                    read = counters.counter_filter(definition=definition, dimension=chosen.code, value=chosen.values[0])
                else:
                    read = counters.counter_filter(definition=definition, identifier=chosen.values[0])
            except counters.DimensionNotKept:
                raise QueryError(f"filters: {definition.slug} keeps no {chosen.dimension} counts", "filters") from None
        return read.dimension, read.value


# --- the counter metrics --------------------------------------------------------------------------


def _time_label(moment: datetime, granularity: str) -> str:
    local = moment.astimezone(bucket_zone())
    if granularity == G.HOUR:
        return local.isoformat()
    return local.date().isoformat()


def counter_figures(ask: Ask, definitions: list[BeaconDefinition]) -> dict[tuple, Figure]:
    """Hits of ``definitions`` for every row of ``ask``: the same reads, with the same arguments, as the
    dashboard's KPI card (no dimension), main chart (time), busiest pages (event:page), breakdown
    panels (visit:…, event:props:…) and type choice (event:type, one KPI card per type)."""
    if not definitions:  # no type of the kind asked for (no page view type): nothing is counted
        if ask.dimension or ask.granularity:
            return {}
        return {(): Figure(0, previous=0) if ask.compare else Figure(0)}
    read = tuple(d.pk for d in definitions)
    if read not in ask.figures_read:  # events and pageviews of page views read the same counters once
        ask.figures_read[read] = _counter_figures(ask, definitions)
    return ask.figures_read[read]


def _counter_figures(ask: Ask, definitions: list[BeaconDefinition]) -> dict[tuple, Figure]:
    if ask.by_type:
        figures = {(d.slug,): _total_figure(ask, [d]) for d in definitions}
        return {key: figure for key, figure in figures.items() if figure.value or figure.previous}
    if ask.granularity:
        return _series_figures(ask, definitions)
    if ask.dimension:
        return _breakdown_figures(ask, definitions)
    return {(): _total_figure(ask, definitions)}


def _total_figure(ask: Ask, definitions: list[BeaconDefinition]) -> Figure:
    dimension, value = ask.reads(definitions)
    cut = ask.comparison(definitions)
    period = ask.period
    totals = counters.totals(
        site=ask.site,
        definitions=definitions,
        start=period.start,
        end=period.totals_end,
        identifier=value,
        dimension=dimension,
        previous_period=(cut.previous_start, cut.previous_end) if ask.compare else (period.start, period.start),
        compared_end=cut.current_end if ask.compare else None,
        cut_granularity=cut.granularity,
    )
    if not ask.compare:
        return Figure(totals.current)
    return Figure(totals.current, totals.previous, totals.compared)


def _series_figures(ask: Ask, definitions: list[BeaconDefinition]) -> dict[tuple, Figure]:
    dimension, value = ask.reads(definitions)
    granularity, period = ask.granularity, ask.period
    for definition in definitions:
        kept = definition.dimension_granularity_codes if dimension else definition.granularity_codes
        if granularity not in kept:
            what = f"{ask.counter_filter.dimension} counts" if dimension else "counts"
            raise QueryError(f"dimensions: {definition.slug} keeps no {what} per {G(granularity).label}", "dimensions")
    end = period.chart_end(granularity)
    reads = {"site": ask.site, "definitions": definitions, "granularity": granularity, "identifier": value}
    points = counters.series(**reads, start=period.start, end=end, dimension=dimension)
    previous = None
    if ask.compare:
        previous_start, previous_end = period.previous_period
        previous = counters.series(**reads, start=previous_start, end=previous_end, dimension=dimension)
    return {
        (_time_label(moment, granularity),): Figure(
            count, None if previous is None else (previous[i][1] if i < len(previous) else 0)
        )
        for i, (moment, count) in enumerate(points)
    }


def _breakdown_figures(ask: Ask, definitions: list[BeaconDefinition]) -> dict[tuple, Figure]:
    code = ask.dimension_code
    for definition in definitions:
        if code and code not in definition.dimension_codes:
            raise QueryError(f"dimensions: {definition.slug} keeps no {ask.dimension} counts", "dimensions")
    cut = ask.comparison(definitions)
    rows = counters.identifiers_compared(
        site=ask.site,
        definitions=definitions,
        start=ask.period.start,
        end=ask.period.totals_end,
        previous_period=(cut.previous_start, cut.previous_end) if ask.compare else None,
        compared_end=cut.current_end,
        cut_granularity=cut.granularity,
        order="count",
        limit=None,
        dimension=code,
    )
    wanted = set(ask.row_filter.values) if ask.row_filter else None
    return {
        (row.identifier,): Figure(row.count, row.previous, row.compared)
        for row in rows
        if wanted is None or row.identifier in wanted
    }


def _counter_metric(types: Callable[[Ask], list[BeaconDefinition]]) -> Callable[[Ask], dict[tuple, Figure]]:
    return lambda ask: counter_figures(ask, types(ask))


METRICS: dict[str, Callable[[Ask], dict[tuple, Figure]]] = {
    # Hits of the chosen event type (every type, one row each, by event:type).
    "events": _counter_metric(lambda ask: ask.listed_types if ask.by_type else [ask.definition]),
    # Hits of the page view types.
    "pageviews": _counter_metric(
        lambda ask: [d for d in ask.listed_types if d.kind == PAGE_VIEW] if ask.by_type else ask.page_view_types
    ),
}


def _not_by_type(ask: Ask, name: str) -> None:
    if ask.by_type:
        raise QueryError(f"dimensions: {name} are of page views, not of each event type; drop event:type", "dimensions")


def _visitor_figures(ask: Ask) -> dict[tuple, Figure]:
    """Unique visitors of the page view types, as the dashboard reads them: over the period (its
    compared part and the period before), per time bucket (each bucket's own figure: buckets do not
    add up to the period's), or per page or dimension value (the rows the hits of that breakdown have)."""
    _not_by_type(ask, "visitors")
    types = ask.page_view_types
    try:
        if ask.granularity:
            return _visitor_series_figures(ask, types)
        if ask.dimension:
            return _visitor_breakdown_figures(ask, types)
        return _visitor_total_figure(ask, types)
    except (visitors.SketchesNotKept, counters.DimensionNotKept) as problem:
        raise QueryError(f"metrics: visitors: {problem}", "metrics") from None


def _visitor_total_figure(ask: Ask, types: list[BeaconDefinition]) -> dict[tuple, Figure]:
    """As the dashboard's visitor card: a running period compared to the same elapsed whole buckets
    of the sketches (hours for the site, days for a page or value)."""
    dimension, value = ask.reads(types)
    kept = visitors.sketch_granularities(types, per_value=bool(value), dimension=dimension)
    cut, period = ask.period.comparison(granularity_codes=kept), ask.period
    scope = {"site": ask.site, "definitions": types, "identifier": value, "dimension": dimension}
    now = visitors.visitors(start=period.start, end=period.totals_end, **scope).visitors
    if not ask.compare:
        return {(): Figure(now)}
    compared = visitors.visitors(start=period.start, end=cut.current_end or period.totals_end, **scope).visitors
    before = visitors.visitors(start=cut.previous_start, end=cut.previous_end, **scope).visitors
    return {(): Figure(now, before, compared)}


def _visitor_series_figures(ask: Ask, types: list[BeaconDefinition]) -> dict[tuple, Figure]:
    dimension, value = ask.reads(types)
    granularity, period = ask.granularity, ask.period
    scope = {"site": ask.site, "definitions": types, "granularity": granularity, "identifier": value}
    end = period.chart_end(granularity)
    points = visitors.visitors_series(**scope, start=period.start, end=end, dimension=dimension)
    previous = None
    if ask.compare:
        previous_start, previous_end = period.previous_period
        previous = visitors.visitors_series(**scope, start=previous_start, end=previous_end, dimension=dimension)
    before = [None if count is None else count.visitors for _, count in previous or []]
    return {
        (_time_label(moment, granularity),): Figure(
            None if count is None else count.visitors,
            None if previous is None else (before[i] if i < len(before) else 0),
        )
        for i, (moment, count) in enumerate(points)
    }


def _visitor_breakdown_figures(ask: Ask, types: list[BeaconDefinition]) -> dict[tuple, Figure]:
    """Visitors of each row the page views' hits have in the same breakdown (``counter_figures``), with
    the period before and the compared part read as for the total."""
    code = ask.dimension_code
    values = [key[0] for key in counter_figures(ask, types)]
    # Values keep visitors per day: a running period is compared up to the same elapsed whole days.
    kept = visitors.sketch_granularities(types, per_value=True, dimension=code)
    cut, period = ask.period.comparison(granularity_codes=kept), ask.period
    scope = {"site": ask.site, "definitions": types, "values": values, "dimension": code}
    now = visitors.visitors_of_values(start=period.start, end=period.totals_end, **scope)
    if not ask.compare:
        return {(value,): Figure(now[value].visitors) for value in values}
    compared = visitors.visitors_of_values(start=period.start, end=cut.current_end or period.totals_end, **scope)
    before = visitors.visitors_of_values(start=cut.previous_start, end=cut.previous_end, **scope)
    return {(v,): Figure(now[v].visitors, before[v].visitors, compared[v].visitors) for v in values}


def _visit_metric(name: str, scale: float = 1) -> Callable[[Ask], dict[tuple, Figure]]:
    """A visit metric (``queries.visits``: visits, bounce_rate, duration, views_per_visit) of the visits
    that started in the period (with a page filter, or by event:page: that entered at the page), as the
    dashboard's cards, chart and entry pages. Rates are kept unrounded (the change is of the exact
    figures, as on the dashboard); a bucket's or a row's rate is of its own counts."""

    def scaled(figures: visits.VisitFigures | None) -> float | int | None:
        figure = None if figures is None else figures.metric(name)
        return None if figure is None else figure * scale

    def figures(ask: Ask) -> dict[tuple, Figure]:
        _not_by_type(ask, "visit metrics")
        dimension, value = ask.reads(ask.page_view_types)
        _visit_dimension_check(dimension, field="filters", granularity=ask.granularity or "")
        if ask.granularity:
            return _visit_series_figures(ask, dimension=dimension, value=value, scaled=scaled)
        cut, period = ask.comparison(ask.page_view_types), ask.period
        compare = {
            "previous_period": (cut.previous_start, cut.previous_end) if ask.compare else None,
            "compared_end": cut.current_end if ask.compare else None,
            "cut_granularity": cut.granularity,
        }
        if ask.dimension:
            return _visit_breakdown_figures(ask, compare=compare, scaled=scaled)
        found = visits.visits_totals(
            site=ask.site, start=period.start, end=period.totals_end, identifier=value, dimension=dimension, **compare
        )
        if not ask.compare:
            return {(): Figure(scaled(found.current))}
        return {(): Figure(scaled(found.current), scaled(found.previous), scaled(found.compared))}

    return figures


def _visit_series_figures(ask: Ask, *, dimension: str, value: str, scaled) -> dict[tuple, Figure]:
    granularity, period = ask.granularity, ask.period
    scope = {"site": ask.site, "granularity": granularity, "identifier": value, "dimension": dimension}
    points = visits.visits_series(**scope, start=period.start, end=period.chart_end(granularity))
    previous = None
    if ask.compare:
        previous_start, previous_end = period.previous_period
        previous = visits.visits_series(**scope, start=previous_start, end=previous_end)
    none = visits.NO_VISITS
    return {
        (_time_label(moment, granularity),): Figure(
            scaled(figures), None if previous is None else scaled(previous[i][1] if i < len(previous) else none)
        )
        for i, (moment, figures) in enumerate(points)
    }


def _visit_breakdown_figures(ask: Ask, *, compare: dict, scaled) -> dict[tuple, Figure]:
    code = ask.dimension_code
    _visit_dimension_check(code, field="dimensions")
    period = ask.period
    rows = visits.visits_by_entry(
        site=ask.site, start=period.start, end=period.totals_end, dimension=code, limit=None, **compare
    )
    wanted = set(ask.row_filter.values) if ask.row_filter else None
    rows = [row for row in rows if wanted is None or row.identifier in wanted]
    if not ask.compare:
        return {(row.identifier,): Figure(scaled(row.current)) for row in rows}
    return {(row.identifier,): Figure(scaled(row.current), scaled(row.previous), scaled(row.compared)) for row in rows}


def _visit_dimension_check(dimension: str, *, field: str, granularity: str = "") -> None:
    """Visits are kept by entry page and by each built-in dimension of the entry, per hour and coarser
    (a dimension's values: per day and coarser); anything else is a ``QueryError``, not a 0."""
    kept = visits.visit_definitions()[VisitSlug.VISITS]
    if dimension and dimension not in kept.dimension_codes:
        raise QueryError(f"{field}: visits are kept by entry page and built-in dimensions, not by {dimension}", field)
    codes = kept.dimension_granularity_codes if dimension else kept.granularity_codes
    if granularity and granularity not in codes:
        what = "visits of a dimension value" if dimension else "visits"
        raise QueryError(f"dimensions: {what} are not kept per {G(granularity).label}", "dimensions")


METRICS["visitors"] = _visitor_figures
METRICS["visits"] = _visit_metric("visits")
METRICS["bounce_rate"] = _visit_metric("bounce_rate", 100)  # percent, as Plausible answers it
METRICS["visit_duration"] = _visit_metric("duration")  # seconds
METRICS["views_per_visit"] = _visit_metric("views_per_visit")


def metrics_check(names: list[str]) -> None:
    if len(set(names)) != len(names):
        raise QueryError("metrics: a metric is named twice", "metrics")
    for i, name in enumerate(names):
        if name not in METRICS:
            raise QueryError(
                f"metrics.{i}: {name[:64]!r} is not a metric; use one of {', '.join(METRICS)}", f"metrics.{i}"
            )


# --- the answer ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    dimensions: tuple
    figures: list[Figure]
    position: int  # the order the reads gave: oldest first for a time dimension


def _metric_key(at: int) -> Callable[[Row], tuple]:
    """A metric's order; a figure that is None (a rate without visits, visitors the dates cut) ranks below 0."""
    return lambda row: (0, 0) if row.figures[at].value is None else (1, row.figures[at].value)


def _dimension_key(at: int) -> Callable[[Row], str]:
    return lambda row: row.dimensions[at]


def _sorted(ask: Ask, rows: list[Row]) -> list[Row]:
    """Rows in ``order_by`` (metrics and dimensions of the query, asc or desc); by default a time
    dimension oldest first, else the first metric most first. Ties by the dimension values (time: oldest first)."""
    question = ask.question
    names, dimensions = question.metrics, question.dimensions
    order_by = question.order_by or ([(dimensions[0], "asc")] if ask.granularity else [(names[0], "desc")])
    keys = []
    for i, (name, direction) in enumerate(order_by):
        if name in names:
            keys.append((_metric_key(names.index(name)), direction))
        elif name in TIME_DIMENSIONS and name in dimensions:
            keys.append((lambda row: row.position, direction))
        elif name in dimensions:
            keys.append((_dimension_key(dimensions.index(name)), direction))
        else:
            field = f"order_by.{i}"
            raise QueryError(f"{field}: {name[:64]!r} is neither a metric nor a dimension of this query", field)
    rows = sorted(rows, key=lambda row: row.position if ask.granularity else row.dimensions)
    for key, direction in reversed(keys):
        rows.sort(key=key, reverse=direction == "desc")
    return rows


def query_answer(question: Question, *, now: datetime) -> dict:
    """The API's answer to ``question``: {"results": [...], "meta": {...}, "query": {...}}. Raises
    ``QueryError`` for anything the counters cannot answer."""
    metrics_check(question.metrics)
    ask = Ask(question, now=now)
    by_metric = [METRICS[name](ask) for name in question.metrics]
    keys = list(dict.fromkeys(key for figures in by_metric for key in figures))
    missing = Figure(0, 0 if ask.compare else None)
    rows = _sorted(ask, [Row(key, [f.get(key, missing) for f in by_metric], i) for i, key in enumerate(keys)])
    page = rows[question.offset : question.offset + question.limit]
    results = []
    for row in page:
        result = {"dimensions": list(row.dimensions), "metrics": [_shown(f.value) for f in row.figures]}
        if ask.compare:
            result["comparison"] = {
                "dimensions": list(row.dimensions),
                "metrics": [_shown(f.previous) for f in row.figures],
                "change": [f.change_percent for f in row.figures],
            }
        results.append(result)
    return {"results": results, "meta": _meta(ask, total_rows=len(rows)), "query": _query_echo(ask)}


def _shown(value: float | int | None) -> float | int | None:
    """A figure as answered: counts whole, rates to two decimals."""
    return round(value, 2) if isinstance(value, float) else value


def _iso(moment: datetime) -> str:
    return moment.astimezone(bucket_zone()).isoformat()


def _meta(ask: Ask, *, total_rows: int) -> dict:
    meta = {"total_rows": total_rows, "time_zone": bucket_zone().key}
    if ask.compare:
        cut = ask.comparison([ask.definition])  # of the event type: each type of an event:type breakdown has its own
        meta["comparison"] = {
            "start": _iso(cut.previous_start),
            "end": _iso(cut.previous_end),
            "current_end": _iso(cut.current_end) if cut.current_end else None,
            "read_to": G(cut.granularity).label,
        }
    return meta


def _query_echo(ask: Ask) -> dict:
    """The query as answered, with the period actually counted: [start, end) in the bucket time zone,
    and where counting stops (the end of the current hour while the period runs)."""
    question, period = ask.question, ask.period
    date_range = question.date_range
    counted_end = period.chart_end(ask.granularity) if ask.granularity else period.totals_end
    return {
        "site": ask.site.domain,
        "metrics": question.metrics,
        "date_range": [d.isoformat() for d in date_range] if isinstance(date_range, tuple) else date_range,
        "period": {
            "name": ask.range_name,
            "start": _iso(period.start),
            "end": _iso(period.end),
            "counted_to": _iso(counted_end),
            "running": period.running,
            "time_zone": bucket_zone().key,
        },
        "dimensions": question.dimensions,
        "filters": [list(f) for f in question.filters],
        "order_by": [list(o) for o in question.order_by] if question.order_by else None,
        "limit": question.limit,
        "offset": question.offset,
        "include": {"comparison": "previous_period" if ask.compare else None},
        "event_type": ask.definition.slug,
    }
