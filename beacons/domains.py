"""The rules for a site's names: host names (domains), web origins and time zones.

Pure functions without the database: the model's validators, the admin, ingest and the
migration that creates the first site all check the same way.
"""

import re
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.exceptions import ValidationError

DOMAIN_MAX_LENGTH = 253
_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
DEFAULT_PORTS = {"http": 80, "https": 443}
FALLBACK_DOMAIN = "localhost"


class InvalidDomain(ValueError):
    """Not a host name; the message says what is wrong in words a form can show."""


def domain_normalise(text: str) -> str:
    """The host name ``text`` stands for, lower-case, without a trailing dot: labels of a-z,
    0-9 and -, at most 253 characters (international names in their ASCII form). No scheme,
    port, path or user. Raises ``InvalidDomain``."""
    if not isinstance(text, str):
        raise InvalidDomain("the site must be a host name such as shop.example.com")
    domain = text.strip().lower().rstrip(".")
    if not domain:
        raise InvalidDomain("the site is required")
    if any(mark in domain for mark in ("/", ":", "@", "?", "#")):
        raise InvalidDomain("enter the host name only (e.g. shop.example.com), without http://, port or path")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidDomain(f"{text[:100]!r} is not a host name") from None
    if len(domain) > DOMAIN_MAX_LENGTH or not all(_LABEL_RE.match(label) for label in domain.split(".")):
        raise InvalidDomain(f"{text[:100]!r} is not a host name: use letters, digits, - and dots")
    return domain


def validate_domain(value: str) -> None:
    try:
        if domain_normalise(value) != value:
            raise ValidationError("Enter the host name in lower case, e.g. shop.example.com.")
    except InvalidDomain as problem:
        raise ValidationError(str(problem).capitalize() + ".") from None


def origin_parts(origin: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of a web origin, or None when it is not one (another scheme, a
    path, credentials, a port out of range, ``null``)."""
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:  # a port that is not a number or out of 0–65535, a bad IPv6 literal
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname or parts.username is not None or parts.password is not None:
        return None
    if parts.path or parts.query or parts.fragment:
        return None
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme]


def origins_split(text: str) -> list[str]:
    """The origins of an "extra allowed origins" value: one per line, blank lines skipped."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def validate_origins(value: str) -> None:
    bad = [line for line in origins_split(value) if origin_parts(line) is None]
    if bad:
        raise ValidationError(
            "Not a web origin (scheme, host and optional port, e.g. https://checkout.example.com): %(bad)s",
            params={"bad": ", ".join(line[:100] for line in bad[:5])},
        )


def validate_time_zone(value: str) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError("Not a time zone name such as Europe/Berlin or UTC.") from None


def default_time_zone() -> str:
    return settings.BEACONS_TIME_ZONE


def host_of(url: str) -> str:
    """The lower-case host name of an absolute URL ("" when it has none)."""
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def first_site_domain() -> str:
    """The domain of the site created for existing data: BEACONS_BASE_URL's host, else the first
    concrete ALLOWED_HOSTS entry (no wildcard), else "localhost"."""
    candidates = [host_of(settings.BEACONS_BASE_URL)]
    candidates += [host for host in settings.ALLOWED_HOSTS if host and host != "*" and not host.startswith(".")]
    for candidate in candidates:
        try:
            return domain_normalise(candidate)
        except InvalidDomain:
            continue
    return FALLBACK_DOMAIN
