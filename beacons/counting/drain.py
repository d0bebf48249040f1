"""Moving the Redis counters into the database exactly once (``manage.py beacons_drain``).

One pass (``drain_pass``):

0. The hits the redis sink logged are counted into the live hash and the page-view log
   (``beacons.ingest.hits.hit_log_fold``), then the page views are folded into visits, whose
   adjustments join the live hash (``beacons.ingest.sessions.page_view_log_fold``); each exactly
   once by its own rule.
1. Leftovers first. Every id in the pending set names a batch an earlier drain renamed but
   may not have finished. If ``DrainBatch`` holds the id, its counts are already in the
   database and only the Redis key is deleted; otherwise the batch is written now.
2. One Lua script (atomic) ``RENAMENX``-es the live hash to ``{prefix}:batch:<id>`` and adds
   the id to the pending set. Ingest starts a fresh live hash at once.
3. The batch is read in ``HSCAN`` chunks and, in ONE transaction, ``DrainBatch(batch_id)`` is
   inserted and every count is upserted (``counting.aggregates_add_stream``), and the batch's
   visitors are merged into their sketches (``sketches.sketches_add``). A batch of ``PARALLEL_MIN_KEYS`` or more is split into parts written by parallel
   transactions, each with its own ``DrainBatch`` row (``batch_part_ids``).
4. After the commit the batch key is deleted and the id leaves the pending set.

A drain killed before step 3 commits leaves the batch in Redis and no ``DrainBatch`` row, so
the next pass writes it; killed after the commit, the ``DrainBatch`` row tells the next pass
to only delete it. Nothing is lost or counted twice. Two drains at once are safe too: the
``DrainBatch`` insert comes first in the transaction, so the second writer of a batch waits on
the unique index and rolls back. The database being down leaves every count in Redis; the
command retries with backoff.

For fault tests, ``BEACONS_DRAIN_CRASH_AT`` = ``after_rename`` | ``in_transaction`` |
``after_commit`` makes the process exit abruptly (``os._exit``) at that step.
"""

import logging
import os
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from beacons.counting.increments import aggregates_add_stream
from beacons.counting.redis_format import (
    RENAME_TO_BATCH,
    FieldsChunk,
    chunk_split,
    drain_batch_key,
    fields_expand,
    live_and_pending_keys,
    new_batch_id,
    part_indexes,
    totals_by_series,
    visitor_tokens,
)
from beacons.counting.sinks import RedisSink, redis_client
from beacons.counting.sketches import sketches_add
from beacons.ingest.hits import hit_log_fold
from beacons.ingest.sessions import page_view_log_fold
from beacons.models import BeaconDefinition, DrainBatch

logger = logging.getLogger("beacons")

CRASH_ENV = "BEACONS_DRAIN_CRASH_AT"
PARALLEL_MIN_KEYS = 50_000  # below this a batch is one transaction: threads cost more than they save
SCAN_COUNT = 10_000  # fields per HSCAN


@dataclass
class DrainResult:
    batches: int = 0
    keys: int = 0
    hits: int = 0
    discarded: int = 0  # leftover batches found already committed
    logged_hits_counted: int = 0  # hits the redis sink logged, counted into the live hash
    page_views_folded: int = 0  # page views the redis sink logged, folded into visits


def _crash_point(step: str) -> None:
    if os.environ.get(CRASH_ENV) == step:
        os._exit(70)


@lru_cache(maxsize=4)
def _client(url: str):
    return redis_client(url)


def drain_pass(
    *, client=None, prefix: str | None = None, on_fields: Callable[[int], None] | None = None
) -> DrainResult:
    """Finish leftover batches, then move the live hash into the database. See the module docstring.
    ``on_fields(n)`` is told after each ``n`` counters read from Redis (progress display)."""
    client = client or _client(settings.BEACONS_REDIS_URL)
    prefix = prefix or settings.BEACONS_REDIS_PREFIX
    live, pending = live_and_pending_keys(prefix)
    result = DrainResult()
    # Logged hits, then visits: their counts and adjustments join the live hash this pass moves.
    visits_sink = RedisSink(url=settings.BEACONS_REDIS_URL, prefix=prefix)
    try:
        result.logged_hits_counted = hit_log_fold(sink=visits_sink)
        result.page_views_folded = page_view_log_fold(sink=visits_sink)
    finally:
        visits_sink.close()
    for raw_id in sorted(client.smembers(pending)):
        _batch_finish(client=client, prefix=prefix, batch_id=raw_id.decode(), result=result, on_fields=on_fields)
    batch_id = new_batch_id()
    if client.eval(RENAME_TO_BATCH, 3, live, drain_batch_key(prefix, batch_id), pending, batch_id):
        _crash_point("after_rename")
        _batch_finish(client=client, prefix=prefix, batch_id=batch_id, result=result, on_fields=on_fields)
    return result


