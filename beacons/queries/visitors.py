"""Reads of unique visitors of one site: merges of the visitor sketches of the buckets that tile a period.

A period is tiled by the coarsest sketch buckets that fit it (``counters._covering_q``, the
counters' own tiling: months, then days at the ragged edges, then hours for the site total), and
their sketches are merged, so a 12-month figure reads about 12 rows per definition however many
visitors came. A period may end inside a bucket of the finest kept granularity only where that
bucket's rest is still to come (a page's visitors are kept per day: "today until now" reads the
whole day so far); a period that cuts a sketch bucket anywhere else cannot be answered (the
bucket's visitors cannot be split): the series, the values' reads and ``visitors(exact=True)``
raise ``SketchesNotKept`` (or give None for a bucket) rather than a wider period's figure.

A figure is exact while the merged sketch still lists its visitors' hashes (up to a few thousand
visitors); beyond, it is an estimate within ~1.4 % (one standard error ~0.8 %; see
``beacons.counting.sketches``). ``VisitorCount.estimate`` says which.

Anonymous visitors are the day's salted hash: one who comes back on another day is a new visitor
in a weekly or monthly figure (as in Plausible); signed-in users (``BEACONS_IDENTIFY_USERS``) are
the same visitor every day.
"""

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.cache import cache
from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper
from django.db.models import Case, F, Q, QuerySet, Value, When
from django.utils import timezone

from beacons.counting.buckets import bucket_after, bucket_start, buckets_between
from beacons.counting.sketches import TOTAL_GRANULARITIES, VALUE_GRANULARITIES, Merge
from beacons.dimensions import SIGNED_IN, UNTRACKED
from beacons.logs import outage_warning
from beacons.models import GRANULARITY_ORDER, BeaconDefinition, Granularity, Site, VisitorSketch
from beacons.queries.counters import (
    Covering,
    DimensionNotKept,
    _covering_q,
    identifiers_compared,
    in_site_zone,
    site_id_of,
    totals,
)

G = Granularity
IDENTITY = "identity"


class SketchesNotKept(ValueError):
    """No visitor sketch answers this: the types keep none of this axis, or none this fine."""


@dataclass(frozen=True)
class VisitorCount:
    visitors: int
    estimate: bool  # False: exact (the merged sketch still lists every visitor's hash)


@dataclass(frozen=True)
class ValueVisitors:
    value: str  # the identifier, or the dimension's value
    views: int  # hits over the period
    visitors: VisitorCount


def sketch_granularities(definitions: Iterable[BeaconDefinition], *, per_value: bool, dimension: str = "") -> list[str]:
    """The granularities, finest first, every one of ``definitions`` keeps visitor sketches in for
    the site total, each identifier (``per_value``), or a dimension's values (never the minute: see ``live_visitors``)."""
    common = set(GRANULARITY_ORDER)
    for definition in definitions:
        if dimension:
            if dimension not in definition.dimension_codes:
                raise DimensionNotKept(dimension)
            kept = set(definition.dimension_granularity_codes) & set(VALUE_GRANULARITIES)
        elif per_value:
            kept = set(definition.granularity_codes) & set(VALUE_GRANULARITIES)
        else:
            kept = set(definition.granularity_codes) & (set(TOTAL_GRANULARITIES) - {G.MINUTE})
        common &= kept
    if not common:
        raise SketchesNotKept("no visitor sketches are kept for these types")
    return [g for g in GRANULARITY_ORDER if g in common]


def sketches_cover(start: datetime, end: datetime, granularity: str) -> bool:
    """Whether sketches of ``granularity`` answer [start, end) exactly: it starts on a bucket edge
    and ends on one, or inside the bucket still running (the rest of which has not happened yet)."""
    if bucket_start(start, granularity) != start:
        return False
    return bucket_start(end, granularity) == end or end >= timezone.now()


def _cover_check(start: datetime, end: datetime, allowed: list[str]) -> None:
    """Raises ``SketchesNotKept`` when sketches of ``allowed`` cannot tile [start, end) exactly."""
    if not sketches_cover(start, end, allowed[0]):
        raise SketchesNotKept(f"visitors are kept per {G(allowed[0]).label} here: these dates cut one")


