"""Time buckets: the one place that knows where a bucket starts and ends.

Floor: ``bucket_start``; ceiling: ``bucket_ceiling``; the bucket after or before one:
``bucket_after`` / ``bucket_before``; the end of the bucket holding a moment: ``bucket_end``.

Buckets are aligned in their site's time zone (``bucket_zone``: ``Site.time_zone``, empty or
unreadable → ``BEACONS_TIME_ZONE``; a day is a local calendar day, across DST changes: 23 or 25
hours). Seconds, minutes and hours are absolute spans; an hour bucket starts on the local hour,
so the repeated hour when clocks go back is two buckets.

Code that counts hits of several sites asks ``bucket_zone(site_id)`` per hit and passes the zone on;
code that works for one site at a time (a dashboard request, a demo or rebuild of one site) enters
``site_zone_active(site)``, and every function here without a ``tz`` then uses that site's zone.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings

from beacons.models import Granularity, Site

G = Granularity
FIXED_SPANS = {G.SECOND: timedelta(seconds=1), G.MINUTE: timedelta(minutes=1), G.HOUR: timedelta(hours=1)}


_active_zone: ContextVar[ZoneInfo | None] = ContextVar("bucket_zone", default=None)


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def zone_of_site(time_zone: str) -> ZoneInfo:
    """The zone a site's buckets are aligned in, from its ``time_zone`` field."""
    if time_zone:
        try:
            return _zone(time_zone)
        except (ZoneInfoNotFoundError, ValueError):  # a name the validator never let through (a raw UPDATE)
            pass
    return _zone(settings.BEACONS_TIME_ZONE)


def bucket_zone(site: Site | int | None = None) -> ZoneInfo:
    """The zone buckets are aligned in: that of ``site`` (a Site, or a site id read from the
    cached sites), else that of the site ``site_zone_active`` entered, else BEACONS_TIME_ZONE."""
    if site is None:
        return _active_zone.get() or _zone(settings.BEACONS_TIME_ZONE)
    if isinstance(site, int):
        from beacons.sites import site_time_zone

        return zone_of_site(site_time_zone(site))
    return zone_of_site(site.time_zone)


class SiteZones:
    """``bucket_zone`` of site ids, for one fold of hits: each read once while the site stays the
    same (reading the cached sites costs a few µs, and a request's hits are of one site)."""

    __slots__ = ("_site_id", "_zone")

    def __init__(self):
        self._site_id: int | None = None
        self._zone: ZoneInfo | None = None

    def of(self, site_id: int) -> ZoneInfo:
        if site_id != self._site_id:  # a site id is never None: the first call reads it
            self._site_id, self._zone = site_id, bucket_zone(site_id)
        return self._zone


@contextmanager
def site_zone_active(site: Site | int) -> Iterator[ZoneInfo]:
    """Within it, buckets without an explicit ``tz`` are aligned in ``site``'s zone."""
    token = _active_zone.set(bucket_zone(site))
    try:
        yield _active_zone.get()
    finally:
        _active_zone.reset(token)


def bucket_start(moment: datetime, granularity: str, tz: ZoneInfo | None = None) -> datetime:
    """The start of the bucket holding ``moment`` (aware), as an aware UTC datetime."""
    tz = tz or bucket_zone()
    local = moment.astimezone(tz)
    if granularity == G.SECOND:
        start = local.replace(microsecond=0)
    elif granularity == G.MINUTE:
        start = local.replace(second=0, microsecond=0)
    elif granularity == G.HOUR:
        # Truncate in UTC and keep the local offset's sub-hour part, so the repeated hour
        # when clocks go back stays two separate buckets.
        offset = local.utcoffset()
        local_wall = local.replace(tzinfo=None)
        start_wall = local_wall.replace(minute=0, second=0, microsecond=0)
        return (start_wall - offset).replace(tzinfo=UTC)
    elif granularity == G.DAY:
        start = datetime(local.year, local.month, local.day, tzinfo=tz)
    elif granularity == G.MONTH:
        start = datetime(local.year, local.month, 1, tzinfo=tz)
    elif granularity == G.YEAR:
        start = datetime(local.year, 1, 1, tzinfo=tz)
    else:
        raise ValueError(f"unknown granularity {granularity!r}")
    return start.astimezone(UTC)


def bucket_after(start: datetime, granularity: str, tz: ZoneInfo | None = None) -> datetime:
    """The start of the bucket that follows the one starting at ``start``."""
    if granularity in FIXED_SPANS:
        return (start + FIXED_SPANS[granularity]).astimezone(UTC)
    tz = tz or bucket_zone()
    local = start.astimezone(tz)
    if granularity == G.DAY:
        following = local.date() + timedelta(days=1)
        nxt = datetime(following.year, following.month, following.day, tzinfo=tz)
    elif granularity == G.MONTH:
        year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
        nxt = datetime(year, month, 1, tzinfo=tz)
    elif granularity == G.YEAR:
        nxt = datetime(local.year + 1, 1, 1, tzinfo=tz)
    else:
        raise ValueError(f"unknown granularity {granularity!r}")
    return nxt.astimezone(UTC)


def bucket_ceiling(moment: datetime, granularity: str, tz: ZoneInfo | None = None) -> datetime:
    """The first bucket start at or after ``moment``: ``moment`` itself when it is aligned."""
    tz = tz or bucket_zone()
    start = bucket_start(moment, granularity, tz)
    return start if start == moment else bucket_after(start, granularity, tz)


