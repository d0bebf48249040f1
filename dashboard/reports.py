"""Scheduled email reports: which are due, what one says, its chart as a PNG, and sending each once.

A report is of one site and one finished period (``beacons.periods.finished_period``: the last
whole ISO week or calendar month in the site's time zone), compared with the period before. Its
figures are read through ``beacons.queries`` with the arguments the dashboard uses for the same
dates, and its chart is the dashboard's main figure (``charts.series_figure``) drawn to PNG by
kaleido in the system Chromium. Beacon text (pages, sources, error titles, type names) reaches the
mail only through autoescaping templates.

Delivery is at most once: a ``ReportSent`` row for (subscription, period start) is committed before
the SMTP conversation starts, so a second run, a concurrent run or a run after a crash never mails
the same period twice. A send that raises removes the claim (the next run retries); a process
killed between claim and send loses that one mail, and its row keeps ``sent_at`` empty.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from email.mime.image import MIMEImage
from math import ceil
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from beacons.counting.buckets import bucket_before, bucket_zone, site_zone_active
from beacons.models import BeaconDefinition, ReportSent, ReportSubscription, Site
from beacons.models import Granularity as G
from beacons.periods import Period, finished_period
from beacons.queries import counters, error_groups, event_types, visitors, visits
from beacons.queries.sites import sites_visible

from . import charts
from .forms import dashboard_state
from .periods import period_label
from .permissions import VIEW_COUNTS, VIEW_ERRORS, user_may
from .views import TYPE_CHOICES_LIMIT, _duration_words

logger = logging.getLogger("beacons")

UNSUBSCRIBE_SALT = "dashboard.reports.unsubscribe"
TOP_ROWS = 10  # pages and sources a report lists
NEW_ERRORS_LIMIT = 10  # new error groups a report names (and says how many more)
CHART_CID = "chart@beacons"
CHART_WIDTH, CHART_HEIGHT, CHART_SCALE = 640, 320, 2  # CSS pixels; the PNG is twice as large for sharp screens
# charts.js thins the axis labels to fit the width; these are its numbers, for the same result in the PNG.
TICK_CHAR_PX, TICK_GAP_PX, TICK_SIDE_PX = 7.5, 18, 90
FREQUENCY_WORDS = {"weekly": "Weekly", "monthly": "Monthly"}


# --- Who gets a report ------------------------------------------------------------------------


def may_subscribe(*, user, site: Site) -> bool:
    """The dashboard's rule: active staff who may read counts, of a site they may see."""
    return user_may(user, VIEW_COUNTS) and any(each.pk == site.pk for each in sites_visible(user=user))


def report_subscribe(*, user, site: Site, frequency: str) -> ReportSubscription:
    """Subscribe ``user`` (checked with ``may_subscribe`` by the caller) to ``site``'s report; subscribing
    again turns a stopped subscription back on."""
    subscription, _ = ReportSubscription.objects.update_or_create(
        site=site, user=user, frequency=frequency, defaults={"is_active": True}
    )
    return subscription


def recipient_address(subscription: ReportSubscription) -> str:
    """Where the mail goes: the entered address, else the staff member's while they may still see
    the site ("" when they may not: removed as a member, deactivated, no longer staff, no address)."""
    if not subscription.user_id:
        return subscription.email
    user = subscription.user
    return user.email if user.email and may_subscribe(user=user, site=subscription.site) else ""


def shows_errors(subscription: ReportSubscription) -> bool:
    """Error titles may hold private data: staff see them only with the dashboard's error permission;
    an address an admin entered gets them (the admin chose who reads them)."""
    return not subscription.user_id or user_may(subscription.user, VIEW_ERRORS)


# --- Unsubscribing ------------------------------------------------------------------------------


