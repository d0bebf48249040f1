"""Who may read and change what on the dashboard: the admin's model permissions and the sites, checked in one place.

Every page, partial, CSV and action is of one site, chosen by ``?site=<domain>`` (default: the
first site the user may see, by name). Staff see the sites they are members of, superusers
every site; a site the user may not see and an unknown site both answer 404, so a URL does not
tell whether a site exists. Reading counts (every dashboard page, panel, partial and CSV) needs the view permission on
counts (``beacons.view_beaconaggregate``, the permission that lets the admin list and export
them); error details need the view permission on error groups; resolving or ignoring an
error needs the change permission on error groups; experiments' results need the view permission on
experiments. Superusers hold every permission.
"""

from dataclasses import dataclass
from functools import wraps

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpResponse
from django.shortcuts import resolve_url
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.utils.http import urlencode

from beacons.counting.buckets import site_zone_active
from beacons.models import Site
from beacons.queries.sites import sites_visible

SITE_PARAMETER = "site"
VIEW_COUNTS = "beacons.view_beaconaggregate"
VIEW_ERRORS = "beacons.view_errorgroup"
CHANGE_ERRORS = "beacons.change_errorgroup"
VIEW_EXPERIMENTS = "beacons.view_experiment"
ADD_EXPERIMENTS = "beacons.add_experiment"
# Panels that show more than counts need more than VIEW_COUNTS (the index leaves them out).
PANEL_PERMISSIONS = {"errors": (VIEW_ERRORS,)}


def staff_signed_in(user) -> bool:
    return user.is_authenticated and user.is_active and user.is_staff


def user_may(user, *permissions: str) -> bool:
    """Active staff holding every one of ``permissions``."""
    return staff_signed_in(user) and user.has_perms(permissions)


@dataclass(frozen=True)
class SiteChoice:
    """The site a dashboard request is about, and the ones the switcher offers."""

    current: Site
    visible: list[Site]

    @property
    def query(self) -> str:
        """``site=<domain>``: what every dashboard link carries."""
        return urlencode({SITE_PARAMETER: self.current.domain})


def site_chosen(request) -> SiteChoice:
    """The site of ``?site=`` among those the user may see, else the first of them (one query).
    Raises Http404 for a site the user may not see, an unknown one, or a user who may see none."""
    visible = sites_visible(user=request.user)
    asked = request.GET.get(SITE_PARAMETER, "").strip().lower()
    if asked:
        current = next((site for site in visible if site.domain == asked), None)
    else:
        current = visible[0] if visible else None
    if current is None:
        raise Http404("No such site, or not one of yours.")
    return SiteChoice(current, visible)


def permission_required(*permissions: str):
    """Let a view run only for active staff holding every one of ``permissions``, for a site they
    may see: the view gets it as ``site`` (and ``request.site_choice`` holds the switcher's sites).

    Not signed in as active staff: a GET is sent to sign in (an htmx request gets 403 and
    an HX-Redirect instead, so a login form never lands inside a chart box); any other
    method gets 403 (there is no page to send it back to). Signed-in staff without the
    permission get 403. Every answer is ``Cache-Control: private, no-store``: dashboard pages
    and CSV files carry counts and error text no shared cache or disk may keep.
    """

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            response = _permitted_answer(view, permissions, request, *args, **kwargs)
            patch_cache_control(response, private=True, no_store=True)
            return response

        return wrapper

    return decorator


def _permitted_answer(view, permissions, request, *args, **kwargs):
    user = request.user
    if user_may(user, *permissions):
        request.site_choice = site_chosen(request)
        site = request.site_choice.current
        with site_zone_active(site):  # its days, periods and axes are in the site's time zone
            return view(request, *args, site=site, **kwargs)
    if staff_signed_in(user):
        return HttpResponse("Your account may not see or change this.", status=403, content_type="text/plain")
    if request.method not in ("GET", "HEAD"):
        return HttpResponse("Sign in as staff to do this.", status=403, content_type="text/plain")
    if request.htmx:
        page = request.htmx.current_url_abs_path or reverse("dashboard:index")
        response = HttpResponse("Sign in as staff to see the dashboard.", status=403, content_type="text/plain")
        response["HX-Redirect"] = f"{resolve_url(settings.LOGIN_URL)}?{urlencode({'next': page})}"
        return response
    return redirect_to_login(request.get_full_path())
