"""Writes: the registry, and recording what an ingest request accepted."""

import hashlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from . import privacy
from .counting import Hit, increments_for
from .logs import ThrottledWarning
from .models import IDENTIFIER_MAX_LENGTH, BeaconDefinition, BeaconEvent, DroppedHits
from .parsing import EventInput, Rejected
from .sinks import get_sink

logger = logging.getLogger("beacons")
outage_warning = ThrottledWarning()

DEFINITION_FIELDS = (
    "id", "slug", "kind", "identifier_rule", "keep_query_string", "granularities", "keep_raw", "is_active",
    # error alert policy, decided at ingest without another query (beacons.errors)
    "alert_on_new", "alert_on_regression", "alert_threshold", "alert_window_minutes", "alert_cooldown_minutes",
)  # fmt: skip


# Definitions seen in the last DEFINITIONS_CACHE_SECONDS are not read again, so a busy ingest
# path needs no query before the counter write, and keeps counting known types while the
# database is down (stale entries are served then). Admin edits reach other processes within
# that time; saves in this process apply at once (the signal receivers below).
DEFINITIONS_CACHE_SECONDS = 15.0
DEFINITIONS_CACHE_MAX = 10_000
DEFINITIONS_RETRY_SECONDS = 5.0  # while the database is unreachable
_definitions_cache: dict[str, tuple[float, BeaconDefinition]] = {}
DB_UNREACHABLE = (OperationalError, InterfaceError)


def definitions_cache_clear() -> None:
    """Make this process read definitions again (QuerySet.update() sends no signal)."""
    _definitions_cache.clear()


@receiver([post_save, post_delete], sender=BeaconDefinition)
def _definition_changed(sender, instance, **kwargs) -> None:
    _definitions_cache.pop(instance.slug, None)


def definitions_resolve(
    *, slugs: Iterable[str], registrant: "RequestContext | None" = None
) -> dict[str, BeaconDefinition]:
    """Definitions for ``slugs``, auto-registering unknown ones unless strict mode is on.

    With a ``registrant`` (an ingest request), auto-registration has a budget
    (``auto_types_allowed``): unknown types beyond it are left out of the result, and the
    caller drops their events. Without one (imports by staff), every unknown type is
    registered. Served from a short in-process cache (DEFINITIONS_CACHE_SECONDS). When the
    database is unreachable, cached definitions of any age are used; a type never seen by
    this process then raises the database error. Raises ``Rejected`` (422) in strict mode.
    """
    wanted = set(slugs)
    now = time.monotonic()
    found: dict[str, BeaconDefinition] = {}
    for slug in wanted:
        entry = _definitions_cache.get(slug)
        if entry is not None and now - entry[0] < DEFINITIONS_CACHE_SECONDS:
            found[slug] = entry[1]
    if len(found) == len(wanted):
        return found
    try:
        loaded = _definitions_load_or_register(slugs=wanted - found.keys(), registrant=registrant)
    except DB_UNREACHABLE:
        stale = {slug: _definitions_cache[slug][1] for slug in wanted - found.keys() if slug in _definitions_cache}
        if len(found) + len(stale) < len(wanted):
            raise
        for slug, definition in stale.items():  # ask the database again in a few seconds, not at every hit
            _definitions_cache[slug] = (now - DEFINITIONS_CACHE_SECONDS + DEFINITIONS_RETRY_SECONDS, definition)
        return found | stale
    if len(_definitions_cache) > DEFINITIONS_CACHE_MAX:
        _definitions_cache.clear()
    for slug, definition in loaded.items():
        _definitions_cache[slug] = (now, definition)
    return found | loaded


def _definitions_load_or_register(
    *, slugs: set[str], registrant: "RequestContext | None"
) -> dict[str, BeaconDefinition]:
    """Race-safe: concurrent first hits of a new type insert with ignore_conflicts and then
    read back the single row that won."""
    found = {d.slug: d for d in BeaconDefinition.objects.filter(slug__in=slugs).only(*DEFINITION_FIELDS)}
    missing = sorted(slugs - found.keys())
    if not missing:
        return found
    if settings.BEACONS_STRICT:
        raise Rejected(422, f"unknown event type {missing[0]!r}: register it in the admin first", "event_type")
    if registrant is not None:
        missing = missing[: auto_types_allowed(wanted=len(missing), context=registrant)]
        if not missing:
            return found
    BeaconDefinition.objects.bulk_create(
        [
            BeaconDefinition(slug=slug, name=slug.replace("_", " ").capitalize(), auto_registered=registrant is not None)
            for slug in missing
        ],
        ignore_conflicts=True,
    )
    found.update({d.slug: d for d in BeaconDefinition.objects.filter(slug__in=missing).only(*DEFINITION_FIELDS)})
    logger.info("auto-registered beacon types: %s", ", ".join(missing))
    return found


