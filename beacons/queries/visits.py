"""Visit metrics of one site: visits, bounce rate, visit duration, views per visit and exits, read from the reserved visit types.

Each visit is counted in the buckets where it started (``beacons.ingest.sessions``), so a period
holds the visits that started in it, with all their page views, seconds and exits, even the
part after the period's end. Entry pages and dimension values are those of a visit's first page
view. The figures are read with the same functions as every counter (``queries.counters``):
the same periods, partial buckets and previous-period comparison as page views.

Views per visit divides the page views inside visits (``VisitSlug.PAGES``), not all page views:
page views of visitors without a visitor key (DNT/GPC) belong to no visit.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from beacons.models import BeaconDefinition, Granularity, Site
from beacons.queries.counters import (
    identifiers_by_definition,
    identifiers_compared,
    series_by_definition,
    totals_by_definition,
)
from beacons.registry import VisitSlug, system_definitions_resolve

# VisitFigures' fields, in order, and the type each is counted under
FIGURE_SLUGS = {
    "visits": VisitSlug.VISITS,
    "bounces": VisitSlug.BOUNCES,
    "seconds": VisitSlug.SECONDS,
    "pages": VisitSlug.PAGES,
}


@dataclass(frozen=True)
class VisitFigures:
    """The counts behind the visit metrics, for one period, bucket, entry page or value."""

    visits: int
    bounces: int
    seconds: int
    pages: int

    @property
    def bounce_rate(self) -> float | None:
        """Share of visits of one page view; None without visits."""
        return self.bounces / self.visits if self.visits else None

    @property
    def duration(self) -> float | None:
        """Mean seconds from a visit's first to its last page view (0 for a bounce); None without visits."""
        return self.seconds / self.visits if self.visits else None

    @property
    def views_per_visit(self) -> float | None:
        return self.pages / self.visits if self.visits else None

    def metric(self, name: str) -> float | None:
        """One of ``METRICS`` by name."""
        if name not in METRICS:
            raise ValueError(f"unknown visit metric {name!r}: one of {', '.join(METRICS)}")
        return getattr(self, name)


METRICS = ("visits", "bounce_rate", "duration", "views_per_visit")


def _relative_change(now: float | None, before: float | None) -> float | None:
    return None if now is None or not before else (now - before) / before


@dataclass(frozen=True)
class VisitTotals:
    current: VisitFigures
    previous: VisitFigures
    previous_start: datetime
    previous_end: datetime
    compared: VisitFigures | None = None  # the current period up to ``compared_end`` (None: all of it)

    def change(self, metric: str) -> float | None:
        """Relative change of ``metric`` against the previous period (``Totals.change``'s rule), None
        when the previous period had no value."""
        current = self.current if self.compared is None else self.compared
        return _relative_change(current.metric(metric), self.previous.metric(metric))


@dataclass(frozen=True)
class VisitRow:
    """An entry page (or a dimension's value) with its visits' figures."""

    identifier: str
    current: VisitFigures
    previous: VisitFigures | None  # None when no comparison was asked for
    compared: VisitFigures | None = None

    def change(self, metric: str) -> float | None:
        if self.previous is None:
            return None
        current = self.current if self.compared is None else self.compared
        return _relative_change(current.metric(metric), self.previous.metric(metric))


@dataclass(frozen=True)
class ExitRow:
    """An exit page: visits that ended on it, and its page views in the same period."""

    identifier: str
    exits: int
    page_views: int
    previous_exits: int | None = None

    @property
    def exit_rate(self) -> float | None:
        """Share of the page's views that ended a visit (page views of untracked visitors included)."""
        return min(1.0, self.exits / self.page_views) if self.page_views else None


def visit_definitions() -> dict[str, BeaconDefinition]:
    """The reserved visit types by slug (registered on first use, then cached)."""
    return system_definitions_resolve()


NO_VISITS = VisitFigures(visits=0, bounces=0, seconds=0, pages=0)


def _figures(by_slug: dict[str, int]) -> VisitFigures:
    """The figures of {visit slug: count}, every slug of ``FIGURE_SLUGS`` given."""
    return VisitFigures(**{name: by_slug[slug] for name, slug in FIGURE_SLUGS.items()})


def visits_totals(
    *,
    site: Site | int,
    start: datetime,
    end: datetime,
    identifier: str = "",
    dimension: str = "",
    previous_period: tuple[datetime, datetime] | None = None,
    compared_end: datetime | None = None,
    cut_granularity: str = Granularity.HOUR,
) -> VisitTotals:
    """Visit figures of the visits that started in [start, end), of the entry page ``identifier``
    (or, with a ``dimension``, of its value ``identifier``), and of ``previous_period`` (default:
    the period of equal length before), as ``counters.totals``. One query."""
    definitions = visit_definitions()
    figures = [definitions[slug] for slug in FIGURE_SLUGS.values()]
    found = totals_by_definition(
        site=site,
        definitions=figures,
        start=start,
        end=end,
        identifier=identifier,
        dimension=dimension,
        previous_period=previous_period,
        compared_end=compared_end,
        cut_granularity=cut_granularity,
    )
    by_slug = {d.slug: found[d.pk] for d in figures}
    any_totals = next(iter(by_slug.values()))
    return VisitTotals(
        current=_figures({slug: t.current for slug, t in by_slug.items()}),
        previous=_figures({slug: t.previous for slug, t in by_slug.items()}),
        previous_start=any_totals.previous_start,
        previous_end=any_totals.previous_end,
        compared=None if compared_end is None else _figures({slug: t.compared for slug, t in by_slug.items()}),
    )


