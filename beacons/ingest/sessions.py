"""Turning page views into visit adjustments: each visitor's open visit, and what each page view adds.

A visit is one visitor's page views with no gap over ``BEACONS_VISIT_GAP_SECONDS`` (1800). Its
state (start, entry page, last page, page count, last seen, the entry's dimension values) is
kept under the site and the visitor key. With the redis sink, a request only logs its page
views beside its counts (one round trip, no state read) and the drain folds them into visits,
the states in the sink's Redis (``page_view_log_fold``); with the other sinks each request moves
its visit on at once, the state in Django's cache (local memory by default, Redis with
``CACHE_URL``), expiring after the gap. ``visit_fold`` is the one rule of what page views do to
a visit, whichever folds it. Every adjustment is counted in the
buckets where the visit **started**, under the reserved types of ``registry.VisitSlug``, so a counter is never
taken below what was added to it before:

- the first page view of a visit: visits +1, bounces +1, visit pages +1 (entry page and each
  entry dimension value), exits +1 (that page);
- each later one: visit pages +1; bounces −1 if it is the second; visit seconds + the time
  since the previous page view; exits −1 on the previous page and +1 on this one.

Only page views (types of kind ``page_view``) start or extend visits; custom events, actions
and errors neither extend nor "un-bounce" one (as Fathom and Simple Analytics count; Plausible
lets interactive custom events un-bounce a visit).

A hit without a usable visitor key (``context.visitor_key == ""``: DNT/GPC) counts no visit.
Anonymous visitor keys change with the daily salt (UTC midnight), so such a visit is cut
there: the page views after midnight start a new visit.

Faults: the cache (or the redis sink's Redis) unreachable costs the visits of those page views,
never the page views themselves; visits resume when it is back.

Concurrency, redis sink: every process appends to one log, which Redis numbers in the order it
receives the entries, so page views of one visitor handled by several processes, at once or
not, fold in that order into one visit; the drain's writes are exactly once (see
``page_view_log_fold``). Visit figures are as fresh as the last drain, as the counts are.

Concurrency, Django's cache (the direct and memory sinks): a visit is created with ``cache.add``,
so two page views of a new visitor handled at the same moment by two processes start one visit,
not two. The rest is read-then-write, last writer wins: two page views of one visitor within the
same few milliseconds (in two processes) may both be taken as the second page view (bounces −1
twice, clamped at 0 by the write; pages counted right), or one exit move may be lost (one exit
stays on the page before). The state is written before the increments reach the sink: a page
view that arrives in that window of milliseconds, or (memory sink, several processes) whose
process flushes before the process that started the visit, takes back a count not written yet;
the write floors it at 0 (``increments.aggregates_add``), so that counter is too high by that
adjustment. A request that fails after its state was written (503) has moved the visit on
without counting.
"""

import json
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import partial
from typing import NamedTuple

from django.conf import settings
from django.core.cache import cache

from beacons.counting.buckets import SiteZones
from beacons.counting.increments import CounterKey, DimensionValue, Hit, dimension_values_for, increments_for
from beacons.counting.redis_format import (
    RENAME_TO_BATCH,
    LoggedPageViews,
    new_batch_id,
    page_view_log_batch_key,
    page_view_log_keys,
    page_views_log_decode,
    page_views_log_entry,
    visit_state_key,
)
from beacons.counting.sinks import VisitWrite
from beacons.counting.sketches import Visitors
from beacons.logs import outage_warning
from beacons.models import (
    FINE_GRANULARITIES,
    BeaconDefinition,
    dimension_granularity_codes_of,
    granularity_codes_of,
)
from beacons.registry import DB_UNREACHABLE, VisitSlug, system_definitions_resolve

QUARTER_HOUR = 900
PAGE_VIEW_LOG_CHUNK = 10_000  # log entries read at once by the drain
VISITS_PER_WRITE = 500  # visits written per script call: Redis runs nothing else while a script runs
# The drain writes a state when it folds the page views logged before it: the state must outlive
# the gap until the next drain has folded what came after, so a drain up to an hour late still
# continues the visit.
VISIT_STATE_KEPT_AFTER_GAP = 3600
# (start, entry page, last page, page views, last seen, entry dimension values): epoch seconds
VisitState = tuple[int, str, str, int, int, tuple[tuple[str, str], ...]]


