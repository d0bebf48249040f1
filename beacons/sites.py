"""Which site a beacon counts for, and which web origins may send it: resolved from a cached list of sites.

Sites change rarely and ingest must not pay a query per hit, so every site is read in one query
and kept for ``SITES_CACHE_SECONDS``, with the registry's outage tolerance: while the database
is unreachable the last list is served (asked again every few seconds); a process that never
read it raises the database error (503). Saves and deletes in this process apply at once.
Raises ``SiteRefused`` for a beacon no active site takes; the caller maps it to its answer.
"""

import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.http.request import split_domain_port, validate_host

from beacons.domains import DEFAULT_PORTS, InvalidDomain, domain_normalise, origin_parts, origins_split
from beacons.models import Site
from beacons.registry import DB_UNREACHABLE, DEFINITIONS_CACHE_SECONDS, DEFINITIONS_RETRY_SECONDS

SITES_CACHE_SECONDS = DEFINITIONS_CACHE_SECONDS
SITES_RETRY_SECONDS = DEFINITIONS_RETRY_SECONDS

Origin = tuple[str, str, int]  # (scheme, host, port), as ``domains.origin_parts`` gives it


@dataclass(frozen=True)
class SiteEntry:
    """What ingest needs of a site."""

    id: int
    domain: str
    is_active: bool
    origins: frozenset[Origin]  # its own https:// and http:// origins and its extra allowed origins
    time_zone: str = ""  # its buckets' zone name, as stored ("" → BEACONS_TIME_ZONE)


@dataclass
class _Sites:
    loaded_at: float
    by_domain: dict[str, SiteEntry]
    by_id: dict[int, SiteEntry] = field(default_factory=dict)
    by_origin: dict[Origin, list[SiteEntry]] = field(default_factory=dict)  # every site an origin may send for
    default: SiteEntry | None = None  # the oldest site: the one the first migration created


_cached: _Sites | None = None


class SiteRefused(Exception):
    """No active site takes this beacon: ``status`` 403 for an unknown or inactive site, 400 for a
    ``site`` field that is not a host name."""

    def __init__(self, message: str, *, status: int = 403):
        super().__init__(message)
        self.status = status


def sites_cache_clear() -> None:
    """Make this process read the sites again (QuerySet.update() sends no signal)."""
    global _cached
    _cached = None


@receiver([post_save, post_delete], sender=Site)
def _site_changed(sender, **kwargs) -> None:
    sites_cache_clear()


def _entry(domain: str, pk: int, is_active: bool, extra_origins: str, time_zone: str) -> SiteEntry:
    own = {(scheme, domain, port) for scheme, port in DEFAULT_PORTS.items()}
    extra = {parts for parts in map(origin_parts, origins_split(extra_origins)) if parts is not None}
    return SiteEntry(pk, domain, is_active, frozenset(own | extra), time_zone)


def _sites_load(now: float) -> _Sites:
    rows = Site.objects.order_by("pk").values_list("domain", "pk", "is_active", "extra_origins", "time_zone")
    entries = [_entry(*row) for row in rows]
    loaded = _Sites(
        now,
        {entry.domain: entry for entry in entries},
        by_id={entry.id: entry for entry in entries},
        default=entries[0] if entries else None,
    )
    for entry in entries:
        for origin in entry.origins:
            loaded.by_origin.setdefault(origin, []).append(entry)
    return loaded


def sites_cached() -> _Sites:
    """Every site, from this process's cache (see the module docstring)."""
    global _cached
    now = time.monotonic()
    cached = _cached
    if cached is not None and now - cached.loaded_at < SITES_CACHE_SECONDS:
        return cached
    try:
        _cached = _sites_load(now)
    except DB_UNREACHABLE:
        if cached is None:
            raise
        cached.loaded_at = now - SITES_CACHE_SECONDS + SITES_RETRY_SECONDS  # ask again in a few seconds
        _cached = cached
    return _cached


def site_time_zone(site_id: int) -> str:
    """The stored time zone name of site ``site_id`` ("" for a site this process does not know)."""
    entry = sites_cached().by_id.get(site_id)
    return entry.time_zone if entry is not None else ""


def site_origins(site_id: int) -> list[str]:
    """The web origins of site ``site_id``, sorted, as ``scheme://host[:port]`` (the port only when
    not the scheme's default): its own https:// and http:// ones and its extra allowed ones, the same
    set that may send its beacons. Empty for a site this process does not know."""
    entry = sites_cached().by_id.get(site_id)
    return sorted(_origin_text(parts) for parts in entry.origins) if entry is not None else []


