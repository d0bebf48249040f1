"""What flag targeting and experiment assignment read of a request: the unit, the signed-in user,
the site and path, and what the server tells of a visitor (country, device, browser, os)."""

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from beacons.experiments.recording import UNIT_PATTERN
from beacons.ingest import identity, privacy
from beacons.ingest.extraction import client_ip, country_of, device_of

UNIT_COOKIE = "beacons_unit"  # set by beacon-flags.js: the random first-party id of an anonymous unit


def request_attributes(request: HttpRequest, *, site_domain: str) -> dict[str, Any]:
    """The visitor's facts only the server knows, as the flags JSON hands them to the page."""
    browser, os, device = device_of(request.META.get("HTTP_USER_AGENT", ""))
    return {
        "site": site_domain,
        "country": country_of(client_ip(request)),
        "device": device,
        "browser": browser,
        "os": os,
    }


def unit_attributes(request: HttpRequest) -> dict[str, Any]:
    """The request's units: ``id`` (the ``beacons_unit`` cookie) and ``user`` (a signed-in user's
    keyed hash, with BEACONS_IDENTIFY_USERS on), and ``signedIn`` (signed in and identified). A visitor who asked not to be
    tracked has neither unit: rules that split by unit are skipped, as in the browser."""
    user = getattr(request, "user", None)
    # As the browser knows it: from the page's data-uid, which only identified users carry.
    signed_in = bool(settings.BEACONS_IDENTIFY_USERS and user is not None and user.is_authenticated)
    if privacy.wants_no_tracking(request.META):
        return {"signedIn": signed_in}
    attributes: dict[str, Any] = {"signedIn": signed_in}
    unit = request.COOKIES.get(UNIT_COOKIE, "")
    if UNIT_PATTERN.fullmatch(unit):
        attributes["id"] = unit
    if signed_in:
        attributes["user"] = identity.user_hash(user.pk)
    return attributes
