"""Error alerts: deciding and claiming at ingest, delivering after the response.

Deciding (``alert_reason``) happens at ingest from what the group upsert of ``beacons.errors.grouping``
answered, with no extra query. A due alert is claimed by one conditional UPDATE that stamps
``last_alerted_at`` (the cooldown: at most one alert per group per cooldown, however many
hits) and queues the reason on the row (``alert_reason``). After the transaction commits,
a background thread delivers the queued alerts; ``manage.py beacons_alerts`` delivers
whatever is left (a process that stopped, a retry that is due).

Delivery is the ``error_alert`` signal, then each handler in ``BEACONS_ALERT_HANDLERS``
called as ``handler(alert)`` with the ``Alert`` (the shipped ones are in
``beacons.errors.handlers``). A handler that raises is logged and retried once,
alone, ``RETRY_SECONDS`` later (or at the next ``beacons_alerts`` run), then given up.
An alert is taken by one sender before it is sent, so it is sent at most once.
"""

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import OperationalError, connections, models
from django.urls import NoReverseMatch, reverse
from django.utils.http import urlencode
from django.utils.module_loading import import_string

from beacons.models import BeaconDefinition, ErrorGroup
from beacons.signals import error_alert

logger = logging.getLogger("beacons")

RETRY_SECONDS = 60
DATABASE_BUSY_PAUSES = (0.1, 0.5, 2.0, None)  # seconds between tries of a background delivery
SUBJECT_MAX_LENGTH = 180
AFFECTED_PAGES_SHOWN = 5


class Reason(models.TextChoices):
    NEW = "new", "New error"
    REGRESSION = "regression", "Regression"
    THRESHOLD = "threshold", "Error spike"


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    on_new: bool
    on_regression: bool
    threshold: int  # more than this many occurrences within the window alert; 0: never
    window: timedelta
    cooldown: timedelta

    @classmethod
    def for_definition(cls, definition: BeaconDefinition) -> "AlertPolicy":
        """The definition's alert settings; empty numbers take the site's BEACONS_ALERT_* defaults,
        and BEACONS_ALERT_ON_NEW / _ON_REGRESSION = false switch those alerts off site-wide."""

        def number(value: int | None, default: int) -> int:
            return default if value is None else value

        return cls(
            on_new=definition.alert_on_new and settings.BEACONS_ALERT_ON_NEW,
            on_regression=definition.alert_on_regression and settings.BEACONS_ALERT_ON_REGRESSION,
            threshold=number(definition.alert_threshold, settings.BEACONS_ALERT_THRESHOLD),
            window=timedelta(
                minutes=max(1, number(definition.alert_window_minutes, settings.BEACONS_ALERT_WINDOW_MINUTES))
            ),
            cooldown=timedelta(
                minutes=number(definition.alert_cooldown_minutes, settings.BEACONS_ALERT_COOLDOWN_MINUTES)
            ),
        )


# --- deciding and claiming (called at ingest) -----------------------------------------------


def alert_reason(
    *,
    policy: AlertPolicy,
    status: str,
    last_alerted_at: datetime | None,
    now: datetime,
    created: bool,
    reopened: bool,
    window_count: int,
) -> str:
    """Why a group just written at ``now`` should alert ("" for no reason): an ignored group never
    does, nor one that alerted within the cooldown; else new, regression, then threshold."""
    if status == ErrorGroup.Status.IGNORED:
        return ""
    if last_alerted_at is not None and last_alerted_at > now - policy.cooldown:
        return ""
    if created and policy.on_new:
        return Reason.NEW
    if reopened and not created and policy.on_regression:
        return Reason.REGRESSION
    if policy.threshold and window_count > policy.threshold:
        return Reason.THRESHOLD
    return ""


_suppressed: ContextVar[bool] = ContextVar("beacons_alerts_suppressed", default=False)