def _batch_finish(
    *, client, prefix: str, batch_id: str, result: DrainResult, on_fields: Callable[[int], None] | None = None
) -> None:
    key = drain_batch_key(prefix, batch_id)
    _, pending = live_and_pending_keys(prefix)
    committed = set(
        DrainBatch.objects.filter(Q(batch_id=batch_id) | Q(batch_id__startswith=f"{batch_id}/")).values_list(
            "batch_id", flat=True
        )
    )
    part_ids = batch_part_ids(batch_id, client.hlen(key))
    todo = [part_id for part_id in part_ids if part_id not in committed]
    if batch_id in committed or not todo:
        result.discarded += 1
    else:
        written = _batch_write(client, key, part_ids, todo, on_fields)
        _crash_point("after_commit")
        if written:
            result.batches += 1
            result.keys += sum(keys for keys, _ in written.values())
            result.hits += sum(hits for _, hits in written.values())
        else:
            result.discarded += 1  # a concurrent drain committed this batch first
    pipe = client.pipeline(transaction=True)
    pipe.delete(key)
    pipe.srem(pending, batch_id)
    pipe.execute()


def batch_part_ids(batch_id: str, keys: int) -> list[str]:
    """A large batch is written in parts by parallel transactions, each recorded by its own
    ``DrainBatch`` row (``<batch id>/<i>-of-<n>``), so a part too is written exactly once.
    Small batches, and SQLite, are one part named by the batch id."""
    workers = settings.BEACONS_DRAIN_WORKERS
    if workers < 2 or keys < PARALLEL_MIN_KEYS or connection.vendor != "postgresql":
        return [batch_id]
    return [f"{batch_id}/{index + 1}-of-{workers}" for index in range(workers)]


@dataclass
class _PartTally:
    keys: int = 0
    totals: Counter = field(default_factory=Counter)  # (site_id, definition_id, granularity) -> hits in its "" rows

    def add(self, chunk: FieldsChunk) -> None:
        self.keys += len(chunk)
        self.totals.update(totals_by_series(chunk.pairs))


def _batch_chunks(
    client, key: str, tallies: list[_PartTally], on_fields: Callable[[int], None] | None = None
) -> Iterator[list[FieldsChunk]]:
    """The batch hash read in chunks (one ``HSCAN`` each: Redis serves ingest between two
    reads of a big batch), each chunk split into one per part; every field exactly once.
    A drain reads millions of fields, so the per-field work is in comprehensions."""
    parts = len(tallies)
    seen: set[bytes] = set()  # HSCAN may return a field twice
    cursor = 0
    while True:
        cursor, fields = client.hscan(key, cursor, count=SCAN_COUNT)
        if not seen.isdisjoint(fields):
            fields = {f: n for f, n in fields.items() if f not in seen}
        seen.update(fields)
        read = len(fields)
        pairs, visitors = chunk_split(list(fields.items()))
        pairs = fields_expand(pairs)
        if parts == 1:
            chunk = [FieldsChunk(pairs, visitors)]
        else:
            indexes = part_indexes((f for f, _ in pairs), parts)
            chunk = [FieldsChunk([pair for pair, i in zip(pairs, indexes) if i == part]) for part in range(parts)]
            chunk[0].visitors = visitors  # a batch's visitors are merged by its first part's transaction
        for tally, part in zip(tallies, chunk):
            tally.add(part)
        if on_fields:
            on_fields(read)
        yield chunk
        if cursor == 0:
            return


def _part_write(part_id: str, chunks: Iterable[FieldsChunk], tally: _PartTally) -> bool:
    """One part in one transaction; False when another drain committed it first."""
    visitor_fields: list[bytes] = []

    def counters_of(chunks: Iterable[FieldsChunk]) -> Iterator[FieldsChunk]:
        for chunk in chunks:
            visitor_fields.extend(chunk.visitors)
            yield chunk

    try:
        with transaction.atomic():
            record = DrainBatch.objects.create(batch_id=part_id)  # first: a concurrent drain of this part waits here
            aggregates_add_stream(chunks=counters_of(chunks))
            sketches_add(tokens=visitor_tokens(visitor_fields), existing_only=True)
            record.keys, record.hits = tally.keys, hits_from_totals(tally.totals)  # complete once the stream is read
            record.save(update_fields=["keys", "hits"])
            _crash_point("in_transaction")
    except IntegrityError:
        if not DrainBatch.objects.filter(batch_id=part_id).exists():
            raise
        return False
    return True