def auto_types_budget_left() -> int:
    """How many more types beacons may auto-register (BEACONS_MAX_AUTO_TYPES in total)."""
    return max(0, settings.BEACONS_MAX_AUTO_TYPES - BeaconDefinition.objects.filter(auto_registered=True).count())


def auto_types_allowed(*, wanted: int, context: "RequestContext") -> int:
    """How many of ``wanted`` new types this request may register: the total budget, then
    BEACONS_NEW_TYPES_PER_MINUTE per visitor and per network (each attempt uses the minute's
    allowance, so a flood from many user agents or addresses of one network is cut short).

    Concurrent requests may each see the last free places of the total budget, so it can be
    exceeded by at most (concurrent requests × the per-minute allowance)."""
    allowed = min(wanted, auto_types_budget_left())
    if not allowed:
        return 0
    per_minute = settings.BEACONS_NEW_TYPES_PER_MINUTE
    for scope, key in (("visitor", context.visitor_hash), ("network", context.network_hash)):
        total = minute_count_add(key=f"beacons:new-types:{scope}:{key}", amount=wanted, at=context.received_at)
        if total is not None:
            allowed = min(allowed, max(0, per_minute - (total - wanted)))
    return allowed


def minute_count_add(*, key: str, amount: int, at: datetime) -> int | None:
    """Add ``amount`` to the cache counter of ``key`` for the minute of ``at``; returns the
    minute's total, or None when the cache is unreachable (limits then let requests through)."""
    cache_key = f"{key}:{int(at.timestamp() // 60)}"
    try:
        cache.add(cache_key, 0, timeout=61)
        try:
            return cache.incr(cache_key, amount)
        except ValueError:  # expired between add and incr
            cache.set(cache_key, amount, timeout=61)
            return amount
    except Exception:  # a shared cache (CACHE_URL) that is down
        outage_warning("per-minute limit skipped: cache unreachable", exc_info=True)
        return None


def identifier_resolve(*, definition: BeaconDefinition, sent: str | None, referer: str) -> str:
    """The identifier to count under: what was sent, else the definition's rule."""
    rule = definition.identifier_rule
    if rule == BeaconDefinition.IdentifierRule.NONE:
        return ""
    identifier = sent
    if identifier is None and rule == BeaconDefinition.IdentifierRule.REFERER and referer:
        identifier = urlsplit(referer).path or "/"
    if not identifier:
        return ""
    if definition.kind == BeaconDefinition.Kind.PAGE_VIEW and not definition.keep_query_string:
        path, hash_mark, fragment = identifier.partition("#")
        identifier = path.split("?", 1)[0] + hash_mark + fragment
    return identifier.strip()[:IDENTIFIER_MAX_LENGTH]


def dropped_add(*, reason: str, count: int, day=None) -> None:
    from django.utils import timezone

    day = day or timezone.now().date()
    table = DroppedHits._meta.db_table
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (day, reason, count) VALUES (%s, %s, %s) "
                f"ON CONFLICT (day, reason) DO UPDATE SET count = {table}.count + EXCLUDED.count",
                [connection.ops.adapt_datefield_value(day), reason, count],
            )
    except DB_UNREACHABLE as exc:  # a tally of what was not counted is not worth failing a request
        outage_warning("dropped-hits tally (%s +%d) lost, database unreachable: %s", reason, count, exc)


def _first_time(event: EventInput, definition: BeaconDefinition, *, claimed: list[str]) -> bool:
    """False for an event id seen before; a new one is remembered, and its key added to ``claimed``."""
    if not event.event_id:
        return True
    digest = hashlib.sha256(event.event_id.encode()).hexdigest()[:32]
    key = f"beacons:dedupe:{definition.id}:{digest}"
    try:
        first = cache.add(key, 1, timeout=settings.BEACONS_DEDUPE_SECONDS)
    except Exception as exc:  # a shared cache (CACHE_URL) that is down: count rather than lose the hit
        outage_warning("dedupe skipped, cache unreachable: %s", exc)
        return True
    if first:
        claimed.append(key)
    return first


