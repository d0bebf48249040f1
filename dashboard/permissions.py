"""Who may read and change what on the dashboard: the admin's model permissions, checked in one place.

Reading counts (every dashboard page, panel, partial and CSV) needs the view permission on
counts (``beacons.view_beaconaggregate``, the permission that lets the admin list and export
them); error details need the view permission on error groups; resolving or ignoring an
error needs the change permission on error groups. Superusers hold every permission.
"""

from functools import wraps

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponse
from django.shortcuts import resolve_url
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.utils.http import urlencode

VIEW_COUNTS = "beacons.view_beaconaggregate"
VIEW_ERRORS = "beacons.view_errorgroup"
CHANGE_ERRORS = "beacons.change_errorgroup"
# Panels that show more than counts need more than VIEW_COUNTS (the index leaves them out).
PANEL_PERMISSIONS = {"errors": (VIEW_ERRORS,)}


def staff_signed_in(user) -> bool:
    return user.is_authenticated and user.is_active and user.is_staff


def user_may(user, *permissions: str) -> bool:
    """Active staff holding every one of ``permissions``."""
    return staff_signed_in(user) and user.has_perms(permissions)


def permission_required(*permissions: str):
    """Let a view run only for active staff holding every one of ``permissions``.

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
        return view(request, *args, **kwargs)
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