def unsubscribe_token(subscription: ReportSubscription) -> str:
    """The signed id in the unsubscribe link: nothing to store, valid as long as SECRET_KEY (or one of
    SECRET_KEY_FALLBACKS) is, and the same in every mail of the subscription."""
    return signing.Signer(salt=UNSUBSCRIBE_SALT).sign(str(subscription.pk))


def unsubscribe_url(subscription: ReportSubscription) -> str:
    path = reverse("dashboard:report_unsubscribe", args=[unsubscribe_token(subscription)])
    return settings.BEACONS_BASE_URL.rstrip("/") + path


def report_unsubscribe(*, token: str) -> ReportSubscription | None:
    """Stop the subscription ``token`` names (again: nothing changes); None for a token that is not ours
    or a subscription that no longer exists."""
    try:
        pk = int(signing.Signer(salt=UNSUBSCRIBE_SALT).unsign(token))
    except (signing.BadSignature, ValueError):
        return None
    subscription = ReportSubscription.objects.select_related("site").filter(pk=pk).first()
    if subscription is not None and subscription.is_active:
        subscription.is_active = False
        subscription.save(update_fields=["is_active"])
    return subscription


# --- What a report says ----------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """One KPI: its value in words (as the dashboard's card shows it), the value before, the change."""

    label: str
    value: str
    previous: str
    change_percent: int | None
    lower_is_better: bool = False  # a bounce rate that falls is good news

    @property
    def improved(self) -> bool | None:
        """Whether the change is good news (None: no change to judge)."""
        if not self.change_percent:
            return None
        return (self.change_percent < 0) == self.lower_is_better


@dataclass(frozen=True)
class Row:
    """A page or source: hits in the period and their change on the period before."""

    text: str
    count: int
    change_percent: int | None

    @property
    def count_text(self) -> str:
        return f"{self.count:,}"


@dataclass
class Report:
    site: Site
    frequency: str
    period: Period
    previous_period: tuple[datetime, datetime]  # read in the site's zone (Period's properties use the active one)
    subject: str  # the type shown, "Page views"
    period_words: str  # "23–29 November 2026"
    previous_words: str
    dashboard_url: str
    figures: list[Figure] = field(default_factory=list)
    figure: dict | None = None  # the dashboard's main chart (Plotly JSON)
    top_pages: list[Row] = field(default_factory=list)
    top_sources: list[Row] | None = None  # None: the type keeps no source counters
    new_errors: list[Row] = field(default_factory=list)  # error group titles first seen, newest first
    new_errors_more: int = 0
    chart_png: bytes | None = None

    @property
    def title(self) -> str:
        return f"{FREQUENCY_WORDS[self.frequency]} report for {self.site}: {self.period_words}"


def _percent(change: float | None) -> int | None:
    return None if change is None else round(change * 100)


def _ratio(now: int, before: int) -> float | None:
    return (now - before) / before if before else None


def _rate_words(rate: float | None) -> str:
    return "–" if rate is None else f"{round(rate * 100)}%"


def _people_figures(site: Site, definition: BeaconDefinition, period: Period) -> list[Figure]:
    """Unique visitors, visits, bounce rate and visit duration: the dashboard's visitor cards."""
    previous_start, previous_end = period.previous_period
    figures = []
    try:
        now = visitors.visitors(site=site, definitions=[definition], start=period.start, end=period.totals_end)
        before = visitors.visitors(site=site, definitions=[definition], start=previous_start, end=previous_end)
        figures.append(
            Figure(
                "Unique visitors",
                f"{now.visitors:,}",
                f"{before.visitors:,}",
                _percent(_ratio(now.visitors, before.visitors)),
            )
        )
    except visitors.SketchesNotKept:
        pass
    found = visits.visits_totals(
        site=site, start=period.start, end=period.totals_end, previous_period=(previous_start, previous_end)
    )
    now, before = found.current, found.previous
    return figures + [
        Figure("Visits", f"{now.visits:,}", f"{before.visits:,}", _percent(found.change("visits"))),
        Figure(
            "Bounce rate",
            _rate_words(now.bounce_rate),
            _rate_words(before.bounce_rate),
            _percent(found.change("bounce_rate")),
            lower_is_better=True,
        ),
        Figure(
            "Visit duration",
            _duration_words(now.duration),
            _duration_words(before.duration),
            _percent(found.change("duration")),
        ),
    ]


