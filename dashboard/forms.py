"""The dashboard's filter form and the view state it resolves to.

Every control is a GET parameter, so each state of the dashboard has a URL. Bad or stale
values (a typo in a copied link, a deleted event type) never fail: each falls back to
its default on its own and the rest of the state is kept.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django import forms
from django.forms.utils import flatatt
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join

from beacons.counting.buckets import bucket_after, bucket_before, bucket_ceiling, bucket_zone, is_aligned
from beacons.dimensions import VALUE_MAX_LENGTH, InvalidDimension, dimension_check, dimension_label
from beacons.models import IDENTIFIER_MAX_LENGTH, BeaconDefinition, Granularity, Site, dimensions_split
from beacons.periods import DEFAULT_PRESET, PERIOD_GRANULARITIES, Period, preset_range
from beacons.queries.counters import DimensionNotKept, counter_filter

from .periods import comparison_label, cut_comparison_label, period_label

G = Granularity
PRESETS = [
    ("today", "Today"),
    ("24h", "Last 24 hours"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
    ("month", "This month"),
    ("12m", "Last 12 months"),
    ("custom", "Custom dates"),
]
PRESET_LABELS = dict(PRESETS)
CHART_GRANULARITIES = PERIOD_GRANULARITIES  # finest first
GRANULARITY_NOUNS = {code: G(code).label for code in CHART_GRANULARITIES}  # "hour", "day", …
GRANULARITY_CHOICES = [("", "Automatic"), *((code, noun.capitalize()) for code, noun in GRANULARITY_NOUNS.items())]
MAX_BUCKETS = 800  # more points than this is unreadable on a chart: use a coarser bucket
# What a period still running is called in words, and how far back its comparison lies
# (the same span, in whole units of the local calendar).
RUNNING_NOTES = {
    "today": "so far",
    "7d": "today so far",
    "30d": "today so far",
    "month": "so far",
    "12m": "this month so far and the 11 whole months before",
    "custom": "today so far",
}
TOP_SORTS = [("views", "Most views"), ("change", "Biggest change")]
TOP_SIZES = [10, 50, 100]  # rows of the busiest pages; the first is the default
TOP_MAX_PAGE = 10_000
SCALES = [("stacked", "Stacked"), ("own", "Each type on its own scale")]
# The tabs of the breakdown panels: (dimension code, tab label), the first one the default.
SOURCE_TABS = [("source", "Sources"), ("utm_campaign", "Campaigns"), ("utm_medium", "Media")]
DEVICE_TABS = [("browser", "Browsers"), ("os", "Operating systems"), ("device", "Device types")]
# The busiest-pages tabs of a page-view type: page views, visits by entry page, exits by page.
PAGE_TABS = [("views", "Pages"), ("entry", "Entry pages"), ("exit", "Exit pages")]
# What the main chart shows (a KPI card's link): the type's count, or a visitor or visit metric
# of a page-view type; (parameter value, label).
METRICS = [
    ("views", "Total"),
    ("visitors", "Unique visitors"),
    ("visits", "Visits"),
    ("views_per_visit", "Views per visit"),
    ("bounce_rate", "Bounce rate"),
    ("visit_duration", "Visit duration"),
]
METRIC_LABELS = dict(METRICS)


class TypeSelect(forms.Select):
    """The event type select, its options built here: the template engine takes tens of ms for
    the up to 200 type choices (names escaped as everywhere)."""

    def render(self, name, value, attrs=None, renderer=None):
        chosen = {str(v) for v in self.format_value(value)}
        options = format_html_join(
            "",
            '<option value="{}"{}>{}</option>',
            ((choice, " selected" if str(choice) in chosen else "", label) for choice, label in self.choices),
        )
        return format_html(
            '<select name="{}"{}>{}</select>', name, flatatt(self.build_attrs(self.attrs, attrs)), options
        )


class FilterForm(forms.Form):
    type = forms.ChoiceField(label="Event type", required=False, widget=TypeSelect)
    identifier = forms.CharField(required=False, max_length=IDENTIFIER_MAX_LENGTH, strip=True)  # input in the template
    range = forms.ChoiceField(label="Dates", choices=PRESETS, required=False)
    start = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    granularity = forms.ChoiceField(label="One point per", choices=GRANULARITY_CHOICES, required=False)
    compare = forms.BooleanField(label="Compare with the period before", required=False)
    # Not controls of the form: the busiest pages' and the breakdown's links set these.
    sort = forms.ChoiceField(choices=TOP_SORTS, required=False)
    rows = forms.TypedChoiceField(choices=[(size, size) for size in TOP_SIZES], coerce=int, required=False)
    page = forms.IntegerField(min_value=1, max_value=TOP_MAX_PAGE, required=False)
    scale = forms.ChoiceField(choices=SCALES, required=False)
    sources = forms.ChoiceField(label="Sources tab", choices=SOURCE_TABS, required=False)
    devices = forms.ChoiceField(label="Devices tab", choices=DEVICE_TABS, required=False)
    pages = forms.ChoiceField(label="Pages tab", choices=PAGE_TABS, required=False)
    metric = forms.ChoiceField(label="Chart", choices=METRICS, required=False)
    # Read only when the type declares it (``_property_tab``) or when it names a dimension
    # (``clean_dim``): their lengths are bounded by those rules.
    property = forms.CharField(label="Property tab", required=False)
    dim = forms.CharField(label="Filter dimension", required=False)
    value = forms.CharField(label="Filter value", max_length=VALUE_MAX_LENGTH, required=False)

    def clean_dim(self) -> str:
        try:
            return dimension_check(self.cleaned_data["dim"])
        except InvalidDimension as problem:
            raise forms.ValidationError(str(problem)) from None

    def __init__(self, data=None, *, definitions: list[BeaconDefinition], granularities: list[str] | None = None):
        super().__init__(data)
        self.fields["type"].choices = [(d.slug, d.name) for d in definitions]
        if granularities is not None:  # only the point sizes these dates can show
            self.fields["granularity"].choices = [
                (code, noun) for code, noun in GRANULARITY_CHOICES if not code or code in granularities
            ]

    def valid_values(self) -> dict:
        """The cleaned value of every field that validated; invalid ones are left out."""
        self.is_valid()
        return {name: value for name, value in self.cleaned_data.items() if name not in self.errors}


@dataclass(frozen=True, kw_only=True)
class DashboardState:
    """What the dashboard shows: one event type (optionally one identifier) over [start, end).

    ``start`` and ``end`` are exactly the chosen dates, whatever the point size: the totals
    cover them, and a bucket only partly inside them is counted (and drawn) as a part.
    """

    definition: BeaconDefinition | None
    identifier: str
    preset: str
    granularity: str
    chosen_granularity: str  # "" when automatic
    start: datetime  # aware UTC, the first moment of the chosen dates
    end: datetime  # exclusive
    now: datetime
    compare: bool
    sort: str  # "views" or "change"
    rows: int
    page: int
    scale: str  # "stacked" or "own"
    notice: str = ""
    granularities: tuple[str, ...] = ()  # the point sizes offered for these dates
    site: Site | None = None  # whose counters (None only in tests of the state alone)
    dimension: str = ""  # the dimension filter ("" for none): every visitor with ``value`` of it
    value: str = ""
    pages_ignored: bool  # a page and a dimension value were asked for: the value over all pages
    sources_tab: str
    devices_tab: str
    property_tab: str = ""  # a declared property key of the type ("" when it declares none)
    pages_tab: str  # "views", or for page-view types "entry" or "exit"
    metric: str  # what the main chart shows: "views" (the type's count), or for page-view types one of METRICS

    @property
    def counts_visitors(self) -> bool:
        return counts_visitors(self.definition)

    @property
    def counter_value(self) -> str:
        """What the filtered reads read on the ``dimension`` axis: the dimension value, else the page ("" for all)."""
        return self.value if self.dimension else self.identifier

    @property
    def filter_label(self) -> str:
        """ "Source: Google" (plain text; templates escape it), "" without a dimension filter."""
        return f"{dimension_label(self.dimension)}: {self.value}" if self.dimension else ""

    @property
    def period(self) -> Period:
        """The dates as the shared period rule sees them (``beacons.periods``)."""
        return Period(preset=self.preset, start=self.start, end=self.end, now=self.now)

    @property
    def chart_end(self) -> datetime:
        """Charts stop after the bucket holding ``now``: no flat line of future zeros."""
        return self.period.chart_end(self.granularity)

    @property
    def totals_end(self) -> datetime:
        """Totals stop at the end of the current hour (counters are read to the hour)."""
        return self.period.totals_end

    @property
    def running(self) -> bool:
        """The dates include now: the last part is still being counted."""
        return self.period.running

    @property
    def previous_period(self) -> tuple[datetime, datetime]:
        """What the period is compared with: the same span just before it; for a running period,
        only the same elapsed part ("today to 02:59" vs "yesterday to 02:59")."""
        return self.period.previous_period

    @property
    def comparison_label(self) -> str:
        return comparison_label(*self.previous_period, now=self.now)

    @cached_property
    def kpi_comparison(self) -> "Comparison":
        """What the change on the KPI card compares (``Period.comparison``), with its words; filtered
        by a dimension value, the card reads that dimension's rows: ``breakdown_comparison``."""
        return self.breakdown_comparison if self.dimension else self._type_comparison(dimension_rows=False)

    @cached_property
    def breakdown_comparison(self) -> "Comparison":
        """What a breakdown panel's change compares: its dimension's rows are kept per day (hours
        only when the type asks), so a running period is cut at the same elapsed whole days; cut at
        the hour, today's partial day row would be read against a whole day before."""
        return self._type_comparison(dimension_rows=True)

    def _type_comparison(self, *, dimension_rows: bool) -> "Comparison":
        definition = self.definition
        if definition is None:
            return self.comparison_read_to(granularity_codes=None)
        codes = definition.dimension_granularity_codes if dimension_rows else definition.granularity_codes
        return self.comparison_read_to(granularity_codes=codes, fine_retention_days=definition.fine_retention_days)

    def comparison_read_to(self, *, granularity_codes: list[str] | None, fine_retention_days: int = 0) -> "Comparison":
        """``kpi_comparison``'s rule for figures kept only in ``granularity_codes`` (visitor
        sketches: per hour for the site, per day for a page): the elapsed part is cut to them."""
        cut = self.period.comparison(granularity_codes=granularity_codes, fine_retention_days=fine_retention_days)
        if cut.current_end is None:
            label = comparison_label(cut.previous_start, cut.previous_end, now=self.now)
        else:
            label = cut_comparison_label(
                cut.previous_start, cut.previous_end, cut.current_end, cut.granularity, now=self.now
            )
        return Comparison(cut.previous_start, cut.previous_end, cut.current_end, cut.granularity, label)

    @property
    def params(self) -> dict[str, str]:
        """The state as GET parameters (what the URL holds and each panel is asked with)."""
        tz = bucket_zone()
        values = {
            "site": self.site.domain if self.site else "",
            "type": self.definition.slug if self.definition else "",
            "identifier": self.identifier,
            "range": self.preset,
            "granularity": self.chosen_granularity,
            "sort": self.sort if self.sort != "views" else "",
            "rows": str(self.rows) if self.rows != TOP_SIZES[0] else "",
            "scale": self.scale if self.scale != "stacked" else "",
            "sources": self.sources_tab if self.sources_tab != SOURCE_TABS[0][0] else "",
            "devices": self.devices_tab if self.devices_tab != DEVICE_TABS[0][0] else "",
            "pages": self.pages_tab if self.pages_tab != PAGE_TABS[0][0] else "",
            "metric": self.metric if self.metric != METRICS[0][0] else "",
            "property": self.property_tab if self.property_tab != self.first_property else "",
            "dim": self.dimension,
            "value": self.value if self.dimension else "",
        }
        if self.preset == "custom":
            values["start"] = self.start.astimezone(tz).date().isoformat()
            values["end"] = bucket_before(self.end, G.DAY).astimezone(tz).date().isoformat()  # the last day
        if self.compare:
            values["compare"] = "on"
        return {key: value for key, value in values.items() if value}

    @property
    def first_property(self) -> str:
        keys = dimensions_split(self.definition.property_keys) if self.definition else []
        return keys[0] if keys else ""

    @property
    def query(self) -> str:
        return urlencode(self.params)

    def query_with(self, **changes) -> str:
        """The state's query with some parameters changed ("" removes one), e.g. for a next page link."""
        values = {**self.params, **{key: str(value) for key, value in changes.items()}}
        return urlencode({key: value for key, value in values.items() if value})

    @property
    def subject(self) -> str:
        """ "Page views" or "Page views of /pricing" (plain text; templates escape it)."""
        name = self.definition.name if self.definition else "Events"
        if self.dimension:
            return f"{name} with {self.filter_label}"
        return f"{name} of {self.identifier}" if self.identifier else name

    @property
    def chart_subject(self) -> str:
        """What the main chart shows: ``subject``, or a visitor or visit metric of it ("Bounce rate
        of visits entering at /pricing"; plain text, templates escape it)."""
        if self.metric == METRICS[0][0]:
            return self.subject
        label = METRIC_LABELS[self.metric]
        if self.dimension:
            return f"{label} with {self.filter_label}"
        if not self.identifier:
            return label
        if self.metric == "visitors":
            return f"{label} of {self.identifier}"
        if self.metric == "visits":
            return f"Visits entering at {self.identifier}"
        return f"{label} of visits entering at {self.identifier}"

    @property
    def per(self) -> str:
        return GRANULARITY_NOUNS[self.granularity]

    @property
    def period_label(self) -> str:
        aligned = is_aligned(self.start, self.granularity) and is_aligned(self.chart_end, self.granularity)
        return period_label(self.start, self.chart_end, self.granularity if aligned else G.DAY)

    @property
    def running_note(self) -> str:
        """ " (so far)", " (today so far)"...: said after the dates when the last part is still running."""
        note = RUNNING_NOTES.get(self.preset) if self.running else None
        return f" ({note})" if note else ""

    @property
    def title(self) -> str:
        """Plain-language chart title, e.g. "Page views per day, 1–30 November 2026"."""
        return f"{self.chart_subject} per {self.per}, {self.period_label}{self.running_note}"

    @property
    def range_label(self) -> str:
        return PRESET_LABELS[self.preset] if self.preset != "custom" else self.period_label

    @property
    def range_phrase(self) -> str:
        """The dates inside a sentence: "last 7 days", "today so far", "1 June – 31 August 2026"."""
        phrase = PRESET_LABELS[self.preset].lower() if self.preset != "custom" else self.period_label
        if self.running and self.preset in ("today", "month"):
            phrase += " so far"
        return phrase


