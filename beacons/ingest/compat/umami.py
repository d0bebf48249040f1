"""The umami drop-in endpoint (being written)."""

from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt

from beacons.ingest.compat import compat_required


@csrf_exempt
@compat_required("umami")
def endpoint(request, **kwargs) -> HttpResponse:
    return HttpResponse(status=501)
