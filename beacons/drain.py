"""Moving the Redis counters into the database exactly once (``manage.py beacons_drain``).

One pass (``drain_pass``):

1. Leftovers first. Every id in the pending set names a batch an earlier drain renamed but
   may not have finished. If ``DrainBatch`` holds the id, its counts are already in the
   database and only the Redis key is deleted; otherwise the batch is written now.
2. One Lua script (atomic) ``RENAMENX``-es the live hash to ``{prefix}:batch:<id>`` and adds
   the id to the pending set. Ingest starts a fresh live hash at once.
3. The batch is read and, in ONE transaction, ``DrainBatch(batch_id)`` is inserted and every
   count is upserted.
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
import threading
import time
import uuid
import zlib
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from .counting import CounterKey, aggregates_add_bulk
from .models import DrainBatch
from .sinks import counter_key, redis_batch_key, redis_client, redis_keys

logger = logging.getLogger("beacons")

CRASH_ENV = "BEACONS_DRAIN_CRASH_AT"
PARALLEL_MIN_KEYS = 50_000  # below this a batch is one transaction: threads cost more than they save

# KEYS: live, batch, pending; ARGV: batch id. RENAMENX needs all keys in one Cluster slot.
_RENAME_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('RENAMENX', KEYS[1], KEYS[2]) == 0 then return 0 end
redis.call('SADD', KEYS[3], ARGV[1])
return 1
"""


@dataclass
class DrainResult:
    batches: int = 0
    keys: int = 0
    hits: int = 0
    discarded: int = 0  # leftover batches found already committed


def _crash_point(step: str) -> None:
    if os.environ.get(CRASH_ENV) == step:
        os._exit(70)


@lru_cache(maxsize=4)
def _client(url: str):
    return redis_client(url)


def drain_pass(*, client=None, prefix: str | None = None) -> DrainResult:
    """Finish leftover batches, then move the live hash into the database. See the module docstring."""
    client = client or _client(settings.BEACONS_REDIS_URL)
    prefix = prefix or settings.BEACONS_REDIS_PREFIX
    live, pending = redis_keys(prefix)
    result = DrainResult()
    for raw_id in sorted(client.smembers(pending)):
        _batch_finish(client=client, prefix=prefix, batch_id=raw_id.decode(), result=result)
    batch_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}"
    if client.eval(_RENAME_SCRIPT, 3, live, redis_batch_key(prefix, batch_id), pending, batch_id):
        _crash_point("after_rename")
        _batch_finish(client=client, prefix=prefix, batch_id=batch_id, result=result)
    return result


def _batch_finish(*, client, prefix: str, batch_id: str, result: DrainResult) -> None:
    key = redis_batch_key(prefix, batch_id)
    _, pending = redis_keys(prefix)
    committed = set(
        DrainBatch.objects.filter(Q(batch_id=batch_id) | Q(batch_id__startswith=f"{batch_id}/")).values_list(
            "batch_id", flat=True
        )
    )
    if batch_id in committed:
        result.discarded += 1
    else:
        increments = {counter_key(field): int(n) for field, n in client.hgetall(key).items()}
        todo = [(part_id, part) for part_id, part in batch_parts(batch_id, increments) if part_id not in committed]
        if not todo:
            result.discarded += 1
        else:
            written = _parts_write(todo)
            _crash_point("after_commit")
            if written:
                result.batches += 1
                result.keys += sum(len(part) for part_id, part in todo if part_id in written)
                result.hits += sum(hits_in(part) for part_id, part in todo if part_id in written)
            else:
                result.discarded += 1  # a concurrent drain committed this batch first
    pipe = client.pipeline(transaction=True)
    pipe.delete(key)
    pipe.srem(pending, batch_id)
    pipe.execute()