@dataclass(frozen=True)
class Comparison:
    """The KPI card's change: [previous_start, previous_end) against the current period up to
    ``current_end`` (None: all of it), read to ``granularity``; ``label`` says it in words."""

    previous_start: datetime
    previous_end: datetime
    current_end: datetime | None
    granularity: str
    label: str


def counts_visitors(definition: BeaconDefinition | None) -> bool:
    """Page views have visitors and visits (their cards, tabs, metrics and panel); other types count hits only."""
    return definition is not None and definition.kind == BeaconDefinition.Kind.PAGE_VIEW


def _automatic_granularity(start: datetime, end: datetime) -> str:
    span = end - start
    if span <= timedelta(days=3):
        return G.HOUR
    if span <= timedelta(days=93):
        return G.DAY
    if span <= timedelta(days=366 * 4):
        return G.MONTH
    return G.YEAR


def offered_granularities(start: datetime, end: datetime, kept: list[str]) -> list[str]:
    """The point sizes these dates can show, finest first: those of which at least one whole
    bucket fits in [start, end) (a point coarser than the period is not offered)."""
    return [g for g in CHART_GRANULARITIES if g in kept and bucket_after(bucket_ceiling(start, g), g) <= end]


def dashboard_state(
    *, params, definitions: list[BeaconDefinition], now: datetime, site: Site | None = None
) -> tuple[FilterForm, DashboardState]:
    """Resolve GET ``params`` into the form to show and the state to render (of ``site``, chosen
    from ``params`` by the caller, which checked the user may see it)."""
    form = FilterForm(params or None, definitions=definitions)
    values = form.valid_values() if params else {}
    by_slug = {d.slug: d for d in definitions}
    definition = (
        by_slug.get(values.get("type") or "") or by_slug.get("page_view") or (definitions[0] if definitions else None)
    )
    preset = values.get("range") or ("custom" if values.get("start") or values.get("end") else DEFAULT_PRESET)
    start, end = preset_range(preset, now, values.get("start"), values.get("end"))

    dimension, value, pages_ignored, filter_notice = _dimension_filter(values, form, definition)
    kept = definition.granularity_codes if definition else CHART_GRANULARITIES
    if dimension:  # the value's counters: per day and coarser unless the type keeps them per hour
        kept = definition.dimension_granularity_codes
    choices = (
        offered_granularities(start, end, kept) or [g for g in CHART_GRANULARITIES if g in kept][:1] or [G.DAY.value]
    )
    wanted = values.get("granularity") or _automatic_granularity(start, end)
    finer_or_equal = [g for g in choices if CHART_GRANULARITIES.index(g) <= CHART_GRANULARITIES.index(wanted)]
    coarser = [g for g in choices if CHART_GRANULARITIES.index(g) > CHART_GRANULARITIES.index(wanted)]
    granularity = (coarser[0] if wanted not in kept and coarser else None) or (finer_or_equal or choices)[-1]
    # A filter that was not understood has its own notice (``_dimension_filter``), which wins.
    notice = filter_notice or ("" if not form.errors else "Part of this address was not understood and has been reset.")
    if values.get("granularity") and granularity != wanted:
        if wanted not in kept:
            notice = f"{definition} keeps no counts per {GRANULARITY_NOUNS[wanted]}: showing one point per {GRANULARITY_NOUNS[granularity]}."
        else:
            notice = f"One point per {GRANULARITY_NOUNS[wanted]} is longer than these dates: showing one per {GRANULARITY_NOUNS[granularity]}."
    while granularity != choices[-1] and _bucket_count(start, end, granularity) > MAX_BUCKETS:
        coarser_step = choices[choices.index(granularity) + 1]
        notice = f"One point per {GRANULARITY_NOUNS[granularity]} would be too many to read: showing one per {GRANULARITY_NOUNS[coarser_step]}."
        granularity = coarser_step

    page_views = counts_visitors(definition)
    state = DashboardState(
        definition=definition,
        identifier=values.get("identifier") or "",
        preset=preset,
        granularity=granularity,
        chosen_granularity=values.get("granularity") or "",
        start=start,
        end=end,
        now=now,
        compare=bool(values.get("compare")),
        notice=notice,
        sort=values.get("sort") or "views",
        rows=values.get("rows") or TOP_SIZES[0],
        page=values.get("page") or 1,
        scale=values.get("scale") or "stacked",
        granularities=tuple(g for g in choices if _bucket_count(start, end, g) <= MAX_BUCKETS or g == choices[-1]),
        site=site,
        dimension=dimension,
        value=value,
        pages_ignored=pages_ignored,
        sources_tab=values.get("sources") or SOURCE_TABS[0][0],
        devices_tab=values.get("devices") or DEVICE_TABS[0][0],
        property_tab=_property_tab(values.get("property") or "", definition),
        pages_tab=(values.get("pages") or PAGE_TABS[0][0]) if page_views else PAGE_TABS[0][0],
        metric=(values.get("metric") or METRICS[0][0]) if page_views else METRICS[0][0],
    )
    # Show the resolved state in the controls (e.g. the dates a preset stands for).
    tz = bucket_zone()
    form = FilterForm(
        {
            **state.params,
            "start": start.astimezone(tz).date().isoformat(),
            "end": bucket_before(end, G.DAY).astimezone(tz).date().isoformat(),  # the last day
        },
        definitions=definitions,
        granularities=list(state.granularities),
    )
    return form, state


