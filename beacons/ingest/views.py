"""The ingest endpoints. Each answers fast, never 500s on bad input, and sets no cookie.

The steps every endpoint shares are public for the drop-in endpoints (``beacons.ingest.compat``):
``answered_before_the_body`` (origin, preflight, method), ``read_body`` (the size limit),
``request_events_record`` (bots, site, privacy, rate limit, recording), ``reject`` and ``unavailable``."""

import base64
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from beacons.experiments.recording import events_parse as experiment_events_parse
from beacons.experiments.recording import events_record as experiment_events_record
from beacons.ingest import identity, privacy
from beacons.ingest.extraction import CAMPAIGN_PARAMETERS, client_ip
from beacons.ingest.fastpath import ingest_endpoint
from beacons.ingest.parsing import Rejected, body_to_data, events_from_data
from beacons.ingest.recording import RequestContext, dropped_add, events_record
from beacons.limits import minute_count_add
from beacons.logs import outage_warning
from beacons.models import DroppedHits
from beacons.registry import DB_UNREACHABLE, UnknownEventType
from beacons.sites import SiteEntry, SiteRefused, origin_allowed_for, origin_allowed_somewhere, site_for_beacon
from beacons.text import storable_text

# Query parameters of the image beacon read as the same fields of a JSON event (each cut there).
GIF_EVENT_PARAMETERS = ("referrer", "r", *CAMPAIGN_PARAMETERS)
TRANSPARENT_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")

try:
    from crawlerdetect import CrawlerDetect

    _crawler_detect = CrawlerDetect()
except ImportError:  # pragma: no cover - the dependency is declared; this keeps ingest alive without it
    _crawler_detect = None


@lru_cache(maxsize=1024)  # visitors share few user agents, and the crawler regex costs more than a lookup
def is_bot(user_agent: str) -> bool:
    if not user_agent.strip():
        return True
    return bool(_crawler_detect and _crawler_detect.isCrawler(user_agent))


def _own_origin(request: HttpRequest) -> str:
    return f"{request.scheme}://{request.get_host()}"


def cors(response: HttpResponse, origin: str) -> HttpResponse:
    if origin:
        response["Access-Control-Allow-Origin"] = origin
        response["Vary"] = "Origin"
    return response


def reject(problem: Rejected, origin: str = "") -> JsonResponse:
    return cors(JsonResponse(problem.as_json(), status=problem.status), origin)


def read_body(request: HttpRequest) -> bytes:
    """The body, at most BEACONS_MAX_BODY_BYTES, whole or not at all.

    A body without Content-Length (``Transfer-Encoding: chunked``) is read up to the limit
    when the server has decoded it and marks the end (``wsgi.input_terminated``: granian,
    gunicorn); other servers get 411. A body shorter than its Content-Length (the client
    gave up) is refused, so it is never counted."""
    limit = settings.BEACONS_MAX_BODY_BYTES
    too_large = Rejected(413, f"body is larger than {limit} bytes", "body")
    length = request.META.get("CONTENT_LENGTH") or ""
    try:
        declared = int(length) if length.strip() else None
    except ValueError:
        raise Rejected(400, "Content-Length is not a number", "body") from None
    if declared is not None and declared < 0:
        raise Rejected(400, "Content-Length is not a number", "body")
    if declared is not None and declared > limit:
        raise too_large
    try:
        if declared is None:
            if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
                if not request.META.get("wsgi.input_terminated"):
                    raise Rejected(
                        411, "send the body with a Content-Length header (chunked bodies are not read here)", "body"
                    )
                raw = _read_bounded(request.META["wsgi.input"], limit + 1)
            else:
                raw = _read_bounded(request, limit + 1)
        else:
            raw = _read_bounded(request, declared)
    except OSError:  # the connection broke while reading (Django raises UnreadablePostError)
        raise Rejected(400, "body ended before its Content-Length: nothing counted", "body") from None
    if len(raw) > limit:
        raise too_large
    if declared is not None and len(raw) < declared:
        raise Rejected(400, "body ended before its Content-Length: nothing counted", "body")
    return raw