def _rows(found) -> list[Row]:
    return [Row(row.identifier, row.count, _percent(row.change_ratio)) for row in found]


def report_build(*, site: Site, frequency: str, now: datetime) -> Report:
    """The report of ``site`` for the last whole week or month at ``now`` (no chart PNG yet)."""
    with site_zone_active(site):
        period = finished_period(frequency, now=now)
        previous_start, previous_end = period.previous_period
        tz = bucket_zone()
        first_day = period.start.astimezone(tz).date()
        last_day = bucket_before(period.end, G.DAY).astimezone(tz).date()
        params = {"site": site.domain, "range": "custom", "start": first_day.isoformat(), "end": last_day.isoformat()}
        # The dashboard's type (page views) and point size for these dates, read as it reads them.
        definitions = event_types.definitions_listed(limit=TYPE_CHOICES_LIMIT)
        _, state = dashboard_state(params={**params, "compare": "on"}, definitions=definitions, now=now, site=site)
        report = Report(
            site=site,
            frequency=frequency,
            period=period,
            previous_period=(previous_start, previous_end),
            subject=state.subject,
            period_words=period_label(period.start, period.end, G.DAY),
            previous_words=period_label(previous_start, previous_end, G.MONTH if frequency == "monthly" else G.DAY),
            dashboard_url=f"{settings.BEACONS_BASE_URL.rstrip('/')}{reverse('dashboard:index')}?{urlencode(params)}",
        )
        definition = state.definition
        report.new_errors = [
            Row(group.title, group.count, None)
            for group in error_groups.error_groups_new(
                site=site, start=period.start, end=period.end, limit=NEW_ERRORS_LIMIT
            )
        ]
        report.new_errors_more = error_groups.error_groups_new_count(
            site=site, start=period.start, end=period.end
        ) - len(report.new_errors)
        if definition is None:
            return report
        compared = (previous_start, previous_end)
        totals = counters.totals(
            site=site, definitions=[definition], start=period.start, end=period.totals_end, previous_period=compared
        )
        report.figures = [
            Figure(definition.name, f"{totals.current:,}", f"{totals.previous:,}", _percent(totals.change))
        ]
        if definition.kind == BeaconDefinition.Kind.PAGE_VIEW:
            report.figures += _people_figures(site, definition, period)
        points = counters.series(
            site=site, definitions=[definition], granularity=state.granularity, start=period.start, end=period.end
        )
        previous = counters.series(
            site=site, definitions=[definition], granularity=state.granularity, start=previous_start, end=previous_end
        )[: len(points)]
        report.figure = charts.series_figure(
            name=state.subject,
            granularity=state.granularity,
            points=points,
            previous=previous,
            colour=charts.type_colour(definition.slug),
        )
        report.top_pages = _rows(
            counters.identifiers_compared(
                site=site,
                definitions=[definition],
                start=period.start,
                end=period.totals_end,
                previous_period=compared,
                limit=TOP_ROWS,
            )
        )
        if "source" in definition.dimension_codes:
            report.top_sources = _rows(
                counters.breakdown(
                    site=site,
                    definition=definition,
                    dimension="source",
                    start=period.start,
                    end=period.totals_end,
                    limit=TOP_ROWS,
                    compare=period.comparison(granularity_codes=definition.granularity_codes),
                    total=totals.current,
                )
            )
    return report


# --- The chart as a PNG ---------------------------------------------------------------------------


