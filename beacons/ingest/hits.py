"""Counting a request's accepted hits: at once, or logged as they are for the drain (the redis sink).

``hits_count`` is the one rule of what hits count: their counter increments, dimension values,
visitors (sketch keys) and, for page views, their visit (``beacons.ingest.sessions``), handed to
a sink in one call.

With the redis sink a request does not count its hits: it appends them, as ingest accepted them
(type, buckets, identifier, dimension values; site, time, visitor key), to a hit log in Redis,
one entry per request in one round trip shared with the process's other requests
(``RedisSink.hits_log``), and answers once Redis has it. The drain counts the log
(``hit_log_fold``) with the same ``hits_count``, before it folds page views into visits and moves
the live hash into the database, so the figures are those a request would have counted, as
fresh as the last drain (as every count with that sink is). A request's work is then what
ingest must decide (the body, the bot filter, privacy, the site, the rate limit, duplicates, the
type, extraction) and one short write: the counting moves out of the request.

Exactly once: the live log is renamed to a batch first (leftover batches of a drain that stopped
are counted before it, oldest first); each chunk of a batch is counted and cut from the batch in
one transaction (``MULTI``: the count script and ``LTRIM``), under ``WATCH`` of the batch, so a
drain that stops between reading and writing a chunk leaves it whole, and of two drains at once
only one counts it. With Redis unreachable a request counts its hits at once in the database
(``HitLogUnavailable``: the sink's fallback), as the redis sink does with counts.
"""

import json
import logging
from collections import Counter
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import NamedTuple

from beacons.counting.buckets import SiteZones
from beacons.counting.increments import CounterKey, DimensionValue, Hit, dimension_values_for, increments_for
from beacons.counting.redis_format import RENAME_TO_BATCH, hit_log_batch_key, hit_log_keys, new_batch_id
from beacons.counting.sinks import _COUNT, HitLogUnavailable
from beacons.counting.sketches import Visitors, visitor_keys_for
from beacons.ingest import sessions

logger = logging.getLogger("beacons")

ENTRY_VERSION = 1
HIT_LOG_CHUNK = 1_000  # entries counted per transaction by the drain


class LoggedHits(NamedTuple):
    """One request's hits as its hit-log entry holds them."""

    site_id: int
    received_at: datetime
    visitor_key: str
    hits: list[Hit]
    page_views: list[Hit]  # those of ``hits`` of a page-view type


def hits_record(
    sink, *, hits: list[Hit], site_id: int, received_at: datetime, visitor_key: str, page_view_ids: Collection[int]
) -> None:
    """Count one request's ``hits`` through ``sink``: logged for the drain where the sink keeps a
    hit log, else at once; with the hit log unreachable, at once in the database."""
    counts_visits = True
    if getattr(sink, "logs_hits", False):
        try:
            sink.hits_log(
                hit_log_entry(
                    hits=hits,
                    site_id=site_id,
                    received_at=received_at,
                    visitor_key=visitor_key,
                    page_view_ids=page_view_ids,
                )
            )
            return
        except HitLogUnavailable:
            # Counted in the database at once; their visits are not (their states are in that Redis).
            sink, counts_visits = sink.fallback, False
    page_views = [hit for hit in hits if hit.definition_id in page_view_ids] if counts_visits else []
    hits_count(
        sink,
        hits=hits,
        page_views=page_views,
        site_id=site_id,
        received_at=received_at,
        visitor_key=visitor_key,
        zones=SiteZones(),
    )


def hits_count(
    sink,
    *,
    hits: list[Hit],
    page_views: list[Hit],
    site_id: int,
    received_at: datetime,
    visitor_key: str,
    zones: SiteZones,
) -> None:
    """Hand ``sink`` what ``hits`` of one request count, in one call: increments, dimension values,
    visitors (none for an untracked visitor) and, for ``page_views``, their visit's adjustments
    (``zones``: the sites' time zones, read once per request or per drain)."""
    increments = increments_for(hits=hits, received_at=received_at, zones=zones)
    values = dimension_values_for(hits=hits, received_at=received_at, zones=zones)
    visitors = visitor_keys_for(hits=hits, received_at=received_at, visitor_key=visitor_key, zones=zones)
    if page_views:
        sessions.counts_add_with_visit(
            sink,
            increments=increments,
            values=values,
            visitors=visitors,
            page_views=page_views,
            site_id=site_id,
            visitor_key=visitor_key,
            received_at=received_at,
            zones=zones,
        )
    else:
        sink.add(increments, values, visitors)


