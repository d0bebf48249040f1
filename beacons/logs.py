"""Logging helpers: warnings that cannot flood, and error reports that carry no client IP."""

import ipaddress
import logging
import re
import time

from django.conf import settings
from django.views.debug import ExceptionReporter

logger = logging.getLogger("beacons")

ADDRESS_REMOVED = "[address removed]"
# Request headers that carry client addresses (besides BEACONS_CLIENT_IP_HEADER).
ADDRESS_HEADERS = (
    "REMOTE_ADDR",
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_REAL_IP",
    "HTTP_FORWARDED",
    "HTTP_CF_CONNECTING_IP",
    "HTTP_TRUE_CLIENT_IP",
    "HTTP_X_CLIENT_IP",
    "HTTP_X_CLUSTER_CLIENT_IP",
    "HTTP_FASTLY_CLIENT_IP",
)
_TOKEN_SPLIT = re.compile(r"[\s,;=\"]+")


class ThrottledWarning:
    """Logs a warning at most once per ``every`` seconds: an outage must not flood the logs."""

    def __init__(self, every: float = 60.0):
        self.every = every
        self._last = float("-inf")

    def __call__(self, message: str, *args, exc_info=False) -> None:
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            logger.warning(message, *args, exc_info=exc_info)


# One throttle for the whole ingest path (registry, limits, recording, views): an outage logs
# once a minute, not once per module.
outage_warning = ThrottledWarning()


def client_addresses(meta: dict) -> list[str]:
    """Every client address a request's headers name (whole header values, and each token
    in them that is an IP address), longest first so a longer one is removed before its part."""
    headers = [*ADDRESS_HEADERS, settings.BEACONS_CLIENT_IP_HEADER]
    found = set()
    for header in filter(None, headers):
        value = meta.get(header)
        if not isinstance(value, str) or not value.strip():
            continue
        found.add(value.strip())
        for token in _TOKEN_SPLIT.split(value):
            token = token.strip("[]")
            if token.lower().startswith("for="):
                token = token[4:]
            candidates = [token, token.rsplit(":", 1)[0].strip("[]")]  # "1.2.3.4:5678", "[::1]:80"
            for candidate in candidates:
                try:
                    ipaddress.ip_address(candidate)
                except ValueError:
                    continue
                found.add(candidate)
    return sorted(found, key=len, reverse=True)


def addresses_scrub(text: str, addresses: list[str]) -> str:
    for address in addresses:
        text = text.replace(address, ADDRESS_REMOVED)
    return text


class AddressScrubbingReporter(ExceptionReporter):
    """Django's error report (the mail to ADMINS, the DEBUG page) with every client address
    of the request removed: from META, from local variables, from messages (the product
    promises that no IP is stored or sent anywhere)."""

    def _addresses(self) -> list[str]:
        return client_addresses(getattr(self.request, "META", None) or {})

    def get_traceback_html(self):
        return addresses_scrub(str(super().get_traceback_html()), self._addresses())

    def get_traceback_text(self):
        return addresses_scrub(str(super().get_traceback_text()), self._addresses())


class ClientAddressFilter(logging.Filter):
    """Removes the request's client addresses from a log record's message and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        addresses = client_addresses(getattr(request, "META", None) or {})
        if addresses:
            record.msg, record.args = addresses_scrub(record.getMessage(), addresses), ()
            if record.exc_info and not record.exc_text:
                record.exc_text = addresses_scrub(logging.Formatter().formatException(record.exc_info), addresses)
        return True
