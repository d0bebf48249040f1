"""The email report pages: staff subscribe themselves to a site's reports; anyone with a mail's link unsubscribes."""

from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from beacons.models import ReportSubscription

from .permissions import VIEW_COUNTS, permission_required
from .reports import report_subscribe, report_unsubscribe


@require_http_methods(["GET", "POST"])
@permission_required(VIEW_COUNTS)
def report_subscriptions(request, site):
    """The signed-in staff member's weekly and monthly reports of ``site``: on or off. A POST of
    ``frequency`` and ``subscribed`` (on or off) changes one and comes back here."""
    frequencies = ReportSubscription.Frequency
    if request.method == "POST":
        frequency = request.POST.get("frequency", "")
        if frequency not in frequencies.values:
            return render(request, "dashboard/reports/subscriptions.html", _context(request, site), status=400)
        if request.POST.get("subscribed") == "on":
            report_subscribe(user=request.user, site=site, frequency=frequency)
        else:
            ReportSubscription.objects.filter(site=site, user=request.user, frequency=frequency).update(is_active=False)
        return redirect(f"{reverse('dashboard:reports')}?{request.site_choice.query}")
    return render(request, "dashboard/reports/subscriptions.html", _context(request, site))


def _context(request, site) -> dict:
    active = set(
        ReportSubscription.objects.filter(site=site, user=request.user, is_active=True).values_list(
            "frequency", flat=True
        )
    )
    choices = [
        {"value": value, "label": label, "subscribed": value in active}
        for value, label in ReportSubscription.Frequency.choices
    ]
    return {"site": site, "choices": choices, "address": request.user.email}


@csrf_exempt  # the link in a mail: mail clients' one-click unsubscribe (RFC 8058) POSTs without a CSRF token
@require_http_methods(["GET", "POST"])
def report_unsubscribe_link(request, token: str):
    """Stop the reports of the mail's subscription: no sign-in, and opening it again changes nothing."""
    subscription = report_unsubscribe(token=token)
    if subscription is None:
        raise Http404("This unsubscribe link is not valid (or the subscription was deleted).")
    response = render(request, "dashboard/reports/unsubscribed.html", {"subscription": subscription})
    response["Cache-Control"] = "private, no-store"
    response["X-Robots-Tag"] = "noindex"
    return response
