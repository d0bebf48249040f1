"""The ingest fast path: the site's WSGI handler hands a beacon straight to its view.

Every request still goes through Django's WSGI handler (the request object, the
request_started/request_finished signals that close obsolete database connections and the
caches' connections, the response's headers and cookies). What a beacon skips is the
middleware stack (sessions, CSRF, authentication, messages, htmx, static files: none of which an
ingest view reads) and the walk through the site's URL patterns: a path under the ingest
prefix is resolved against the ingest patterns alone, and a view marked ``@ingest_endpoint``
is called directly. Any other path, and any path the ingest patterns do not match, takes
Django's full path unchanged.

A beacon's response still gets what the security middlewares add (``SecurityMiddleware``'s
headers and HTTPS redirect, the Content-Security-Policy), from the same middleware classes;
an exception in a view is answered as Django answers it (``response_for_exception``: a
disallowed host is a 400, a crash a logged 500), and a 4xx or 5xx is logged as Django logs it.

The views are the same functions whichever way a request comes: one ingest implementation.
"""

from django.core.handlers.exception import response_for_exception
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, HttpResponse
from django.middleware.security import SecurityMiddleware
from django.urls import Resolver404, get_resolver
from django.utils.log import log_response

from beacon_site.middleware import ContentSecurityPolicyMiddleware

INGEST_URLCONF = "beacons.urls"
FAST_PATH_ATTRIBUTE = "ingest_fast_path"


def ingest_endpoint(view):
    """Marks ``view`` as an ingest endpoint: the fast path may call it without middleware."""
    setattr(view, FAST_PATH_ATTRIBUTE, True)
    return view


def _response_unchanged(request: HttpRequest) -> HttpResponse:  # pragma: no cover - never called
    raise AssertionError("the fast path calls the middlewares' hooks, not their chain")


class IngestFastPath:
    """The fast path for a Django request handler (``FastPathHandler``; the tests' client takes it too)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.ingest_resolver = get_resolver(INGEST_URLCONF)
        self.ingest_prefix = "/" + self.ingest_resolver.reverse("collect")  # "/beacon": every ingest URL starts so
        self._fixed_matches: dict[str, object] = {}  # paths matched without arguments: a fixed few
        if not self._site_routes_ingest_here():
            self.ingest_prefix = None  # the site's URLconf puts the ingest URLs elsewhere: no fast path
        self.security = SecurityMiddleware(_response_unchanged)
        self.content_security_policy = ContentSecurityPolicyMiddleware(_response_unchanged).header

    def get_response(self, request: HttpRequest) -> HttpResponse:
        match = self._ingest_match(request.path_info)
        if match is None:
            return super().get_response(request)
        request.resolver_match = match
        try:
            response = self.security.process_request(request) or match.func(request, *match.args, **match.kwargs)
        except Exception as exc:
            response = response_for_exception(request, exc)
        response = self.security.process_response(request, response)
        response.headers.setdefault("Content-Security-Policy", self.content_security_policy)
        response._resource_closers.append(request.close)
        if response.status_code >= 400:
            log_response("%s: %s", response.reason_phrase, request.path, response=response, request=request)
        return response

    def _site_routes_ingest_here(self) -> bool:
        try:
            return (
                get_resolver().resolve(self.ingest_prefix).func is self.ingest_resolver.resolve(self.ingest_prefix).func
            )
        except Resolver404:
            return False

    def _ingest_match(self, path: str):
        if self.ingest_prefix is None or not path.startswith(self.ingest_prefix):
            return None
        match = self._fixed_matches.get(path)
        if match is not None:
            return match
        try:
            match = self.ingest_resolver.resolve(path)
        except Resolver404:
            return None
        if not getattr(match.func, FAST_PATH_ATTRIBUTE, False):
            return None
        if not match.args and not match.kwargs:  # "/beacon", where most beacons go
            self._fixed_matches[path] = match
        return match


class FastPathHandler(IngestFastPath, WSGIHandler):
    """Django's WSGI handler with the ingest fast path (``beacon_site.wsgi.application``)."""