def hit_log_entry(
    *, hits: list[Hit], site_id: int, received_at: datetime, visitor_key: str, page_view_ids: Collection[int]
) -> bytes:
    """The bytes of one request's hits in the hit log (JSON, ASCII: a lone surrogate is escaped).
    The time is kept to the microsecond, as the counts' buckets are taken from it."""
    rows = [
        [
            hit.definition_id,
            hit.granularities,
            hit.identifier,
            dict(hit.dimensions),
            hit.dimension_granularities,
            int(hit.definition_id in page_view_ids),
        ]
        for hit in hits
    ]
    microseconds = round(received_at.timestamp() * 1_000_000)
    return json.dumps([ENTRY_VERSION, site_id, microseconds, visitor_key, rows], separators=(",", ":")).encode()


def hit_log_decode(raw: bytes) -> LoggedHits | None:
    """Inverse of ``hit_log_entry``; None for bytes that are not an entry (logged, skipped)."""
    try:
        version, site_id, microseconds, visitor_key, rows = json.loads(raw)
        if version != ENTRY_VERSION:
            return None
        received_at = datetime.fromtimestamp(microseconds / 1_000_000, tz=UTC)
        hits, page_views = [], []
        for definition_id, granularities, identifier, dimensions, dimension_granularities, page_view in rows:
            hit = Hit(
                int(site_id),
                int(definition_id),
                tuple(str(code) for code in granularities),
                str(identifier),
                {str(code): str(value) for code, value in dimensions.items()},
                tuple(str(code) for code in dimension_granularities),
            )
            hits.append(hit)
            if page_view:
                page_views.append(hit)
        return LoggedHits(int(site_id), received_at, str(visitor_key), hits, page_views)
    except (ValueError, TypeError, AttributeError, OverflowError):
        return None


class CollectedCounts:
    """A sink that keeps what it is handed, merged, for one write (the drain's chunk of the hit log)."""

    logs_page_views = True

    def __init__(self):
        self.increments: Counter[CounterKey] = Counter()
        self.values: Counter[DimensionValue] = Counter()
        self.visitors = Visitors()
        self.page_views: list[bytes] = []

    def add(
        self,
        increments: Mapping[CounterKey, int],
        values: Mapping[DimensionValue, int],
        visitors: Visitors,
        page_views: bytes = b"",
    ) -> None:
        self.increments.update(increments)
        self.values.update(values)
        self.visitors.update(visitors)
        if page_views:
            self.page_views.append(page_views)


def hit_log_fold(*, sink) -> int:
    """Count the hits the redis sink ``sink`` logged (see the module docstring): their counts join
    its live hash and their page views its page-view log; returns the hits counted. Raises
    ``redis.RedisError`` (what is not counted stays in Redis for the next drain)."""
    client = sink.client
    live, pending = hit_log_keys(sink.prefix)
    batch_ids = sorted(raw.decode() for raw in client.smembers(pending))  # ids start with their time
    new_id = new_batch_id()
    if client.eval(RENAME_TO_BATCH, 3, live, hit_log_batch_key(sink.prefix, new_id), pending, new_id):
        batch_ids.append(new_id)
    counted = 0
    zones = SiteZones()
    for batch_id in batch_ids:
        key = hit_log_batch_key(sink.prefix, batch_id)
        while (chunk_hits := _chunk_count(sink, key, zones=zones)) is not None:
            counted += chunk_hits
        client.srem(pending, batch_id)
    return counted


def _chunk_count(sink, key: str, *, zones: SiteZones) -> int | None:
    """Count the first ``HIT_LOG_CHUNK`` entries of the batch ``key`` and cut them from it, in one
    transaction; None once the batch is empty."""
    import redis

    with sink.client.pipeline() as pipe:
        while True:
            try:
                pipe.watch(key)
                chunk = pipe.lrange(key, 0, HIT_LOG_CHUNK - 1)
                if not chunk:
                    return None
                collected, counted = CollectedCounts(), 0
                for raw in chunk:
                    entry = hit_log_decode(raw)
                    if entry is None:
                        logger.warning("hit log: an entry that is not one was skipped: %r", raw[:200])
                        continue
                    hits_count(
                        collected,
                        hits=entry.hits,
                        page_views=entry.page_views,
                        site_id=entry.site_id,
                        received_at=entry.received_at,
                        visitor_key=entry.visitor_key,
                        zones=zones,
                    )
                    counted += len(entry.hits)
                keys, args, sections = sink.script_arguments(
                    collected.increments, collected.values, collected.visitors, collected.page_views
                )
                pipe.multi()
                # EVAL, not EVALSHA: a script Redis has forgotten would fail inside the transaction
                # while the LTRIM beside it still ran.
                pipe.eval(_COUNT, len(keys), *keys, *args)
                pipe.ltrim(key, len(chunk), -1)
                over_positions, _ = pipe.execute()[0]
            except redis.WatchError:  # another drain counted this chunk first: read the batch again
                continue
            sink.decisions_keep(sections, over_positions=set(over_positions), lost_sections=set())
            return counted