def bucket_end(moment: datetime, granularity: str, tz: ZoneInfo | None = None) -> datetime:
    """The end of the bucket holding ``moment`` (the next bucket's start, even when ``moment`` is aligned)."""
    tz = tz or bucket_zone()
    return bucket_after(bucket_start(moment, granularity, tz), granularity, tz)


def bucket_before(start: datetime, granularity: str, tz: ZoneInfo | None = None) -> datetime:
    """The start of the bucket that precedes the one starting at ``start``."""
    return bucket_start(start - timedelta(microseconds=1), granularity, tz)


def buckets_back(moment: datetime, granularity: str, n: int, tz: ZoneInfo | None = None) -> datetime:
    """The same local wall time ``n`` buckets earlier ("02:59 yesterday", "31 March → 31 December").

    Days and longer move on the local calendar, so a DST change in between shifts nothing; a
    moment past the end of the shorter earlier month stops at that month's end (31 March 14:00 one
    month back is 1 March 00:00, the end of February), so "the same elapsed part" never reaches
    into the following period. Hours and finer are fixed spans.
    """
    if granularity in FIXED_SPANS:
        return (moment - n * FIXED_SPANS[granularity]).astimezone(UTC)
    tz = tz or bucket_zone()
    local = moment.astimezone(tz).replace(tzinfo=None)
    if granularity == G.DAY:
        earlier = local - timedelta(days=n)
        return earlier.replace(tzinfo=tz).astimezone(UTC)
    months = n * (12 if granularity == G.YEAR else 1) if granularity in (G.MONTH, G.YEAR) else None
    if months is None:
        raise ValueError(f"unknown granularity {granularity!r}")
    index = local.year * 12 + local.month - 1 - months
    year, month = divmod(index, 12)
    month_start = datetime(year, month + 1, 1)
    following = datetime(year + (month + 1) // 12, (month + 1) % 12 + 1, 1)
    earlier = min(month_start + (local - local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)), following)
    return earlier.replace(tzinfo=tz).astimezone(UTC)


def buckets_between(start: datetime, end: datetime, granularity: str, tz: ZoneInfo | None = None) -> Iterator[datetime]:
    """Starts of every bucket that overlaps [start, end), oldest first."""
    tz = tz or bucket_zone()
    current = bucket_start(start, granularity, tz)
    while current < end:
        yield current
        current = bucket_after(current, granularity, tz)


def is_aligned(moment: datetime, granularity: str, tz: ZoneInfo | None = None) -> bool:
    return bucket_start(moment, granularity, tz) == moment


def covering_buckets(
    start: datetime, end: datetime, allowed: list[str], tz: ZoneInfo | None = None
) -> dict[str, list[tuple[datetime, datetime]]]:
    """Split [start, end) into the fewest whole buckets of the ``allowed`` granularities.

    Returns {granularity: [(first_start, last_start_exclusive), ...]} ranges of bucket
    starts, so a sum over a long range reads a few month rows plus the day and hour rows at
    its ragged edges instead of every hour. ``start`` and ``end`` must be aligned to the
    finest allowed granularity; what the finest cannot cover is left out.
    """
    tz = tz or bucket_zone()
    order = [g for g in reversed([g.value for g in Granularity]) if g in allowed]  # coarsest first
    pieces: dict[str, list[tuple[datetime, datetime]]] = {}

    def cover(lo: datetime, hi: datetime, levels: list[str]) -> None:
        if lo >= hi or not levels:
            return
        g, finer = levels[0], levels[1:]
        first = bucket_ceiling(lo, g, tz)
        last = bucket_start(hi, g, tz)
        if first < last:
            pieces.setdefault(g, []).append((first, last))
            cover(lo, first, finer)
            cover(last, hi, finer)
        else:
            cover(lo, hi, finer)

    cover(start, end, order)
    return pieces


def minutes_kept_since(*, now: datetime, granularity_codes: list[str], fine_retention_days: int) -> datetime | None:
    """The oldest minute bucket surely still kept (the purge deletes older ones), or None when
    the type keeps no minute counters."""
    if G.MINUTE not in granularity_codes:
        return None
    return now - timedelta(days=fine_retention_days)


def elapsed_cut(
    *,
    now: datetime,
    unit: str,
    n: int,
    minutes_since: datetime | None,
    finest: str = G.HOUR,
    tz: ZoneInfo | None = None,
) -> tuple[datetime, datetime, str]:
    """Where a running period and the one ``n`` ``unit``s before it are both cut, so the change
    compares equal elapsed parts: (current cut, previous cut, granularity of the cut).

    To the start of the current minute when minute counters are kept (``minutes_since``) back to
    the hour holding the previous cut: at 02:05 both days are read 00:00–02:05. Otherwise to the
    start of the current hour on both sides (never the running hour against a whole one), or of
    the current bucket of ``finest``, the finest kept granularity of hour or coarser (a type
    kept only per day compares whole days). The previous cut is the same local wall time
    (``buckets_back``), so a DST change in between compares the same clock hours.
    """
    tz = tz or bucket_zone()
    minute = bucket_start(now, G.MINUTE, tz)
    previous_minute = buckets_back(minute, unit, n, tz)
    if minutes_since is not None and bucket_start(previous_minute, G.HOUR, tz) >= minutes_since:
        return minute, previous_minute, G.MINUTE
    cut = bucket_start(now, finest, tz)
    return cut, buckets_back(cut, unit, n, tz), finest
