"""The ingest endpoints. Each answers fast, never 500s on bad input, and sets no cookie."""

import base64
from functools import lru_cache

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.request import split_domain_port, validate_host
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from . import privacy
from .models import DroppedHits
from .parsing import Rejected, body_to_data, events_from_data
from .services import DB_UNREACHABLE, RequestContext, dropped_add, events_record, outage_warning


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


def origin_allowed(request: HttpRequest, origin: str) -> bool:
    allowed = settings.BEACONS_ALLOWED_ORIGINS
    if "*" in allowed or origin in allowed:
        return True
    host = origin.split("://", 1)[-1]
    if host == request.get_host():
        return True
    domain, _port = split_domain_port(host)
    return bool(domain) and validate_host(domain, settings.ALLOWED_HOSTS)


def _cors(response: HttpResponse, origin: str) -> HttpResponse:
    if origin:
        response["Access-Control-Allow-Origin"] = origin
        response["Vary"] = "Origin"
    return response


def _reject(problem: Rejected, origin: str = "") -> JsonResponse:
    return _cors(JsonResponse(problem.as_json(), status=problem.status), origin)


def _read_body(request: HttpRequest) -> bytes:
    limit = settings.BEACONS_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise Rejected(400, "Content-Length is not a number", "body") from None
    if declared > limit:
        raise Rejected(413, f"body is larger than {limit} bytes", "body")
    raw = request.read(limit + 1)
    if len(raw) > limit:
        raise Rejected(413, f"body is larger than {limit} bytes", "body")
    return raw


def _rate_limited(context: RequestContext, events: int) -> bool:
    limit = settings.BEACONS_RATE_LIMIT
    if not limit:
        return False
    cache_key = f"beacons:rate:{context.visitor_hash}:{int(context.received_at.timestamp() // 60)}"
    try:
        cache.add(cache_key, 0, timeout=61)
        try:
            return cache.incr(cache_key, events) > limit
        except ValueError:  # expired between add and incr
            cache.set(cache_key, events, timeout=61)
            return events > limit
    except Exception:  # a shared cache (CACHE_URL) that is down: let the hit through
        outage_warning("rate limit skipped: cache unreachable", exc_info=True)
        return False


def _accept(request: HttpRequest, *, event_type=None, identifier=None, source: str, data=None) -> HttpResponse | None:
    """Shared path: bots, parsing, rate limit, recording. Returns an error response or None."""
    user_agent = request.META.get("HTTP_USER_AGENT", "")
    if is_bot(user_agent):
        dropped_add(reason=DroppedHits.Reason.BOT, count=1)
        return None
    events = events_from_data(data if data is not None else {}, event_type=event_type, identifier=identifier)
    context = RequestContext(
        received_at=timezone.now(),
        # Header text is latin-1 decoded and could carry NULs, which PostgreSQL refuses.
        user_agent=user_agent.replace("\x00", ""),
        referer=request.META.get("HTTP_REFERER", "").replace("\x00", ""),
        source=source,
        ip=privacy.client_ip(request.META),
        tracked=not privacy.wants_no_tracking(request.META),
    )
    if _rate_limited(context, len(events)):
        raise Rejected(429, f"more than {settings.BEACONS_RATE_LIMIT} events a minute from one visitor", "events")
    events_record(events=events, context=context)
    return None


@csrf_exempt
def beacon_collect(request: HttpRequest, event_type: str | None = None, identifier: str | None = None) -> HttpResponse:
    """POST /beacon (JSON, text/plain JSON, or a form) and POST /beacon/<type>/<identifier>."""
    origin = request.META.get("HTTP_ORIGIN", "")
    if origin and not origin_allowed(request, origin):
        return JsonResponse({"error": f"origin {origin} may not send beacons here", "field": "origin"}, status=403)
    if request.method == "OPTIONS":
        response = _cors(HttpResponse(status=204), origin)
        response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response["Access-Control-Allow-Headers"] = "Content-Type"
        response["Access-Control-Max-Age"] = "86400"
        return response
    if request.method != "POST":
        response = JsonResponse({"error": "use POST to send beacons", "field": "method"}, status=405)
        response["Allow"] = "POST, OPTIONS"
        return response
    if not settings.BEACONS_ENABLED:
        return _cors(HttpResponse(status=204), origin)
    try:
        raw = _read_body(request)
        content_type = request.META.get("CONTENT_TYPE", "")
        if event_type is not None and not raw.strip():
            data, source = {}, "path"
        else:
            data = body_to_data(raw=raw, content_type=content_type, meta=request.META)
            source = "path" if event_type is not None else _source_name(content_type)
        _accept(request, event_type=event_type, identifier=identifier, source=source, data=data)
    except Rejected as problem:
        return _reject(problem, origin)
    except DB_UNREACHABLE:  # the direct sink (or a type not yet cached) needs the database
        outage_warning("beacon not counted: database unreachable", exc_info=True)
        response = _reject(Rejected(503, "storage is unavailable, retry later"), origin)
        response["Retry-After"] = "5"
        return response
    return _cors(HttpResponse(status=204), origin)


def _source_name(content_type: str) -> str:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return {
        "application/json": "json",
        "text/plain": "text",
        "application/x-www-form-urlencoded": "form",
        "multipart/form-data": "multipart",
    }.get(media_type, "json")


def beacon_gif(request: HttpRequest, event_type: str) -> HttpResponse:
    """GET /beacon/<type>.gif?i=<identifier>: a 1×1 GIF for <noscript> and email opens."""
    if request.method not in ("GET", "HEAD"):
        response = JsonResponse({"error": "use GET for the image beacon", "field": "method"}, status=405)
        response["Allow"] = "GET, HEAD"
        return response
    if settings.BEACONS_ENABLED and request.method == "GET":
        try:
            _accept(request, event_type=event_type, identifier=request.GET.get("i"), source="gif")
        except Rejected as problem:
            return _reject(problem)
        except DB_UNREACHABLE:  # still answer the image: a broken picture helps nobody
            outage_warning("image beacon not counted: database unreachable", exc_info=True)
    response = HttpResponse(TRANSPARENT_GIF, content_type="image/gif")
    response["Cache-Control"] = "no-store, max-age=0"
    return response