def _dedupe_release(*, keys: list[str]) -> None:
    """Forget event ids of a request that failed: it counted nothing, so its retry must count."""
    try:
        cache.delete_many(keys)
    except Exception as exc:  # a cache that is down: a retry within BEACONS_DEDUPE_SECONDS is dropped
        outage_warning("dedupe ids of a failed request kept, cache unreachable: %s", exc)


@dataclass
class RequestContext:
    received_at: datetime
    user_agent: str
    referer: str
    source: str
    ip: str = field(default="", repr=False)  # never in a log line or an error report
    tracked: bool = False  # False: the visitor asked not to be tracked (DNT/GPC), or no visitor at all

    @cached_property
    def visitor_hash(self) -> str:
        """The day's salted hash of IP and user agent, computed only when something needs it."""
        return privacy.visitor_key(ip=self.ip, user_agent=self.user_agent)

    @cached_property
    def network_hash(self) -> str:
        """The day's keyed hash of the visitor's network (IPv4 /24, IPv6 /64), for limits."""
        return privacy.network_key(ip=self.ip)

    @property
    def visitor_key(self) -> str:
        """What a kept single event stores: "" for a visitor who asked not to be tracked."""
        return self.visitor_hash if self.tracked else ""


def events_record(*, events: list[EventInput], context: RequestContext) -> int:
    """Count validated events and keep raw copies where the definition asks; returns how many counted.

    Inactive types, unknown types over the auto-registration budget and repeated event ids
    are dropped silently (tallied in DroppedHits). Raw events are inserted first, in one
    statement; the counter increments of all events go to the sink in one call (one
    statement for the direct sink) only after that succeeded, so a request whose events
    cannot be stored counts nothing.
    """
    definitions = definitions_resolve(slugs={event.event_type for event in events}, registrant=context)
    hits: list[Hit] = []
    raw: list[BeaconEvent] = []
    inactive = duplicates = over_budget = 0
    claimed: list[str] = []
    for event in events:
        definition = definitions.get(event.event_type)
        if definition is None:
            over_budget += 1
            continue
        if not definition.is_active:
            inactive += 1
            continue
        if not _first_time(event, definition, claimed=claimed):
            duplicates += 1
            continue
        identifier = identifier_resolve(definition=definition, sent=event.identifier, referer=context.referer)
        hits.append(Hit(definition.id, tuple(definition.granularity_codes), identifier))
        if definition.keep_raw:
            payload = {"meta": event.meta} if event.meta else {}
            if event.event_id:
                payload["id"] = event.event_id
            raw.append(
                BeaconEvent(
                    definition=definition,
                    received_at=context.received_at,
                    identifier=identifier,
                    payload=payload,
                    user_agent=context.user_agent[:512],
                    visitor_key=context.visitor_key,
                    source=context.source,
                )
            )
    try:
        if raw:
            try:
                raw_events_keep(events=raw, definitions=definitions)
            except DB_UNREACHABLE as exc:  # back-pressure: the counts are kept, single events go first
                outage_warning("%d single event(s) dropped, database unreachable: %s", len(raw), exc)
        if hits:
            get_sink().add(increments_for(hits=hits, received_at=context.received_at))
    except BaseException:
        if claimed:
            _dedupe_release(keys=claimed)
        raise
    if over_budget:
        dropped_add(reason=DroppedHits.Reason.OVER_BUDGET, count=over_budget)
    if inactive:
        dropped_add(reason=DroppedHits.Reason.INACTIVE, count=inactive)
    if duplicates:
        dropped_add(reason=DroppedHits.Reason.DUPLICATE, count=duplicates)
    return len(hits)


def raw_events_keep(*, events: list[BeaconEvent], definitions: dict[str, BeaconDefinition]) -> None:
    from . import errors

    error_events = [e for e in events if e.definition.kind == BeaconDefinition.Kind.ERROR]
    with transaction.atomic():
        if error_events:
            errors.error_events_group(events=error_events)
        BeaconEvent.objects.bulk_create(events)
