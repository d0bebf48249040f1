"""The Redis counter format: key names, the field of a counter, its decoding, COPY text and drain part.

A counter lives in the live hash as one field, ``site_id|definition_id|granularity|epoch seconds|identifier``
(the identifier goes last as it may hold ``|``), whose value is the count. A dimension's counter
names its dimension after the granularity: ``site_id|definition_id|granularity/dimension|epoch|value``
(dimension codes hold no ``/`` nor ``|``). Identifier fields are thus the same as before dimensions
existed, so fields written by an older process drain unchanged. The sinks write it, the drain
reads it back; nothing else knows the layout.

One field may stand for the same identifier's counters in several buckets, which a hit always
counts together (its hour, day, month and year): granularities and epochs are then listed in
order, comma-separated, ``1|8|D,MO,Y/os|1796256000,1796083200,1767225600|iOS``. A request writes
one field (one ``HINCRBY``) where it wrote one per bucket; the drain expands each such field
(``fields_expand``) before anything else reads it.

A visitor of a sketch key is a field of its own in the same hash, ``~<token>|`` followed by the
counter field of the key (``visitor_field_encode``), value 1: a visitor seen twice between two
drains is one field, and the drain moves visitors with the counts of the same batch. Counter
fields start with a digit, so the drain tells them apart by the first byte (``chunk_split``).

Dimension values are capped per day (``beacons.counting.value_cap``): the distinct values seen
are a Redis set per (site, definition, dimension, day), ``value_set_key``.

Page views waiting to be folded into visits are a list, ``page_view_log_keys``: one entry per
request, ``<number> <JSON [site, visitor key, epoch seconds, [[identifier, {dimension: value}]…]]>``,
numbered by Redis in the order it received them (``page_views_log_entry``, ``page_views_log_decode``).
"""

import dataclasses
import json
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from itertools import chain, repeat
from typing import NamedTuple

from beacons.counting.increments import CounterKey, CounterRow
from beacons.text import storable_text

_SEPARATOR = b"|"
_VISITOR_MARK = b"~"
_TOKEN_OFFSET = 1 << 63  # tokens are signed 64-bit; written as 16 unsigned hex digits
_DIMENSION_SEPARATOR = "/"
_LIST_SEPARATOR = ","  # between the granularities, and the epochs, of a field of several buckets
_LIST_SEPARATOR_BYTES = _LIST_SEPARATOR.encode()
_SEPARATOR_BYTE = ord("|")
_KEY_SEPARATORS = 4  # the ones before the identifier, which may hold more
_COPY_ESCAPES = ((b"\\", b"\\\\"), (b"\t", b"\\t"), (b"\n", b"\\n"), (b"\r", b"\\r"))


def live_and_pending_keys(prefix: str) -> tuple[str, str]:
    """(live hash, set of pending drain batches). The ``{prefix}`` hash tag puts every key of one
    prefix in one Redis Cluster slot, as RENAMENX and the drain's script require."""
    return f"{{{prefix}}}:live", f"{{{prefix}}}:pending"


# KEYS: live, batch, pending; ARGV: batch id. Renames the live key to the batch and records the
# batch as pending, at once. RENAMENX needs all keys in one Cluster slot.
RENAME_TO_BATCH = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('RENAMENX', KEYS[1], KEYS[2]) == 0 then return 0 end
redis.call('SADD', KEYS[3], ARGV[1])
return 1
"""


def new_batch_id() -> str:
    """The id of a batch about to be renamed from a live key: its time first, so ids sort by it."""
    return f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}"


def drain_batch_key(prefix: str, batch_id: str) -> str:
    """The hash a drain renames the live hash to, until its counts are in the database."""
    return f"{{{prefix}}}:batch:{batch_id}"


def value_set_key(prefix: str, *, site_id: int, definition_id: int, dimension: str, day: datetime) -> str:
    """The set of a day's distinct values of one dimension (same Cluster slot as the live hash)."""
    return f"{{{prefix}}}:values:{site_id}:{definition_id}:{dimension}:{int(day.timestamp())}"


