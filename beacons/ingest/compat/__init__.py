"""Drop-in endpoints for other trackers (Plausible, Umami, GoatCounter) and the Sentry SDKs: each
turns its client's request into Beacons events and counts them under ingest's rules.

Each is on when named in ``BEACONS_COMPAT`` (default: all); off, its URLs answer 404. The rules
they share live here: an event name another tracker sends becomes an event type
(``event_type_named``, also what ``beacons.transfer.peers`` imports their exports by), a page
address becomes a page and its campaign (``page_address``)."""

import functools
import re
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from django.conf import settings
from django.http import Http404

from beacons.ingest.extraction import campaign_of
from beacons.ingest.parsing import Rejected
from beacons.models import IDENTIFIER_MAX_LENGTH
from beacons.registry import EVENT_TYPE_MAX_LENGTH

PAGE_VIEW = "page_view"  # the built-in page view type, which every drop-in counts page views as
_SLUG_UNSAFE = re.compile(r"[^a-z0-9_.:-]+")
_SLUG_COLON = re.compile(r"_*:_*")


def compat_enabled(name: str) -> bool:
    return name in settings.BEACONS_COMPAT


def compat_required(name: str):
    """Answer 404 unless the drop-in endpoint ``name`` is on."""

    def decorate(view):
        @functools.wraps(view)  # its name, docstring and attributes (the fast path's mark) too
        def endpoint(request, *args, **kwargs):
            if not compat_enabled(name):
                raise Http404(f"the {name} endpoint is off (BEACONS_COMPAT)")
            return view(request, *args, **kwargs)

        return endpoint

    return decorate


def event_type_named(name: Any, *, field: str) -> str:
    """The event type a tracker's event ``name`` counts under: lower case, each run of other
    characters one "_" ("Outbound Link: Click" → "outbound_link:click"), cut to 64 characters: the
    rule ``beacons.transfer.peers`` imports these trackers' exports by, so both land on one type.
    Raises ``Rejected`` (400, about ``field``) for a name that is not text or keeps no letter or digit."""
    if not isinstance(name, str) or not name.strip():
        raise Rejected(400, f"{field} is required: the event's name", field)
    slug = _SLUG_COLON.sub(":", _SLUG_UNSAFE.sub("_", name.strip().lower())).strip("_.:-")[:EVENT_TYPE_MAX_LENGTH]
    if not slug:
        raise Rejected(400, f"{field} must contain a letter or digit", field)
    return slug


class PageAddress(NamedTuple):
    path: str  # where a custom event happened: a query would split its counts
    page: str  # what a page view counts: path and query, and the fragment for hash-routed apps
    campaign: dict[str, str]  # the query's utm_* and ref parameters


def page_address(url: Any, *, field: str, fragment: bool = False) -> PageAddress:
    """What a page address, a full URL or a path, counts as, each part cut to an identifier's
    length; the fragment is part of the page when ``fragment``. Raises ``Rejected`` (400) for
    anything but text."""
    if not isinstance(url, str):
        raise Rejected(400, f"{field} must be the page's address", field)
    text = url.strip()
    try:
        parts = urlsplit(text)
    except ValueError:  # a malformed IPv6 host: "http://[::1/page"
        raise Rejected(400, f"{field} is not a URL", field) from None
    path = parts.path or "/"
    page = (
        path
        + (f"?{parts.query}" if parts.query else "")
        + (f"#{parts.fragment}" if fragment and parts.fragment else "")
    )
    return PageAddress(path[:IDENTIFIER_MAX_LENGTH], page[:IDENTIFIER_MAX_LENGTH], campaign_of(text))
