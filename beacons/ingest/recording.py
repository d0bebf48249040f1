"""Recording what an ingest request accepted: counts to the sink, raw events, dedupe, dropped tallies."""

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils.functional import cached_property

from beacons.counting.increments import Hit
from beacons.counting.sinks import get_sink
from beacons.dimensions import ANONYMOUS, SIGNED_IN, UNTRACKED
from beacons.ingest import privacy
from beacons.ingest.dimensions import dimensions_of
from beacons.ingest.hits import hits_record
from beacons.ingest.parsing import EventInput
from beacons.logs import outage_warning
from beacons.models import BeaconDefinition, BeaconEvent, DroppedHits
from beacons.registry import DB_UNREACHABLE, definitions_resolve, identifier_resolve


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


def _event_id_claim(event: EventInput, definition: BeaconDefinition, *, site_id: int, claimed: list[str]) -> bool:
    """False for an event id seen before; a new one is remembered, and its key added to ``claimed``
    (True too for an event without an id, or when the cache is down)."""
    if not event.event_id:
        return True
    digest = hashlib.sha256(event.event_id.encode()).hexdigest()[:32]
    key = f"beacons:dedupe:{site_id}:{definition.id}:{digest}"
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
    site_id: int
    received_at: datetime
    user_agent: str
    referer: str
    source: str
    site_domain: str = ""  # the site's host name: a referrer from it is no source ("Direct / none")
    ip: str = field(default="", repr=False)  # never in a log line or an error report
    tracked: bool = False  # False: the visitor asked not to be tracked (DNT/GPC), or no visitor at all
    signed_visitor: str = ""  # a signed-in user's keyed hash, checked (``identity.signed_visitor``); "" for none

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
        """Who the visitor is, the one identity every visitor count uses (and a kept single event
        stores): a signed-in user's keyed hash, the same every day, else the day's salted hash;
        "" for a visitor who asked not to be tracked (Do-Not-Track wins over signing in)."""
        if not self.tracked:
            return ""
        return self.signed_visitor or self.visitor_hash

    @property
    def identity(self) -> str:
        """The ``identity`` dimension's value of the request's hits."""
        if not self.tracked:
            return UNTRACKED
        return SIGNED_IN if self.signed_visitor else ANONYMOUS


def events_record(*, events: list[EventInput], context: RequestContext) -> int:
    """Count validated events for the context's site and keep raw copies where the definition asks;
    returns how many counted.

    Inactive types, unknown types over the auto-registration budget and repeated event ids
    are dropped silently (tallied in DroppedHits). Raises ``registry.UnknownEventType`` in
    strict mode, before anything is counted. Raw events are inserted first, in one
    statement; the counter increments of all events go to the sink in one call (one
    statement for the direct sink) only after that succeeded, so a request whose events
    cannot be stored counts nothing. Each hit counts its dimension values too (``dimensions_of``),
    and its visitor, in the same sink call (``hits.hits_record``: with the redis sink, the hits
    are logged and the drain counts them).
    """
    definitions = definitions_resolve(slugs={event.event_type for event in events}, registrant=context)
    hits: list[Hit] = []
    raw: list[BeaconEvent] = []
    inactive = duplicates = over_budget = 0
    claimed: list[str] = []
    page_view_ids = {d.id for d in definitions.values() if d.kind == BeaconDefinition.Kind.PAGE_VIEW}
    for event in events:
        definition = definitions.get(event.event_type)
        if definition is None:
            over_budget += 1
            continue
        if not definition.is_active:
            inactive += 1
            continue
        if not _event_id_claim(event, definition, site_id=context.site_id, claimed=claimed):
            duplicates += 1
            continue
        identifier = identifier_resolve(definition=definition, sent=event.identifier, referer=context.referer)
        hits.append(
            Hit(
                context.site_id,
                definition.id,
                tuple(definition.granularity_codes),
                identifier,
                dimensions_of(definition=definition, event=event, request_facts=context),
                tuple(definition.dimension_granularity_codes),
            )
        )
        if definition.keep_raw:
            payload = {"meta": event.meta} if event.meta else {}
            if event.event_id:
                payload["id"] = event.event_id
            raw.append(
                BeaconEvent(
                    site_id=context.site_id,
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
            hits_record(
                get_sink(),
                hits=hits,
                site_id=context.site_id,
                received_at=context.received_at,
                visitor_key=context.visitor_key,
                page_view_ids=page_view_ids,
            )
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
    from beacons.errors import grouping

    error_events = [e for e in events if e.definition.kind == BeaconDefinition.Kind.ERROR]
    with transaction.atomic():
        if error_events:
            grouping.error_events_group(events=error_events)
        BeaconEvent.objects.bulk_create(events)
