"""Retention and rebuilding: the writes behind ``beacons_purge`` and ``beacons_rebuild``."""

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction

from beacons.counting.buckets import bucket_ceiling, bucket_start, bucket_zone
from beacons.counting.increments import CounterKey, aggregates_add, increments_add_hits
from beacons.models import (
    FINE_GRANULARITIES,
    BeaconAggregate,
    BeaconDefinition,
    BeaconEvent,
    Granularity,
    Site,
    VisitorSketch,
)


@dataclass(frozen=True)
class Removed:
    definition: str
    what: str  # "single events" or a granularity label
    rows: int


HOUR_ROWS_PER_VALUE = "hour (per page or value)"


def retention_purge(*, now: datetime, dry_run: bool = False) -> list[Removed]:
    """Delete single events past their type's retention, second/minute counts past
    ``fine_retention_days``, and the hour counts of single identifiers and dimension values past
    ``hour_retention_days`` (their days, months and years stay, and so do the hour totals). Day
    and coarser counts are never purged. Visitor sketches per minute go with the fine counts, per
    hour with the hour counts."""
    removed: list[Removed] = []
    with transaction.atomic():
        # The indexes start with the site: one statement per site reads only what it deletes.
        site_ids = list(Site.objects.order_by("pk").values_list("pk", flat=True))
        for definition in BeaconDefinition.objects.order_by("slug"):
            raw_cutoff = now - timedelta(days=definition.raw_retention_days)
            events = sum(
                _delete(
                    BeaconEvent.objects.filter(site_id=site_id, definition=definition, received_at__lt=raw_cutoff),
                    dry_run,
                )
                for site_id in site_ids
            )
            removed.append(Removed(definition.slug, "single events", events))
            fine_cutoff = now - timedelta(days=definition.fine_retention_days)
            for granularity in sorted(FINE_GRANULARITIES):
                rows = sum(
                    _delete(
                        BeaconAggregate.objects.filter(
                            site_id=site_id,
                            definition=definition,
                            granularity=granularity,
                            period_start__lt=fine_cutoff,
                        ),
                        dry_run,
                    )
                    for site_id in site_ids
                )
                removed.append(Removed(definition.slug, Granularity(granularity).label, rows))
            hour_cutoff = now - timedelta(days=definition.hour_retention_days)
            hour_rows = 0
            for site_id in site_ids:
                old_hours = BeaconAggregate.objects.filter(
                    site_id=site_id, definition=definition, granularity=Granularity.HOUR, period_start__lt=hour_cutoff
                )
                # Two statements, each a range of the (site, definition, dimension, granularity, period) index.
                hour_rows += _delete(old_hours.filter(dimension="").exclude(identifier=""), dry_run)
                hour_rows += _delete(old_hours.filter(dimension__gt=""), dry_run)
            removed.append(Removed(definition.slug, HOUR_ROWS_PER_VALUE, hour_rows))
            # Visitor sketches: the site total's minutes ("live now") and hours go with the counters'.
            for granularity, cutoff in ((Granularity.MINUTE, fine_cutoff), (Granularity.HOUR, hour_cutoff)):
                rows = sum(
                    _delete(
                        VisitorSketch.objects.filter(
                            site_id=site_id, definition=definition, granularity=granularity, period_start__lt=cutoff
                        ),
                        dry_run,
                    )
                    for site_id in site_ids
                )
                removed.append(Removed(definition.slug, f"visitors per {Granularity(granularity).label}", rows))
        # Counts the direct sink wrote for a type in the moment it was being deleted.
        orphans = BeaconAggregate.objects.exclude(definition_id__in=BeaconDefinition.objects.values("pk"))
        removed.append(Removed("(deleted types)", "counts", _delete(orphans, dry_run)))
    return removed


def _delete(queryset, dry_run: bool) -> int:
    if dry_run:
        return queryset.count()
    return rows_delete(queryset)


def rows_delete(queryset) -> int:
    """Delete the rows of ``queryset`` in one ``DELETE … WHERE`` statement; returns how many.

    Counters and single events are leaves (no cascades) without delete signals, so Django's
    documented ``QuerySet.delete()`` takes its fast path and loads no row; a test pins the one
    query, so a receiver added later cannot turn a purge into millions of fetched objects.
    """
    deleted, _ = queryset.delete()
    return deleted


def whole_buckets(start: datetime, end: datetime, granularity: str, tz=None) -> tuple[datetime, datetime]:
    """[first, last) bucket starts of the buckets lying wholly inside [start, end)."""
    return bucket_ceiling(start, granularity, tz), bucket_start(end, granularity, tz)


PROGRESS_EVENTS = 5000  # single events read between two progress reports of a rebuild


def aggregates_rebuild(
    *,
    start: datetime,
    end: datetime,
    definitions: list[BeaconDefinition],
    on_events: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Recompute counters from kept single events, for buckets lying wholly inside [start, end).

    Buckets only partly inside the range are left alone (their other part may hold hits
    whose single events are gone). Idempotent: running it twice gives the same counts.
    Hits that kept no single event (Do-Not-Track visitors) are not in the result. Only the
    identifier counters are rebuilt: dimension counters (sources, properties…) are left as they are.
    Returns the number of counter keys written per definition slug. ``on_events(n)`` is told
    each time ``n`` more single events have been read (progress display).
    """
    written: dict[str, int] = {}
    site_ids = list(Site.objects.order_by("pk").values_list("pk", flat=True))  # every read below starts with the site
    with transaction.atomic():
        for definition in definitions:
            if not definition.keep_raw:
                continue
            increments: Counter[CounterKey] = Counter()
            read = 0
            for site_id in site_ids:
                zone = bucket_zone(site_id)  # each site's own buckets
                windows = {g: whole_buckets(start, end, g, zone) for g in definition.granularity_codes}
                windows = {g: (lo, hi) for g, (lo, hi) in windows.items() if lo < hi}
                for granularity, (lo, hi) in windows.items():
                    rows_delete(
                        BeaconAggregate.objects.filter(
                            site_id=site_id,
                            definition=definition,
                            dimension="",
                            granularity=granularity,
                            period_start__gte=lo,
                            period_start__lt=hi,
                        )
                    )
                if not windows:
                    continue
                lo_all = min(lo for lo, _ in windows.values())
                hi_all = max(hi for _, hi in windows.values())
                events = BeaconEvent.objects.filter(
                    site_id=site_id, definition=definition, received_at__gte=lo_all, received_at__lt=hi_all
                ).values_list("identifier", "received_at")
                for identifier, received_at in events.iterator(chunk_size=5000):
                    read += 1
                    if on_events and read % PROGRESS_EVENTS == 0:
                        on_events(PROGRESS_EVENTS)
                    buckets = [
                        (g, bucket_start(received_at, g, zone))
                        for g, (lo, hi) in windows.items()
                        if lo <= received_at < hi
                    ]
                    increments_add_hits(
                        increments, site_id=site_id, definition_id=definition.pk, buckets=buckets, hits={identifier: 1}
                    )
            if on_events and read % PROGRESS_EVENTS:
                on_events(read % PROGRESS_EVENTS)
            written[definition.slug] = aggregates_add(increments=increments)
    return written
