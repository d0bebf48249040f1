"""The ingest fast path: the served WSGI application hands a beacon straight to its view.

A request whose path the ingest URL patterns match (``/beacon``, its path and image forms, the
experiments and flags endpoints, and the drop-in endpoints of other trackers and the Sentry
SDKs), to a view marked ``@ingest_endpoint``, skips what Django's WSGI handler does around a
view: the middleware stack (sessions, CSRF, authentication, messages, htmx, static files: none of
which an ingest view reads), the walk through the site's URL patterns, the script prefix and the
``request_started`` signal. It is answered from the same ``WSGIRequest`` and view, and after it
``request_finished`` is sent as Django sends it (it closes obsolete database connections and the
caches' connections). Any other path, and any the ingest patterns do not match, takes Django's
full path unchanged. The site's URLconf is checked once per ingest route to send that route to
the same view (else the route takes Django's path).

A beacon's response still gets what the security middlewares add (``SecurityMiddleware``'s
headers and HTTPS redirect, the Content-Security-Policy), from the same middleware classes;
an exception in a view is answered as Django answers it (``response_for_exception``: a
disallowed host is a 400, a crash a logged 500), and a 4xx or 5xx is logged as Django logs it.

The views are the same functions whichever way a request comes: one ingest implementation.
"""

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import response_for_exception
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest, get_path_info
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
        # The first path segments of the ingest patterns ("beacon", "api", "count"): any other path
        # is not looked up among them.
        self.ingest_roots = frozenset(
            str(pattern.pattern).lstrip("^").split("/", 1)[0] for pattern in self.ingest_resolver.url_patterns
        )
        self._fixed_matches: dict[str, object] = {}  # paths matched without arguments: a fixed few
        self._routed_here: dict[str, bool] = {}  # ingest route -> the site's URLconf sends it to the same view
        self.security = SecurityMiddleware(_response_unchanged)
        self.content_security_policy = ContentSecurityPolicyMiddleware(_response_unchanged).header

    def ingest_call(self, environ, start_response):
        """WSGI: the answer to a request of an ingest path (the response, which the server closes:
        ``request_finished`` is sent then, as Django sends it), or None for any other path."""
        match = self.ingest_match(get_path_info(environ))
        if match is None:
            return None
        response = self.ingest_response(WSGIRequest(environ), match)
        response._handler_class = self.__class__
        start_response(
            f"{response.status_code} {response.reason_phrase}",
            [*response.items(), *(("Set-Cookie", c.output(header="")) for c in response.cookies.values())],
        )
        return response

    def ingest_response(self, request: HttpRequest, match) -> HttpResponse:
        """The view's answer to ``request``, with the security middlewares' headers."""
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

    def ingest_match(self, path: str):
        """The ingest pattern ``path`` takes the fast path by, or None."""
        match = self._fixed_matches.get(path)
        if match is not None:
            return match
        if path[1:].split("/", 1)[0] not in self.ingest_roots:
            return None
        try:
            match = self.ingest_resolver.resolve(path)
        except Resolver404:
            return None
        if not getattr(match.func, FAST_PATH_ATTRIBUTE, False) or not self._site_routes_here(path, match):
            return None
        if not match.args and not match.kwargs:  # "/beacon", where most beacons go
            self._fixed_matches[path] = match
        return match

    def _site_routes_here(self, path: str, match) -> bool:
        routed = self._routed_here.get(match.route)
        if routed is None:
            try:
                routed = get_resolver().resolve(path).func is match.func
            except Resolver404:
                routed = False
            self._routed_here[match.route] = routed
        return routed


class FastPathHandler(IngestFastPath, WSGIHandler):
    """Django's WSGI handler with the ingest fast path (``beacon_site.wsgi.application``)."""

    def __call__(self, environ, start_response):
        answer = self.ingest_call(environ, start_response)
        return super().__call__(environ, start_response) if answer is None else answer


class FastPathASGIHandler(IngestFastPath, ASGIHandler):
    """Django's ASGI handler with the ingest fast path (``beacon_site.asgi.application``): it reads
    the body, builds the request and sends the signals as Django does; an ingest path's request
    then skips the middleware stack and the URL walk (its view runs in Django's thread for sync
    code, as a sync view does)."""

    async def get_response_async(self, request: HttpRequest) -> HttpResponse:
        match = self.ingest_match(request.path_info)
        if match is None:
            return await super().get_response_async(request)
        return await sync_to_async(self.ingest_response, thread_sensitive=True)(request, match)
