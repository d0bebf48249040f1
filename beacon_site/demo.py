"""The /demo/ pages: beacon.js counting a small site (and, at /demo/shop, the second demo site), for trying the product."""

from django.http import Http404
from django.shortcuts import render

from beacons.management.commands.beacons_demo import SHOP_DOMAIN

DEMO_ROUTES = {"": "Home", "pricing": "Pricing", "spa": "SPA route", "shop": "Shop (the second demo site)"}


def demo(request, route: str = ""):
    """A normal visitor page instrumented with the beacon script (templates/demo.html)."""
    route = route.strip("/")
    if route not in DEMO_ROUTES:
        raise Http404("No such demo page")
    # The shop page names its site; the others count for the site of this host (the tag's default).
    site = SHOP_DOMAIN if route == "shop" else ""
    return render(request, "demo.html", {"route": route, "title": DEMO_ROUTES[route], "site": site})