def _read_bounded(stream, size: int) -> bytes:
    """Up to ``size`` bytes: a stream may return fewer per read before its end."""
    chunks, remaining = [], size
    while remaining > 0:
        chunk = stream.read(remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def rate_limited(context: RequestContext, events: int) -> str:
    """What was exceeded ("" for nothing): events per visitor or per network per minute."""
    for limit, scope, key in (
        (settings.BEACONS_RATE_LIMIT, "visitor", lambda: context.visitor_hash),
        (settings.BEACONS_NETWORK_RATE_LIMIT, "network", lambda: context.network_hash),
    ):
        if not limit:
            continue
        total = minute_count_add(key=f"beacons:rate:{scope}:{key()}", amount=events, at=context.received_at)
        if total is not None and total > limit:
            return f"more than {limit} events a minute from one {scope}"
    return ""


def site_decide(request: HttpRequest, *, named: object, events: int) -> SiteEntry:
    """The site the request's events count for (``sites.site_for_beacon``), checked against its
    Origin. An unknown or inactive site is refused with 403 and its events tallied as dropped."""
    origin = request.META.get("HTTP_ORIGIN", "")
    own_origin = _own_origin(request)
    try:
        site = site_for_beacon(
            named=named, origin=origin, referer=request.META.get("HTTP_REFERER", ""), own_origin=own_origin
        )
    except SiteRefused as refused:
        if refused.status == 403:
            dropped_add(reason=DroppedHits.Reason.UNKNOWN_SITE, count=events)
        raise Rejected(refused.status, str(refused), "site") from None
    if origin and not origin_allowed_for(site, origin, own_origin=own_origin):
        raise Rejected(403, f"origin {origin[:200]} may not send beacons for {site.domain}", "origin")
    return site


def request_events_record(
    request: HttpRequest, *, event_type=None, identifier=None, source: str, data=None, site_named=None
) -> None:
    """Count a request's events: bots are dropped (tallied), then parsing, the site, the rate
    limit and recording. Raises ``Rejected`` with the HTTP status for anything refused."""
    user_agent = request.META.get("HTTP_USER_AGENT", "")
    if is_bot(user_agent):
        dropped_add(reason=DroppedHits.Reason.BOT, count=1)
        return None
    events = events_from_data(data if data is not None else {}, event_type=event_type, identifier=identifier)
    if site_named is None and isinstance(data, dict):
        site_named = data.get("site")
    site = site_decide(request, named=site_named, events=len(events))
    context = RequestContext(
        site_id=site.id,
        site_domain=site.domain,
        received_at=timezone.now(),
        # Header text is latin-1 decoded and could carry NULs, which PostgreSQL refuses: each becomes U+FFFD.
        user_agent=storable_text(user_agent),
        referer=storable_text(request.META.get("HTTP_REFERER", "")),
        source=source,
        ip=client_ip(request),
        tracked=not privacy.wants_no_tracking(request.META),
        signed_visitor=identity.signed_visitor(data.get("uid") if isinstance(data, dict) else None),
    )
    exceeded = rate_limited(context, len(events))
    if exceeded:
        raise Rejected(429, exceeded, "events")
    try:
        events_record(events=events, context=context)
    except UnknownEventType as unknown:
        raise Rejected(422, str(unknown), "event_type") from None


def answered_before_the_body(request: HttpRequest, origin: str) -> HttpResponse | None:
    """What a POST endpoint answers without reading the body: a foreign origin (403), the CORS
    preflight, another method (405), or ingest switched off (204); None to go on."""
    try:
        if origin and not origin_allowed_somewhere(origin, own_origin=_own_origin(request)):
            return JsonResponse({"error": f"origin {origin} may not send beacons here", "field": "origin"}, status=403)
    except DB_UNREACHABLE:  # the sites are read once per process and then cached: a first request in an outage
        return unavailable(origin)
    if request.method == "OPTIONS":
        response = cors(HttpResponse(status=204), origin)
        response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response["Access-Control-Allow-Headers"] = "Content-Type"
        response["Access-Control-Max-Age"] = "86400"
        return response
    if request.method != "POST":
        response = JsonResponse({"error": "use POST to send beacons", "field": "method"}, status=405)
        response["Allow"] = "POST, OPTIONS"
        return response
    if not settings.BEACONS_ENABLED:
        return cors(HttpResponse(status=204), origin)
    return None


@ingest_endpoint
@csrf_exempt
def beacon_collect(request: HttpRequest, event_type: str | None = None, identifier: str | None = None) -> HttpResponse:
    """POST /beacon (JSON, text/plain JSON, or a form) and POST /beacon/<type>/<identifier>."""
    origin = request.META.get("HTTP_ORIGIN", "")
    answered = answered_before_the_body(request, origin)
    if answered is not None:
        return answered
    try:
        raw = read_body(request)
        content_type = request.META.get("CONTENT_TYPE", "")
        if event_type is not None and not raw.strip():
            data, source = {}, "path"
        else:
            data = body_to_data(raw=raw, content_type=content_type, meta=request.META)
            source = "path" if event_type is not None else _source_name(content_type)
        request_events_record(request, event_type=event_type, identifier=identifier, source=source, data=data)
    except Rejected as problem:
        return reject(problem, origin)
    except DB_UNREACHABLE:  # the direct sink (or a type or the sites not yet cached) needs the database
        return unavailable(origin)
    return cors(HttpResponse(status=204), origin)


@ingest_endpoint
@csrf_exempt
def experiment_collect(request: HttpRequest) -> HttpResponse:
    """POST /beacon/experiments: a unit's exposures and conversions (``beacons.experiments.recording``),
    under ingest's rules: origin, body limit, bot filter, Do-Not-Track, site, rate limit."""
    origin = request.META.get("HTTP_ORIGIN", "")
    answered = answered_before_the_body(request, origin)
    if answered is not None:
        return answered
    try:
        data = body_to_data(
            raw=read_body(request), content_type=request.META.get("CONTENT_TYPE", ""), meta=request.META
        )
        exposures, conversions = experiment_events_parse(data)
        user_agent = request.META.get("HTTP_USER_AGENT", "")
        if is_bot(user_agent):
            dropped_add(reason=DroppedHits.Reason.BOT, count=1)
            return cors(HttpResponse(status=204), origin)
        if privacy.wants_no_tracking(request.META):
            return cors(HttpResponse(status=204), origin)  # beacon-flags.js sends nothing then; others count nothing
        items = len(exposures) + len(conversions)
        site = site_decide(request, named=data.get("site"), events=items)
        context = RequestContext(
            site_id=site.id,
            received_at=timezone.now(),
            user_agent=user_agent,
            referer="",
            source="experiments",
            ip=client_ip(request),
            tracked=True,
        )
        exceeded = rate_limited(context, items)
        if exceeded:
            raise Rejected(429, exceeded, "events")
        experiment_events_record(
            site_id=site.id,
            exposures=exposures,
            conversions=conversions,
            unit=data.get("unit"),
            signed_user=identity.signed_visitor(data.get("uid")),
            at=context.received_at,
        )
    except Rejected as problem:
        return reject(problem, origin)
    except DB_UNREACHABLE:
        return unavailable(origin)
    return cors(HttpResponse(status=204), origin)


def unavailable(origin: str) -> JsonResponse:
    outage_warning("beacon not counted: database unreachable", exc_info=True)
    response = reject(Rejected(503, "storage is unavailable, retry later"), origin)
    response["Retry-After"] = "5"
    return response


def _source_name(content_type: str) -> str:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return {
        "application/json": "json",
        "text/plain": "text",
        "application/x-www-form-urlencoded": "form",
        "multipart/form-data": "multipart",
    }.get(media_type, "json")


@ingest_endpoint
@csrf_exempt  # it never changes state on a POST, PUT or DELETE: those get 405, not a CSRF page
def beacon_gif(request: HttpRequest, event_type: str) -> HttpResponse:
    """GET /beacon/<type>.gif?i=<identifier>&site=<domain>: a 1×1 GIF for <noscript> and email opens.
    ``referrer`` (or ``r``), ``utm_source``, ``utm_medium``, ``utm_campaign`` and ``ref`` count as
    they do beside a JSON event (an email client sends no Referer: the link names its campaign)."""
    if request.method not in ("GET", "HEAD"):
        response = JsonResponse({"error": "use GET for the image beacon", "field": "method"}, status=405)
        response["Allow"] = "GET, HEAD"
        return response
    if settings.BEACONS_ENABLED and request.method == "GET":
        try:
            request_events_record(
                request,
                event_type=event_type,
                identifier=request.GET.get("i"),
                source="gif",
                data={name: request.GET[name] for name in GIF_EVENT_PARAMETERS if name in request.GET},
                site_named=request.GET.get("site"),
            )
        except Rejected as problem:
            return reject(problem)
        except DB_UNREACHABLE:  # still answer the image: a broken picture helps nobody
            outage_warning("image beacon not counted: database unreachable", exc_info=True)
    return transparent_gif()


def transparent_gif() -> HttpResponse:
    """The 1×1 image an image beacon answers, never kept by a cache (each load must reach the server)."""
    response = HttpResponse(TRANSPARENT_GIF, content_type="image/gif")
    response["Cache-Control"] = "no-store, max-age=0"
    return response
