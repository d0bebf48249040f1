"""Flags and experiments in Django code: the same payload and hash as beacon-flags.js, so a page
rendered on the server and the script in the browser always agree.

    from beacons import flags
    if flags.value(request, "new-checkout"):
        ...
    variant = flags.variant(request, "checkout-button")  # "control", "b", … or None

Attributes a rule targets beyond the built-in ones (site, path, country, device, browser, os,
signedIn) are passed as keyword arguments, as text, numbers or booleans (the same the page passes
to ``beacons.setAttributes``): ``flags.value(request, "beta", plan="pro")``.
"""

from typing import Any

from django.http import HttpRequest
from django.utils import timezone

from beacons.experiments.attributes import request_attributes, unit_attributes
from beacons.experiments.evaluation import FeatureResult, feature_evaluate
from beacons.experiments.payload import site_payload
from beacons.experiments.recording import Exposure
from beacons.experiments.recording import events_record as experiment_events_record
from beacons.sites import request_site_domain, sites_cached

_CACHE_ATTRIBUTE = "_beacons_flags"
UNIT_ATTRIBUTES = {"id", "user", "signedIn"}  # who the request is: never passed in, or server and browser would differ


def _site_and_facts(request: HttpRequest) -> tuple[int, dict[str, Any]] | None:
    """The request's site (by its host, else the first site) and what targeting reads, once per request."""
    kept = getattr(request, _CACHE_ATTRIBUTE, None)
    if kept is None:
        sites = sites_cached()
        site = sites.by_domain.get(request_site_domain(request)) or sites.default
        if site is None:
            return None
        facts = {
            **request_attributes(request, site_domain=site.domain),
            "path": request.path,
            **unit_attributes(request),
        }
        kept = (site.id, facts)
        setattr(request, _CACHE_ATTRIBUTE, kept)
    return kept


def evaluate(request: HttpRequest, key: str, *, expose: bool = True, **attributes: Any) -> FeatureResult:
    """The flag or experiment ``key`` for this request. An experiment assignment by the hash counts
    the unit as exposed (once: the row is per unit), unless ``expose=False``."""
    site_and_facts = _site_and_facts(request)
    if site_and_facts is None:
        return FeatureResult(None, "unknownFeature")
    site_id, facts = site_and_facts
    for name, given in attributes.items():
        if name in UNIT_ATTRIBUTES or not isinstance(given, str | int | float | bool | None):
            raise TypeError(
                f"flag attribute {name!r}: units are the request's; attributes are text, numbers or booleans"
            )
    payload = site_payload(site_id)
    result = feature_evaluate(payload["features"], key, {**facts, **attributes})
    if expose and result.hashed and result.experiment in payload["beacons"]["experiments"]:
        experiment_events_record(
            site_id=site_id,
            exposures=[Exposure(result.experiment, result.variation_key)],
            conversions=[],
            unit=facts.get("id"),
            signed_user=facts.get("user", ""),
            at=timezone.now(),
        )
    return result


def value(request: HttpRequest, key: str, default: Any = None, **attributes: Any) -> Any:
    """The flag's value for this request (an experiment's: its variation's config); ``default`` for
    an unknown flag."""
    result = evaluate(request, key, **attributes)
    return default if result.source == "unknownFeature" else result.value


def variant(request: HttpRequest, experiment: str, **attributes: Any) -> str | None:
    """The key of the experiment variation this request's unit is in, or None when it is in none
    (not running, outside the share of traffic, no unit)."""
    return evaluate(request, experiment, **attributes).variation_key
