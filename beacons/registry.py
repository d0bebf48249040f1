"""The registry of event types: the rules for names and identifiers, resolving slugs to
definitions (cached), auto-registration with its budget, and the identifier to count under.

Used by ingest and by imports, so both accept the same names and register the same way.
Raises domain exceptions (``InvalidName``, ``UnknownEventType``); each caller maps them to
its own answer (an HTTP status, a row error).
"""

import logging
import re
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Protocol
from urllib.parse import urlsplit

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from beacons.limits import minute_count_add
from beacons.models import IDENTIFIER_MAX_LENGTH, SLUG_PATTERN, BeaconDefinition, default_dimensions
from beacons.text import is_storable_text

logger = logging.getLogger("beacons")

SLUG_RE = re.compile(SLUG_PATTERN)
EVENT_TYPE_MAX_LENGTH = 64  # SLUG_PATTERN's bound, said in words for the error message
DB_UNREACHABLE = (OperationalError, InterfaceError)

DEFINITION_FIELDS = (
    "id",
    "slug",
    "kind",
    "identifier_rule",
    "keep_query_string",
    "granularities",
    "dimensions",
    "property_keys",
    "dimensions_by_hour",
    "keep_raw",
    "is_active",
    # error alert policy, decided at ingest without another query (beacons.errors.grouping)
    "alert_on_new",
    "alert_on_regression",
    "alert_threshold",
    "alert_window_minutes",
    "alert_cooldown_minutes",
)


class Registrant(Protocol):
    """Who asks to register new types at ingest (``services.RequestContext``), for the per-minute budget."""

    received_at: datetime
    visitor_hash: str
    network_hash: str


# Event types Beacons counts itself (visits, bounces, …: ``beacons.ingest.sessions``). Their slugs
# start with this prefix: clients may not send them, admins may not register or edit them,
# and they use no auto-registration budget.
RESERVED_PREFIX = "beacons:"


class VisitSlug:
    """The reserved types that hold visit metrics, each counted in the bucket where the visit started."""

    VISITS = "beacons:visits"  # per entry page and entry dimension value
    BOUNCES = "beacons:bounces"  # visits of one page view, same axes
    SECONDS = "beacons:visit_seconds"  # first to last page view, same axes
    PAGES = "beacons:visit_pages"  # page views inside visits, same axes
    EXITS = "beacons:exits"  # per exit page (identifier axis only)


# slug -> name staff see
SYSTEM_DEFINITIONS = {
    VisitSlug.VISITS: "Visits",
    VisitSlug.BOUNCES: "Bounces",
    VisitSlug.SECONDS: "Visit seconds",
    VisitSlug.PAGES: "Pages viewed in visits",
    VisitSlug.EXITS: "Exits",
}


def is_reserved(slug: str) -> bool:
    """True for a slug only Beacons itself may count under."""
    return slug.startswith(RESERVED_PREFIX)


class InvalidName(ValueError):
    """An event type or identifier breaks the registry's rules; the message completes
    "<field> …" (``is required``, ``is longer than 64 characters``)."""


class UnknownEventType(Exception):
    """Strict mode (BEACONS_STRICT) is on and an event type is not registered."""

    def __init__(self, slug: str):
        super().__init__(f"unknown event type {slug!r}: register it in the admin first")
        self.slug = slug


# --- names ------------------------------------------------------------------------------


def event_type_normalise(text: str) -> str:
    """The slug an event type is stored under: ``text`` stripped and lower-cased, 1–64 of
    a-z 0-9 _ . : - starting with a letter or digit (``SLUG_PATTERN``). Raises ``InvalidName``."""
    slug = text.strip().lower()
    if not slug:
        raise InvalidName("is required")
    if len(slug) > EVENT_TYPE_MAX_LENGTH:
        raise InvalidName(f"is longer than {EVENT_TYPE_MAX_LENGTH} characters")
    if not SLUG_RE.match(slug):
        raise InvalidName("must start with a-z or 0-9 and may only contain a-z, 0-9 and _ . : -")
    return slug


def identifier_check(text: str) -> str:
    """``text`` when it can be counted under: at most IDENTIFIER_MAX_LENGTH characters of
    storable text (no NUL, no lone surrogate). Raises ``InvalidName``."""
    if len(text) > IDENTIFIER_MAX_LENGTH:
        raise InvalidName(f"is longer than {IDENTIFIER_MAX_LENGTH} characters")
    if not is_storable_text(text):
        raise InvalidName("contains a NUL character or invalid Unicode")
    return text