def _dimension_filter(values: dict, form: FilterForm, definition) -> tuple[str, str, bool, str]:
    """(dimension, value, pages_ignored, notice) of the ``dim`` and ``value`` parameters: a filter
    that cannot be read (an unknown dimension, an over-long value, a dimension the type does not
    keep) is dropped, and the notice says so."""
    if "dim" in form.errors or "value" in form.errors:
        return "", "", False, "The filter in this address was not understood and has been removed."
    dimension, value = values.get("dim") or "", values.get("value") or ""
    if not (dimension and value) or definition is None:
        return "", "", False, ""
    try:
        chosen = counter_filter(
            definition=definition, identifier=values.get("identifier") or "", dimension=dimension, value=value
        )
    except DimensionNotKept:
        return "", "", False, f"{definition} keeps no {dimension_label(dimension)} counts: showing all of them."
    return chosen.dimension, chosen.value, chosen.pages_ignored, ""


def _property_tab(asked: str, definition) -> str:
    """The property the Properties panel shows: the one asked for when the type declares it, else its first."""
    keys = dimensions_split(definition.property_keys) if definition else []
    return asked if asked in keys else (keys[0] if keys else "")


def _bucket_count(start: datetime, end: datetime, granularity: str) -> int:
    approximate = {
        G.HOUR: timedelta(hours=1),
        G.DAY: timedelta(days=1),
        G.MONTH: timedelta(days=30),
        G.YEAR: timedelta(days=365),
    }
    return int((end - start) / approximate[granularity])
