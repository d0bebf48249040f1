"""``{% load beacons %}{% beacon_script %}``: the browser client's script tag.

Options are keyword arguments rendered as ``data-`` attributes that beacon.js reads,
e.g. ``{% beacon_script batch_size=20 debug=True %}`` renders
``<script defer src="/static/beacons/beacon.min.js" data-endpoint="/beacon" data-batch-size="20" data-debug="true">``.
Every value is HTML-escaped; an unknown option is a template error, so a typo is not silently ignored.
"""

from django import template
from django.conf import settings
from django.templatetags.static import static
from django.urls import reverse
from django.utils.html import escape, format_html, format_html_join

from beacons import flags
from beacons.ingest import identity
from beacons.sites import request_site_domain, sites_cached

register = template.Library()

# Tag keyword -> the data- attribute beacon.js reads (defaults live in beacon.js and the README).
OPTIONS = {
    "endpoint": "data-endpoint",
    "page_views": "data-page-views",
    "query_string": "data-query-string",
    "hash": "data-hash",
    "errors": "data-errors",
    "batch_size": "data-batch-size",
    "batch_timeout": "data-batch-timeout",
    "direct_page_views": "data-direct-page-views",
    "respect_do_not_track": "data-respect-do-not-track",
    "require_consent": "data-require-consent",
    "consent_cookie": "data-consent-cookie",
    "debug": "data-debug",
    "site": "data-site",
}
DEFAULT_SRC = "beacons/beacon.min.js"


def _attribute_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return escape(str(value))  # always, even a value marked safe: it lands inside an attribute


@register.simple_tag(takes_context=True)
def beacon_script(context, src: str = DEFAULT_SRC, **options) -> str:
    """The deferred script tag for beacon.js.

    ``src``: a static path (default the minified client; ``"beacons/beacon.js"`` for the readable
    one) or an absolute URL / root-relative path used as is. ``endpoint`` defaults to this site's
    ``beacons:collect`` URL. ``site`` defaults to the site of the current request's host when one is
    registered, so its beacons count there whatever page sends them. With ``BEACONS_IDENTIFY_USERS``, a
    signed-in user's page also carries ``data-uid`` (see ``beacons.ingest.identity``). Options whose value is None or
    "" (a missing template variable) are left out, so beacon.js's default applies.
    """
    unknown = sorted(set(options) - OPTIONS.keys())
    if unknown:
        raise template.TemplateSyntaxError(
            f"beacon_script got unknown option(s) {', '.join(unknown)}; known: src, {', '.join(OPTIONS)}"
        )
    given = {name: value for name, value in options.items() if value is not None and value != ""}
    given.setdefault("endpoint", reverse("beacons:collect"))
    if "site" not in given:
        request = context.get("request")
        site = request_site_domain(request) if request is not None else ""
        if site:
            given["site"] = site
    return _script_tag(src or DEFAULT_SRC, OPTIONS, given, context.get("request"))


def _script_tag(src: str, options: dict[str, str], given: dict, request) -> str:
    """``<script defer src=…>`` with the given options as data- attributes (escaped) and a signed-in
    user's ``data-uid``. ``src``: a static path, or an absolute URL / root-relative path used as is."""
    src = str(src)
    url = src if src.startswith(("/", "http://", "https://")) else static(src)
    pairs = [(attr, _attribute_value(given[name])) for name, attr in options.items() if name in given]
    uid = _signed_in_uid(request)
    if uid:
        pairs.append(("data-uid", uid))
    return format_html('<script defer src="{}"{}></script>', escape(url), format_html_join("", ' {}="{}"', pairs))


def _signed_in_uid(request) -> str:
    """With ``BEACONS_IDENTIFY_USERS``, a signed-in user's token (``identity.user_token``: a signed
    keyed hash of the user id, never the id), so their beacons count them as the same visitor every day."""
    if not settings.BEACONS_IDENTIFY_USERS or request is None:
        return ""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return ""
    return identity.user_token(user.pk)


FLAGS_OPTIONS = {
    "endpoint": "data-endpoint",
    "respect_do_not_track": "data-respect-do-not-track",
    "require_consent": "data-require-consent",
    "consent_cookie": "data-consent-cookie",
    "debug": "data-debug",
    "site": "data-site",
}
FLAGS_SRC = "beacons/beacon-flags.min.js"


@register.simple_tag(takes_context=True)
def beacon_flags_script(context, src: str = FLAGS_SRC, **options) -> str:
    """The deferred script tag for beacon-flags.js (flags and experiments in the browser): the
    ``site`` of the request's host, else the first site (whose flags the Django helpers read too),
    and ``data-uid`` as ``{% beacon_script %}``. ``endpoint``: the origin serving
    /beacon/flags/ and /beacon/experiments (default: the script's own)."""
    unknown = sorted(set(options) - FLAGS_OPTIONS.keys())
    if unknown:
        raise template.TemplateSyntaxError(
            f"beacon_flags_script got unknown option(s) {', '.join(unknown)}; known: src, {', '.join(FLAGS_OPTIONS)}"
        )
    given = {name: value for name, value in options.items() if value is not None and value != ""}
    request = context.get("request")
    if "site" not in given and request is not None:
        # As a beacon that names no site counts for the first one, the page reads the first site's flags.
        default = sites_cached().default
        site = request_site_domain(request) or (default.domain if default else "")
        if site:
            given["site"] = site
    return _script_tag(src or FLAGS_SRC, FLAGS_OPTIONS, given, request)


class FlagNode(template.Node):
    def __init__(self, key, attributes, when_on, when_off):
        self.key, self.attributes, self.when_on, self.when_off = key, attributes, when_on, when_off

    def render(self, context) -> str:
        request = context.get("request")
        key = self.key.resolve(context)
        attributes = {name: value.resolve(context) for name, value in self.attributes.items()}
        on = request is not None and bool(flags.value(request, str(key), False, **attributes))
        return (self.when_on if on else self.when_off).render(context)


@register.tag("flag")
def flag_tag(parser, token) -> FlagNode:
    """``{% flag "new-checkout" %}…{% else %}…{% endflag %}``: the first part when the flag's value
    for this request is truthy (``beacons.flags.value``), else the second. Attributes a rule
    targets may follow: ``{% flag "beta" plan=user.plan %}``."""
    bits = token.split_contents()
    if len(bits) < 2:
        raise template.TemplateSyntaxError('{% flag %} needs the flag\'s key: {% flag "new-checkout" %}')
    attributes = template.base.token_kwargs(bits[2:], parser)
    if len(attributes) != len(bits) - 2:
        raise template.TemplateSyntaxError("{% flag %} takes the key, then name=value attributes")
    when_on = parser.parse(("else", "endflag"))
    when_off = template.NodeList()
    if parser.next_token().contents == "else":
        when_off = parser.parse(("endflag",))
        parser.delete_first_token()
    return FlagNode(parser.compile_filter(bits[1]), attributes, when_on, when_off)