@contextmanager
def alerts_suppressed() -> Iterator[None]:
    """Record errors without alerting, e.g. while loading demo data or importing history."""
    token = _suppressed.set(True)
    try:
        yield
    finally:
        _suppressed.reset(token)


def alerts_are_suppressed() -> bool:
    return _suppressed.get()


def alerts_claim(*, group_ids: list[int], reason: str, now: datetime, cooldown: timedelta) -> int:
    """Queue an alert for each group unless it alerted within ``cooldown`` or is ignored; one UPDATE.

    Returns how many were claimed. Under concurrency only one writer wins: the condition is
    checked by the UPDATE itself, on rows the ingest transaction already holds locked.
    """
    return (
        ErrorGroup.objects.filter(pk__in=group_ids)
        .exclude(status=ErrorGroup.Status.IGNORED)
        .exclude(last_alerted_at__gt=now - cooldown)
        .update(last_alerted_at=now, alert_reason=reason, alert_attempts=0, alert_failed_handlers=[])
    )


# --- delivering (after the response) --------------------------------------------------------

_threads: list[threading.Thread] = []
_timers: list[threading.Timer] = []
_threads_lock = threading.Lock()


@dataclass
class AlertRun:
    sent: int = 0  # alerts every handler accepted
    failed: int = 0  # alerts with at least one handler that raised
    retry_ids: list[int] = field(default_factory=list)  # groups whose failed handlers get one more try


def alerts_dispatch(*, group_ids: list[int]) -> None:
    """Deliver these groups' queued alerts in a background thread (called on commit)."""
    thread = threading.Thread(
        target=_send_in_background, kwargs={"group_ids": group_ids}, daemon=True, name="beacons-alerts"
    )
    with _threads_lock:
        _threads[:] = [t for t in _threads if t.is_alive()]
        _threads.append(thread)
    thread.start()


def _send_in_background(*, group_ids: list[int]) -> None:
    try:
        for pause in DATABASE_BUSY_PAUSES:
            try:
                run = alerts_send_pending(group_ids=group_ids)
                break
            except OperationalError:  # e.g. SQLite busy with the next request's write: sending is safe to repeat
                if pause is None:
                    raise
                time.sleep(pause)
        if run.retry_ids:
            timer = threading.Timer(RETRY_SECONDS, alerts_dispatch, kwargs={"group_ids": run.retry_ids})
            timer.daemon = True
            with _threads_lock:
                _timers[:] = [t for t in _timers if t.is_alive()]
                _timers.append(timer)
            timer.start()
    except Exception:
        logger.exception("sending error alerts failed; `manage.py beacons_alerts` sends what is left")
    finally:
        connections.close_all()  # this thread's own connections


def alerts_wait(*, timeout: float = 10.0) -> None:
    """Wait for background deliveries in progress (tests, commands that must not exit early)."""
    deadline = time.monotonic() + timeout
    with _threads_lock:
        running = list(_threads)
    for thread in running:
        thread.join(max(0.0, deadline - time.monotonic()))


def alerts_retries_cancel() -> None:
    """Drop retries scheduled in this process; ``beacons_alerts`` still sends them later."""
    with _threads_lock:
        for timer in _timers:
            timer.cancel()
        _timers.clear()


def alerts_send_pending(*, group_ids: Iterable[int] | None = None) -> AlertRun:
    """Deliver the queued alerts (all, or those of ``group_ids``): first attempts and retries.

    Safe to run from several processes at once: a sender takes each alert (clears its
    queued reason) before sending it.
    """
    pending = ErrorGroup.objects.select_related("site", "definition").exclude(alert_reason="").order_by("pk")
    if group_ids is not None:
        pending = pending.filter(pk__in=list(group_ids))
    run = AlertRun()
    for group in list(pending):  # read all first: no statement stays open while handlers run
        reason, attempts = group.alert_reason, group.alert_attempts
        alert = alert_read(group=group, reason=reason)  # before taking it: a busy database leaves it queued
        taken = ErrorGroup.objects.filter(pk=group.pk, alert_reason=reason, alert_attempts=attempts)
        if not taken.update(alert_reason=""):
            continue  # another sender has it
        retrying = attempts > 0
        failed = _deliver(alert=alert, retrying=retrying)
        if not failed:
            run.sent += 1
            continue
        run.failed += 1
        if retrying:
            logger.error("gave up alerting error group %s (%s): %s failed twice", group.pk, reason, ", ".join(failed))
        elif ErrorGroup.objects.filter(pk=group.pk, alert_reason="").update(
            alert_reason=reason, alert_attempts=1, alert_failed_handlers=failed
        ):
            run.retry_ids.append(group.pk)
    return run


