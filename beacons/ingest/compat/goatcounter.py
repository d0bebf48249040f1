"""The GoatCounter drop-in endpoint: ``/count?p=…`` as GoatCounter's count.js sends it, counted as a Beacons event.

count.js sends the query with ``navigator.sendBeacon`` (a POST without a body), else loads it
as an image (GET); both are answered with a 1×1 GIF. Parameters (GoatCounter's, stable):

- ``p`` (required): the page, path and query (the ``page_view`` type drops the query unless it
  keeps query strings); with ``e`` true (``true``, ``1``, ``on``), the name of a custom event
  (``compat.event_type_named``), counted under the type's identifier rule (the beacon's own
  types: no identifier, the total only).
- ``r``: the referrer, for the source. ``q``: the page's query (``location.search``), whose
  ``utm_*`` and ``ref`` are the campaign (else ``p``'s).
- ``b``: count.js's bot flag; non-zero is dropped as a bot.
- ``t`` (title), ``s`` (screen) and ``rnd`` (a cache buster): ignored.

GoatCounter names no site in the request: it counts for the site of the Origin or Referer, as a
/beacon without a ``site`` does. Bad input gets ingest's 4xx JSON and counts nothing; with the
database unreachable the image is still answered (nothing counted), as /beacon's GIF is.
"""

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.views.decorators.csrf import csrf_exempt

from beacons.ingest.compat import PAGE_VIEW, compat_required, event_type_named, page_address
from beacons.ingest.extraction import campaign_of
from beacons.ingest.fastpath import ingest_endpoint
from beacons.ingest.parsing import Rejected
from beacons.ingest.recording import dropped_add
from beacons.ingest.views import reject, request_events_record, transparent_gif
from beacons.logs import outage_warning
from beacons.models import DroppedHits
from beacons.registry import DB_UNREACHABLE

METHODS = ("GET", "HEAD", "POST")
_TRUE = ("true", "1", "on")
_FALSE = ("false", "0", "off", "")


@csrf_exempt  # a POST here is count.js's sendBeacon: it counts, as the GET image does, and sets nothing
@compat_required("goatcounter")
@ingest_endpoint
def endpoint(request: HttpRequest, **kwargs) -> HttpResponse:
    """GET or POST /count?p=<path>&…: one GoatCounter hit (see the module docstring)."""
    if request.method not in METHODS:
        response = JsonResponse({"error": "use GET or POST to count", "field": "method"}, status=405)
        response["Allow"] = ", ".join(METHODS)
        return response
    if settings.BEACONS_ENABLED and request.method != "HEAD":
        try:
            if is_flagged_bot(request.GET):
                dropped_add(reason=DroppedHits.Reason.BOT, count=1)
            else:
                request_events_record(request, source="goatcounter", data=event_of(request.GET))
        except Rejected as problem:
            return reject(problem)
        except DB_UNREACHABLE:  # still answer the image: a broken picture helps nobody
            outage_warning("GoatCounter hit not counted: database unreachable", exc_info=True)
    return transparent_gif()


def is_flagged_bot(query: QueryDict) -> bool:
    """Whether count.js flagged the hit as a bot's (``b``: a number, 0 for none). Raises ``Rejected`` (400)."""
    flag = query.get("b", "").strip()
    try:
        return bool(int(flag or 0))
    except ValueError:
        raise Rejected(400, "b must be a number (0: not a bot)", "b") from None


def event_of(query: QueryDict) -> dict:
    """The Beacons event (as /beacon's JSON) a GoatCounter hit stands for. Raises ``Rejected`` (400)."""
    path = query.get("p", "")
    if not path.strip():
        raise Rejected(400, "p is required: the page's path, or the event's name", "p")
    flag = query.get("e", "").strip().lower()
    if flag not in _TRUE and flag not in _FALSE:
        raise Rejected(400, "e must be true or false", "e")
    address = page_address(path, field="p")
    if flag in _TRUE:
        event = {"event_type": event_type_named(path, field="p")}
    else:
        event = {"event_type": PAGE_VIEW, "identifier": address.page}
    page_query = query.get("q", "")
    campaign = campaign_of(f"?{page_query.lstrip('?')}") if page_query else address.campaign
    if "r" in query:
        event["referrer"] = query["r"]
    return {**event, **campaign}
