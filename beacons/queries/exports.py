"""Reads behind the counts export: the filtered counters and their natural keys, streamed."""

from collections.abc import Iterator
from datetime import datetime

from django.db.models import QuerySet

from beacons.models import BeaconAggregate, BeaconDefinition, Site


def aggregates_filter(
    *,
    site: str | None = None,
    definition: str | None = None,
    granularity: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> QuerySet[BeaconAggregate]:
    """Counters of one site (domain; None: every site), event type (slug) and granularity (code)
    with period_start in [start, end)."""
    rows = BeaconAggregate.objects.all()
    if site:
        rows = rows.filter(site__domain=site)
    if definition:
        rows = rows.filter(definition__slug=definition)
    if granularity:
        rows = rows.filter(granularity=granularity)
    if start:
        rows = rows.filter(period_start__gte=start)
    if end:
        rows = rows.filter(period_start__lt=end)
    return rows


def aggregates_by_natural_key(
    *, queryset: QuerySet[BeaconAggregate]
) -> Iterator[tuple[str, str, str, str, str, datetime, int]]:
    """(site domain, event type, dimension, identifier, granularity code, period_start, count) of each counter
    of ``queryset``, in storage order, read in chunks (memory stays flat). Three queries: the
    domains, the slugs, then the counters."""
    domains = dict(Site.objects.values_list("id", "domain"))
    slugs = dict(BeaconDefinition.objects.values_list("id", "slug"))
    values = queryset.order_by("pk").values_list(
        "site_id", "definition_id", "dimension", "identifier", "granularity", "period_start", "count"
    )
    for site_id, definition_id, dimension, identifier, granularity, start, count in values.iterator(chunk_size=2000):
        yield domains[site_id], slugs[definition_id], dimension, identifier, granularity, start, count
