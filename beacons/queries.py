"""Reads over the counters: the only way the dashboard, exports and APIs see the data.

Every function here runs one query whose cost grows with the number of buckets asked
for, never with the number of hits: totals read the "" identifier row, and sums over long
ranges read month (or year) rows plus day and hour rows at the ragged edges.
Datetimes in and out are aware; bucket starts come back in UTC (convert with
``buckets.bucket_zone()`` for display).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q, Sum
from django.utils import timezone

from .buckets import bucket_after, bucket_start, bucket_zone, buckets_between, covering_buckets, is_aligned
from .models import GRANULARITY_ORDER, BeaconAggregate, BeaconDefinition, Granularity

G = Granularity


def _ids(definitions: Iterable[BeaconDefinition | int]) -> list[int]:
    return [d if isinstance(d, int) else d.pk for d in definitions]


def _common_granularities(definitions: Iterable[BeaconDefinition | int]) -> list[str]:
    objects = [d for d in definitions if isinstance(d, BeaconDefinition)]
    if not objects:
        return [G.HOUR, G.DAY, G.MONTH, G.YEAR]
    common = set(GRANULARITY_ORDER)
    for definition in objects:
        common &= set(definition.granularity_codes)
    return [g for g in GRANULARITY_ORDER if g in common]


def align_range(start: datetime, end: datetime, granularity: str) -> tuple[datetime, datetime]:
    """Widen [start, end) to whole buckets of ``granularity``."""
    tz = bucket_zone()
    aligned_end = end if is_aligned(end, granularity, tz) else bucket_after(bucket_start(end, granularity, tz), granularity, tz)
    return bucket_start(start, granularity, tz), aligned_end


def series(
    *,
    definitions: Iterable[BeaconDefinition | int],
    granularity: str,
    start: datetime,
    end: datetime,
    identifier: str = "",
) -> list[tuple[datetime, int]]:
    """Counts per bucket over [start, end), gap-filled with zeros, oldest first.

    ``identifier=""`` gives the total of each definition; several definitions are summed.
    """
    ids = _ids(definitions)
    rows = (
        BeaconAggregate.objects.filter(
            definition_id__in=ids,
            identifier=identifier,
            granularity=granularity,
            period_start__gte=bucket_start(start, granularity),
            period_start__lt=end,
        )
        .values_list("period_start")
        .annotate(total=Sum("count"))
        .order_by()
    )
    counts = dict(rows)
    return [(moment, counts.get(moment, 0)) for moment in buckets_between(start, end, granularity)]


def series_by_definition(
    *, definitions: Iterable[BeaconDefinition | int], granularity: str, start: datetime, end: datetime
) -> dict[int, list[tuple[datetime, int]]]:
    """Per-definition totals per bucket over [start, end), gap-filled: {definition_id: series}."""
    ids = _ids(definitions)
    rows = BeaconAggregate.objects.filter(
        definition_id__in=ids,
        identifier="",
        granularity=granularity,
        period_start__gte=bucket_start(start, granularity),
        period_start__lt=end,
    ).values_list("definition_id", "period_start", "count")
    counts: dict[int, dict[datetime, int]] = {definition_id: {} for definition_id in ids}
    for definition_id, moment, count in rows:
        counts[definition_id][moment] = count
    moments = list(buckets_between(start, end, granularity))
    return {definition_id: [(m, by_moment.get(m, 0)) for m in moments] for definition_id, by_moment in counts.items()}


def _covering_q(start: datetime, end: datetime, allowed: list[str]) -> Q:
    coarse_allowed = [g for g in allowed if g not in (G.SECOND, G.MINUTE)] or allowed
    finest = coarse_allowed[0]
    start, end = align_range(start, end, finest)
    condition = Q(pk__in=[])
    for granularity, spans in covering_buckets(start, end, coarse_allowed).items():
        for first, last in spans:
            condition |= Q(granularity=granularity, period_start__gte=first, period_start__lt=last)
    return condition


def top_identifiers(
    *,
    definitions: Iterable[BeaconDefinition],
    start: datetime,
    end: datetime,
    limit: int = 10,
    contains: str = "",
) -> list[tuple[str, int]]:
    """The identifiers with the most hits over [start, end), most first (ties by name)."""
    definitions = list(definitions)
    rows = (
        BeaconAggregate.objects.filter(_covering_q(start, end, _common_granularities(definitions)))
        .filter(definition_id__in=_ids(definitions))
        .exclude(identifier="")
    )
    if contains:
        rows = rows.filter(identifier__icontains=contains)
    rows = rows.values_list("identifier").annotate(total=Sum("count")).order_by("-total", "identifier")[:limit]
    return list(rows)


@dataclass(frozen=True)
class Totals:
    current: int
    previous: int
    previous_start: datetime
    previous_end: datetime

    @property
    def change(self) -> float | None:
        """Relative change against the previous period, or None when it had no hits."""
        if not self.previous:
            return None
        return (self.current - self.previous) / self.previous


def totals(
    *, definitions: Iterable[BeaconDefinition], start: datetime, end: datetime, identifier: str = ""
) -> Totals:
    """Hits over [start, end) and over the period of equal length just before it, in one query."""
    definitions = list(definitions)
    allowed = _common_granularities(definitions)
    previous_start, previous_end = start - (end - start), start
    rows = BeaconAggregate.objects.filter(definition_id__in=_ids(definitions), identifier=identifier).aggregate(
        current=Sum("count", filter=_covering_q(start, end, allowed)),
        previous=Sum("count", filter=_covering_q(previous_start, previous_end, allowed)),
    )
    return Totals(rows["current"] or 0, rows["previous"] or 0, previous_start, previous_end)


def live_count(*, definitions: Iterable[BeaconDefinition], minutes: int = 5, now: datetime | None = None) -> int | None:
    """Hits in the last ``minutes`` minutes (the current minute included), from minute buckets.

    None when none of the definitions keeps minute counts.
    """
    keeping = [d.pk for d in definitions if G.MINUTE in d.granularity_codes]
    if not keeping:
        return None
    now = now or timezone.now()
    since = bucket_start(now - timedelta(minutes=minutes - 1), G.MINUTE)
    total = BeaconAggregate.objects.filter(
        definition_id__in=keeping, identifier="", granularity=G.MINUTE, period_start__gte=since
    ).aggregate(total=Sum("count"))["total"]
    return total or 0
