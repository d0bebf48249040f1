"""Where counter increments go: chosen by ``BEACONS_SINK``.

A sink takes the merged increments of one request, and its dimension values, which count under
their own value or, beyond the day's cap of distinct values, as "(other)" (see
``beacons.counting.value_cap``), and its visitors per sketch key (``sketches.Visitors``; a
dimension value's visitors follow the cap's decision for its counter).

- ``direct`` writes them at once with one upsert statement.
- ``memory`` merges them by key in this process and writes them every
  ``BEACONS_FLUSH_SECONDS``, as soon as ``BEACONS_FLUSH_MAX_KEYS`` distinct keys wait, and at
  clean shutdown (atexit and the server's worker-exit hook). Loss window: a process killed
  with SIGKILL (or a power cut) loses what it buffered since its last flush, at most
  ``BEACONS_FLUSH_SECONDS`` of its traffic. A flush that fails (database down) keeps the
  counts in memory and is retried.
- ``redis`` adds them with ``HINCRBY`` to one live hash shared by every process, in one
  round trip (a Lua script, so a request's increments land all or none), one field per counter
  key for all the buckets a hit counts in (``redis_format.buckets_field_encode``), and with them
  a request's page views in a log the drain folds into visits (``beacons.ingest.sessions``);
  ``beacons_drain`` moves them into the database exactly once (see ``beacons.counting.drain``). When
  Redis is unreachable the increments go to the database directly instead (a warning at
  most once a minute), so the request is still counted.
"""

import atexit
import logging
import multiprocessing.util
import os
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import NamedTuple

from django.conf import settings
from django.db import DatabaseError, connections, transaction

from beacons.counting.increments import OTHER_VALUE, CounterKey, DimensionValue, aggregates_add
from beacons.counting.redis_format import (
    buckets_field_encode,
    hit_log_keys,
    live_and_pending_keys,
    page_view_log_keys,
    value_set_key,
    visitor_field_of,
)
from beacons.counting.sketches import NO_VISITORS, Visitors, sketches_add, visitors_resolve
from beacons.counting.value_cap import AdmittedValues, CapKey, ValueCap, cap_key, values_dropped_add, values_limit
from beacons.logs import ThrottledWarning

logger = logging.getLogger("beacons")

WARN_EVERY_SECONDS = 60
REDIS_RETRY_AFTER_SECONDS = 1.0  # after a failure, skip Redis this long instead of paying a connect per request
# Requests waiting in the hit log past which each write warns (at most once a minute): the log
# holds every request since the last drain (~300 bytes each), so a drain that stopped shows here.
HIT_LOG_WARN_ENTRIES = 1_000_000


VALUE_SET_SECONDS = 2 * 86400  # a day's set of distinct values outlives its day (and a time zone's offset)
NO_VALUES: Mapping[DimensionValue, int] = {}


class DirectSink:
    name = "direct"

    def __init__(self):
        self.cap = ValueCap()

    def add(
        self,
        increments: Mapping[CounterKey, int],
        values: Mapping[DimensionValue, int] = NO_VALUES,
        visitors: Visitors = NO_VISITORS,
    ) -> None:
        """One upsert of ``increments`` and of ``values`` (capped); with ``visitors``, their sketches
        are merged in the same transaction."""
        over: Counter[CapKey] = Counter()
        if values:
            admitted, over = self.cap.admit(values)
            admitted.update(increments)
            increments = admitted
        if visitors:
            with transaction.atomic():
                aggregates_add(increments=increments)
                sketches_add(tokens=visitors_resolve(visitors, value_of=self.cap.value_for))
        else:
            aggregates_add(increments=increments)
        values_dropped_add(over=over)

    def flush(self) -> int:
        return 0

    def close(self) -> None:
        pass