def visit_state_key(prefix: str, *, site_id: int, visitor_key: str) -> str:
    """The key of a visitor's open visit (``beacons.ingest.sessions``), in the live hash's Cluster slot
    as the sink's script writes it with the counts."""
    return f"{{{prefix}}}:visit:{site_id}:{visitor_key}"


def page_view_log_keys(prefix: str) -> tuple[str, str, str]:
    """(live list of page views waiting to be folded into visits, the counter numbering them, the
    set of pending batches of that list), in the live hash's Cluster slot."""
    return f"{{{prefix}}}:page-views", f"{{{prefix}}}:page-views:number", f"{{{prefix}}}:page-views:pending"


def page_view_log_batch_key(prefix: str, batch_id: str) -> str:
    """The list a drain renames the live page-view list to, until they are folded into visits."""
    return f"{{{prefix}}}:page-views:batch:{batch_id}"


def hit_log_keys(prefix: str) -> tuple[str, str]:
    """(live list of requests' hits waiting to be counted, the set of its pending batches), in the
    live hash's Cluster slot (``beacons.ingest.hits``)."""
    return f"{{{prefix}}}:hits", f"{{{prefix}}}:hits:pending"


def hit_log_batch_key(prefix: str, batch_id: str) -> str:
    """The list a drain renames the live hit log to, until its hits are counted."""
    return f"{{{prefix}}}:hits:batch:{batch_id}"


class LoggedPageViews(NamedTuple):
    """One request's page views, as logged for the drain to fold into its visitor's visit:
    ``number`` orders them (given by Redis), ``page_views`` are (identifier, dimension values)."""

    number: int
    site_id: int
    visitor_key: str
    received: int  # epoch seconds
    page_views: tuple[tuple[str, dict[str, str]], ...]


def page_views_log_entry(*, site_id: int, visitor_key: str, received: int, page_views: Iterable) -> bytes:
    """The entry logging one request's page views (``Hit``s); Redis puts its number before it."""
    rows = [[hit.identifier, hit.dimensions] for hit in page_views]
    return json.dumps([site_id, visitor_key, received, rows], separators=(",", ":")).encode()


def page_views_log_decode(raw: bytes) -> LoggedPageViews | None:
    """Inverse of what the script stores (``<number> <page_views_log_entry>``); None for anything
    else, or for an entry of no page views."""
    try:
        number, entry = raw.split(b" ", 1)
        site_id, visitor_key, received, rows = json.loads(entry)
        if not rows:
            return None
        return LoggedPageViews(
            int(number),
            int(site_id),
            str(visitor_key),
            int(received),
            tuple(
                (str(identifier), {str(d): str(v) for d, v in dimensions.items()}) for identifier, dimensions in rows
            ),
        )
    except (ValueError, TypeError, AttributeError):
        return None


# Requests within a bucket write mostly the same fields (the same pages, browsers, countries):
# the busiest are encoded once, the prefixes they share (site, type, bucket) too.
@lru_cache(maxsize=16384)
def field_encode(key: CounterKey) -> bytes:
    """The hash field of a counter key."""
    site_id, definition_id, dimension, identifier, granularity, start = key
    return (_field_prefix(site_id, definition_id, dimension, granularity, int(start.timestamp())) + identifier).encode(
        "utf-8", "surrogatepass"
    )


@lru_cache(maxsize=16384)
def buckets_field_encode(
    site_id: int, definition_id: int, dimension: str, identifier: str, buckets: tuple[tuple[str, datetime], ...]
) -> bytes:
    """The one hash field of an identifier's (or dimension value's) counters in each of ``buckets``
    ((granularity, start) pairs, at least one): ``field_encode`` of its key for a single bucket."""
    return (_buckets_prefix(site_id, definition_id, dimension, buckets) + identifier).encode("utf-8", "surrogatepass")


@lru_cache(maxsize=4096)
def _field_prefix(site_id: int, definition_id: int, dimension: str, granularity: str, epoch: int | str) -> str:
    if dimension:
        granularity = f"{granularity}{_DIMENSION_SEPARATOR}{dimension}"
    return f"{site_id}|{definition_id}|{granularity}|{epoch}|"


