"""GET /beacon/flags/<site>.json: a site's flags and experiments for beacon-flags.js and GrowthBook SDKs."""

import hashlib
import json

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import patch_vary_headers
from django.views.decorators.csrf import csrf_exempt

from beacons.domains import InvalidDomain, domain_normalise
from beacons.experiments.attributes import request_attributes
from beacons.experiments.payload import server_cache_seconds, site_payload
from beacons.ingest.fastpath import ingest_endpoint
from beacons.registry import DB_UNREACHABLE
from beacons.sites import origin_allowed_for, sites_cached


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


@ingest_endpoint
@csrf_exempt  # a GET that changes nothing
def flags_json(request: HttpRequest, domain: str) -> HttpResponse:
    """The site's payload (``beacons.experiments.payload``) with, in ``beacons.attributes``, what the
    server knows of this visitor that targeting reads and a page cannot (country, device, browser,
    os). Visitor-specific, so browsers keep it privately for half of BEACONS_FLAGS_MAX_AGE; an
    ``If-None-Match`` of the same body is a 304."""
    if request.method not in ("GET", "HEAD"):
        response = JsonResponse({"error": "use GET for the flags", "field": "method"}, status=405)
        response["Allow"] = "GET, HEAD"
        return response
    try:
        site = sites_cached().by_domain.get(domain_normalise(domain))
    except InvalidDomain:
        site = None
    except DB_UNREACHABLE:
        return JsonResponse({"error": "storage is unavailable, retry later"}, status=503)
    if site is None or not site.is_active:
        return JsonResponse({"error": "no such site", "field": "site"}, status=404)
    try:
        payload = site_payload(site.id)
    except DB_UNREACHABLE:
        return JsonResponse({"error": "storage is unavailable, retry later"}, status=503)
    attributes = request_attributes(request, site_domain=site.domain)
    body = json.dumps(
        {**payload, "beacons": {**payload["beacons"], "attributes": attributes}}, separators=(",", ":")
    ).encode()
    etag = _etag(body)
    if etag in request.META.get("HTTP_IF_NONE_MATCH", ""):
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(body, content_type="application/json")
    response["ETag"] = etag
    response["Cache-Control"] = f"private, max-age={server_cache_seconds()}"
    patch_vary_headers(response, ["Origin", "User-Agent"])
    origin = request.META.get("HTTP_ORIGIN", "")
    if origin and origin_allowed_for(site, origin, own_origin=f"{request.scheme}://{request.get_host()}"):
        response["Access-Control-Allow-Origin"] = origin
    return response
