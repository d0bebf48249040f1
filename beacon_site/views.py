from django.shortcuts import render


def demo(request, route: str = ""):
    """A demo page instrumented with the beacon script (see templates/demo.html)."""
    return render(request, "demo.html", {"route": route})