def batch_parts(batch_id: str, increments: dict[CounterKey, int]) -> list[tuple[str, dict[CounterKey, int]]]:
    """Split a large batch into parts written by parallel transactions, each recorded by its
    own ``DrainBatch`` row (``<batch id>/<i>-of-<n>``), so a part is still written exactly once.

    The split depends only on the batch's keys, so a drain that restarts after some parts
    committed splits it the same way. All rows of one identifier stay in one part (its
    ``hits_in`` is then exact). Small batches, and SQLite, are one part named by the batch id.
    """
    workers = settings.BEACONS_DRAIN_WORKERS
    if workers < 2 or len(increments) < PARALLEL_MIN_KEYS or connection.vendor != "postgresql":
        return [(batch_id, increments)]
    parts: list[dict[CounterKey, int]] = [{} for _ in range(workers)]
    for counter, n in increments.items():
        parts[zlib.crc32(f"{counter[0]}|{counter[1]}".encode()) % workers][counter] = n
    return [(f"{batch_id}/{index + 1}-of-{workers}", part) for index, part in enumerate(parts)]


def _part_write(part_id: str, increments: dict[CounterKey, int]) -> bool:
    """One part in one transaction; False when another drain committed it first."""
    try:
        with transaction.atomic():
            DrainBatch.objects.create(batch_id=part_id, keys=len(increments), hits=hits_in(increments))
            aggregates_add_bulk(increments=increments)
            _crash_point("in_transaction")
    except IntegrityError:
        if not DrainBatch.objects.filter(batch_id=part_id).exists():
            raise
        return False
    return True


def _parts_write(parts: list[tuple[str, dict[CounterKey, int]]]) -> set[str]:
    """Write the parts, in parallel threads (one database connection each) when more than one."""
    if len(parts) == 1:
        part_id, increments = parts[0]
        return {part_id} if _part_write(part_id, increments) else set()
    written: set[str] = set()
    errors: list[BaseException] = []

    def run(part_id: str, increments: dict[CounterKey, int]) -> None:
        try:
            if _part_write(part_id, increments):
                written.add(part_id)
        except BaseException as exc:  # re-raised in the calling thread below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=part, name=f"beacons-drain-{part[0]}") for part in parts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return written


def drain_batches_purge(*, older_than: timedelta = timedelta(days=7), client=None, prefix: str | None = None) -> int:
    """Delete old ``DrainBatch`` rows; returns how many. A row is only needed while its batch
    is still pending in Redis, so rows of pending batches are kept whatever their age."""
    client = client or _client(settings.BEACONS_REDIS_URL)
    _, pending = redis_keys(prefix or settings.BEACONS_REDIS_PREFIX)
    still_pending = [raw.decode() for raw in client.smembers(pending)]
    old = DrainBatch.objects.filter(drained_at__lt=timezone.now() - older_than).exclude(batch_id__in=still_pending)
    deleted, _ = old.delete()
    return deleted


def hits_in(increments: Mapping[CounterKey, int]) -> int:
    """Hits behind ``increments``: each hit adds 1 to its definition's "" row in every granularity."""
    totals: dict[tuple[int, str], int] = defaultdict(int)
    for (definition_id, identifier, granularity, _start), n in increments.items():
        if identifier == "":
            totals[(definition_id, granularity)] += n
    per_definition: dict[int, int] = {}
    for (definition_id, _granularity), n in totals.items():
        per_definition[definition_id] = max(per_definition.get(definition_id, 0), n)
    return sum(per_definition.values())


def drain_with_retries(*, attempts: int | None, max_wait: float = 30.0, sleep=time.sleep) -> DrainResult:
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
            return drain_pass()
        except (DatabaseError, redis.RedisError) as exc:
            connections.close_all()  # a broken connection is reopened on the next attempt
            if attempts is not None and attempt >= attempts:
                raise
            logger.warning("beacons_drain: %s; counts stay in Redis, retrying in %.0f s", exc, wait)
            sleep(wait)
            wait = min(wait * 2, max_wait)
