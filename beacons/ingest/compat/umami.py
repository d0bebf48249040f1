"""The Umami drop-in endpoint: ``POST /api/send`` as Umami's tracker script sends it, counted as Beacons events.

A body is ``{"type": …, "payload": {"website", "url", "referrer", "name"?, "data"?, …}}`` (JSON):

- ``type`` ``event``: ``website`` (a UUID) is the site whose Umami website id it is (admin,
  **Sites**), unknown: 403, tallied as an unknown site. Without a ``name``, a page view of
  ``url`` (a path or a full URL: its path, query and fragment, as Umami counts it; the
  ``page_view`` type drops the query unless it keeps query strings); with one, a custom event
  (``compat.event_type_named``) on ``url``'s path, its ``data`` as the meta. ``url``'s
  ``utm_*`` and ``ref`` are the campaign, ``referrer`` the source. ``hostname``, ``title``,
  ``screen``, ``language``, ``tag``, ``id`` and ``vid`` are ignored: an identity a page claims is never trusted.
- ``type`` ``identify``, ``performance`` or ``engagement``: accepted, counting nothing.

Accepted: 200 ``{"cache": …}``, what the tracker keeps and sends back in ``x-umami-cache``
(older trackers keep the whole response text); the header is never read. The rest is /beacon's
(CORS, whose preflight also allows ``x-umami-cache``; 4xx JSON; 503).
"""

import time
import uuid
from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from beacons.ingest.compat import PAGE_VIEW, compat_required, event_type_named, page_address
from beacons.ingest.fastpath import ingest_endpoint
from beacons.ingest.parsing import Rejected, body_to_data
from beacons.ingest.recording import dropped_add
from beacons.ingest.views import answered_before_the_body, cors, read_body, reject, request_events_record, unavailable
from beacons.models import DroppedHits, Site
from beacons.registry import DB_UNREACHABLE
from beacons.sites import SITES_CACHE_SECONDS, SITES_RETRY_SECONDS

COUNTED = "event"
COUNTING_NOTHING = ("identify", "performance", "engagement")
ALLOWED_HEADERS = "Content-Type, x-umami-cache"
# What the tracker stores and sends back in x-umami-cache. Umami's is a signed session; here
# nothing is kept between requests, so there is nothing to sign and the header is never read.
CACHE_TOKEN = "beacons"

_website_domains: tuple[float, dict[uuid.UUID, str]] | None = None  # (loaded at, {website id: site domain})


def website_domains_clear() -> None:
    """Make this process read the sites' Umami website ids again."""
    global _website_domains
    _website_domains = None


@receiver([post_save, post_delete], sender=Site)
def _site_changed(sender, **kwargs) -> None:
    website_domains_clear()


def website_domain(website: uuid.UUID) -> str | None:
    """The domain of the site whose Umami website id is ``website``, or None. Read in one query and
    kept for SITES_CACHE_SECONDS, served stale while the database is unreachable, as the sites are."""
    global _website_domains
    now = time.monotonic()
    cached = _website_domains
    if cached is None or now - cached[0] >= SITES_CACHE_SECONDS:
        try:
            rows = Site.objects.filter(umami_website_id__isnull=False).values_list("umami_website_id", "domain")
            cached = (now, dict(rows))
        except DB_UNREACHABLE:
            if cached is None:
                raise
            cached = (now - SITES_CACHE_SECONDS + SITES_RETRY_SECONDS, cached[1])  # ask again in a few seconds
        _website_domains = cached
    return cached[1].get(website)


@csrf_exempt
@compat_required("umami")
@ingest_endpoint
def endpoint(request: HttpRequest, **kwargs) -> HttpResponse:
    """POST /api/send: one Umami event (see the module docstring)."""
    origin = request.META.get("HTTP_ORIGIN", "")
    answered = answered_before_the_body(request, origin)
    if answered is not None:
        if request.method == "OPTIONS" and answered.status_code == 204:
            answered["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        return answered
    try:
        body = body_to_data(
            raw=read_body(request), content_type=request.META.get("CONTENT_TYPE", ""), meta=request.META
        )
        kind, payload = message_of(body)
        if kind == COUNTED:
            site_named = site_of_website(payload.get("website"))
            request_events_record(request, source="umami", data=event_of(payload), site_named=site_named)
    except Rejected as problem:
        return reject(problem, origin)
    except DB_UNREACHABLE:
        return unavailable(origin)
    return cors(JsonResponse({"cache": CACHE_TOKEN}), origin)


def message_of(body: Any) -> tuple[str, dict]:
    """(type, payload) of an Umami body. Raises ``Rejected`` (400)."""
    if not isinstance(body, dict):
        raise Rejected(400, "body must be a JSON object", "body")
    kind = body.get("type")
    if kind != COUNTED and kind not in COUNTING_NOTHING:
        raise Rejected(400, f"type must be one of {', '.join((COUNTED, *COUNTING_NOTHING))}", "type")
    payload = body.get("payload")
    if not isinstance(payload, dict):
        raise Rejected(400, "payload must be an object", "payload")
    return kind, payload


def site_of_website(website: Any) -> str:
    """The domain of the site ``website`` (an Umami website id) counts for. Raises ``Rejected``:
    400 for no UUID, 403 for an id no site has (tallied as an unknown site, as ingest does)."""
    try:
        website_id = uuid.UUID(website) if isinstance(website, str) else None
    except ValueError:
        website_id = None
    if website_id is None:
        raise Rejected(400, "website must be the website id (a UUID) from the site's admin page", "website")
    domain = website_domain(website_id)
    if domain is None:
        dropped_add(reason=DroppedHits.Reason.UNKNOWN_SITE, count=1)
        raise Rejected(403, f"unknown website {website_id}: give a site this Umami website id in the admin", "website")
    return domain


def event_of(payload: dict) -> dict:
    """The Beacons event (as /beacon's JSON) an Umami event payload stands for. Raises ``Rejected`` (400)."""
    url = payload.get("url")
    address = page_address("/" if url is None else url, field="url", fragment=True)
    name = payload.get("name")
    if name is None or name == "":
        event = {"event_type": PAGE_VIEW, "identifier": address.page}
    else:
        event = {"event_type": event_type_named(name, field="name"), "identifier": address.path}
        data = payload.get("data")
        if data is not None and not isinstance(data, dict):
            raise Rejected(400, "data must be an object", "data")
        event["meta"] = data or {}
    referrer = payload.get("referrer")
    if isinstance(referrer, str):
        event["referrer"] = referrer
    return {**event, **address.campaign}