def _batch_write(
    client, key: str, part_ids: list[str], todo: list[str], on_fields: Callable[[int], None] | None = None
) -> dict[str, tuple[int, int]]:
    """Write the parts in ``todo``; returns (keys, hits) of each part this drain committed.

    One part is written in this thread. Several are written by one thread (and database
    connection) each, fed through bounded queues while this thread reads Redis.
    """
    tallies = {part_id: _PartTally() for part_id in part_ids}
    chunks = _batch_chunks(client, key, list(tallies.values()), on_fields)
    if len(part_ids) == 1:
        part_id, tally = part_ids[0], tallies[part_ids[0]]
        written = {part_id} if _part_write(part_id, (chunk[0] for chunk in chunks), tally) else set()
    else:
        written = _parts_write_parallel(chunks, part_ids, todo, tallies)
    return {part_id: (tallies[part_id].keys, hits_from_totals(tallies[part_id].totals)) for part_id in written}


def _parts_write_parallel(
    chunks: Iterator[list[FieldsChunk]], part_ids: list[str], todo: list[str], tallies: dict[str, _PartTally]
) -> set[str]:
    queues = {part_id: queue.Queue(maxsize=4) for part_id in todo}
    written: set[str] = set()
    errors: list[BaseException] = []

    def run(part_id: str) -> None:
        part_chunks = iter(queues[part_id].get, None)
        try:
            if _part_write(part_id, part_chunks, tallies[part_id]):
                written.add(part_id)
        except BaseException as exc:  # re-raised in the calling thread below
            errors.append(exc)
        finally:
            connection.close()
            for _ in part_chunks:  # unblock the reader
                pass

    threads = [threading.Thread(target=run, args=(part_id,), name=f"beacons-drain-{part_id}") for part_id in todo]
    for thread in threads:
        thread.start()
    try:
        for chunk in chunks:
            for index, part_id in enumerate(part_ids):
                if part_id in queues:
                    queues[part_id].put(chunk[index])
    finally:
        for part_queue in queues.values():
            part_queue.put(None)
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    return written


def drain_batches_purge(*, older_than: timedelta = timedelta(days=7), client=None, prefix: str | None = None) -> int:
    """Delete old ``DrainBatch`` rows; returns how many. A row is only needed while its batch
    is still pending in Redis, so rows of pending batches are kept whatever their age."""
    client = client or _client(settings.BEACONS_REDIS_URL)
    _, pending = live_and_pending_keys(prefix or settings.BEACONS_REDIS_PREFIX)
    still_pending = [raw.decode() for raw in client.smembers(pending)]
    old = DrainBatch.objects.filter(drained_at__lt=timezone.now() - older_than).exclude(batch_id__in=still_pending)
    deleted, _ = old.delete()
    return deleted


def hits_from_totals(totals: Mapping[tuple[int, int, str], int]) -> int:
    """Hits behind a batch, from the sums of its "" rows per (site_id, definition_id, granularity):
    each hit adds 1 to its site's and definition's "" row in every granularity the definition keeps.
    The visit types Beacons counts itself (``registry.RESERVED_PREFIX``) are no hits: left out."""
    from beacons.registry import RESERVED_PREFIX

    reserved = set(BeaconDefinition.objects.filter(slug__startswith=RESERVED_PREFIX).values_list("pk", flat=True))
    per_series: dict[tuple[int, int], int] = {}
    for (site_id, definition_id, _granularity), n in totals.items():
        if definition_id in reserved:
            continue
        per_series[(site_id, definition_id)] = max(per_series.get((site_id, definition_id), 0), n)
    return sum(per_series.values())


def drain_with_retries(
    *, attempts: int | None, max_wait: float = 30.0, sleep=time.sleep, on_fields: Callable[[int], None] | None = None
) -> DrainResult:
    """``drain_pass``, retried with exponential backoff (1 s, 2 s, … ``max_wait``) while the
    database or Redis is unreachable; ``attempts=None`` retries forever. Counts stay in Redis
    meanwhile. Raises the last error when the attempts run out."""
    import redis
    from django.db import DatabaseError, connections

    wait = 1.0
    attempt = 0
    while True:
        attempt += 1
        try:
            return drain_pass(on_fields=on_fields)
        except (DatabaseError, redis.RedisError) as exc:
            connections.close_all()  # a broken connection is reopened on the next attempt
            if attempts is not None and attempt >= attempts:
                raise
            logger.warning("beacons_drain: %s; counts stay in Redis, retrying in %.0f s", exc, wait)
            sleep(wait)
            wait = min(wait * 2, max_wait)
