"""The Plausible drop-in endpoint: ``POST /api/event`` as Plausible's trackers send it, counted as Beacons events.

What a body may hold (the npm tracker's short keys, or the classic API's long names):

- ``n`` / ``name`` (required): ``pageview`` counts a ``page_view``; ``engagement`` (scroll depth
  ``sd``, engaged milliseconds ``e``) is accepted and counts nothing, as visit durations come from
  the gaps between page views; any other name counts a custom event under ``event_type_named``.
- ``u`` / ``url`` (required): the page. A page view counts its path and query (the ``page_view``
  type drops the query unless it keeps query strings, as for /beacon), with the fragment when
  ``h`` (hash routing) is set; a custom event counts the path. Its ``utm_*`` and ``ref``
  parameters are the campaign.
- ``d`` / ``domain`` (required): the site; a comma-separated list counts for the first active site named.
- ``r`` / ``referrer``: the source. ``p`` / ``props`` (an object or a JSON string): the event's meta.
- ``$`` / ``revenue`` (``{"amount": …, "currency": "EUR"}``): kept on the meta as
  ``revenue_amount`` and ``revenue_currency``.
- ``i`` / ``interactive``, ``v``, ``w``: accepted and ignored (custom events never un-bounce a visit here).

Accepted: 202 with the body ``ok``, as Plausible answers; the rest is /beacon's (CORS, 4xx JSON, 503).
"""

import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from beacons.domains import InvalidDomain, domain_normalise
from beacons.ingest.compat import PAGE_VIEW, compat_required, event_type_named, page_address
from beacons.ingest.fastpath import ingest_endpoint
from beacons.ingest.parsing import Rejected, body_to_data, json_parse
from beacons.ingest.views import answered_before_the_body, cors, read_body, reject, request_events_record, unavailable
from beacons.registry import DB_UNREACHABLE
from beacons.sites import sites_cached

PAGE_VIEW_NAME = "pageview"
ENGAGEMENT_NAME = "engagement"
_CURRENCY = re.compile(r"[A-Z]{3}")


@csrf_exempt
@compat_required("plausible")
@ingest_endpoint
def endpoint(request: HttpRequest, **kwargs) -> HttpResponse:
    """POST /api/event: one Plausible event (see the module docstring)."""
    origin = request.META.get("HTTP_ORIGIN", "")
    answered = answered_before_the_body(request, origin)
    if answered is not None:
        return answered
    try:
        body = body_to_data(
            raw=read_body(request), content_type=request.META.get("CONTENT_TYPE", ""), meta=request.META
        )
        event = event_of(body)
        if event is not None:
            request_events_record(request, source="plausible", data=event, site_named=site_named(body))
    except Rejected as problem:
        return reject(problem, origin)
    except DB_UNREACHABLE:
        return unavailable(origin)
    return cors(HttpResponse("ok", status=202, content_type="text/plain"), origin)


def _field(body: dict, short: str, long: str) -> Any:
    return body[short] if short in body else body.get(long)


def event_of(body: Any) -> dict | None:
    """The Beacons event (as /beacon's JSON) a Plausible body stands for; None for an engagement
    event, which counts nothing. Raises ``Rejected`` (400) naming the field at fault."""
    if not isinstance(body, dict):
        raise Rejected(400, "body must be a JSON object", "body")
    name = _field(body, "n", "name")
    if name == ENGAGEMENT_NAME:
        return None
    event_type = PAGE_VIEW if name == PAGE_VIEW_NAME else event_type_named(name, field="name")
    address = page_address(_field(body, "u", "url"), field="url", fragment=bool(body.get("h")))
    identifier = address.page if event_type == PAGE_VIEW else address.path
    event = {"event_type": event_type, "identifier": identifier, "meta": _meta_of(body), **address.campaign}
    referrer = _field(body, "r", "referrer")
    if isinstance(referrer, str):  # null when the page had none
        event["referrer"] = referrer
    return event


def _meta_of(body: dict) -> dict:
    """The event's properties and revenue, as its meta (checked further as any meta is)."""
    props = _field(body, "p", "props")
    if isinstance(props, str):  # the classic tracker sends them as a JSON string
        try:
            props = json_parse(props) if props.strip() else {}
        except (ValueError, RecursionError):
            raise Rejected(400, "props is not valid JSON", "props") from None
    if props is None:
        props = {}
    if not isinstance(props, dict):
        raise Rejected(400, "props must be an object", "props")
    return {**props, **_revenue_meta(_field(body, "$", "revenue"))}


def _revenue_meta(revenue: Any) -> dict:
    if revenue is None:
        return {}
    if isinstance(revenue, str):
        try:
            revenue = json_parse(revenue)
        except (ValueError, RecursionError):
            raise Rejected(400, "revenue is not valid JSON", "revenue") from None
    if not isinstance(revenue, dict):
        raise Rejected(400, 'revenue must be an object: {"amount": 10.5, "currency": "EUR"}', "revenue")
    amount, currency = revenue.get("amount"), revenue.get("currency")
    if not _is_amount(amount):
        raise Rejected(400, "revenue amount must be a number", "revenue")
    if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency.strip().upper()):
        raise Rejected(400, "revenue currency must be a three-letter code such as EUR", "revenue")
    return {"revenue_amount": amount, "revenue_currency": currency.strip().upper()}


def _is_amount(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return math.isfinite(value)
    if isinstance(value, str) and len(value) <= 40:  # Plausible sends large amounts as decimal text
        try:
            return Decimal(value.strip()).is_finite()
        except InvalidOperation:
            return False
    return False


def site_named(body: dict) -> str:
    """The site a body's domain names: of a comma-separated list, the first active site; else
    the first name, which ingest then refuses as unknown (403). Raises ``Rejected`` (400) for no domain."""
    domain = _field(body, "d", "domain")
    names = [name.strip() for name in domain.split(",") if name.strip()] if isinstance(domain, str) else []
    if not names:
        raise Rejected(400, "domain is required: the site's domain", "domain")
    if len(names) > 1:
        sites = sites_cached().by_domain
        for name in names:
            try:
                site = sites.get(domain_normalise(name))
            except InvalidDomain:
                continue
            if site is not None and site.is_active:
                return name
    return names[0]