def _deliver(*, alert: "Alert", retrying: bool) -> list[str]:
    """Send the signal (first attempt only) and call the handlers; returns the handlers that raised."""
    group, reason = alert.group, alert.reason
    if not retrying:
        for receiver, response in error_alert.send_robust(sender=ErrorGroup, group=group, reason=reason):
            if isinstance(response, Exception):
                logger.error("error_alert receiver %r raised", receiver, exc_info=response)
    handlers = group.alert_failed_handlers if retrying else list(settings.BEACONS_ALERT_HANDLERS)
    failed = []
    for path in handlers:
        try:
            import_string(path)(alert)
        except Exception:
            then = "giving up" if retrying else f"retrying once in {RETRY_SECONDS} s"
            logger.exception("alert handler %s failed for error group %s (%s); %s", path, group.pk, reason, then)
            failed.append(path)
    return failed


# --- what an alert says ----------------------------------------------------------------------


def one_line(text: object, limit: int) -> str:
    """Text for a header or subject: whitespace (newlines included) collapsed, cut to ``limit``."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def group_url(group: ErrorGroup) -> str:
    """The absolute address of the group's page on the staff dashboard, on its site (admin if no dashboard)."""
    try:
        path = reverse("dashboard:error_detail", args=[group.pk]) + "?" + urlencode({"site": group.site.domain})
    except NoReverseMatch:
        path = reverse("admin:beacons_errorgroup_change", args=[group.pk])
    return settings.BEACONS_BASE_URL.rstrip("/") + path


@dataclass(frozen=True)
class Alert:
    """One alert as every handler receives it: the group, why, and what the alert says."""

    group: ErrorGroup
    reason: str
    reason_label: str
    message: str  # the latest occurrence's message as sent (the title is the masked one)
    stack: str
    page: str  # the latest occurrence's page
    pages: list[tuple[str, int]]  # most affected pages with occurrence counts
    window_minutes: int
    url: str
    subject: str


def alert_read(*, group: ErrorGroup, reason: str) -> Alert:
    """Everything a handler shows about the alert of ``group`` (two queries, read once per delivery)."""
    from beacons.queries.error_groups import error_occurrences, error_pages

    latest = next(iter(error_occurrences(group=group, limit=1)), None)
    meta = latest.meta if latest else {}
    message = meta.get("message") if isinstance(meta.get("message"), str) else ""
    stack = meta.get("stack") if isinstance(meta.get("stack"), str) else ""
    page = latest.identifier if latest else ""
    policy = AlertPolicy.for_definition(group.definition)
    window_minutes = int(policy.window.total_seconds() // 60)
    label = Reason(reason).label
    if reason == Reason.THRESHOLD:
        label = f"Error spike ({group.window_count:,} in {window_minutes} min)"
    where = f" on {page}" if page else ""
    subject = one_line(f"[Beacons] {label}{where}: {message or group.headline}", SUBJECT_MAX_LENGTH)
    return Alert(
        group=group,
        reason=reason,
        reason_label=Reason(reason).label,
        message=message or group.headline,
        stack=stack,
        page=page,
        pages=error_pages(group=group, limit=AFFECTED_PAGES_SHOWN),
        window_minutes=window_minutes,
        url=group_url(group),
        subject=subject,
    )