def _origin_text(parts: Origin) -> str:
    scheme, host, port = parts
    host = f"[{host}]" if ":" in host else host  # an IPv6 literal
    return f"{scheme}://{host}" if port == DEFAULT_PORTS[scheme] else f"{scheme}://{host}:{port}"


def origin_allowed_everywhere(parts: Origin, *, own_origin: str) -> bool:
    """An origin every site accepts: an entry of BEACONS_ALLOWED_ORIGINS, this server's own
    origin, or a host in ALLOWED_HOSTS on any port (this server's names: a front-end dev server
    on localhost:3000). Such an origin (or referrer) names no site by itself."""
    allowed = settings.BEACONS_ALLOWED_ORIGINS
    if "*" in allowed or any(parts == origin_parts(entry) for entry in allowed):
        return True
    if parts == origin_parts(own_origin):
        return True
    host = parts[1]
    return validate_host(f"[{host}]" if ":" in host else host, settings.ALLOWED_HOSTS)  # IPv6 in brackets


def origin_allowed_somewhere(origin: str, *, own_origin: str) -> bool:
    """May ``origin`` send beacons for any active site? (A preflight, before the body names one.)"""
    parts = origin_parts(origin)
    if parts is None:
        return "*" in settings.BEACONS_ALLOWED_ORIGINS
    if origin_allowed_everywhere(parts, own_origin=own_origin):
        return True
    return any(site.is_active for site in sites_cached().by_origin.get(parts, ()))


def origin_allowed_for(site: SiteEntry, origin: str, *, own_origin: str) -> bool:
    """May ``origin`` send beacons for ``site``: its own origins, its extra ones, or one every site accepts."""
    parts = origin_parts(origin)
    if parts is None:
        return "*" in settings.BEACONS_ALLOWED_ORIGINS
    return parts in site.origins or origin_allowed_everywhere(parts, own_origin=own_origin)


def _active(site: SiteEntry | None, what: str) -> SiteEntry:
    if site is None or not site.is_active:
        raise SiteRefused(f"unknown site {what}: no active site of that name counts here")
    return site


def _site_of_page(url: str, *, own_origin: str, sites: _Sites) -> SiteEntry | None:
    """The site an Origin or Referer names: the site of its host, else the one site that lists it
    as an extra origin. None when it names none (a page of this server, or an origin every site
    accepts); ``SiteRefused`` when it names an unknown, inactive or ambiguous one."""
    parts = origin_parts(_origin_of(url))
    if parts is None:
        return None  # not a web page ("null", a file): nothing to go by
    site = sites.by_domain.get(parts[1])
    if site is not None:
        return _active(site, parts[1][:100])
    listing = sites.by_origin.get(parts, [])
    if len(listing) == 1:
        return _active(listing[0], parts[1][:100])
    if not listing and origin_allowed_everywhere(parts, own_origin=own_origin):
        return None
    raise SiteRefused(f"unknown site {parts[1][:100]}: send the site's domain in the beacon's site field")


def _origin_of(url: str) -> str:
    """The scheme://host:port part of a page address (a Referer carries path and query too)."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0].split('?', 1)[0].split('#', 1)[0]}"


def site_for_beacon(*, named: object, origin: str, referer: str, own_origin: str) -> SiteEntry:
    """The active site a beacon counts for: the one it names (its ``site`` field, a domain), else
    the one its ``Origin`` header names, else its ``Referer``'s, else the first site (server-side
    senders name none). Raises ``SiteRefused``: 400 for a ``site`` that is not a host name, 403
    for an unknown or inactive site."""
    sites = sites_cached()
    if named is not None and named != "":
        try:
            domain = domain_normalise(named)
        except InvalidDomain as problem:
            raise SiteRefused(str(problem), status=400) from None
        return _active(sites.by_domain.get(domain), domain[:100])
    for header in (origin, referer):
        if header:
            site = _site_of_page(header, own_origin=own_origin, sites=sites)
            if site is not None:
                return site
    return _active(sites.default, "(the first site)")


def request_site_domain(request) -> str:
    """The domain of the site serving ``request`` (its host, without port), or "" when no site has
    that domain or the sites cannot be read: what ``{% beacon_script %}`` names in ``data-site``."""
    host, _port = split_domain_port(request.get_host())
    try:
        domain = domain_normalise(host)
        return domain if domain in sites_cached().by_domain else ""
    except (InvalidDomain, *DB_UNREACHABLE):
        return ""
