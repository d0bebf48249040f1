"""Drop-in endpoints for other trackers (Plausible, Umami, GoatCounter) and the Sentry SDKs: each
turns its client's request into Beacons events and counts them under ingest's rules.

Each is on when named in ``BEACONS_COMPAT`` (default: all); off, its URLs answer 404."""

from django.conf import settings
from django.http import Http404

TRACKERS = ("plausible", "umami", "goatcounter", "sentry")


def compat_enabled(name: str) -> bool:
    return name in settings.BEACONS_COMPAT


def compat_required(name: str):
    """Answer 404 unless the drop-in endpoint ``name`` is on."""

    def decorate(view):
        def endpoint(request, *args, **kwargs):
            if not compat_enabled(name):
                raise Http404(f"the {name} endpoint is off (BEACONS_COMPAT)")
            return view(request, *args, **kwargs)

        endpoint.__name__, endpoint.__doc__ = view.__name__, view.__doc__
        for attribute, value in vars(view).items():  # e.g. the fast path's mark
            setattr(endpoint, attribute, value)
        return endpoint

    return decorate