class PageView(NamedTuple):
    """What a visit needs of a page view (a ``Hit`` has the same fields)."""

    identifier: str
    dimensions: dict[str, str]


def visit_key(*, site_id: int, visitor_key: str) -> str:
    return f"beacons:visit:{site_id}:{visitor_key}"


def visit_fold(
    state: VisitState | None, page_views: Iterable[PageView | Hit], *, site_id: int, now: int, gap: int, definitions
) -> tuple[VisitState | None, list[tuple[int, Hit]]]:
    """The visit after ``page_views`` (one request's, in order) at ``now``, from ``state`` (None:
    no open visit), and the adjustments they make, each with the start of its visit."""
    adjustments: list[tuple[int, Hit]] = []
    for hit in page_views:
        if state is None or now - state[4] > gap:
            state = (now, hit.identifier, hit.identifier, 1, now, tuple(sorted(hit.dimensions.items())))
            adjustments += _visit_started(site_id, definitions, hit, now)
        else:
            state, moved = _visit_extended(site_id, definitions, state, hit, now)
            adjustments += moved
    return state, adjustments


def visits_adjust(
    *,
    page_views: Iterable[Hit],
    site_id: int,
    visitor_key: str,
    received_at: datetime,
    increments: Counter[CounterKey],
    values: Counter[DimensionValue],
    zones: SiteZones,
) -> None:
    """Fold the page views of one request (one visitor, in order) into its visit kept in Django's
    cache, and add the adjustments to ``increments`` and ``values`` (the request's, written in the
    same sink call). Nothing without a visitor key, or with the cache or, for a process that never
    read them, the visit types unreachable."""
    page_views = list(page_views)
    definitions = _definitions_for(page_views, visitor_key)
    if definitions is None:
        return
    gap = settings.BEACONS_VISIT_GAP_SECONDS
    key = visit_key(site_id=site_id, visitor_key=visitor_key)
    fold = _fold_for(page_views, site_id=site_id, received_at=received_at, definitions=definitions)
    try:
        state: VisitState | None = cache.get(key)
        folded, adjustments = fold(state)
        if state is None and not cache.add(key, folded, timeout=gap):
            # Of two processes starting one visitor's visit at once, one starts it (add); the other continues it.
            state = cache.get(key)
            if state is None:
                return
            folded, adjustments = fold(state)
        if state is not None:
            cache.set(key, folded, timeout=gap)
    except Exception as exc:  # a cache that is down: page views count, their visits do not
        outage_warning("visits not counted, cache unreachable: %s", exc)
        return
    _adjustments_add(adjustments, increments=increments, values=values, zones=zones)


def counts_add_with_visit(
    sink,
    *,
    increments: Counter[CounterKey],
    values: Counter[DimensionValue],
    visitors: Visitors,
    page_views: list[Hit],
    site_id: int,
    visitor_key: str,
    received_at: datetime,
    zones: SiteZones,
) -> None:
    """Add one request's counts to ``sink`` with the adjustments of its visitor's visit.

    A sink that logs page views (the redis sink: ``sink.logs_page_views``) adds them to its
    page-view log in the same round trip as the counts, and the drain folds them into visits
    (``page_view_log_fold``): the request reads no state and waits for no other process. With
    any other sink, the visit is moved on at once, its state in Django's cache (``visits_adjust``)."""
    if getattr(sink, "logs_page_views", False):
        entry = b""
        if visitor_key:
            entry = page_views_log_entry(
                site_id=site_id, visitor_key=visitor_key, received=int(received_at.timestamp()), page_views=page_views
            )
        sink.add(increments, values, visitors, page_views=entry)
        return
    visits_adjust(
        page_views=page_views,
        site_id=site_id,
        visitor_key=visitor_key,
        received_at=received_at,
        increments=increments,
        values=values,
        zones=zones,
    )
    sink.add(increments, values, visitors)


