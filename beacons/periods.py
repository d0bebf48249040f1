"""What a named period (today, last 7 days, …) covers and what its change is compared with.

One rule for every reader of the counters: the dashboard's dates, the stats API's
``date_range`` and the reports all resolve a period here, so "last 7 days" is the same
dates and the same comparison everywhere. Days are local days in ``BEACONS_TIME_ZONE``
(``buckets.bucket_zone()``); datetimes in and out are aware. No database, no words (the
dashboard says periods in words, ``dashboard.periods``).
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from beacons.counting.buckets import (
    bucket_before,
    bucket_end,
    bucket_start,
    bucket_zone,
    buckets_back,
    elapsed_cut,
    minutes_kept_since,
)
from beacons.models import Granularity as G

PRESETS = ("today", "24h", "7d", "30d", "month", "12m", "custom")
DEFAULT_PRESET = "30d"
# The bucket sizes a period's figures are read and drawn in, finest first (seconds and
# minutes are only for "live now" and the comparison's cut).
PERIOD_GRANULARITIES = [G.HOUR.value, G.DAY.value, G.MONTH.value, G.YEAR.value]
MAX_CUSTOM_DAYS = 366 * 10
EARLIEST_DAY = date(2000, 1, 1)
LATEST_DAYS_AHEAD = 366  # a custom period may end at most this many days after today


def local_midnight(day: date) -> datetime:
    """The first moment of local ``day`` (a DST change at midnight included)."""
    return bucket_start(datetime(day.year, day.month, day.day, 12, tzinfo=bucket_zone()), G.DAY)


def local_today(now: datetime) -> date:
    return now.astimezone(bucket_zone()).date()


def preset_range(preset: str, now: datetime, start_day: date | None, end_day: date | None) -> tuple[datetime, datetime]:
    """[start, end) of ``preset`` at ``now``; ``custom`` covers ``start_day`` to ``end_day`` (both
    included; missing ones default to the last 30 days, swapped when reversed, kept within
    ``EARLIEST_DAY``, a year ahead and ``MAX_CUSTOM_DAYS``). An unknown preset is the default."""
    today = local_today(now)
    tomorrow = local_midnight(today + timedelta(days=1))
    if preset == "today":
        return local_midnight(today), tomorrow
    if preset == "24h":
        hour_end = bucket_end(now, G.HOUR)
        return hour_end - timedelta(hours=24), hour_end
    if preset == "7d":
        return local_midnight(today - timedelta(days=6)), tomorrow
    if preset == "month":
        return bucket_start(now, G.MONTH), bucket_end(now, G.MONTH)
    if preset == "12m":
        start = bucket_start(now, G.MONTH)
        for _ in range(11):
            start = bucket_before(start, G.MONTH)
        return start, bucket_end(now, G.MONTH)
    if preset == "custom":
        latest = today + timedelta(days=LATEST_DAYS_AHEAD)
        first_day = min(max(start_day or today - timedelta(days=29), EARLIEST_DAY), latest)
        last_day = min(max(end_day or today, EARLIEST_DAY), latest)
        if last_day < first_day:
            first_day, last_day = last_day, first_day
        first_day = max(first_day, last_day - timedelta(days=MAX_CUSTOM_DAYS))
        return local_midnight(first_day), local_midnight(last_day + timedelta(days=1))
    return local_midnight(today - timedelta(days=29)), tomorrow  # 30d


@dataclass(frozen=True)
class ComparedCut:
    """What a period's change compares: [previous_start, previous_end) against the current period
    up to ``current_end`` (None: all of it), read to ``granularity``. It is what
    ``queries.counters`` takes as a ``ComparedPeriod``."""

    previous_start: datetime
    previous_end: datetime
    current_end: datetime | None
    granularity: str


@dataclass(frozen=True, kw_only=True)
class Period:
    """[start, end) of ``preset`` as seen at ``now``."""

    preset: str
    start: datetime
    end: datetime
    now: datetime

    @classmethod
    def of(cls, preset: str, *, now: datetime, start_day: date | None = None, end_day: date | None = None) -> "Period":
        start, end = preset_range(preset, now, start_day, end_day)
        return cls(preset=preset if preset in PRESETS else DEFAULT_PRESET, start=start, end=end, now=now)

    @property
    def totals_end(self) -> datetime:
        """Totals stop at the end of the current hour (counters are read to the hour)."""
        return max(self.start, min(self.end, bucket_end(self.now, G.HOUR)))

    def chart_end(self, granularity: str) -> datetime:
        """Series stop after the bucket holding ``now``: no flat line of future zeros."""
        return max(self.start, min(self.end, bucket_end(self.now, granularity)))

    @property
    def running(self) -> bool:
        """The dates include now: the last part is still being counted."""
        return self.start <= self.now < self.end

    @property
    def span(self) -> tuple[str, int]:
        """The period's length in whole local-calendar units: (granularity code, how many)."""
        if self.preset == "24h":
            return G.HOUR, 24
        if self.preset == "month":
            return G.MONTH, 1
        if self.preset == "12m":
            return G.YEAR, 1
        tz = bucket_zone()
        return G.DAY, (self.end.astimezone(tz).date() - self.start.astimezone(tz).date()).days

    @property
    def previous_period(self) -> tuple[datetime, datetime]:
        """What the period is compared with: the same span just before it; for a running period,
        only the same elapsed part ("today to 02:59" vs "yesterday to 02:59")."""
        unit, n = self.span
        previous_start = buckets_back(self.start, unit, n)
        return previous_start, min(buckets_back(self.totals_end, unit, n), self.start)

    def comparison(self, *, granularity_codes: list[str] | None, fine_retention_days: int = 0) -> ComparedCut:
        """What the change of a type keeping ``granularity_codes`` compares (None: no type): for a
        running period both periods cut at the same elapsed point (``buckets.elapsed_cut``), else
        the whole previous period."""
        previous_start, previous_end = self.previous_period
        if not self.running or granularity_codes is None:
            return ComparedCut(previous_start, previous_end, None, G.HOUR)
        unit, n = self.span
        since = minutes_kept_since(
            now=self.now, granularity_codes=granularity_codes, fine_retention_days=fine_retention_days
        )
        finest = next((g for g in granularity_codes if g in PERIOD_GRANULARITIES), G.YEAR)
        cut, previous_cut, granularity = elapsed_cut(now=self.now, unit=unit, n=n, minutes_since=since, finest=finest)
        cut, previous_cut = max(cut, self.start), max(min(previous_cut, self.start), previous_start)
        return ComparedCut(previous_start, previous_cut, cut, granularity)


REPORT_FREQUENCIES = ("weekly", "monthly")


def finished_period(frequency: str, *, now: datetime) -> Period:
    """The last whole period a ``weekly`` or ``monthly`` report covers at ``now``, in the bucket
    time zone: the ISO week (Monday 00:00 to the next Monday 00:00) or the calendar month that ended
    last. It is compared with the week or calendar month before it (``Period.comparison``: a whole
    period, nothing cut, since it is over)."""
    if frequency == "weekly":
        today = local_today(now)
        this_monday = today - timedelta(days=today.weekday())
        start, end = local_midnight(this_monday - timedelta(days=7)), local_midnight(this_monday)
        return Period(preset="7d", start=start, end=end, now=now)
    if frequency == "monthly":
        end = bucket_start(now, G.MONTH)
        return Period(preset="month", start=bucket_before(end, G.MONTH), end=end, now=now)
    raise ValueError(f"unknown report frequency {frequency!r}")
