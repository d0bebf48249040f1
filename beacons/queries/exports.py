"""Reads behind the counts export: the filtered counters and their natural keys, streamed."""

from collections.abc import Iterator
from datetime import datetime

from django.db.models import QuerySet

from beacons.models import BeaconAggregate, BeaconDefinition


def aggregates_filter(
    *,
    definition: str | None = None,
    granularity: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> QuerySet[BeaconAggregate]:
    """Counters of one event type (slug) and granularity (code) with period_start in [start, end)."""
    rows = BeaconAggregate.objects.all()
    if definition:
        rows = rows.filter(definition__slug=definition)
    if granularity:
        rows = rows.filter(granularity=granularity)
    if start:
        rows = rows.filter(period_start__gte=start)
    if end:
        rows = rows.filter(period_start__lt=end)
    return rows


def aggregates_by_natural_key(*, queryset: QuerySet[BeaconAggregate]) -> Iterator[tuple[str, str, str, datetime, int]]:
    """(event type, identifier, granularity code, period_start, count) of each counter of
    ``queryset``, in storage order, read in chunks (memory stays flat). Two queries: the
    slugs, then the counters."""
    slugs = dict(BeaconDefinition.objects.values_list("id", "slug"))
    values = queryset.order_by("pk").values_list("definition_id", "identifier", "granularity", "period_start", "count")
    for definition_id, identifier, granularity, start, count in values.iterator(chunk_size=2000):
        yield slugs[definition_id], identifier, granularity, start, count