def _sketch_q(start: datetime, end: datetime, allowed: list[str], **scope) -> Q:
    """The sketches tiling [start, end), or ``SketchesNotKept`` when they cannot tile it exactly."""
    _cover_check(start, end, allowed)
    return _covering_q(start, end, allowed, **scope)


def _scope(site: Site | int, definitions: list[BeaconDefinition], dimension: str) -> dict:
    return {"site_id": site_id_of(site), "definition_id__in": [d.pk for d in definitions], "dimension": dimension}


def _count(merge: Merge) -> VisitorCount:
    return VisitorCount(merge.estimate(), merge.is_estimate())


@in_site_zone
def visitors(
    *,
    site: Site | int,
    definitions: Iterable[BeaconDefinition],
    start: datetime,
    end: datetime,
    identifier: str = "",
    dimension: str = "",
    exact: bool = False,
) -> VisitorCount:
    """Unique visitors over [start, end): of the site total, of ``identifier`` (a page), or, with a
    ``dimension``, of its value ``identifier`` ("visitors from google.com": ``dimension="source",
    identifier="google.com"``). Several definitions: a visitor of any of them, once. One query.
    ``exact``: raise ``SketchesNotKept`` where the dates cut a sketch bucket (the dashboard);
    otherwise the cut bucket is read whole (the stats API's reading, kept as it was)."""
    definitions = list(definitions)
    allowed = sketch_granularities(definitions, per_value=bool(identifier), dimension=dimension)
    covering = _sketch_q if exact else _covering_q
    condition = covering(start, end, allowed, identifier=identifier, **_scope(site, definitions, dimension))
    merge = Merge()
    for (sketch,) in _sketch_rows(VisitorSketch.objects.filter(condition).values_list("sketch")):
        merge.add(sketch)
    return _count(merge)


@in_site_zone
def visitors_series(
    *,
    site: Site | int,
    definitions: Iterable[BeaconDefinition],
    granularity: str,
    start: datetime,
    end: datetime,
    identifier: str = "",
    dimension: str = "",
) -> list[tuple[datetime, VisitorCount | None]]:
    """Unique visitors of each ``granularity`` bucket over [start, end), oldest first (each bucket's
    own figure: they do not add up to the period's); None for a bucket the dates cut where the
    sketches cannot (the last day of a previous period ending at 14:00). One query. Raises
    ``SketchesNotKept`` for a granularity finer than the sketches kept (pages and values: per day)."""
    definitions = list(definitions)
    allowed = sketch_granularities(definitions, per_value=bool(identifier), dimension=dimension)
    if GRANULARITY_ORDER.index(granularity) < GRANULARITY_ORDER.index(allowed[0]):
        raise SketchesNotKept(f"visitors are kept per {G(allowed[0]).label} here, not per {G(granularity).label}")
    scope = {"identifier": identifier, **_scope(site, definitions, dimension)}
    merges: dict[datetime, Merge | None] = {}
    condition = Q(pk__in=[])
    for bucket in buckets_between(start, end, granularity):
        part = (max(bucket, start), min(bucket_after(bucket, granularity), end))
        merges[bucket] = Merge() if sketches_cover(*part, allowed[0]) else None
        if merges[bucket] is not None:
            condition |= _covering_q(*part, allowed, **scope)
    for period_start, sketch in _sketch_rows(
        VisitorSketch.objects.filter(condition).values_list("period_start", "sketch")
    ):
        merge = merges.get(bucket_start(period_start, granularity))
        if merge is not None:
            merge.add(sketch)
    return [(bucket, None if merge is None else _count(merge)) for bucket, merge in merges.items()]


@in_site_zone
def visitors_by_value(
    *,
    site: Site | int,
    definition: BeaconDefinition,
    start: datetime,
    end: datetime,
    dimension: str = "",
    limit: int = 10,
) -> list[ValueVisitors]:
    """The values of ``dimension`` (``""``: the identifiers, pages) with the most hits over
    [start, end), most first, each with its unique visitors beside. Two queries."""
    rows = identifiers_compared(
        site=site, definitions=[definition], start=start, end=end, limit=limit, dimension=dimension
    )
    found = visitors_of_values(
        site=site,
        definitions=[definition],
        start=start,
        end=end,
        values=[row.identifier for row in rows],
        dimension=dimension,
    )
    return [ValueVisitors(row.identifier, row.count, found[row.identifier]) for row in rows]