def page_view_log_fold(*, sink) -> int:
    """Fold the page views ``sink`` (a redis sink) logged into their visitors' visits, in the order
    Redis received them, and add the adjustments to its live hash (``beacons_drain`` calls this
    before it moves the live hash): returns the page views read (those of a batch read again count again).

    Exactly once, as the drain: the live log is renamed to a batch first (leftover batches of a
    drain that stopped are folded before it), and each visitor's new state, which records the
    number of the last entry folded into it, is written in one script call with its adjustments
    and only if the state read is still there (compare-and-set). A batch folded again after a
    crash skips the entries its visitors' states already hold; a drain running beside it is
    refused the visits the other wrote. Raises ``redis.RedisError`` (the log stays for the next
    drain) and, with the visit types unreadable, ``DB_UNREACHABLE``."""
    client = sink.client
    live, _, pending = page_view_log_keys(sink.prefix)
    batch_ids = sorted(raw.decode() for raw in client.smembers(pending))  # ids start with their time
    new_id = new_batch_id()
    if client.eval(RENAME_TO_BATCH, 3, live, page_view_log_batch_key(sink.prefix, new_id), pending, new_id):
        batch_ids.append(new_id)
    if not batch_ids:
        return 0
    fold = partial(
        _log_entries_fold,
        sink=sink,
        definitions=system_definitions_resolve(),
        zones=SiteZones(),
        gap=settings.BEACONS_VISIT_GAP_SECONDS,
    )
    page_views = 0
    for batch_id in batch_ids:
        key = page_view_log_batch_key(sink.prefix, batch_id)
        read = 0
        while chunk := client.lrange(key, read, read + PAGE_VIEW_LOG_CHUNK - 1):
            entries = [entry for raw in chunk if (entry := page_views_log_decode(raw)) is not None]
            fold(entries)
            page_views += sum(len(entry.page_views) for entry in entries)
            read += len(chunk)
        client.delete(key)
        client.srem(pending, batch_id)
    return page_views


def _log_entries_fold(entries: list[LoggedPageViews], *, sink, definitions, zones: SiteZones, gap: int) -> None:
    """Fold ``entries`` (in the order logged) into the visits of their visitors and write them."""
    by_visit: dict[str, list[LoggedPageViews]] = {}
    for entry in entries:
        key = visit_state_key(sink.prefix, site_id=entry.site_id, visitor_key=entry.visitor_key)
        by_visit.setdefault(key, []).append(entry)
    keys = list(by_visit)
    for start in range(0, len(keys), VISITS_PER_WRITE):
        part = keys[start : start + VISITS_PER_WRITE]
        writes = []
        for key, held in zip(part, sink.client.mget(part), strict=True):
            write = _visit_write(key, held or b"", by_visit[key], definitions=definitions, zones=zones, gap=gap)
            if write is not None:
                writes.append(write)
        if writes:
            sink.visits_write(writes)


def _visit_write(
    key: str, held: bytes, entries: list[LoggedPageViews], *, definitions, zones: SiteZones, gap: int
) -> VisitWrite | None:
    """The write moving the visit ``held`` on by ``entries`` (those it does not hold yet), or None."""
    state, number = state_decode(held)
    # Entries the state holds were folded by a drain that stopped before it finished their batch.
    entries = [entry for entry in entries if entry.number > number]
    if not entries:
        return None
    adjustments: list[tuple[int, Hit]] = []
    for entry in entries:
        page_views = [PageView(identifier, dimensions) for identifier, dimensions in entry.page_views]
        state, moved = visit_fold(
            state, page_views, site_id=entry.site_id, now=entry.received, gap=gap, definitions=definitions
        )
        adjustments += moved
    increments: Counter[CounterKey] = Counter()
    values: Counter[DimensionValue] = Counter()
    _adjustments_add(adjustments, increments=increments, values=values, zones=zones)
    seconds = gap + VISIT_STATE_KEPT_AFTER_GAP
    return VisitWrite(key, held, state_encode(state, entries[-1].number), seconds, increments, values)


def state_encode(state: VisitState, number: int) -> bytes:
    """The bytes a visit state is kept as in Redis, with the number of the last log entry folded
    into it (the same state, the same bytes: compared as they are)."""
    return json.dumps([number, *state]).encode()  # ASCII: any character, a lone surrogate too, is escaped


def state_decode(raw: bytes | None) -> tuple[VisitState | None, int]:
    """Inverse of ``state_encode``; (None, 0) for no state, or one that is not a state (a new
    visit replaces it)."""
    if not raw:
        return None, 0
    try:
        number, start, entry, last, pages, last_seen, dimensions = json.loads(raw)
        state = (
            int(start),
            str(entry),
            str(last),
            int(pages),
            int(last_seen),
            tuple((str(dimension), str(value)) for dimension, value in dimensions),
        )
        return state, int(number)
    except (ValueError, TypeError):
        return None, 0


