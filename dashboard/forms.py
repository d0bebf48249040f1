"""The dashboard's filter form and the view state it resolves to.

Every control is a GET parameter, so each state of the dashboard has a URL. Bad or stale
values (a typo in a copied link, a deleted event type) never fail: each falls back to
its default on its own and the rest of the state is kept.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from urllib.parse import urlencode

from django import forms

from beacons.buckets import bucket_after, bucket_start, bucket_zone, buckets_between
from beacons.models import IDENTIFIER_MAX_LENGTH, BeaconDefinition, Granularity
from beacons.queries import align_range

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
DEFAULT_PRESET = "30d"
CHART_GRANULARITIES = [G.HOUR.value, G.DAY.value, G.MONTH.value, G.YEAR.value]  # finest first
GRANULARITY_CHOICES = [("", "Automatic"), ("H", "Hour"), ("D", "Day"), ("MO", "Month"), ("Y", "Year")]
GRANULARITY_NOUNS = {"H": "hour", "D": "day", "MO": "month", "Y": "year"}
MAX_BUCKETS = 800  # more points than this is unreadable on a chart: use a coarser bucket
MAX_CUSTOM_DAYS = 366 * 10
EARLIEST_DAY = date(2000, 1, 1)


class FilterForm(forms.Form):
    type = forms.ChoiceField(label="Event type", required=False)
    identifier = forms.CharField(
        label="Page or item", required=False, max_length=IDENTIFIER_MAX_LENGTH, strip=True,
        widget=forms.TextInput(attrs={"list": "identifier-options", "placeholder": "All", "autocomplete": "off"}),
    )  # fmt: skip
    range = forms.ChoiceField(label="Dates", choices=PRESETS, required=False)
    start = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    granularity = forms.ChoiceField(label="Per", choices=GRANULARITY_CHOICES, required=False)
    compare = forms.BooleanField(label="Compare with the previous period", required=False)

    def __init__(self, data=None, *, definitions: list[BeaconDefinition]):
        super().__init__(data)
        self.fields["type"].choices = [(d.slug, d.name) for d in definitions]

    def valid_values(self) -> dict:
        """The cleaned value of every field that validated; invalid ones are left out."""
        self.is_valid()
        return {name: value for name, value in self.cleaned_data.items() if name not in self.errors}


@dataclass(frozen=True)
class DashboardState:
    """What the dashboard shows: one event type (optionally one identifier) over [start, end)."""

    definition: BeaconDefinition | None
    identifier: str
    preset: str
    granularity: str
    chosen_granularity: str  # "" when automatic
    start: datetime  # aware UTC, aligned to granularity
    end: datetime  # exclusive, aligned to granularity
    now: datetime
    compare: bool
    notice: str = ""

    @property
    def chart_end(self) -> datetime:
        """Charts stop after the bucket holding ``now``: no flat line of future zeros."""
        return min(self.end, bucket_after(bucket_start(self.now, self.granularity), self.granularity))

    @property
    def totals_end(self) -> datetime:
        """Totals stop at the end of the current hour, so "previous period" is equally long."""
        return max(self.start, min(self.end, bucket_after(bucket_start(self.now, G.HOUR), G.HOUR)))

    @property
    def previous_start(self) -> datetime:
        """Start of the previous period for the chart: as many buckets back as are shown."""
        moment = self.start
        for _ in buckets_between(self.start, self.chart_end, self.granularity):
            moment = bucket_start(moment - timedelta(microseconds=1), self.granularity)
        return moment

    @property
    def params(self) -> dict[str, str]:
        """The state as GET parameters (what the URL holds and each panel is asked with)."""
        tz = bucket_zone()
        values = {
            "type": self.definition.slug if self.definition else "",
            "identifier": self.identifier,
            "range": self.preset,
            "granularity": self.chosen_granularity,
        }
        if self.preset == "custom":
            values["start"] = self.start.astimezone(tz).date().isoformat()
            values["end"] = (self.end - timedelta(microseconds=1)).astimezone(tz).date().isoformat()
        if self.compare:
            values["compare"] = "on"
        return {key: value for key, value in values.items() if value}

    @property
    def query(self) -> str:
        return urlencode(self.params)

    @property
    def subject(self) -> str:
        """"Page views" or "Page views of /pricing" (plain text; templates escape it)."""
        name = self.definition.name if self.definition else "Events"
        return f"{name} of {self.identifier}" if self.identifier else name

    @property
    def per(self) -> str:
        return GRANULARITY_NOUNS[self.granularity]

    @property
    def period_label(self) -> str:
        return period_label(self.start, self.chart_end, self.granularity)

    @property
    def title(self) -> str:
        """Plain-language chart title, e.g. "Page views per day, 1–30 November 2026"."""
        return f"{self.subject} per {self.per}, {self.period_label}"

    @property
    def range_label(self) -> str:
        return PRESET_LABELS[self.preset] if self.preset != "custom" else self.period_label


def period_label(start: datetime, end: datetime, granularity: str) -> str:
    """[start, end) in words, in the bucket time zone: "1–30 November 2026", "March 2026"."""
    tz = bucket_zone()
    first = start.astimezone(tz)
    last = (max(end, start + timedelta(microseconds=1)) - timedelta(microseconds=1)).astimezone(tz)
    if granularity == G.YEAR:
        return f"{first.year}" if first.year == last.year else f"{first.year}–{last.year}"
    if granularity == G.MONTH:
        if (first.year, first.month) == (last.year, last.month):
            return f"{first:%B %Y}"
        if first.year == last.year:
            return f"{first:%B} – {last:%B %Y}"
        return f"{first:%B %Y} – {last:%B %Y}"
    if first.date() == last.date():
        return f"{first.day} {first:%B %Y}"
    if (first.year, first.month) == (last.year, last.month):
        return f"{first.day}–{last.day} {last:%B %Y}"
    if first.year == last.year:
        return f"{first.day} {first:%B} – {last.day} {last:%B %Y}"
    return f"{first.day} {first:%B %Y} – {last.day} {last:%B %Y}"


def _local_midnight(day: date) -> datetime:
    return bucket_start(datetime(day.year, day.month, day.day, 12, tzinfo=bucket_zone()), G.DAY)


def _preset_range(preset: str, now: datetime, start_day: date | None, end_day: date | None) -> tuple[datetime, datetime]:
    today = now.astimezone(bucket_zone()).date()
    tomorrow = _local_midnight(today + timedelta(days=1))
    if preset == "today":
        return _local_midnight(today), tomorrow
    if preset == "24h":
        hour_end = bucket_after(bucket_start(now, G.HOUR), G.HOUR)
        return hour_end - timedelta(hours=24), hour_end
    if preset == "7d":
        return _local_midnight(today - timedelta(days=6)), tomorrow
    if preset == "month":
        first = bucket_start(now, G.MONTH)
        return first, bucket_after(first, G.MONTH)
    if preset == "12m":
        first = bucket_start(now, G.MONTH)
        start = first
        for _ in range(11):
            start = bucket_start(start - timedelta(days=1), G.MONTH)
        return start, bucket_after(first, G.MONTH)
    if preset == "custom":
        first_day = min(max(start_day or today - timedelta(days=29), EARLIEST_DAY), today + timedelta(days=366))
        last_day = min(max(end_day or today, EARLIEST_DAY), today + timedelta(days=366))
        if last_day < first_day:
            first_day, last_day = last_day, first_day
        first_day = max(first_day, last_day - timedelta(days=MAX_CUSTOM_DAYS))
        return _local_midnight(first_day), _local_midnight(last_day + timedelta(days=1))
    return _local_midnight(today - timedelta(days=29)), tomorrow  # 30d


def _automatic_granularity(start: datetime, end: datetime) -> str:
    span = end - start
    if span <= timedelta(days=3):
        return G.HOUR
    if span <= timedelta(days=93):
        return G.DAY
    if span <= timedelta(days=366 * 4):
        return G.MONTH
    return G.YEAR


def dashboard_state(*, params, definitions: list[BeaconDefinition], now: datetime) -> tuple[FilterForm, DashboardState]:
    """Resolve GET ``params`` into the form to show and the state to render."""
    form = FilterForm(params or None, definitions=definitions)
    values = form.valid_values() if params else {}
    by_slug = {d.slug: d for d in definitions}
    definition = by_slug.get(values.get("type") or "") or by_slug.get("page_view") or (definitions[0] if definitions else None)
    preset = values.get("range") or ("custom" if values.get("start") or values.get("end") else DEFAULT_PRESET)
    start, end = _preset_range(preset, now, values.get("start"), values.get("end"))

    kept = definition.granularity_codes if definition else CHART_GRANULARITIES
    choices = [g for g in CHART_GRANULARITIES if g in kept] or [G.DAY.value]
    wanted = values.get("granularity") or _automatic_granularity(start, end)
    granularity = next((g for g in choices if CHART_GRANULARITIES.index(g) >= CHART_GRANULARITIES.index(wanted)), choices[-1])
    notice = "Part of this address was not understood and has been reset." if form.errors else ""
    if values.get("granularity") and granularity != wanted:
        notice = f"{definition} keeps no counts per {GRANULARITY_NOUNS[wanted]}: showing one point per {GRANULARITY_NOUNS[granularity]}."
    while granularity != choices[-1] and _bucket_count(start, end, granularity) > MAX_BUCKETS:
        coarser = choices[choices.index(granularity) + 1]
        notice = f"One point per {GRANULARITY_NOUNS[granularity]} would be too many to read: showing one per {GRANULARITY_NOUNS[coarser]}."
        granularity = coarser
    start, end = align_range(start, end, granularity)

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
    )
    # Show the resolved state in the controls (e.g. the dates a preset stands for).
    tz = bucket_zone()
    form = FilterForm(
        {
            **state.params,
            "start": start.astimezone(tz).date().isoformat(),
            "end": (end - timedelta(microseconds=1)).astimezone(tz).date().isoformat(),
        },
        definitions=definitions,
    )
    form.is_valid()
    return form, state


def _bucket_count(start: datetime, end: datetime, granularity: str) -> int:
    approximate = {"H": timedelta(hours=1), "D": timedelta(days=1), "MO": timedelta(days=30), "Y": timedelta(days=365)}
    return int((end - start) / approximate[granularity])