class MemorySink:
    """In-process buffer; thread-safe. One background thread per process does the writing."""

    name = "memory"

    def __init__(self, *, flush_seconds: float, max_keys: int):
        self.flush_seconds = flush_seconds
        self.max_keys = max_keys
        self._pending: Counter[CounterKey] = Counter()
        self._pending_visitors: dict[CounterKey, set[int]] = {}  # sketch key -> visitor tokens
        self._lock = threading.Lock()  # guards _pending and _pending_visitors
        self._flush_lock = threading.Lock()  # one flush at a time, so a failed flush is merged back in order
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._warn = ThrottledWarning(WARN_EVERY_SECONDS)
        self.cap = ValueCap()

    def add(
        self,
        increments: Mapping[CounterKey, int],
        values: Mapping[DimensionValue, int] = NO_VALUES,
        visitors: Visitors = NO_VISITORS,
    ) -> None:
        over: Counter[CapKey] = Counter()
        if values:
            admitted, over = self.cap.admit(values)
        tokens = visitors_resolve(visitors, value_of=self.cap.value_for) if visitors else {}
        with self._lock:
            self._pending.update(increments)
            if values:
                self._pending.update(admitted)
            for key, key_tokens in tokens.items():
                self._pending_visitors.setdefault(key, set()).update(key_tokens)
            full = len(self._pending) + len(self._pending_visitors) >= self.max_keys
        values_dropped_add(over=over)
        if self._thread is None:
            self._start()
        if full:
            self._wake.set()

    def pending(self) -> int:
        with self._lock:
            return len(self._pending) + len(self._pending_visitors)

    def flush(self) -> int:
        """Write everything buffered now, in one transaction; returns the keys written.

        On failure what was taken is merged back into the buffer (nothing lost or doubled:
        the transaction wrote none of it) and the error is raised.
        """
        with self._flush_lock:
            with self._lock:
                taken, self._pending = self._pending, Counter()
                taken_visitors, self._pending_visitors = self._pending_visitors, {}
            if not taken and not taken_visitors:
                return 0
            try:
                with transaction.atomic():
                    return aggregates_add(increments=taken) + sketches_add(tokens=taken_visitors)
            except BaseException:
                with self._lock:
                    self._pending.update(taken)
                    for key, tokens in taken_visitors.items():
                        self._pending_visitors.setdefault(key, set()).update(tokens)
                raise

    def close(self) -> None:
        """Stop the background thread without writing (tests); use flush() first to keep counts."""
        self._closed = True
        self._wake.set()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="beacons-memory-flush", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        wait = self.flush_seconds
        while not self._closed:
            self._wake.wait(wait)
            self._wake.clear()
            if self._closed:
                break
            try:
                self.flush()
                wait = self.flush_seconds
            except Exception as exc:  # keep the thread alive; counts stay buffered and are retried soon
                self._warn("memory sink: flush failed, %d keys kept in memory: %s", self.pending(), exc)
                connections.close_all()  # this thread's broken connection is reopened next time
                wait = min(self.flush_seconds, 1.0)
        connections.close_all()


# --- Redis ------------------------------------------------------------------------------


def redis_client(url: str):
    import redis

    # Short timeouts: an unreachable Redis must cost a request milliseconds, not seconds.
    return redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=2.0, health_check_interval=30)


# One HSET sets many visitor fields (a redis.call each cost more than the rest of the loop);
# in parts, as Lua's unpack takes at most a few thousand values.
VISITOR_FIELDS_PER_HSET = 1000