# Above this many values, every value's sketches in the period are read and the rest skipped in
# Python: a long IN list costs more than it saves, and SQLite caps a statement's parameters.
VALUES_LISTED = 500
# How long the merge of values' sketches of days that are over is kept (``_over_merges``): it is
# checked against their rows' stamps at every read, so this only bounds what a cache holds.
OVER_MERGES_SECONDS = 24 * 3600
# A merge larger than this is not kept (values are attacker-controlled: a thousand values of full
# sketches would be 8 MB an entry); it is read afresh each time instead.
OVER_MERGES_MAX_BYTES = 1 << 20


@in_site_zone
def visitors_of_values(
    *,
    site: Site | int,
    definitions: Iterable[BeaconDefinition],
    start: datetime,
    end: datetime,
    values: Iterable[str],
    dimension: str = "",
) -> dict[str, VisitorCount]:
    """Unique visitors over [start, end) of each of ``values`` (pages, or with a ``dimension`` its
    values; a visitor of any of ``definitions``, once per value): {value: count}, 0 for a value
    without visitors. One query (none without values; two when days that are over changed since
    their merge was kept, see ``_over_merges``). Raises ``SketchesNotKept`` when the types keep no
    such sketches or the dates cut a day."""
    definitions = list(definitions)
    allowed = sketch_granularities(definitions, per_value=True, dimension=dimension)
    merges = {value: Merge() for value in values}
    if not merges:
        return {}
    _cover_check(start, end, allowed)
    scope = _scope(site, definitions, dimension)
    if len(merges) <= VALUES_LISTED:  # in each branch: an index range per value, not a scan of every value
        scope["identifier__in"] = list(merges)
    over = min(end, max(start, bucket_start(timezone.now(), allowed[0])))  # the days before it are over
    condition = Covering(
        [*_covering_q(start, over, allowed).branches, *_covering_q(over, end, allowed).branches], scope
    )
    rows = VisitorSketch.objects.filter(condition)
    for value, data in _over_merges(rows, merges, scope=scope, allowed=allowed, over=over, start=start).items():
        merges[value].add(data)
    return {value: _count(merge) for value, merge in merges.items()}


def _over_merges(
    rows: QuerySet, merges: dict[str, Merge], *, scope: dict, allowed: list[str], over: datetime, start: datetime
) -> dict[str, bytes]:
    """Adds to ``merges`` the sketches of ``rows`` from ``over`` on (today's), and returns the merge
    of each value's sketches before ``over`` (days that are over), as stored sketches.

    Those change only when a late drain or a purge reaches them, while a busy value's day sketch
    is a full 8 KB sketch: 30 days of ten values were most of a panel's time at 100 M hits. So
    their merges are kept in the cache with the sum of the stamps of the rows merged
    (``VisitorSketch.stamp``, random and new at every write, so a row added, rewritten or deleted
    changes the sum), and the next read fetches only those stamps beside today's sketches; when
    the sum changed, the rows before ``over`` are read again."""
    keeps = over > start
    key = _over_merges_key(scope, allowed, merges, start=start, over=over)
    kept = _cache_read(key) if keeps else None
    read = Case(When(period_start__lt=over, then=Value(b"")), default=F("sketch")) if kept else F("sketch")
    closed = {value: Merge() for value in merges}
    stamps = 0
    for value, period_start, stamp, data in _sketch_rows(
        rows.annotate(read=read).values_list("identifier", "period_start", "stamp", "read")
    ):
        if period_start >= over:
            if value in merges:
                merges[value].add(data)
            continue
        stamps += stamp
        if not kept and value in closed:
            closed[value].add(data)
    if kept and kept["stamps"] == stamps:
        return kept["sketches"]
    if kept:
        for value, data in _sketch_rows(rows.filter(period_start__lt=over).values_list("identifier", "sketch")):
            if value in closed:
                closed[value].add(data)
    sketches = {value: merge.dump() for value, merge in closed.items() if not merge.empty}
    if keeps and sum(map(len, sketches.values())) <= OVER_MERGES_MAX_BYTES:
        try:
            cache.set(key, {"stamps": stamps, "sketches": sketches}, OVER_MERGES_SECONDS)
        except Exception:  # a cache that is down: the next read merges the days again
            outage_warning("visitor merges not kept: cache unreachable", exc_info=True)
    return sketches


