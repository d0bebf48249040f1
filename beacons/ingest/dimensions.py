"""What one accepted event is broken down by: its dimension values, for the dimensions its type keeps.

``dimensions_of`` is the one place that decides them. Values are attacker-controlled text:
what comes back is storable, at most ``VALUE_MAX_LENGTH`` characters, never empty, and only
for dimensions the type keeps; the per-day cap on distinct values is applied later, when the
values are counted (``beacons.counting.value_cap``).
"""

from typing import Any

from beacons.dimensions import PROPERTY_PREFIX
from beacons.ingest import extraction
from beacons.ingest.parsing import EventInput
from beacons.models import BeaconDefinition

_CAMPAIGN_CODES = {"source", "utm_medium", "utm_campaign"}
_DEVICE_CODES = {"browser", "os", "device"}


def dimensions_of(*, definition: BeaconDefinition, event: EventInput, request_facts: Any) -> dict[str, str]:
    """{dimension code: value} of ``event`` for the dimensions ``definition`` keeps.

    ``request_facts`` is what the request tells about the visitor (``recording.RequestContext``:
    site domain, user agent, Referer header, address). Each extractor runs only when the type
    keeps one of its dimensions:

    - source, utm_medium, utm_campaign: the page URL's campaign parameters (the Referer header,
      else the identifier), overridden by those the beacon sent beside the event; the source is
      a tag when there is one, else the event's ``referrer`` named (``extraction.source_of``).
      A medium or campaign that was not sent counts nothing.
    - browser, os, device: the User-Agent (``extraction.device_of``), "(unknown)" for a part
      it cannot tell.
    - country: the visitor's address (``extraction.country_of``), "(unknown)" when it has none;
      the address is only looked up, never part of what is returned.

    - identity: signed in, anonymous, or untracked (Do-Not-Track: a page view without a visitor),
      from ``RequestContext.identity``.

    Custom properties come from ``event.meta[<declared key>]``. Every value goes through
    ``extraction.property_value``: text, numbers and booleans count (trimmed, control characters
    removed, cut to ``VALUE_MAX_LENGTH``); objects, arrays, null and what is empty afterwards
    count nothing.
    """
    kept = definition.dimension_codes
    if not kept or not definition.dimension_granularity_codes:  # nowhere to count them: no work, no cap
        return {}
    values: dict[str, str] = {}
    wanted = set(kept)
    if wanted & _CAMPAIGN_CODES:
        values.update(_campaign_values(event, request_facts, wanted))
    if wanted & _DEVICE_CODES:
        browser, os, device = extraction.device_of(request_facts.user_agent)
        values.update({code: value for code, value in (("browser", browser), ("os", os), ("device", device))})
    if "identity" in wanted:
        values["identity"] = request_facts.identity
    if "country" in wanted:
        values["country"] = extraction.country_of(request_facts.ip) or extraction.UNKNOWN
    for code in kept:
        if code.startswith(PROPERTY_PREFIX):
            values[code] = event.meta.get(code.removeprefix(PROPERTY_PREFIX))
    # Every value, extracted or sent, is made storable by the same rule.
    cleaned = {code: extraction.property_value(value) for code, value in values.items() if code in wanted}
    return {code: value for code, value in cleaned.items() if value}


def _campaign_values(event: EventInput, request_facts: Any, wanted: set[str]) -> dict[str, str]:
    page_url = request_facts.referer or event.identifier or ""
    campaign = extraction.campaign_of(page_url) | event.campaign
    values = {code: campaign[code] for code in ("utm_medium", "utm_campaign") if campaign.get(code)}
    if "source" in wanted:
        values["source"] = extraction.source_of(
            event.referrer, site_domain=request_facts.site_domain, page_url=page_url, campaign=campaign
        )
    return values
