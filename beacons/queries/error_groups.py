"""Reads of error groups and their kept occurrences, for the error pages and alert mails.

Lists are of one site; the reads of one group (its pages, browsers, occurrences) go by the group,
which belongs to one site."""

from collections.abc import Iterable
from datetime import datetime

from django.db.models import Count, Exists, OuterRef, QuerySet
from django.db.models.functions import TruncHour

from beacons.counting.buckets import (
    bucket_start,
    bucket_zone,
    buckets_between,
)
from beacons.models import BeaconEvent, ErrorGroup, Site
from beacons.models import Granularity as G
from beacons.queries.counters import site_id_of
from beacons.useragents import browser_label


def error_groups_latest(*, site: Site | int, limit: int) -> list[ErrorGroup]:
    """The site's most recently seen unresolved error groups with their beacon type, newest first (one query)."""
    rows = ErrorGroup.objects.select_related("definition").filter(
        site_id=site_id_of(site), status=ErrorGroup.Status.UNRESOLVED
    )
    return list(rows.order_by("-last_seen")[:limit])


def error_groups_new(*, site: Site | int, start: datetime, end: datetime, limit: int) -> list[ErrorGroup]:
    """The site's error groups first seen in [start, end), whatever their status now, newest first (one query)."""
    rows = ErrorGroup.objects.filter(site_id=site_id_of(site), first_seen__gte=start, first_seen__lt=end)
    return list(rows.order_by("-first_seen", "-pk")[:limit])


def error_groups_new_count(*, site: Site | int, start: datetime, end: datetime) -> int:
    """How many of the site's error groups were first seen in [start, end) (one query)."""
    return ErrorGroup.objects.filter(site_id=site_id_of(site), first_seen__gte=start, first_seen__lt=end).count()


ERROR_ORDERINGS = {"last_seen": "-last_seen", "count": "-count", "first_seen": "-first_seen"}


BROWSER_USER_AGENTS_READ = 200  # distinct user agents parsed for one group's browser list


def error_groups_filtered(
    *, site: Site | int, status: str = "", page: str = "", since: datetime | None = None, order: str
) -> QuerySet[ErrorGroup]:
    """The site's error groups (with their definition) by status ("" for any), seen since ``since`` and, with
    ``page``, seen on that page (since ``since``); ordered by ``order``, a key of ``ERROR_ORDERINGS`` (the list's
    form offers only those), newest/most first."""
    groups = ErrorGroup.objects.select_related("definition").filter(site_id=site_id_of(site))
    if status:
        groups = groups.filter(status=status)
    if since is not None:
        groups = groups.filter(last_seen__gte=since)
    if page:
        on_page = BeaconEvent.objects.filter(error_group=OuterRef("pk"), identifier=page)
        if since is not None:
            on_page = on_page.filter(received_at__gte=since)
        groups = groups.filter(Exists(on_page))
    return groups.order_by(ERROR_ORDERINGS[order], "-pk")


def error_group_of_site(*, site: Site | int, pk: int, related: tuple[str, ...]) -> ErrorGroup | None:
    """The site's error group ``pk`` (with ``related`` joined), or None: another site's, or none."""
    return ErrorGroup.objects.select_related(*related).filter(site_id=site_id_of(site), pk=pk).first()


def error_hourly(*, group_ids: Iterable[int], start: datetime, end: datetime) -> dict[int, list[tuple[datetime, int]]]:
    """Occurrences per hour bucket over [start, end) for each group, gap-filled: {group_id: series}. One query."""
    ids = list(group_ids)
    start = bucket_start(start, G.HOUR)
    rows = (
        BeaconEvent.objects.filter(error_group_id__in=ids, received_at__gte=start, received_at__lt=end)
        .annotate(hour=TruncHour("received_at", tzinfo=bucket_zone()))
        .values_list("error_group_id", "hour")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts: dict[int, dict[datetime, int]] = {group_id: {} for group_id in ids}
    for group_id, hour, n in rows:
        moment = bucket_start(hour, G.HOUR)  # the same UTC bucket start the counters use
        counts[group_id][moment] = counts[group_id].get(moment, 0) + n
    moments = list(buckets_between(start, end, G.HOUR))
    return {group_id: [(m, by_hour.get(m, 0)) for m in moments] for group_id, by_hour in counts.items()}


def error_pages(*, group: ErrorGroup, limit: int) -> list[tuple[str, int]]:
    """The pages the group happened on, with occurrence counts, most first. One query."""
    rows = (
        BeaconEvent.objects.filter(error_group=group)
        .values_list("identifier")
        .annotate(n=Count("id"))
        .order_by("-n", "identifier")[:limit]
    )
    return list(rows)


def error_browsers(*, group: ErrorGroup, limit: int) -> list[tuple[str, int]]:
    """Browsers ("Firefox 133", "Mobile Safari 17") the group happened in, with counts, most first.

    One query for the most frequent user agents; each is parsed once per process (ua-parser)."""
    rows = (
        BeaconEvent.objects.filter(error_group=group)
        .values_list("user_agent")
        .annotate(n=Count("id"))
        .order_by("-n")[:BROWSER_USER_AGENTS_READ]
    )
    browsers: dict[str, int] = {}
    for user_agent, n in rows:
        label = browser_label(user_agent)
        browsers[label] = browsers.get(label, 0) + n
    return sorted(browsers.items(), key=lambda item: (-item[1], item[0]))[:limit]


def error_occurrences(*, group: ErrorGroup, limit: int) -> list[BeaconEvent]:
    """The group's latest occurrences, newest first. One query."""
    return list(BeaconEvent.objects.filter(error_group=group).order_by("-received_at", "-pk")[:limit])
