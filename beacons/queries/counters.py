"""Reads over the counters of one site: the only way the dashboard, exports and APIs see the data.

Every function here runs one query whose cost grows with the number of buckets asked
for, never with the number of hits: totals read the "" identifier row, and sums over long
ranges read month (or year) rows plus day and hour rows at the ragged edges.
Datetimes in and out are aware; bucket starts come back in UTC (convert with
``buckets.bucket_zone()`` for display). Each read aligns its buckets in its site's time zone."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import Protocol

from django.db import connection
from django.db.models import BooleanField, Expression, F, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from beacons.counting.buckets import (
    bucket_ceiling,
    bucket_end,
    bucket_start,
    bucket_zone,
    buckets_between,
    covering_buckets,
    site_zone_active,
)
from beacons.models import GRANULARITY_ORDER, BeaconAggregate, BeaconDefinition, Granularity, Site
from beacons.registry import RESERVED_PREFIX

G = Granularity


def in_site_zone(read):
    """``read`` with its buckets (days, months, ragged edges) in the time zone of its ``site``."""

    @wraps(read)
    def wrapper(*args, site, **kwargs):
        with site_zone_active(site):
            return read(*args, site=site, **kwargs)

    return wrapper


def site_id_of(site: Site | int) -> int:
    """Every read is of one site: a ``Site`` or its id."""
    return site if isinstance(site, int) else site.pk


def _ids(definitions: Iterable[BeaconDefinition | int]) -> list[int]:
    return [d if isinstance(d, int) else d.pk for d in definitions]


def _common_granularities(definitions: Iterable[BeaconDefinition | int], dimension: str = "") -> list[str]:
    """The granularities every one of ``definitions`` keeps counters of ``dimension`` in."""
    objects = [d for d in definitions if isinstance(d, BeaconDefinition)]
    if not objects:
        return [G.HOUR, G.DAY, G.MONTH, G.YEAR] if not dimension else [G.DAY, G.MONTH, G.YEAR]
    common = set(GRANULARITY_ORDER)
    for definition in objects:
        common &= set(definition.dimension_granularity_codes if dimension else definition.granularity_codes)
    return [g for g in GRANULARITY_ORDER if g in common]


def align_range(start: datetime, end: datetime, granularity: str) -> tuple[datetime, datetime]:
    """Widen [start, end) to whole buckets of ``granularity``."""
    tz = bucket_zone()
    return bucket_start(start, granularity, tz), bucket_ceiling(end, granularity, tz)


def _bucket_counts(
    *,
    site: Site | int,
    ids: list[int],
    allowed: list[str],
    granularity: str,
    start: datetime,
    end: datetime,
    identifier: str = "",
    dimension: str = "",
) -> QuerySet:
    """Rows (definition_id, granularity, period_start, total) that add up to each bucket's part
    inside [start, end): whole buckets read their own row, a bucket cut by ``start`` or ``end``
    is summed from the finer rows inside the cut (its part of the period, not the whole bucket)."""
    first_whole, last_whole = bucket_ceiling(start, granularity), bucket_start(end, granularity)
    scope = {"site_id": site_id_of(site), "definition_id__in": ids, "dimension": dimension, "identifier": identifier}
    finer = [g for g in allowed if GRANULARITY_ORDER.index(g) < GRANULARITY_ORDER.index(granularity)]
    if first_whole < last_whole:
        branches = [(granularity, first_whole, last_whole)]
        edges = [(start, first_whole), (last_whole, end)]
    else:
        branches, edges = [], [(start, end)]
    for lo, hi in edges:
        if lo < hi:
            branches += _covering_q(lo, hi, finer or [granularity], **scope).branches
    condition = Covering(branches, scope)
    return (
        BeaconAggregate.objects.filter(condition)
        .values_list("definition_id", "granularity", "period_start")
        .annotate(total=Sum("count"))
        .order_by()
    )


@in_site_zone
def series(
    *,
    site: Site | int,
    definitions: Iterable[BeaconDefinition | int],
    granularity: str,
    start: datetime,
    end: datetime,
    identifier: str = "",
    dimension: str = "",
) -> list[tuple[datetime, int]]:
    """Counts per bucket over [start, end), gap-filled with zeros, oldest first. One query.

    ``identifier=""`` gives the total of each definition; several definitions are summed. A
    bucket only partly inside [start, end) counts only that part (to the hour). With a
    ``dimension``, ``identifier`` is its value ("page views from google.com": ``dimension="source",
    identifier="google.com"``); dimensions are kept per day and coarser unless the type keeps
    them per hour, so their buckets cut by [start, end) count whole days.
    """
    definitions = list(definitions)
    counts: dict[datetime, int] = {}
    rows = _bucket_counts(
        site=site,
        ids=_ids(definitions),
        allowed=_common_granularities(definitions, dimension),
        granularity=granularity,
        start=start,
        end=end,
        identifier=identifier,
        dimension=dimension,
    )
    for _, row_granularity, moment, total in rows:
        bucket = moment if row_granularity == granularity else bucket_start(moment, granularity)
        counts[bucket] = counts.get(bucket, 0) + total
    return [(moment, counts.get(moment, 0)) for moment in buckets_between(start, end, granularity)]


@in_site_zone
def series_by_definition(
    *,
    site: Site | int,
    definitions: Iterable[BeaconDefinition | int],
    granularity: str,
    start: datetime,
    end: datetime,
    identifier: str = "",
    dimension: str = "",
) -> dict[int, list[tuple[datetime, int]]]:
    """Per-definition totals (or counts of ``identifier``, or of a ``dimension``'s value ``identifier``)
    per bucket over [start, end), gap-filled: {definition_id: series}.

    One query; a bucket only partly inside [start, end) counts only that part, as in ``series``."""
    definitions = list(definitions)
    ids = _ids(definitions)
    counts: dict[int, dict[datetime, int]] = {definition_id: {} for definition_id in ids}
    rows = _bucket_counts(
        site=site,
        ids=ids,
        allowed=_common_granularities(definitions, dimension),
        granularity=granularity,
        start=start,
        end=end,
        identifier=identifier,
        dimension=dimension,
    )
    for definition_id, row_granularity, moment, total in rows:
        bucket = moment if row_granularity == granularity else bucket_start(moment, granularity)
        counts[definition_id][bucket] = counts[definition_id].get(bucket, 0) + total
    moments = list(buckets_between(start, end, granularity))
    return {definition_id: [(m, by_moment.get(m, 0)) for m in moments] for definition_id, by_moment in counts.items()}


OTHER_TYPES = "Other types"


@in_site_zone
def series_of_top_definitions(
    *, site: Site | int, granularity: str, start: datetime, end: datetime, limit: int
) -> list[tuple[str, str, list[tuple[datetime, int]]]]:
    """Totals per bucket over [start, end) of the ``limit`` types counted most in that range
    (by name), then one "Other types" series summing all the rest: [(name, slug, series)],
    the slug "" for "Other types". The reserved visit types are no event types here.

    One statement: the site's total rows (``identifier=""``) in the range are read from the covering
    (site, granularity, period_start, definition, count) index of the total rows, once to rank the types
    and once to sum them per bucket into the busiest ones and the rest; only the ``limit``
    busiest are joined to their names. Types with nothing counted in the range are left out,
    and "Other types" when it counted none.
    """
    table, definitions = BeaconAggregate._meta.db_table, BeaconDefinition._meta.db_table
    sql = f"""
        WITH scope AS (
            SELECT definition_id, period_start, count FROM {table}
            WHERE site_id = %s AND dimension = '' AND identifier = '' AND granularity = %s AND period_start >= %s AND period_start < %s
            AND definition_id NOT IN (SELECT id FROM {definitions} WHERE slug LIKE %s)
        ),
        top AS (SELECT definition_id FROM scope GROUP BY definition_id ORDER BY SUM(count) DESC, definition_id LIMIT %s),
        named AS (SELECT id, name, slug FROM {definitions} WHERE id IN (SELECT definition_id FROM top)),
        sums AS (
            SELECT CASE WHEN definition_id IN (SELECT definition_id FROM top) THEN definition_id END AS shown,
                   period_start, SUM(count) AS total
            FROM scope GROUP BY 1, 2
        )
        SELECT named.id, named.name, named.slug, sums.period_start, sums.total FROM sums LEFT JOIN named ON named.id = sums.shown
    """
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [
                site_id_of(site),
                granularity,
                adapt(bucket_start(start, granularity)),
                adapt(end),
                f"{RESERVED_PREFIX}%",
                limit,
            ],
        )
        rows = cursor.fetchall()
    counts: dict[tuple[str, int], dict[datetime, int]] = {}
    slugs: dict[int, str] = {}
    for definition_id, name, slug, moment, total in rows:
        slugs[definition_id or 0] = slug or ""
        if isinstance(moment, str):
            moment = datetime.fromisoformat(moment)
        if timezone.is_naive(moment):  # SQLite keeps UTC without an offset
            moment = moment.replace(tzinfo=UTC)
        by_moment = counts.setdefault((name or "", definition_id or 0), {})
        by_moment[moment] = by_moment.get(moment, 0) + int(total)  # a deleted type's counts join the rest
    moments = list(buckets_between(start, end, granularity))
    ordered = sorted(key for key in counts if key[1]) + [key for key in counts if not key[1]]
    return [
        (name if key else OTHER_TYPES, slugs[key], [(m, counts[(name, key)].get(m, 0)) for m in moments])
        for name, key in ordered
    ]


# What a scope may fix: a column equal to a value, or (``__in``) to one of a list.
SCOPE_COLUMNS = ("site_id", "definition_id", "dimension", "identifier")


class Covering(Expression):
    """Rows in any of ``branches`` ((granularity, first start, end) each) within ``scope``: an OR of
    index ranges, written as SQL directly. Built from ORM lookups, the same condition took 10–15 ms
    a query to compile (tens of lookups copied and resolved for each of the sums that repeat it),
    ten times what the database took to answer it. Only for single-table reads of the counter and
    sketch tables (the columns are not qualified)."""

    conditional = True

    def __init__(self, branches: list[tuple[str, datetime, datetime]], scope: dict):
        super().__init__(output_field=BooleanField())
        unknown = {name.removesuffix("__in") for name in scope} - set(SCOPE_COLUMNS)
        if unknown:
            raise ValueError(f"not a scope column: {', '.join(sorted(unknown))}")
        self.branches, self.scope = branches, scope

    def as_sql(self, compiler, connection):
        lists = [value for name, value in self.scope.items() if name.endswith("__in")]
        if not self.branches or not all(lists):
            return "1 = 0", []
        quote = connection.ops.quote_name
        parts, scope_params = [], []
        for name, value in self.scope.items():
            if name.endswith("__in"):
                parts.append(f"{quote(name.removesuffix('__in'))} IN ({', '.join(['%s'] * len(value))})")
                scope_params += list(value)
            else:
                parts.append(f"{quote(name)} = %s")
                scope_params.append(value)
        parts += [f"{quote('granularity')} = %s", f"{quote('period_start')} >= %s", f"{quote('period_start')} < %s"]
        branch = f"({' AND '.join(parts)})"
        adapt = connection.ops.adapt_datetimefield_value
        params = []
        for granularity, first, last in self.branches:
            params += [*scope_params, granularity, adapt(first), adapt(last)]
        return f"({' OR '.join([branch] * len(self.branches))})", params


def _covering_q(start: datetime, end: datetime, allowed: list[str], *, minutes: bool = False, **scope) -> Covering:
    # ``scope`` (e.g. site_id, definition_id__in, identifier) is repeated in every branch, so each
    # branch is one index range scan (SQLite's MULTI-INDEX OR, PostgreSQL's BitmapOr)
    # instead of a scan over all of a definition's rows filtered afterwards. Minute rows are
    # read only when asked (``minutes``): they are purged after a few days.
    fine = (G.SECOND,) if minutes and G.MINUTE in allowed else (G.SECOND, G.MINUTE)
    coarse_allowed = [g for g in allowed if g not in fine] or allowed
    finest = coarse_allowed[0]
    start, end = align_range(start, end, finest)
    branches = [
        (granularity, first, last)
        for granularity, spans in covering_buckets(start, end, coarse_allowed).items()
        for first, last in spans
    ]
    return Covering(branches, scope)


def _through_now(end: datetime) -> datetime:
    """A range end that lies in the future, moved to the end of the current year.

    No counter starts after now, so sums are unchanged, while whole months and the year
    cover "the last 30 days" or "the last 12 months" in a few rows per identifier instead
    of one per day.
    """
    now = timezone.now()
    if end <= now:
        return end
    return max(end, bucket_end(now, G.YEAR))


@in_site_zone
def top_identifiers(
    *,
    site: Site | int,
    definitions: Iterable[BeaconDefinition],
    start: datetime,
    end: datetime,
    limit: int = 10,
    contains: str = "",
) -> list[tuple[str, int]]:
    """The identifiers with the most hits over [start, end), most first (ties by name)."""
    rows = identifiers_compared(
        site=site, definitions=definitions, start=start, end=end, limit=limit, contains=contains
    )
    return [(row.identifier, row.count) for row in rows]


@dataclass(frozen=True)
class IdentifierRow:
    identifier: str
    count: int
    previous: int | None  # None when no comparison was asked for
    compared: int | None = None  # the count up to the comparison's cut (None: all of it)

    @property
    def change(self) -> int | None:
        return (
            None if self.previous is None else (self.count if self.compared is None else self.compared) - self.previous
        )

    @property
    def change_ratio(self) -> float | None:
        """Relative change against the previous period, or None when it had no hits."""
        return self.change / self.previous if self.previous else None


IDENTIFIER_ORDERS = {"count": ("-current", "identifier"), "change": ("-change", "-current", "identifier")}


@in_site_zone
def identifiers_compared(
    *,
    site: Site | int,
    definitions: Iterable[BeaconDefinition],
    start: datetime,
    end: datetime,
    previous_period: tuple[datetime, datetime] | None = None,
    order: str = "count",
    limit: int | None,
    offset: int = 0,
    contains: str = "",
    compared_end: datetime | None = None,
    cut_granularity: str = G.HOUR,
    dimension: str = "",
) -> list[IdentifierRow]:
    """Identifiers with their hits over [start, end) and, given ``previous_period`` (its start and end),
    over that earlier period too, in one query. Ordered by ``order`` ("count": most first;
    "change": most grown first, ties by count then name); ``limit=None`` for every row. A
    running period passes ``compared_end`` as ``totals`` does: the change then compares
    [start, compared_end) with the previous period, read to ``cut_granularity``. With a
    ``dimension``, the rows are its values instead of identifiers.

    With a previous period, identifiers counted only then are included (count 0: a page that
    stopped); without one, only identifiers counted in [start, end)."""
    definitions = list(definitions)
    allowed = _common_granularities(definitions, dimension)
    scope = {"site_id": site_id_of(site), "definition_id__in": _ids(definitions), "dimension": dimension}
    current = _covering_q(start, _through_now(end), allowed, **scope)
    compare = previous_period is not None
    condition = current
    minutes = cut_granularity == G.MINUTE
    compared = current
    if compare:
        previous = _covering_q(*previous_period, allowed, minutes=minutes, **scope)
        condition = current | previous
        if compared_end is not None:
            compared = _covering_q(start, compared_end, allowed, minutes=minutes, **scope)
            condition |= compared
    rows = BeaconAggregate.objects.filter(condition).exclude(identifier="")
    if contains:
        rows = rows.filter(identifier__icontains=contains)
    rows = rows.values("identifier")
    if compare:
        rows = rows.annotate(
            current=Coalesce(Sum("count", filter=current), 0),
            previous=Coalesce(Sum("count", filter=previous), 0),
            compared=Coalesce(Sum("count", filter=compared), 0),
        ).annotate(change=F("compared") - F("previous"))
    else:
        rows = rows.annotate(current=Sum("count"))
    rows = rows.order_by(*IDENTIFIER_ORDERS["change" if compare and order == "change" else "count"])
    rows = rows[offset : None if limit is None else offset + limit]
    return [
        IdentifierRow(
            row["identifier"],
            row["current"],
            row["previous"] if compare else None,
            row["compared"] if compare else None,
        )
        for row in rows
    ]


def identifiers_by_definition(
    *,
    site: Site | int,
    definitions: Iterable[BeaconDefinition],
    identifiers: Iterable[str],
    start: datetime,
    end: datetime,
    previous_period: tuple[datetime, datetime] | None = None,
    compared_end: datetime | None = None,
    cut_granularity: str = G.HOUR,
    dimension: str = "",
) -> dict[tuple[int, str], IdentifierRow]:
    """The rows ``identifiers_compared`` gives for ``identifiers`` (of ``dimension``), of each of
    ``definitions`` on its own: {(definition_id, identifier): row}, in one query; an identifier a
    definition did not count is missing."""
    definitions, identifiers = list(definitions), list(identifiers)
    if not identifiers:
        return {}
    allowed = _common_granularities(definitions, dimension)
    scope = {
        "site_id": site_id_of(site),
        "definition_id__in": _ids(definitions),
        "dimension": dimension,
        "identifier__in": identifiers,
    }
    current = _covering_q(start, _through_now(end), allowed, **scope)
    condition, sums = current, {"current": Coalesce(Sum("count", filter=current), 0)}
    minutes = cut_granularity == G.MINUTE
    if previous_period is not None:
        previous = _covering_q(*previous_period, allowed, minutes=minutes, **scope)
        condition |= previous
        sums["previous"] = Coalesce(Sum("count", filter=previous), 0)
        if compared_end is not None:
            compared = _covering_q(start, compared_end, allowed, minutes=minutes, **scope)
            condition |= compared
            sums["compared"] = Coalesce(Sum("count", filter=compared), 0)
    rows = BeaconAggregate.objects.filter(condition).values("definition_id", "identifier").annotate(**sums).order_by()
    return {
        (row["definition_id"], row["identifier"]): IdentifierRow(
            row["identifier"], row["current"], row.get("previous"), row.get("compared")
        )
        for row in rows
    }


@dataclass(frozen=True)
class Totals:
    current: int
    previous: int
    previous_start: datetime
    previous_end: datetime
    compared: int | None = None  # the current period up to ``compared_end`` (None: all of it)

    @property
    def change(self) -> float | None:
        """Relative change against the previous period, or None when it had no hits."""
        if not self.previous:
            return None
        current = self.current if self.compared is None else self.compared
        return (current - self.previous) / self.previous


@in_site_zone
def totals(
    *,
    site: Site | int,
    definitions: Iterable[BeaconDefinition],
    start: datetime,
    end: datetime,
    identifier: str = "",
    previous_period: tuple[datetime, datetime] | None = None,
    compared_end: datetime | None = None,
    cut_granularity: str = G.HOUR,
    dimension: str = "",
) -> Totals:
    """Hits over [start, end) and over ``previous_period`` (its start and end), in one query.

    The previous period defaults to the one of equal length just before ``start``. A running
    period passes ``compared_end`` (and a previous end of the same elapsed length, see
    ``buckets.elapsed_cut``): the change then compares [start, compared_end) with the previous
    period, read to the minute when ``cut_granularity`` is minute, while ``current`` still
    counts all of [start, end). With a ``dimension``, ``identifier`` is its value."""
    condition, sums, (previous_start, previous_end) = _totals_sums(
        site=site,
        definitions=definitions,
        start=start,
        end=end,
        identifier=identifier,
        previous_period=previous_period,
        compared_end=compared_end,
        cut_granularity=cut_granularity,
        dimension=dimension,
    )
    rows = BeaconAggregate.objects.filter(condition).aggregate(**sums)
    compared_total = None if compared_end is None else rows["compared"] or 0
    return Totals(rows["current"] or 0, rows["previous"] or 0, previous_start, previous_end, compared_total)


def totals_by_definition(
    *,
    site: Site | int,
    definitions: Iterable[BeaconDefinition],
    start: datetime,
    end: datetime,
    identifier: str = "",
    previous_period: tuple[datetime, datetime] | None = None,
    compared_end: datetime | None = None,
    cut_granularity: str = G.HOUR,
    dimension: str = "",
) -> dict[int, Totals]:
    """``totals`` of each of ``definitions`` on its own, {definition_id: Totals}, in one query (the
    granularities read are those every one of them keeps)."""
    definitions = list(definitions)
    condition, sums, (previous_start, previous_end) = _totals_sums(
        site=site,
        definitions=definitions,
        start=start,
        end=end,
        identifier=identifier,
        previous_period=previous_period,
        compared_end=compared_end,
        cut_granularity=cut_granularity,
        dimension=dimension,
    )
    rows = {
        row["definition_id"]: row
        for row in BeaconAggregate.objects.filter(condition).values("definition_id").annotate(**sums).order_by()
    }
    found = {}
    for definition_id in _ids(definitions):
        row = rows.get(definition_id, {})
        compared_total = None if compared_end is None else row.get("compared") or 0
        found[definition_id] = Totals(
            row.get("current") or 0, row.get("previous") or 0, previous_start, previous_end, compared_total
        )
    return found


def _totals_sums(
    *,
    site: Site | int,
    definitions: Iterable[BeaconDefinition],
    start: datetime,
    end: datetime,
    identifier: str,
    previous_period: tuple[datetime, datetime] | None,
    compared_end: datetime | None,
    cut_granularity: str,
    dimension: str,
) -> tuple[Q, dict, tuple[datetime, datetime]]:
    """The rows ``totals`` reads, its sums (current, previous and, for a running period, compared)
    and the previous period."""
    definitions = list(definitions)
    allowed = _common_granularities(definitions, dimension)
    previous_start, previous_end = previous_period or (start - (end - start), start)
    scope = {
        "site_id": site_id_of(site),
        "definition_id__in": _ids(definitions),
        "dimension": dimension,
        "identifier": identifier,
    }
    minutes = cut_granularity == G.MINUTE
    current = _covering_q(start, end, allowed, **scope)
    previous = _covering_q(previous_start, previous_end, allowed, minutes=minutes, **scope)
    condition, sums = (
        current | previous,
        {"current": Sum("count", filter=current), "previous": Sum("count", filter=previous)},
    )
    if compared_end is not None:
        compared = _covering_q(start, compared_end, allowed, minutes=minutes, **scope)
        condition |= compared
        sums["compared"] = Sum("count", filter=compared)
    return condition, sums, (previous_start, previous_end)


@in_site_zone
def live_count(
    *,
    site: Site | int,
    definitions: Iterable[BeaconDefinition],
    identifier: str = "",
    minutes: int = 5,
    now: datetime | None = None,
) -> int | None:
    """Hits (of ``identifier``, or all) in the last ``minutes`` minutes (the current minute
    included), from minute buckets.

    None when none of the definitions keeps minute counts.
    """
    keeping = [d.pk for d in definitions if G.MINUTE in d.granularity_codes]
    if not keeping:
        return None
    now = now or timezone.now()
    since = bucket_start(now - timedelta(minutes=minutes - 1), G.MINUTE)
    total = BeaconAggregate.objects.filter(
        site_id=site_id_of(site),
        definition_id__in=keeping,
        dimension="",
        identifier=identifier,
        granularity=G.MINUTE,
        period_start__gte=since,
    ).aggregate(total=Sum("count"))["total"]
    return total or 0


# --- breakdowns -------------------------------------------------------------------------------


class ComparedPeriod(Protocol):
    """The period a breakdown's change is measured against: the dashboard's ``Comparison``
    (``DashboardState.kpi_comparison``), so breakdowns, top pages and KPI cards share one rule."""

    previous_start: datetime
    previous_end: datetime
    current_end: datetime | None  # a running period: the current part compared (None: all of it)
    granularity: str  # what the cut is read to


@dataclass(frozen=True)
class BreakdownRow(IdentifierRow):
    share: float | None = None  # of the type's hits in the period; None when it had none

    @property
    def value(self) -> str:
        return self.identifier


@in_site_zone
def breakdown(
    *,
    site: Site | int,
    definition: BeaconDefinition,
    dimension: str,
    start: datetime,
    end: datetime,
    limit: int | None,
    compare: ComparedPeriod | None = None,
    total: int | None = None,
) -> list[BreakdownRow]:
    """The values of ``dimension`` with the most hits over [start, end), most first: each with its
    count, its share of the type's hits in the period, and (given ``compare``) its change on
    that period. Two queries: the values (``identifiers_compared``) and the total, one when the
    caller passes the type's ``total`` over [start, end) it has read already.

    Shares are of every hit, so the values of a dimension not every hit has (a custom
    property) add up to less than 1. Raises ``DimensionNotKept`` for a dimension the type
    has no counters of."""
    if dimension not in definition.dimension_codes:
        raise DimensionNotKept(dimension)
    rows = identifiers_compared(
        site=site,
        definitions=[definition],
        start=start,
        end=end,
        previous_period=(compare.previous_start, compare.previous_end) if compare else None,
        compared_end=compare.current_end if compare else None,
        cut_granularity=compare.granularity if compare else G.HOUR,
        limit=limit,
        dimension=dimension,
    )
    if total is None:
        total = totals(
            site=site, definitions=[definition], start=start, end=end, previous_period=(start, start)
        ).current
    return [
        BreakdownRow(row.identifier, row.count, row.previous, row.compared, row.count / total if total else None)
        for row in rows
    ]


class DimensionNotKept(ValueError):
    """No counter holds this dimension of this type (not ticked, or not a dimension at all)."""


@dataclass(frozen=True)
class CounterFilter:
    """What a filtered read reads: the ``dimension`` (``""``: identifiers) and its ``value`` (the
    identifier, "" for all), and whether a page asked for was left out."""

    dimension: str = ""
    value: str = ""
    pages_ignored: bool = False  # a page and a dimension value were asked for: this reads all pages


def counter_filter(
    *, definition: BeaconDefinition, identifier: str = "", dimension: str = "", value: str = ""
) -> CounterFilter:
    """The counters that answer "``identifier`` and/or ``dimension`` = ``value``". Counters are kept per
    page and per dimension value, never per page and value together: asked for both, the value
    wins and ``pages_ignored`` says that every page is counted (the dashboard shows it). Raises
    ``DimensionNotKept`` for a dimension the type has no counters of."""
    if not (dimension and value):
        return CounterFilter("", identifier)
    if dimension not in definition.dimension_codes:
        raise DimensionNotKept(dimension)
    return CounterFilter(dimension, value, pages_ignored=bool(identifier))


def first_counted(*, site: Site | int) -> datetime | None:
    """The start of the site's earliest day bucket of any type (else of any bucket), None when nothing
    was counted: where "all" of a site's counts begins. One query (two when no type keeps days)."""
    rows = BeaconAggregate.objects.filter(site_id=site_id_of(site), dimension="", identifier="")
    found = rows.filter(granularity=G.DAY).order_by("period_start").values_list("period_start", flat=True).first()
    return found or rows.order_by("period_start").values_list("period_start", flat=True).first()
