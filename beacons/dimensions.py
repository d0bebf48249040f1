"""Dimension codes: the axes a counter has besides time, and the rules for their names and values.

The dimension "" is the identifier axis (a page, a file; the identifier "" is the total). The
built-in dimensions are extracted at ingest for the types that keep them; ``prop:<key>`` counts
a custom property the type declares (``meta.<key>``). A code never holds ``/`` or ``|`` (the
Redis counter format relies on it, see ``beacons.counting.redis_format``).
"""

import re

IDENTIFIER = ""
BUILT_IN = {
    "source": "Source",
    "utm_medium": "Campaign medium (utm_medium)",
    "utm_campaign": "Campaign (utm_campaign)",
    "browser": "Browser",
    "os": "Operating system",
    "device": "Device type",
    "country": "Country",
    "identity": "Signed in or anonymous",
}
# The values of "identity": whom a hit came from (``beacons.ingest.identity``).
SIGNED_IN = "signed_in"  # a signed-in user, known by a keyed hash of the user id
ANONYMOUS = "anonymous"  # a visitor known by the day's salted hash of address and browser
UNTRACKED = "untracked"  # Do-Not-Track / Global Privacy Control: a page view, but no visitor
PROPERTY_PREFIX = "prop:"
PROPERTY_KEY_MAX_LENGTH = 32
PROPERTY_KEY_PATTERN = re.compile(rf"[A-Za-z_][A-Za-z0-9_-]{{0,{PROPERTY_KEY_MAX_LENGTH - 1}}}")
MAX_PROPERTY_KEYS = 10  # per type: each one is a dimension with up to BEACONS_MAX_VALUES_PER_DIMENSION values a day
VALUE_MAX_LENGTH = 120  # a longer dimension value is cut


class InvalidDimension(ValueError):
    pass


def property_dimension(key: str) -> str:
    """The dimension code of the custom property ``key``."""
    return PROPERTY_PREFIX + key


def property_key_check(key: str) -> str:
    """``key`` when it may name a custom property; raises ``InvalidDimension`` saying why not."""
    if not PROPERTY_KEY_PATTERN.fullmatch(key):
        raise InvalidDimension(
            f"{key[:40]!r} is not a property name: use 1–{PROPERTY_KEY_MAX_LENGTH} letters, digits, _ or -, "
            "starting with a letter or _"
        )
    return key


def dimension_check(code: str) -> str:
    """``code`` when it names a dimension ("" included); raises ``InvalidDimension`` otherwise."""
    if code == IDENTIFIER or code in BUILT_IN:
        return code
    if code.startswith(PROPERTY_PREFIX):
        property_key_check(code.removeprefix(PROPERTY_PREFIX))
        return code
    known = ", ".join(BUILT_IN)
    raise InvalidDimension(f"{code[:40]!r} is not a dimension; use one of {known}, or prop:<property name>")


def dimension_label(code: str) -> str:
    """What staff read for a dimension code."""
    if code == IDENTIFIER:
        return "Identifier"
    if code.startswith(PROPERTY_PREFIX):
        return f"Property “{code.removeprefix(PROPERTY_PREFIX)}”"
    return BUILT_IN.get(code, code)
