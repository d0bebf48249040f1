"""Shared links: the read-only dashboard, its panels, CSVs and embeds under ``/share/<token>/``, and the
staff page that makes and revokes links.

Under ``/share/`` nobody signs in: the token is the permission. An unknown, revoked or expired token
gets the same 404; a link with a password asks for it (a right one is kept in the session, for that
link only). Every answer says ``noindex``, sends no referrer (the token is in the URL) and may not be
cached. The panels are the staff dashboard's, less the error panel: error messages and stacks may
hold private data. Embeds alone may be framed, and only by the site's own origins.
"""

from functools import wraps

from django import forms
from django.conf import settings
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from beacon_site.middleware import content_security_policy
from beacons.counting.buckets import bucket_zone, site_zone_active
from beacons.ingest.extraction import client_ip
from beacons.models import SharedLink
from beacons.sharing import (
    password_attempt_allowed,
    shared_link_create,
    shared_link_found,
    shared_link_password_correct,
    shared_link_revoke,
    shared_link_unlock_mark,
    shared_link_used,
)
from beacons.sites import site_origins

from .permissions import VIEW_COUNTS, permission_required
from .views import PANELS, DashboardLinks, dashboard_response, panel_response, type_search_response

SHARED_PANELS = {name: panel for name, panel in PANELS.items() if name != "errors"}
UNLOCKED_SESSION_KEY = "beacons_shared_links_unlocked"  # {link pk: unlock mark}
PASSWORD_MAX_LENGTH = 128
ADD_SHARED_LINKS = "beacons.add_sharedlink"
CHANGE_SHARED_LINKS = "beacons.change_sharedlink"
SHARE_PAGE_LINKS = 100  # the newest links the staff page lists; the admin lists them all


def shared_links_for(token: str) -> DashboardLinks:
    index = reverse("share:index", kwargs={"token": token})
    return DashboardLinks(
        index=index,
        home=index,
        panel=f"{index}panel/",
        type_search=reverse("share:type_search", kwargs={"token": token}),
        shared=True,
        base_template="dashboard/shared_base.html",
    )


def shared_link_required(view):
    """Run ``view`` as ``view(request, link=..., token=..., **kwargs)`` for an open link, in its site's time
    zone; answer the 404 or the password form otherwise. Every answer gets the shared pages' headers."""

    @wraps(view)
    def wrapper(request, token: str, **kwargs):
        response = _shared_answer(view, request, token, **kwargs)
        response["X-Robots-Tag"] = "noindex, nofollow"
        response["Referrer-Policy"] = "no-referrer"
        patch_cache_control(response, private=True, no_store=True)
        return response

    # The password form posts with no Referer and "Origin: null" (the pages' no-referrer policy), which
    # Django's CSRF check refuses; a forged post could only unlock a link with a password the forger knows.
    return csrf_exempt(wrapper)


def _shared_answer(view, request, token: str, **kwargs) -> HttpResponse:
    now = timezone.now()
    link = shared_link_found(token=token, now=now)
    if link is None:
        return render(request, "dashboard/share_missing.html", status=404)
    if link.password and not _unlocked(request, link):
        return _password_answer(request, link, now=now)
    if request.method not in ("GET", "HEAD"):
        return HttpResponse("A shared dashboard is read only.", status=405, content_type="text/plain")
    shared_link_used(link=link, at=now)
    with site_zone_active(link.site):
        try:
            return view(request, link=link, token=token, **kwargs)
        except Http404:  # the same page as an unknown link, with the shared pages' headers
            return render(request, "dashboard/share_missing.html", status=404)


def _unlocked(request, link: SharedLink) -> bool:
    return request.session.get(UNLOCKED_SESSION_KEY, {}).get(str(link.pk)) == shared_link_unlock_mark(link)


