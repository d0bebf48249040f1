"""The /demo/ pages: beacon.js counting a small site, for trying the product."""

from django.http import Http404
from django.shortcuts import render

DEMO_ROUTES = {"": "Home", "pricing": "Pricing", "spa": "SPA route"}


def demo(request, route: str = ""):
    """A normal visitor page instrumented with the beacon script (templates/demo.html)."""
    route = route.strip("/")
    if route not in DEMO_ROUTES:
        raise Http404("No such demo page")
    return render(request, "demo.html", {"route": route, "title": DEMO_ROUTES[route]})