def visits_series(
    *,
    site: Site | int,
    granularity: str,
    start: datetime,
    end: datetime,
    identifier: str = "",
    dimension: str = "",
) -> list[tuple[datetime, VisitFigures]]:
    """Visit figures per bucket over [start, end) (visits by the bucket they started in), gap-filled,
    oldest first; of an entry page or a dimension's value as in ``visits_totals``. One query."""
    definitions = visit_definitions()
    figures = [definitions[slug] for slug in FIGURE_SLUGS.values()]
    by_definition = series_by_definition(
        site=site,
        definitions=figures,
        granularity=granularity,
        start=start,
        end=end,
        identifier=identifier,
        dimension=dimension,
    )
    by_slug = {d.slug: by_definition[d.pk] for d in figures}
    moments = [moment for moment, _ in by_slug[VisitSlug.VISITS]]
    return [
        (moment, _figures({slug: series[i][1] for slug, series in by_slug.items()})) for i, moment in enumerate(moments)
    ]


def visits_by_entry(
    *,
    site: Site | int,
    start: datetime,
    end: datetime,
    dimension: str = "",
    previous_period: tuple[datetime, datetime] | None = None,
    compared_end: datetime | None = None,
    cut_granularity: str = Granularity.HOUR,
    limit: int | None = 10,
    offset: int = 0,
) -> list[VisitRow]:
    """Entry pages (with a ``dimension``: its values) by visits over [start, end), most first (ties by
    name), each with its visits' figures and, given ``previous_period``, those of that period.
    Two queries: the ranking by visits, then the other figures of the rows shown."""
    definitions = visit_definitions()
    ranked = identifiers_compared(
        site=site,
        definitions=[definitions[VisitSlug.VISITS]],
        start=start,
        end=end,
        previous_period=previous_period,
        compared_end=compared_end,
        cut_granularity=cut_granularity,
        limit=limit,
        offset=offset,
        dimension=dimension,
    )
    others = [definitions[slug] for slug in FIGURE_SLUGS.values() if slug != VisitSlug.VISITS]
    found = identifiers_by_definition(
        site=site,
        definitions=others,
        identifiers=[row.identifier for row in ranked],
        start=start,
        end=end,
        previous_period=previous_period,
        compared_end=compared_end,
        cut_granularity=cut_granularity,
        dimension=dimension,
    )

    def figures_of(row, part: str) -> VisitFigures:
        values = {VisitSlug.VISITS: getattr(row, part)}
        for definition in others:
            other = found.get((definition.pk, row.identifier))
            values[definition.slug] = getattr(other, part) if other is not None else 0
        return _figures({slug: value or 0 for slug, value in values.items()})

    compare = previous_period is not None
    return [
        VisitRow(
            row.identifier,
            figures_of(row, "count"),
            figures_of(row, "previous") if compare else None,
            figures_of(row, "compared") if compare and compared_end is not None else None,
        )
        for row in ranked
    ]


def exits_by_page(
    *,
    site: Site | int,
    page_views: Iterable[BeaconDefinition],
    start: datetime,
    end: datetime,
    previous_period: tuple[datetime, datetime] | None = None,
    limit: int | None = 10,
    offset: int = 0,
) -> list[ExitRow]:
    """Exit pages by exits over [start, end), most first, each with its views among ``page_views``
    (the page-view types) in the period, and, given ``previous_period``, its exits then. Two queries.
    A page whose exits were all taken back (0, and 0 before) is left out, so a page of rows may be
    shorter than ``limit``."""
    exits = visit_definitions()[VisitSlug.EXITS]
    ranked = identifiers_compared(
        site=site,
        definitions=[exits],
        start=start,
        end=end,
        previous_period=previous_period,
        limit=limit,
        offset=offset,
    )
    views: dict[str, int] = {}
    for (_, identifier), row in identifiers_by_definition(
        site=site, definitions=list(page_views), identifiers=[row.identifier for row in ranked], start=start, end=end
    ).items():
        views[identifier] = views.get(identifier, 0) + row.count
    # An exit taken back by a later page view leaves a row of 0: ranked last, and left out here.
    return [
        ExitRow(row.identifier, row.count, views.get(row.identifier, 0), row.previous)
        for row in ranked
        if row.count or row.previous
    ]