def figure_for_image(figure: dict, *, width: int = CHART_WIDTH) -> dict:
    """``figure`` with its axis labels thinned as charts.js thins them in a browser ``width`` wide."""
    layout = dict(figure.get("layout", {}))
    for key, axis in list(layout.items()):
        if not key.startswith("xaxis") or not isinstance(axis, dict) or axis.get("tickmode") != "array":
            continue
        values, texts = axis.get("tickvals") or [], axis.get("ticktext") or []
        longest = max((len(str(text)) for text in texts), default=1)
        fits = max(int((width - TICK_SIDE_PX) // (longest * TICK_CHAR_PX + TICK_GAP_PX)), 1)
        stride = max(ceil(len(values) / fits), 1)
        layout[key] = {**axis, "tickvals": values[::stride], "ticktext": texts[::stride]}
    layout["height"] = CHART_HEIGHT
    layout["width"] = width
    return {**figure, "layout": layout}


_renderer_open = False  # inside chart_renderer: kaleido's shared server draws (it takes no browser options)


@contextmanager
def chart_renderer() -> Iterator[None]:
    """One Chromium for every chart drawn inside (kaleido's shared server); without it each chart
    starts its own (a few seconds)."""
    global _renderer_open
    import kaleido

    kaleido.start_sync_server(path=settings.BEACONS_CHROMIUM, mathjax=False, silence_warnings=True)
    _renderer_open = True
    try:
        yield
    finally:
        _renderer_open = False
        kaleido.stop_sync_server(silence_warnings=True)


def chart_png(figure: dict) -> bytes:
    """``figure`` drawn to PNG by kaleido in the Chromium at BEACONS_CHROMIUM (kaleido would otherwise
    look for BROWSER_PATH, then a Chrome on PATH, then one it downloaded). Raises when it cannot."""
    import kaleido

    opts = {"format": "png", "width": CHART_WIDTH, "height": CHART_HEIGHT, "scale": CHART_SCALE}
    if _renderer_open:
        return kaleido.calc_fig_sync(figure_for_image(figure), opts=opts)
    kopts = {"path": settings.BEACONS_CHROMIUM, "mathjax": False}
    return kaleido.calc_fig_sync(figure_for_image(figure), opts=opts, kopts=kopts)


def report_chart_draw(report: Report) -> None:
    """Give ``report`` its chart PNG; a chart that cannot be drawn (no Chromium) leaves the mail without
    one, logged, rather than leaving the mail unsent."""
    if report.figure is None:
        return
    for attempt in range(1, CHART_ATTEMPTS + 1):
        try:
            with site_zone_active(report.site):
                report.chart_png = chart_png(report.figure)
            return
        except Exception:
            if attempt == CHART_ATTEMPTS:
                logger.exception("report chart of %s could not be drawn; sending the report without it", report.site)


# kaleido's page in Chromium may be asked to draw before its scripts have loaded, on a busy machine
# ("kaleido_scopes is not defined", seen in a test run under load): a second attempt draws it.
CHART_ATTEMPTS = 2


# --- The mail -----------------------------------------------------------------------------------


def report_message(*, report: Report, subscription: ReportSubscription, to: str) -> EmailMultiAlternatives:
    """The mail: a plain-text part and an HTML part (the chart inline, by Content-ID), in
    multipart/related when there is a chart, with List-Unsubscribe headers (one click, RFC 8058)."""
    unsubscribe = unsubscribe_url(subscription)
    context = {
        "report": report,
        "unsubscribe_url": unsubscribe,
        "show_errors": shows_errors(subscription),
        "chart_cid": CHART_CID if report.chart_png else "",
        "chart_width": CHART_WIDTH,
        "chart_height": CHART_HEIGHT,
    }
    message = EmailMultiAlternatives(
        subject=report.title,
        body=render_to_string("dashboard/reports/email.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        headers={"List-Unsubscribe": f"<{unsubscribe}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
    )
    message.attach_alternative(render_to_string("dashboard/reports/email.html", context), "text/html")
    if report.chart_png:
        message.mixed_subtype = "related"  # the image belongs to the HTML, it is no attachment
        image = MIMEImage(report.chart_png, "png")
        image.add_header("Content-ID", f"<{CHART_CID}>")
        image.add_header("Content-Disposition", "inline", filename="chart.png")
        message.attach(image)
    return message


# --- Sending what is due ----------------------------------------------------------------------


@dataclass
class ReportsRun:
    sent: int = 0
    failed: int = 0
    skipped: int = 0  # due, but nobody to mail (a staff member who may no longer see the site)
    due: list[tuple[ReportSubscription, str]] = field(default_factory=list)  # (subscription, address)


def due_period_start(subscription: ReportSubscription, *, now: datetime) -> datetime | None:
    """The start of the period ``subscription`` is due a report for at ``now``, or None: the last
    finished period of its frequency in the site's time zone, once it ended after the subscription
    was made (subscribing mid-week starts with the week under way)."""
    with site_zone_active(subscription.site):
        period = finished_period(subscription.frequency, now=now)
    return period.start if period.end > subscription.created_at else None


def subscriptions_due(*, now: datetime) -> list[tuple[ReportSubscription, datetime]]:
    """Active subscriptions of active sites with a finished period not yet claimed. Two queries."""
    subscriptions = list(
        ReportSubscription.objects.filter(is_active=True, site__is_active=True)
        .select_related("site", "user")
        .order_by("site_id", "frequency", "pk")
    )
    claimed = set(
        ReportSent.objects.filter(subscription__in=[s.pk for s in subscriptions]).values_list(
            "subscription_id", "period_start"
        )
    )
    due = []
    for subscription in subscriptions:
        start = due_period_start(subscription, now=now)
        if start is not None and (subscription.pk, start) not in claimed:
            due.append((subscription, start))
    return due


def _claim(subscription: ReportSubscription, period_start: datetime) -> ReportSent | None:
    """Commit the claim on (subscription, period); None when another run holds it already."""
    try:
        with transaction.atomic():
            return ReportSent.objects.create(subscription=subscription, period_start=period_start)
    except IntegrityError:
        return None


def reports_send(*, now: datetime | None = None, dry_run: bool = False, draw_charts: bool = True) -> ReportsRun:
    """Send every report due at ``now`` (default: now) once. One report (and one chart) is built per
    site, frequency and period, and mailed to each of its subscribers. ``dry_run``: only say what
    is due, claiming and sending nothing."""
    now = now or timezone.now()
    run = ReportsRun()
    due = subscriptions_due(now=now)
    reports: dict[tuple[int, str, datetime], Report | None] = {}
    with chart_renderer() if draw_charts and due and not dry_run else nullcontext():
        for subscription, period_start in due:
            address = recipient_address(subscription)
            if not address:
                run.skipped += 1
                continue
            run.due.append((subscription, address))
            if dry_run:
                continue
            key = (subscription.site_id, subscription.frequency, period_start)
            if key not in reports:
                try:
                    reports[key] = report_build(site=subscription.site, frequency=subscription.frequency, now=now)
                except Exception:  # one site's failure must not hold back every other site's reports
                    logger.exception(
                        "the %s report of %s could not be built", subscription.frequency, subscription.site
                    )
                    reports[key] = None
                if draw_charts and reports[key]:
                    report_chart_draw(reports[key])
            if reports[key] is None:
                run.failed += 1
                continue
            message = report_message(report=reports[key], subscription=subscription, to=address)
            claim = _claim(subscription, period_start)
            if claim is None:
                continue
            try:
                message.send()
            except Exception:
                logger.exception("report %s could not be sent; the next run retries it", subscription)
                claim.delete()
                run.failed += 1
                continue
            ReportSent.objects.filter(pk=claim.pk).update(sent_at=timezone.now())
            run.sent += 1
    return run