# --- definitions ------------------------------------------------------------------------

# Definitions seen in the last DEFINITIONS_CACHE_SECONDS are not read again, so a busy ingest
# path needs no query before the counter write, and keeps counting known types while the
# database is down (stale entries are served then). Admin edits reach other processes within
# that time; saves in this process apply at once (the signal receivers below).
DEFINITIONS_CACHE_SECONDS = 15.0
DEFINITIONS_CACHE_MAX = 10_000
DEFINITIONS_RETRY_SECONDS = 5.0  # while the database is unreachable
_definitions_cache: dict[str, tuple[float, BeaconDefinition]] = {}


def definitions_cache_clear() -> None:
    """Make this process read definitions again (QuerySet.update() sends no signal)."""
    _definitions_cache.clear()


@receiver([post_save, post_delete], sender=BeaconDefinition)
def _definition_changed(sender, instance, **kwargs) -> None:
    _definitions_cache.pop(instance.slug, None)


def definitions_resolve(*, slugs: Iterable[str], registrant: Registrant | None = None) -> dict[str, BeaconDefinition]:
    """Definitions for ``slugs``, auto-registering unknown ones unless strict mode is on.

    With a ``registrant`` (an ingest request), auto-registration has a budget
    (``auto_types_allowed``): unknown types beyond it are left out of the result, and the
    caller drops their events. Without one (imports by staff), every unknown type is
    registered. Served from a short in-process cache (DEFINITIONS_CACHE_SECONDS). When the
    database is unreachable, cached definitions of any age are used; a type never seen by
    this process then raises the database error. Raises ``UnknownEventType`` in strict mode.
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


def _definitions_load_or_register(*, slugs: set[str], registrant: Registrant | None) -> dict[str, BeaconDefinition]:
    """Race-safe: concurrent first hits of a new type insert with ignore_conflicts and then
    read back the single row that won."""
    found = {d.slug: d for d in BeaconDefinition.objects.filter(slug__in=slugs).only(*DEFINITION_FIELDS)}
    missing = sorted(slugs - found.keys())
    if not missing:
        return found
    system = [slug for slug in missing if slug in SYSTEM_DEFINITIONS]
    if system:
        found.update(_system_definitions_create(slugs=system))
        missing = [slug for slug in missing if slug not in SYSTEM_DEFINITIONS]
        if not missing:
            return found
    if settings.BEACONS_STRICT:
        raise UnknownEventType(missing[0])
    if registrant is not None:
        missing = missing[: auto_types_allowed(wanted=len(missing), context=registrant)]
        if not missing:
            return found
    BeaconDefinition.objects.bulk_create(
        [
            BeaconDefinition(
                slug=slug, name=slug.replace("_", " ").capitalize(), auto_registered=registrant is not None
            )
            for slug in missing
        ],
        ignore_conflicts=True,
    )
    found.update({d.slug: d for d in BeaconDefinition.objects.filter(slug__in=missing).only(*DEFINITION_FIELDS)})
    logger.info("auto-registered beacon types: %s", ", ".join(missing))
    return found


def _system_definitions_create(*, slugs: list[str]) -> dict[str, BeaconDefinition]:
    """Register reserved types on first use (in strict mode too, outside the budget): hour, day,
    month and year, in every built-in dimension, as page views keep them."""
    BeaconDefinition.objects.bulk_create(
        [
            BeaconDefinition(
                slug=slug,
                name=SYSTEM_DEFINITIONS[slug],
                description="Counted by Beacons from page views; cannot be sent or edited.",
                identifier_rule=BeaconDefinition.IdentifierRule.PAYLOAD,
                dimensions="" if slug == VisitSlug.EXITS else default_dimensions(BeaconDefinition.Kind.PAGE_VIEW),
            )
            for slug in slugs
        ],
        ignore_conflicts=True,
    )
    return {d.slug: d for d in BeaconDefinition.objects.filter(slug__in=slugs).only(*DEFINITION_FIELDS)}


def system_definitions_resolve() -> dict[str, BeaconDefinition]:
    """The reserved visit types, registered on first use; cached like every definition."""
    return definitions_resolve(slugs=SYSTEM_DEFINITIONS)


def auto_types_budget_left() -> int:
    """How many more types beacons may auto-register (BEACONS_MAX_AUTO_TYPES in total)."""
    return max(0, settings.BEACONS_MAX_AUTO_TYPES - BeaconDefinition.objects.filter(auto_registered=True).count())


def auto_types_allowed(*, wanted: int, context: Registrant) -> int:
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