# KEYS[1]: the live hash, KEYS[2] the page-view log, KEYS[3] the counter numbering its entries;
# then, in the order the sections use them, each visit's state key and the set of distinct values
# of each capped value's day.
# ARGV: the cap, the sets' lifetime (s), the number of page-view log entries and the entries (each
# pushed as "<number> <entry>"), the number of sections; then per section: 1 and the state
# expected ("" for none), the new state and its lifetime (s) for a visit's section, else 0; p, v, c;
# p (field, increment) pairs; v visitor fields (set to 1); c capped values, each: the value, its
# increment, its fields k, its visitor fields m, k (field, "(other)" field) pairs and m such pairs.
# A visit's section is applied only if its state key holds the state expected (compare-and-set).
# Returns {positions (from 1, over all sections) of the capped values that counted as "(other)",
# the sections (from 1) not applied}.
_COUNT = """
local hash, cap, ttl, logged = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 4, 3 + logged do
  redis.call('RPUSH', KEYS[2], redis.call('INCR', KEYS[3]) .. ' ' .. ARGV[i])
end
local sections = tonumber(ARGV[4 + logged])
local i, k, position = 5 + logged, 4, 0
local over, lost = {}, {}
for section = 1, sections do
  local apply = true
  if ARGV[i] == '1' then
    local current = redis.call('GET', KEYS[k]) or ''
    if current == ARGV[i + 1] then
      redis.call('SET', KEYS[k], ARGV[i + 2], 'EX', ARGV[i + 3])
    else
      apply = false
      lost[#lost + 1] = section
    end
    k = k + 1
    i = i + 4
  else
    i = i + 1
  end
  local plain, seen, capped = tonumber(ARGV[i]), tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  i = i + 3
  if apply then
    for _ = 1, plain do
      redis.call('HINCRBY', hash, ARGV[i], ARGV[i + 1])
      i = i + 2
    end
    local fields = {}
    for n = 1, seen do
      fields[#fields + 1] = ARGV[i]
      fields[#fields + 1] = 1
      i = i + 1
      if #fields == VISITOR_FIELDS_PER_HSET * 2 or n == seen then
        redis.call('HSET', hash, unpack(fields))
        fields = {}
      end
    end
  else
    i = i + 2 * plain + seen
  end
  for _ = 1, capped do
    position = position + 1
    local member, n, fk, fm = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
    i = i + 4
    if apply then
      local counted = redis.call('SISMEMBER', KEYS[k], member) == 1
      if not counted and redis.call('SCARD', KEYS[k]) < cap then
        redis.call('SADD', KEYS[k], member)
        redis.call('EXPIRE', KEYS[k], ttl)
        counted = true
      end
      local offset = 1
      if counted then offset = 0 else over[#over + 1] = position end
      for _ = 1, fk do
        redis.call('HINCRBY', hash, ARGV[i + offset], n)
        i = i + 2
      end
      for _ = 1, fm do
        redis.call('HSET', hash, ARGV[i + offset], 1)
        i = i + 2
      end
    else
      i = i + 2 * (fk + fm)
    end
    k = k + 1
  end
end
return {over, lost}
""".replace("VISITOR_FIELDS_PER_HSET", str(VISITOR_FIELDS_PER_HSET))


class VisitWrite(NamedTuple):
    """A visit's new state and its adjustments, applied only if its state is ``expected``
    (the drain's ``sessions.page_view_log_fold``)."""

    key: str
    expected: bytes  # b"" for none
    state: bytes
    seconds: int  # the state's lifetime
    increments: Mapping[CounterKey, int]
    values: Mapping[DimensionValue, int]


class _PendingWrite:
    """One request's counts or hit-log entry, waiting for the write that carries them."""

    __slots__ = ("done", "error", "logs_hits")

    def __init__(self, *, logs_hits: bool):
        self.done = False
        self.error: BaseException | None = None
        self.logs_hits = logs_hits


class HitLogUnavailable(Exception):
    """Redis is unreachable: a request's hits were not logged, its caller counts them elsewhere."""


class _Waiting:
    """What requests of one process handed the sink while a write was in flight, merged."""

    __slots__ = ("increments", "values", "visitors", "page_views", "hit_entries", "writes")

    def __init__(self):
        self.increments: Counter[CounterKey] = Counter()
        self.values: Counter[DimensionValue] = Counter()
        self.visitors = Visitors()
        self.page_views: list[bytes] = []
        self.hit_entries: list[bytes] = []
        self.writes: list[_PendingWrite] = []