@lru_cache(maxsize=1024)
def _buckets_prefix(site_id: int, definition_id: int, dimension: str, buckets: tuple[tuple[str, datetime], ...]) -> str:
    granularities = _LIST_SEPARATOR.join(granularity for granularity, _ in buckets)
    epochs = _LIST_SEPARATOR.join(str(int(start.timestamp())) for _, start in buckets)
    return _field_prefix(site_id, definition_id, dimension, granularities, epochs)


def field_decode(field: bytes, n: bytes | int) -> CounterRow:
    """Inverse of ``field_encode``, with the count: (site_id, definition_id, dimension, identifier,
    granularity, epoch seconds, n). Undecodable bytes and NUL (never written by ingest, and refused by
    PostgreSQL) become U+FFFD rather than block a drain."""
    site_id, definition_id, granularity, epoch, identifier = field.split(_SEPARATOR, _KEY_SEPARATORS)
    granularity, _, dimension = storable_text(granularity).partition(_DIMENSION_SEPARATOR)
    return int(site_id), int(definition_id), dimension, storable_text(identifier), granularity, int(epoch), int(n)


def visitor_field_encode(key: CounterKey, token: int) -> bytes:
    """The hash field saying the visitor ``token`` is in the sketch of ``key``."""
    return visitor_field_of(field_encode(key), token)


def visitor_field_of(field: bytes, token: int) -> bytes:
    """The hash field saying the visitor ``token`` is in the sketch of each key of the counter ``field``."""
    return b"~%016x|%s" % (token + _TOKEN_OFFSET, field)


def visitor_field_decode(field: bytes) -> tuple[list[CounterKey], int]:
    """Inverse of ``visitor_field_encode`` (and of ``visitor_field_of`` with a field of several
    buckets): (sketch keys, token)."""
    token, counter = field[1:].split(_SEPARATOR, 1)
    keys = []
    for one in _buckets_split(counter):
        site_id, definition_id, dimension, identifier, granularity, epoch, _ = field_decode(one, 0)
        keys.append((site_id, definition_id, dimension, identifier, granularity, datetime.fromtimestamp(epoch, UTC)))
    return keys, int(token, 16) - _TOKEN_OFFSET


def visitor_tokens(fields: Iterable[bytes]) -> dict[CounterKey, set[int]]:
    """Visitor fields (``visitor_field_encode``) gathered per sketch key."""
    tokens: dict[CounterKey, set[int]] = {}
    for field in fields:
        keys, token = visitor_field_decode(field)
        for key in keys:
            tokens.setdefault(key, set()).add(token)
    return tokens