def _password_answer(request, link: SharedLink, *, now) -> HttpResponse:
    """The password form; on a post, the link opened (the same URL asked again) or the form once more."""
    context = {"password_max_length": PASSWORD_MAX_LENGTH}
    if request.method != "POST":
        return render(request, "dashboard/share_password.html", context, status=403)
    if not password_attempt_allowed(link=link, client_address=client_ip(request), at=now):
        response = render(request, "dashboard/share_password.html", {**context, "too_many": True}, status=429)
        response["Retry-After"] = "60"
        return response
    password = request.POST.get("password", "")[:PASSWORD_MAX_LENGTH]
    if not shared_link_password_correct(link=link, password=password):
        return render(request, "dashboard/share_password.html", {**context, "wrong": True}, status=403)
    unlocked = request.session.get(UNLOCKED_SESSION_KEY, {})
    request.session[UNLOCKED_SESSION_KEY] = {**unlocked, str(link.pk): shared_link_unlock_mark(link)}
    return redirect(request.get_full_path())


@shared_link_required
def shared_index(request, *, link: SharedLink, token: str):
    return dashboard_response(request, site=link.site, panels=SHARED_PANELS, links=shared_links_for(token))


@shared_link_required
def shared_panel(request, *, link: SharedLink, token: str, name: str):
    return panel_response(request, name=name, site=link.site, panels=SHARED_PANELS, links=shared_links_for(token))


@shared_link_required
def shared_type_search(request, *, link: SharedLink, token: str):
    return type_search_response(request, site=link.site, links=shared_links_for(token))


@xframe_options_exempt
@shared_link_required
def shared_embed(request, *, link: SharedLink, token: str, name: str):
    """Panel ``name`` alone, for an iframe on one of the site's own origins (and no other)."""
    if name not in SHARED_PANELS:
        raise Http404("no such panel")
    embed = reverse("share:embed", kwargs={"token": token, "name": name})
    links = DashboardLinks(
        index=embed,  # a filter link inside the frame opens this panel again, filtered
        home=embed,
        panel=shared_links_for(token).panel,
        type_search="",
        shared=True,
    )
    response = panel_response(
        request, name=name, site=link.site, panels=SHARED_PANELS, links=links, template="dashboard/embed.html"
    )
    response["Content-Security-Policy"] = embed_content_security_policy(link)
    return response


def embed_content_security_policy(link: SharedLink) -> str:
    """The site's policy, with frame-ancestors the site's own origins (none known: no page may frame it)."""
    ancestors = site_origins(link.site_id) or ["'none'"]
    return content_security_policy({**settings.CONTENT_SECURITY_POLICY, "frame-ancestors": ancestors})


# --- The staff page: make a link for the current site, list and revoke its links ----------------


class SharedLinkForm(forms.Form):
    label = forms.CharField(max_length=120, required=False, help_text="Who or what the link is for.")
    password = forms.CharField(
        max_length=PASSWORD_MAX_LENGTH,
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Optional: people opening the link must type it.",
    )
    expires_at = forms.DateTimeField(
        label="Expires",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="Optional: after this moment the link no longer opens.",
    )

    def clean_expires_at(self):
        expires_at = self.cleaned_data.get("expires_at")
        if expires_at is not None and expires_at <= timezone.now():
            raise forms.ValidationError("Choose a moment in the future.")
        return expires_at


@permission_required(VIEW_COUNTS, ADD_SHARED_LINKS)
def share(request, site):
    """The current site's links (newest first) and a form for a new one; its URL is shown once, here."""
    zone = bucket_zone()
    with timezone.override(zone):  # the expiry typed, and every moment listed, in the site's time zone
        form = SharedLinkForm(request.POST or None)
        created_url = ""
        if request.method == "POST" and form.is_valid():
            _, token = shared_link_create(site=site, created_by=request.user, **form.cleaned_data)
            created_url = request.build_absolute_uri(reverse("share:index", kwargs={"token": token}))
            form = SharedLinkForm()
        context = {
            "form": form,
            "site": site,
            "zone": zone.key,
            "created_url": created_url,
            "shared_links": SharedLink.objects.filter(site=site).select_related("created_by")[:SHARE_PAGE_LINKS],
            "may_revoke": request.user.has_perm(CHANGE_SHARED_LINKS),
            "embed_panels": list(SHARED_PANELS),
            "now": timezone.now(),
        }
        return render(request, "dashboard/share.html", context)


@require_POST
@permission_required(VIEW_COUNTS, CHANGE_SHARED_LINKS)
def share_revoke(request, pk: int, site):
    link = get_object_or_404(SharedLink, pk=pk, site=site)
    shared_link_revoke(link=link)
    return redirect(f"{reverse('dashboard:share')}?{request.site_choice.query}")
