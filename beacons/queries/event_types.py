"""Reads of the registry for the staff pages: bounded lists of event types, a search, the one chosen."""

from django.db.models import Q

from beacons.models import BeaconDefinition
from beacons.registry import RESERVED_PREFIX


def _listable():
    """Every type staff choose from: the reserved visit types are read through ``queries.visits``."""
    return BeaconDefinition.objects.exclude(slug__startswith=RESERVED_PREFIX)


def definitions_listed(*, limit: int | None = None, including: str = "", kind: str = "") -> list[BeaconDefinition]:
    """Registered beacon types (of ``kind``, if given) by name: the dashboard's event-type choices.

    With ``limit``, at most that many: the types registered in the admin before those
    auto-registered by their first beacon, and always the type whose slug is ``including``
    (the one a URL asks for), so a flood of auto-registered types cannot swell a page. One
    query that reads the first rows of the (auto_registered, name, slug) index, never every
    type; a second one only for an ``including`` type beyond them."""
    definitions = _listable()
    if kind:
        definitions = definitions.filter(kind=kind)
    if limit is None:
        return list(definitions.order_by("name", "slug"))
    listed = list(definitions.order_by("auto_registered", "name", "slug")[:limit])
    if including and limit and all(d.slug != including for d in listed):
        listed = listed[: limit - 1] + list(definitions.filter(slug=including))
    return sorted(listed, key=lambda d: (d.name, d.slug))


def definitions_matching(*, text: str, limit: int) -> list[BeaconDefinition]:
    """At most ``limit`` types whose name or slug contains ``text`` (any case), those registered
    in the admin first, then by name: the dashboard's type search. One query."""
    found = _listable().filter(Q(name__icontains=text) | Q(slug__icontains=text))
    return list(found.order_by("auto_registered", "name", "slug")[:limit])


def definition_chosen(*, slug: str, listed: int) -> BeaconDefinition | None:
    """The type the dashboard shows for ``?type=<slug>`` when its type choices list ``listed``
    types (``definitions_listed(limit=listed, including=slug)``): that type, else page_view,
    else the first listed by name. One query by slug, without reading the other choices (a
    second only when neither exists)."""
    found = {d.slug: d for d in _listable().filter(slug__in=[slug, "page_view"])}
    if found:
        return found.get(slug) or found["page_view"]
    return next(iter(definitions_listed(limit=listed)), None)


def definition_of(*, slug: str) -> BeaconDefinition | None:
    """The type whose event type is ``slug``, or None. One query."""
    return BeaconDefinition.objects.filter(slug=slug).first()