def _cache_read(key: str) -> dict | None:
    try:
        return cache.get(key)
    except Exception:  # a cache that is down: the days are merged afresh, the figures still shown
        outage_warning("kept visitor merges not read: cache unreachable", exc_info=True)
        return None


def _over_merges_key(scope: dict, allowed: list[str], merges: dict, *, start: datetime, over: datetime) -> str:
    """The cache key of the merges before ``over``: what decides the rows read (``scope``: site,
    types, dimension; the granularities tiling [start, over)) and the values."""
    read = repr((sorted(scope.items()), allowed, start, over, sorted(merges)))
    return "beacons:visitors-over:" + hashlib.sha256(read.encode()).hexdigest()


@in_site_zone
def live_visitors(
    *, site: Site | int, definitions: Iterable[BeaconDefinition], minutes: int = 5, now: datetime | None = None
) -> VisitorCount | None:
    """Unique visitors in the last ``minutes`` minutes (the current minute included), from the site
    total's minute sketches (purged with the minute counters). None when no definition keeps minutes."""
    keeping = [d.pk for d in definitions if G.MINUTE in d.granularity_codes]
    if not keeping:
        return None
    now = now or timezone.now()
    since = bucket_start(now - timedelta(minutes=minutes - 1), G.MINUTE)
    merge = Merge()
    rows = VisitorSketch.objects.filter(
        site_id=site_id_of(site),
        definition_id__in=keeping,
        dimension="",
        identifier="",
        granularity=G.MINUTE,
        period_start__gte=since,
    ).values_list("sketch")
    for (sketch,) in _sketch_rows(rows):
        merge.add(sketch)
    return _count(merge)


def _sketch_rows(rows: QuerySet) -> Iterable[tuple]:
    """The tuples of ``rows`` (a ``values_list`` of sketches). PostgreSQL is asked for them in binary:
    Django's cursor binds on the client, which reads bytea as hex text, and a panel's 300 full day
    sketches (2.4 MB) took 14.7 ms that way against 8.5 ms in binary. The query is logged as any."""
    database = connections[rows.db]
    if database.vendor != "postgresql":
        return rows
    import psycopg

    try:
        sql, params = rows.query.get_compiler(using=rows.db).as_sql()
    except EmptyResultSet:  # a condition nothing can match (no bucket to read): no query, as the ORM does
        return []
    database.ensure_connection()
    raw = psycopg.Cursor(database.connection)
    raw.format = psycopg.pq.Format.BINARY
    wrapper = CursorDebugWrapper if database.queries_logged else CursorWrapper
    with wrapper(raw, database) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


@in_site_zone
def untracked_views(
    *, site: Site | int, definitions: Iterable[BeaconDefinition], start: datetime, end: datetime
) -> int | None:
    """Hits over [start, end) without a visitor key (Do-Not-Track / Global Privacy Control): counted
    as hits, never as visitors. None when none of ``definitions`` keeps the identity breakdown."""
    keeping = [d for d in definitions if IDENTITY in d.dimension_codes]
    if not keeping:
        return None
    return totals(
        site=site, definitions=keeping, start=start, end=end, dimension=IDENTITY, identifier=UNTRACKED
    ).current


@dataclass(frozen=True)
class SignedInShare:
    signed_in: VisitorCount
    all: VisitorCount

    @property
    def share(self) -> float | None:
        """Signed-in ÷ all visitors (the conversion rate), or None without visitors."""
        return min(1.0, self.signed_in.visitors / self.all.visitors) if self.all.visitors else None


@in_site_zone
def signed_in_share(
    *, site: Site | int, definitions: Iterable[BeaconDefinition], start: datetime, end: datetime, exact: bool = False
) -> SignedInShare:
    """Signed-in visitors beside all visitors over [start, end): the share is seed 004's conversion
    rate. A visitor who signs in during a visit is an anonymous visitor before and a signed-in one
    after, so counts in "all" twice that day (the hashes cannot be linked: that is their point). Raises ``DimensionNotKept`` when a definition keeps no identity breakdown."""
    definitions = list(definitions)
    scope = {"site": site, "definitions": definitions, "start": start, "end": end, "exact": exact}
    signed_in = visitors(dimension=IDENTITY, identifier=SIGNED_IN, **scope)
    return SignedInShare(signed_in, visitors(**scope))