class RedisSink:
    name = "redis"
    logs_page_views = True  # visits are folded by the drain (``sessions.counts_add_with_visit``)
    logs_hits = True  # a request's hits are logged as they are and counted by the drain (``beacons.ingest.hits``)

    def __init__(self, *, url: str, prefix: str):
        self.client = redis_client(url)
        self.prefix = prefix
        self.live_key, _ = live_and_pending_keys(prefix)
        self.page_view_log_key, self.page_view_number_key, _ = page_view_log_keys(prefix)
        self.hit_log_key, _ = hit_log_keys(prefix)
        # One EVALSHA: one round trip, applied all or none, and half the client-side cost of
        # MULTI + n HINCRBY + EXEC in redis-py.
        self._count_script = self.client.register_script(_COUNT)
        from hiredis import pack_command

        self.pack = pack_command
        # Only one thread writes at a time (see add), so it owns one connection and talks to
        # it directly: redis-py's pool, retry and reply-callback layers cost ~70 µs of CPU
        # per call, as much as the rest of a request's counting.
        self._connection = None
        self.fallback = DirectSink()
        # Values the script admitted: they stay in their day's set, so they are counted as they are
        # without asking it again (a request's ~30 values were ~30 SISMEMBER and twice the fields).
        # Were the sets lost (Redis restarted empty), these would count on beside up to a cap of new ones.
        self._admitted = AdmittedValues()
        self._skip_until = 0.0
        self._warn = ThrottledWarning(WARN_EVERY_SECONDS)
        self._write_done = threading.Condition()
        self._writing = False
        self._waiting = _Waiting()

    def add(
        self,
        increments: Mapping[CounterKey, int],
        values: Mapping[DimensionValue, int] = NO_VALUES,
        visitors: Visitors = NO_VISITORS,
        page_views: bytes = b"",
    ) -> None:
        """Returns once ``increments``, ``values`` and ``visitors`` are in Redis (or, Redis being
        down, in the database), all in the same round trip, with ``page_views`` (a
        ``redis_format.page_views_log_entry``, b"" for none) added to the page-view log."""
        if not increments and not values and not visitors and not page_views:
            return
        self._combined_write(increments, values, visitors, [page_views] if page_views else [], [])

    def hits_log(self, entry: bytes) -> None:
        """Returns once ``entry`` (a request's hits, ``beacons.ingest.hits.hit_log_entry``) is at the
        end of the hit log the drain counts. Raises ``HitLogUnavailable`` when Redis is unreachable
        (or was within ``REDIS_RETRY_AFTER_SECONDS``): nothing was logged."""
        self._combined_write(NO_VALUES, NO_VALUES, NO_VISITORS, [], [entry])

    def _combined_write(
        self,
        increments: Mapping[CounterKey, int],
        values: Mapping[DimensionValue, int],
        visitors: Visitors,
        page_views: list[bytes],
        hit_entries: list[bytes],
    ) -> None:
        """Writes of one process that arrive while a write is in flight are combined: the next
        thread to write takes everything waiting, so under load one round trip carries many
        requests' counts and hits, and no request returns (answers 204) before its own were
        acknowledged."""
        own_write = _PendingWrite(logs_hits=bool(hit_entries))
        with self._write_done:
            if not self._writing and not self._waiting.writes:  # nothing to combine with: written as it is
                self._writing = True
                batch, carried = (increments, values, visitors, page_views, hit_entries), [own_write]
            else:
                waiting = self._waiting
                waiting.increments.update(increments)
                waiting.values.update(values)
                waiting.visitors.update(visitors)
                waiting.page_views += page_views
                waiting.hit_entries += hit_entries
                waiting.writes.append(own_write)
                while not own_write.done and self._writing:
                    self._write_done.wait()
                if own_write.done:
                    if own_write.error is not None:
                        raise own_write.error  # nothing of it was written: the request must not answer 204
                    return
                self._writing = True
                waiting, self._waiting = self._waiting, _Waiting()
                batch = (waiting.increments, waiting.values, waiting.visitors, waiting.page_views, waiting.hit_entries)
                carried = waiting.writes
        error = None
        try:
            if not self._write(*batch):
                error = HitLogUnavailable("Redis is unreachable: the hits were not logged")
        except BaseException as exc:
            error = exc
            raise
        finally:
            with self._write_done:
                for carried_write in carried:
                    # Counts went to the database when Redis was down: only hit entries were not written.
                    failed = error is not None and (carried_write.logs_hits or not isinstance(error, HitLogUnavailable))
                    carried_write.done, carried_write.error = True, error if failed else None
                self._writing = False
                self._write_done.notify_all()
        if own_write.error is not None:
            raise own_write.error

    def _write(
        self,
        increments: Mapping[CounterKey, int],
        values: Mapping[DimensionValue, int],
        visitors: Visitors,
        page_views: Sequence[bytes],
        hit_entries: Sequence[bytes],
    ) -> bool:
        """One round trip: the hit entries appended to the hit log, the counts in one script call.
        With Redis down, the counts go to the database (the page views' visits are then not
        counted) and False is returned: the hit entries were not logged."""
        import redis

        if time.monotonic() >= self._skip_until:
            commands = [("RPUSH", self.hit_log_key, *hit_entries)] if hit_entries else []
            sections = []
            if increments or values or visitors or page_views:
                keys, args, sections = self.script_arguments(increments, values, visitors, page_views)
                commands.append(("EVALSHA", self._count_script.sha, len(keys), *keys, *args))
            try:
                replies = self._send(commands)
            except redis.RedisError as exc:
                # Counted twice when Redis ran the commands but its reply was lost (a timeout, or
                # Redis killed after writing them to its append-only file): then they are in Redis
                # and in the database. A refused connection, or one lost while sending, never ran them.
                self._skip_until = time.monotonic() + REDIS_RETRY_AFTER_SECONDS
                self._warn("redis sink: Redis unreachable, writing counts to the database directly: %s", exc)
            else:
                if hit_entries and replies[0] > HIT_LOG_WARN_ENTRIES:
                    self._warn("redis sink: %d requests wait in the hit log: is beacons_drain running?", replies[0])
                if sections:
                    self.decisions_keep(sections, over_positions=set(replies[-1][0]), lost_sections=set())
                return True
        if increments or values or visitors:
            self.fallback.add(increments, values, visitors)
        return not hit_entries

    def script_arguments(
        self,
        increments: Mapping[CounterKey, int],
        values: Mapping[DimensionValue, int],
        visitors: Visitors,
        page_views: Sequence[bytes],
    ) -> tuple[list, list, list]:
        """(keys, arguments) of the count script adding these counts and logging ``page_views``,
        and its one section's capped entries (for ``decisions_keep``)."""
        keys = [self.live_key, self.page_view_log_key, self.page_view_number_key]
        args: list = [values_limit(), VALUE_SET_SECONDS, len(page_views), *page_views, 1, 0]
        sections = [self._section_add(keys, args, increments, values, visitors)]
        return keys, args, sections

    def visits_write(self, writes: Sequence[VisitWrite]) -> None:
        """One script call writing each visit whose state is still the one expected, with its
        adjustments (one whose state changed was written by another drain). Redis errors are
        raised: nothing of a failed call is written."""
        keys = [self.live_key, self.page_view_log_key, self.page_view_number_key]
        args: list = [values_limit(), VALUE_SET_SECONDS, 0, len(writes)]
        sections = []
        for write in writes:
            keys.append(write.key)
            args += (1, write.expected, write.state, write.seconds)
            sections.append(self._section_add(keys, args, write.increments, write.values, NO_VISITORS))
        over_positions, lost_sections = self._count(keys, args)
        self.decisions_keep(sections, over_positions=set(over_positions), lost_sections=set(lost_sections))

    def _section_add(
        self,
        keys: list,
        args: list,
        increments: Mapping[CounterKey, int],
        values: Mapping[DimensionValue, int],
        visitors: Visitors,
    ) -> list[tuple[DimensionValue, int] | None]:
        """Adds one section's keys and arguments (after its header); returns its capped entries in
        order, each (value, increment), or None for an entry of visitors alone (no hit)."""
        plain = _bucket_fields(increments)
        capped: list[tuple[DimensionValue, int]] = []
        admitted = self._admitted
        for value, n in values.items():
            if value.value == OTHER_VALUE or value in admitted:  # nothing to cap, or decided: counts as it is
                site_id, definition_id, dimension, text, _, buckets = value
                field = buckets_field_encode(site_id, definition_id, dimension, text, buckets)
                plain[field] = plain.get(field, 0) + n
            else:
                capped.append((value, n))
        seen, capped_seen = _visitor_fields(visitors, admitted=admitted)
        # A value's visitors go with its first counter entry; visitors of a value without one
        # (never from ingest) are an entry with no counter.
        entries: list[tuple[DimensionValue, int] | None] = list(capped)
        alone = [
            (DimensionValue(site_id, definition_id, dimension, text, day, ()), 0)
            for (site_id, definition_id, dimension, day), text in capped_seen.keys()
            - {(cap_key(value), value.value) for value, _ in capped}
        ]
        args += (len(plain), len(seen), len(capped) + len(alone))
        for pair in plain.items():
            args += pair
        args += seen
        for value, n in [*capped, *alone]:
            site_id, definition_id, dimension, day = cap_key(value)
            keys.append(
                value_set_key(self.prefix, site_id=site_id, definition_id=definition_id, dimension=dimension, day=day)
            )
            visitor_pairs = capped_seen.pop((cap_key(value), value.value), [])
            counter_pair = _own_and_other_fields(value) if value.buckets else ()  # none: visitors alone
            args += (value.value.encode("utf-8", "surrogatepass"), n, len(counter_pair) // 2, len(visitor_pairs) // 2)
            args += counter_pair
            args += visitor_pairs
        return entries + [None] * len(alone)

    def decisions_keep(self, sections: list, *, over_positions: set[int], lost_sections: set[int]) -> None:
        """Remembers the values the script admitted and tallies those it counted as "(other)"."""
        over: Counter[CapKey] = Counter()
        position = 0
        for section, entries in enumerate(sections, 1):
            for entry in entries:
                position += 1
                if entry is None or section in lost_sections:
                    continue
                value, n = entry
                if position in over_positions:
                    over[cap_key(value)] += n
                else:
                    self._admitted.add(value)
        values_dropped_add(over=over)

    def _count(self, keys: list, args: list) -> list[list[int]]:
        return self._send([("EVALSHA", self._count_script.sha, len(keys), *keys, *args)])[-1]

    def _send(self, commands: list[tuple]) -> list:
        """The replies of ``commands``, sent together in one round trip on the owned connection.
        Only the last may be a script call: the others are read before it could fail."""
        import redis

        connection = self._connection
        if connection is None:
            connection = self._connection = self.client.connection_pool.make_connection()
        # hiredis packs each command in one C call; redis-py's packer first walks every argument
        # in Python (a request with breakdowns and visits has hundreds: ~20 % of its CPU).
        try:
            connection.send_packed_command([self.pack(command) for command in commands], check_health=False)
            replies = [connection.read_response() for _ in commands[:-1]]
            try:
                replies.append(connection.read_response())
            except redis.exceptions.NoScriptError:  # a restarted Redis has forgotten the script
                self.client.script_load(_COUNT)
                connection.send_packed_command([self.pack(commands[-1])], check_health=False)
                replies.append(connection.read_response())
            return replies
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            connection.disconnect()  # reconnected at the next write
            raise

    def flush(self) -> int:
        return 0

    def close(self) -> None:
        if self._connection is not None:
            self._connection.disconnect()
        self.client.close()


def _bucket_fields(increments: Mapping[CounterKey, int]) -> dict[bytes, int]:
    """The fields of ``increments``: one per identifier and increment, for all its buckets together
    (``redis_format.buckets_field_encode``), as a hit counts in its hour, day, month and year at once."""
    groups: dict[tuple, list[tuple[str, datetime]]] = {}
    for (site_id, definition_id, dimension, identifier, granularity, start), n in increments.items():
        groups.setdefault((site_id, definition_id, dimension, identifier, n), []).append((granularity, start))
    fields: dict[bytes, int] = {}
    for (site_id, definition_id, dimension, identifier, n), buckets in groups.items():
        field = buckets_field_encode(site_id, definition_id, dimension, identifier, tuple(buckets))
        fields[field] = fields.get(field, 0) + n
    return fields


def _visitor_fields(
    visitors: Visitors, *, admitted: AdmittedValues
) -> tuple[list[bytes], dict[tuple[CapKey, str], list[bytes]]]:
    """The Redis fields of ``visitors``: those written as they are (a dimension value's when it is
    "(other)" or ``admitted``), and per capped dimension value its (own field, "(other)" field)
    pairs, one of each pair chosen by the cap in the script. One field per key and visitor, for all
    the key's buckets together."""
    groups: dict[tuple, list[tuple[str, datetime]]] = {}
    for (site_id, definition_id, dimension, identifier, granularity, start), tokens in visitors.keys.items():
        for token in tokens:
            groups.setdefault((site_id, definition_id, dimension, identifier, token), []).append((granularity, start))
    seen = [
        visitor_field_of(buckets_field_encode(site_id, definition_id, dimension, identifier, tuple(buckets)), token)
        for (site_id, definition_id, dimension, identifier, token), buckets in groups.items()
    ]
    capped: dict[tuple[CapKey, str], list[bytes]] = {}
    for value, tokens in visitors.values.items():
        if value.value == OTHER_VALUE or value in admitted:
            field = buckets_field_encode(
                value.site_id, value.definition_id, value.dimension, value.value, value.buckets
            )
            seen += [visitor_field_of(field, token) for token in tokens]
            continue
        pairs = capped.setdefault((cap_key(value), value.value), [])
        own, other = _own_and_other_fields(value)
        for token in tokens:
            pairs += (visitor_field_of(own, token), visitor_field_of(other, token))
    return seen, capped


def _own_and_other_fields(value: DimensionValue) -> tuple[bytes, bytes]:
    """The field of ``value``'s counters under its own value and under "(other)"."""
    site_id, definition_id, dimension, text, _, buckets = value
    return (
        buckets_field_encode(site_id, definition_id, dimension, text, buckets),
        buckets_field_encode(site_id, definition_id, dimension, OTHER_VALUE, buckets),
    )


# --- Choosing the sink ------------------------------------------------------------------

_SINKS: dict[tuple, object] = {}
_SINKS_PID = os.getpid()
_SINKS_LOCK = threading.Lock()
_EXIT_HOOK_PID: int | None = None


def _flush_at_this_process_exit() -> None:
    """Have multiprocessing's exit hooks of this process write what it buffered. A worker that
    is a multiprocessing child (granian's) leaves through os._exit, skipping atexit, and its
    start clears the exit hooks it inherited: one registered at import in the parent (granian
    imports the project there for its checks) never ran, and a clean stop lost up to
    ``BEACONS_FLUSH_SECONDS`` of counts. So each process registers its own, with its first sink."""
    global _EXIT_HOOK_PID
    if _EXIT_HOOK_PID != os.getpid():
        multiprocessing.util.Finalize(None, sinks_flush, exitpriority=100)
        _EXIT_HOOK_PID = os.getpid()


def get_sink():
    """The sink for ``BEACONS_SINK``, one per process (a forked worker builds its own)."""
    global _SINKS_PID
    name = settings.BEACONS_SINK
    selector = (name, settings.BEACONS_REDIS_URL, settings.BEACONS_REDIS_PREFIX) if name == "redis" else (name,)
    sink = _SINKS.get(selector)
    if sink is not None and _SINKS_PID == os.getpid():
        return sink
    with _SINKS_LOCK:
        if _SINKS_PID != os.getpid():  # inherited from the parent: its buffer and thread are not ours
            _SINKS.clear()
            _SINKS_PID = os.getpid()
        sink = _SINKS.get(selector)
        if sink is None:
            _flush_at_this_process_exit()
            if name == "direct":
                sink = DirectSink()
            elif name == "memory":
                sink = MemorySink(
                    flush_seconds=settings.BEACONS_FLUSH_SECONDS, max_keys=settings.BEACONS_FLUSH_MAX_KEYS
                )
            elif name == "redis":
                sink = RedisSink(url=settings.BEACONS_REDIS_URL, prefix=settings.BEACONS_REDIS_PREFIX)
            else:
                raise ValueError(f"unknown BEACONS_SINK {name!r}: use direct, memory or redis")
            _SINKS[selector] = sink
    return sink


def sinks_flush() -> int:
    """Write what this process buffered (clean shutdown: atexit, server worker-exit hooks)."""
    if _SINKS_PID != os.getpid():
        return 0
    written = 0
    for sink in list(_SINKS.values()):
        try:
            written += sink.flush()
        except DatabaseError:
            logger.exception("beacons: could not write buffered counts at shutdown")
    if written:
        logger.info("beacons: flushed %d buffered counter keys at shutdown", written)
    return written


def sinks_reset() -> None:
    """Forget every sink of this process without writing (tests)."""
    with _SINKS_LOCK:
        for sink in _SINKS.values():
            sink.close()
        _SINKS.clear()


atexit.register(sinks_flush)  # a plain process; multiprocessing children: _flush_at_this_process_exit