def _fold_for(page_views: list[Hit], *, site_id: int, received_at: datetime, definitions):
    return partial(
        visit_fold,
        page_views=page_views,
        site_id=site_id,
        now=int(received_at.timestamp()),
        gap=settings.BEACONS_VISIT_GAP_SECONDS,
        definitions=definitions,
    )


def _definitions_for(page_views: list[Hit], visitor_key: str) -> dict[str, BeaconDefinition] | None:
    """The visit types, or None when there is nothing to count a visit of (or they are unreadable)."""
    if not visitor_key or not page_views:
        return None
    try:
        return system_definitions_resolve()
    except DB_UNREACHABLE as exc:
        outage_warning("visits not counted, visit types not readable: %s", exc)
        return None


def _visit_started(site_id: int, definitions: dict[str, BeaconDefinition], hit: Hit, now: int) -> list[tuple[int, Hit]]:
    started = [
        (now, _adjustment(site_id, definitions[slug], hit.identifier, hit.dimensions, 1))
        for slug in (VisitSlug.VISITS, VisitSlug.BOUNCES, VisitSlug.PAGES)
    ]
    return [*started, (now, _adjustment(site_id, definitions[VisitSlug.EXITS], hit.identifier, {}, 1))]


def _visit_extended(
    site_id: int, definitions: dict[str, BeaconDefinition], state: VisitState, hit: Hit, now: int
) -> tuple[VisitState, list[tuple[int, Hit]]]:
    start, entry, last, pages, last_seen, dimensions = state
    entry_dimensions = dict(dimensions)
    moved = [_adjustment(site_id, definitions[VisitSlug.PAGES], entry, entry_dimensions, 1)]
    if pages == 1:
        moved.append(_adjustment(site_id, definitions[VisitSlug.BOUNCES], entry, entry_dimensions, -1))
    if now > last_seen:
        moved.append(_adjustment(site_id, definitions[VisitSlug.SECONDS], entry, entry_dimensions, now - last_seen))
    if hit.identifier != last:
        exits = definitions[VisitSlug.EXITS]
        moved += [_adjustment(site_id, exits, last, {}, -1), _adjustment(site_id, exits, hit.identifier, {}, 1)]
    return (start, entry, hit.identifier, pages + 1, max(now, last_seen), dimensions), [(start, m) for m in moved]


def _adjustment(site_id: int, definition: BeaconDefinition, identifier: str, dimensions, count: int) -> Hit:
    granularities = granularity_codes_of(definition.granularities)
    dimension_granularities = dimension_granularity_codes_of(definition.granularities, definition.dimensions_by_hour)
    return Hit(
        site_id,
        definition.id,
        granularities,
        identifier,
        dimensions,
        dimension_granularities if dimensions else (),
        count,
    )


def _adjustments_add(
    adjustments: list[tuple[int, Hit]],
    *,
    increments: Counter[CounterKey],
    values: Counter[DimensionValue],
    zones: SiteZones,
) -> None:
    """Add each adjustment in the buckets of its visit's start (an exit moved within one total
    adds nothing to the total: such zero keys are left out). Adjustments of the same counters
    are summed first: a visit's page views folded at once (by the drain) repeat most of them."""
    by_start: dict[int, dict[tuple, list]] = {}
    for start, hit in adjustments:
        merged = by_start.setdefault(start, {})
        key = (hit.site_id, hit.definition_id, hit.identifier, frozenset(hit.dimensions.items()))
        same = merged.get(key)
        if same is None:
            merged[key] = [hit, hit.count]
        else:
            same[1] += hit.count
    for start, merged in by_start.items():
        hits = [hit if hit.count == n else hit._replace(count=n) for hit, n in merged.values() if n]
        # Visit types keep hours and coarser, whose starts are whole quarter hours in UTC in every
        # time zone: one moment per quarter hour lets visits share the cached bucket starts.
        coarse = all(FINE_GRANULARITIES.isdisjoint(hit.granularities) for hit in hits)
        moment = datetime.fromtimestamp(start - start % QUARTER_HOUR if coarse else start, UTC)
        for added, into in (
            (increments_for(hits=hits, received_at=moment, zones=zones), increments),
            (dimension_values_for(hits=hits, received_at=moment, zones=zones), values),
        ):
            get = into.get  # not +=: Counter's __missing__ is a Python call per new key
            for key, n in added.items():
                if n:
                    into[key] = get(key, 0) + n
