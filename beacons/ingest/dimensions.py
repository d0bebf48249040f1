"""What one accepted event is broken down by: its dimension values, for the dimensions its type keeps.

``dimensions_of`` is the one place that decides them. Values are attacker-controlled text:
what comes back is storable, at most ``VALUE_MAX_LENGTH`` characters, never empty, and only
for dimensions the type keeps; the per-day cap on distinct values is applied later, when the
values are counted (``beacons.counting.value_cap``).
"""

import unicodedata
from typing import Any

from beacons.dimensions import PROPERTY_PREFIX, VALUE_MAX_LENGTH
from beacons.ingest.parsing import EventInput
from beacons.models import BeaconDefinition

# Control, format (bidi overrides, zero-width), surrogate, private use, unassigned, line and paragraph separators.
_DROPPED_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def dimensions_of(*, definition: BeaconDefinition, event: EventInput, request_facts: Any) -> dict[str, str]:
    """{dimension code: value} of ``event`` for the dimensions ``definition`` keeps.

    ``request_facts`` is what the request tells about the visitor (``recording.RequestContext``:
    user agent, referer, address). Custom properties come from ``event.meta[<declared key>]``:
    text, numbers and booleans count (trimmed, control characters removed, cut to
    ``VALUE_MAX_LENGTH``); objects, arrays, null and what is empty afterwards count nothing.
    """
    kept = definition.dimension_codes
    if not kept:
        return {}
    values: dict[str, str] = {}
    # Built-in dimensions (source, utm_medium, utm_campaign, browser, os, device, country) are
    # extracted here from ``request_facts`` and the event, for the codes in ``kept`` only.
    for code in kept:
        if code.startswith(PROPERTY_PREFIX):
            value = property_value(event.meta.get(code.removeprefix(PROPERTY_PREFIX)))
            if value:
                values[code] = value
    return values


def property_value(raw: Any) -> str:
    """The value a custom property counts under, or "" when it counts nothing."""
    if isinstance(raw, bool):
        text = "true" if raw else "false"
    elif isinstance(raw, (int, float)):
        try:
            text = str(raw)
        except ValueError:  # an integer beyond Python's digit limit for str()
            return ""
    elif isinstance(raw, str):
        text = raw
    else:  # None, objects and arrays
        return ""
    if not text.isprintable():  # the common case (plain text) skips the per-character pass
        text = "".join(char for char in text if unicodedata.category(char) not in _DROPPED_CATEGORIES)
    return text.strip()[:VALUE_MAX_LENGTH].strip()