def fields_expand(pairs: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Counter (field, count) pairs with each field of several buckets replaced by one field per
    bucket, and the counts of equal fields summed: what the drain and its tallies read."""
    if not any(_LIST_SEPARATOR_BYTES in field for field, _ in pairs):  # one bucket each, as before
        return pairs
    counts: dict[bytes, int] = {}
    get = counts.get
    for field, n in pairs:
        for one in _buckets_split(field):
            counts[one] = get(one, 0) + int(n)
    return [(field, b"%d" % n) for field, n in counts.items()]


def _buckets_split(field: bytes) -> list[bytes]:
    """The single-bucket fields a counter field stands for (itself when it has one bucket)."""
    if _LIST_SEPARATOR_BYTES not in field:
        return [field]
    site_id, definition_id, granularities, epochs, identifier = field.split(_SEPARATOR, _KEY_SEPARATORS)
    if _LIST_SEPARATOR_BYTES not in granularities:  # the "," was in the identifier
        return [field]
    granularities, slash, dimension = granularities.partition(_DIMENSION_SEPARATOR.encode())
    return [
        _SEPARATOR.join((site_id, definition_id, granularity + slash + dimension, epoch, identifier))
        for granularity, epoch in zip(
            granularities.split(_LIST_SEPARATOR_BYTES), epochs.split(_LIST_SEPARATOR_BYTES), strict=True
        )
    ]


def chunk_split(pairs: list[tuple[bytes, bytes]]) -> tuple[list[tuple[bytes, bytes]], list[bytes]]:
    """(counter pairs, visitor fields) of pairs read from a hash."""
    if not any(f[:1] == _VISITOR_MARK for f, _ in pairs):
        return pairs, []
    counters = [(f, n) for f, n in pairs if f[:1] != _VISITOR_MARK]
    return counters, [f for f, _ in pairs if f[:1] == _VISITOR_MARK]


def counter_rows(fields: Mapping[bytes, bytes]) -> list[CounterRow]:
    """The counters of a hash read whole (``HGETALL``), decoded; its visitor fields left out."""
    counters, _ = chunk_split(list(fields.items()))
    return [field_decode(f, n) for f, n in fields_expand(counters)]


def copy_text(fields: list[bytes], counts: list[bytes]) -> bytes:
    """Fields and their counts as lines of PostgreSQL's text ``COPY``: site_id, definition_id,
    granularity (``granularity/dimension`` for a dimension's counter), epoch, identifier, count,
    tab-separated.

    A drain sends millions of these, so the work is a few passes over the whole chunk rather
    than per field: escaping, and checking the text is UTF-8 without NUL (always so for what
    ingest writes; otherwise bad bytes become U+FFFD, as in ``field_decode``).
    """
    if not fields:
        return b""
    blob = b"\x00".join(fields)
    try:
        blob.decode()
        clean = blob.count(b"\x00") == len(fields) - 1
    except UnicodeDecodeError:
        clean = False
    if not clean:
        blob = b"\x00".join(storable_text(f).encode() for f in fields)
    for char, escaped in _COPY_ESCAPES:
        if char in blob:
            blob = blob.replace(char, escaped)
    if blob.count(_SEPARATOR) == _KEY_SEPARATORS * len(fields):
        columns = blob.replace(_SEPARATOR, b"\t").split(b"\x00")
    else:  # some identifier holds "|": only the first four of a field are separators
        columns = [f.replace(_SEPARATOR, b"\t", _KEY_SEPARATORS) for f in blob.split(b"\x00")]
    return b"".join(chain.from_iterable(zip(columns, repeat(b"\t"), counts, repeat(b"\n"))))


def part_indexes(fields: Iterable[bytes], parts: int) -> list[int]:
    """The part (of ``parts``) each field is drained in. It depends only on the field, so a drain
    that restarts after some parts committed splits the batch the same way. Every "" total field
    (with the few whose identifier ends in "|") goes to the first part, so the hits a part records
    are exact. One call per chunk, as a drain splits millions of fields."""
    crc32 = zlib.crc32
    return [0 if f[-1] == _SEPARATOR_BYTE else crc32(f) % parts for f in fields]


def totals_by_series(pairs: Iterable[tuple[bytes, bytes]]) -> Counter[tuple[int, int, str]]:
    """The counts of the "" total fields among (field, count) pairs, summed per (site_id,
    definition_id, granularity). A total field is an identifier field (no dimension) whose
    identifier, after the fourth ``|``, is empty."""
    totals: Counter[tuple[int, int, str]] = Counter()
    for field, n in [(f, n) for f, n in pairs if f[-1] == _SEPARATOR_BYTE and f.count(_SEPARATOR) == _KEY_SEPARATORS]:
        site_id, definition_id, granularity, _epoch, _identifier = field.split(_SEPARATOR, _KEY_SEPARATORS)
        if _DIMENSION_SEPARATOR.encode() not in granularity:
            totals[(int(site_id), int(definition_id), granularity.decode())] += int(n)
    return totals


@dataclass(slots=True)
class FieldsChunk:
    """(field, count) pairs read from a hash: a ``counting.CounterChunk``."""

    pairs: list[tuple[bytes, bytes]]
    visitors: list[bytes] = dataclasses.field(default_factory=list)  # visitor fields, merged into sketches

    def __len__(self) -> int:
        return len(self.pairs)

    def rows(self) -> list[CounterRow]:
        return [field_decode(f, n) for f, n in self.pairs]

    def copy_text(self) -> bytes:
        if not self.pairs:
            return b""
        fields, counts = zip(*self.pairs)
        return copy_text(fields, counts)
