"""Error events: fingerprints, grouping into ErrorGroup, and status changes by staff.

A fingerprint is the error message with its variable parts masked (numbers, hex, UUIDs,
URLs, quoted values) plus the top stack frame (file and function; line and column
dropped), so the same bug reported from many pages, builds and visitors is one group.
A client may send ``meta.fingerprint`` to choose the grouping itself.

The masked message is the group's ``title``: its grouping key, never shown as its name.
Staff read ``message``, the latest occurrence's message as sent (one line, cut short).
"""

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from urllib.parse import urlsplit

from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from beacons.errors import alerts
from beacons.models import BeaconDefinition, BeaconEvent, ErrorGroup

TITLE_MAX_LENGTH = ErrorGroup._meta.get_field("title").max_length
CULPRIT_MAX_LENGTH = ErrorGroup._meta.get_field("culprit").max_length

# Masks, applied in this order (a URL holds numbers, a quoted value may hold a URL).
_MASKS = [
    (re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>()]*", re.I), "<url>"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I), "<uuid>"),
    (re.compile(r"'[^']*'|\"[^\"]*\"|`[^`]*`|‘[^’]*’|“[^”]*”"), "<str>"),
    (re.compile(r"\b0x[0-9a-f]+\b|\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{8,}\b", re.I), "<hex>"),
    (re.compile(r"(?<![A-Za-z_])[-+]?\d+(?:[.,]\d+)*(?:e[-+]?\d+)?(?![A-Za-z_])", re.I), "<num>"),
]
_UNCAUGHT = re.compile(r"^(?:uncaught\s+(?:exception:\s*)?)+", re.I)
_LINE_COL = re.compile(r"(?::\d+){1,2}$")
_CHROME_FRAME = re.compile(r"^\s*at\s+(?:(?P<function>[^()]*?)\s+\((?P<location>.*)\)|(?P<bare>\S.*?))\s*$")
_GECKO_FRAME = re.compile(r"^\s*(?P<function>[^@\s][^@]*|)@(?P<location>.+?:\d+(?::\d+)?)\s*$")
_BUILD_HASH = re.compile(r"(?<=[.-])[0-9a-f]{6,}(?=[.-])", re.I)  # app.3f9a8c7d.js, chunk-1a2b3c4d.js
_NOT_APP_CODE = {"", "<anonymous>", "native", "[native code]", "eval code"}


@dataclass(frozen=True, slots=True)
class Signature:
    fingerprint: str  # 64 hex digits
    title: str  # the normalised message: part of the grouping key
    culprit: str  # the top frame: "function (file)"
    message: str = field(default="", compare=False)  # as sent, on one line: what staff read; not part of the group


def _text(value: object) -> str:
    """Attacker-sent meta values as text: strings as they are, anything else as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def message_one_line(message: str) -> str:
    """The message as sent, whitespace (newlines included) collapsed and cut to the title length."""
    return " ".join(message[: TITLE_MAX_LENGTH * 2].split())[:TITLE_MAX_LENGTH]


def message_normalise(message: str) -> str:
    """The message with variable parts masked and whitespace collapsed: the group's title."""
    text = _UNCAUGHT.sub("", " ".join(message[: TITLE_MAX_LENGTH * 2].split()))  # bounded work per event
    for pattern, mask in _MASKS:
        text = pattern.sub(mask, text)
    return text[:TITLE_MAX_LENGTH] or "(no message)"


def _file_normalise(location: str) -> str:
    location = _LINE_COL.sub("", location.strip())
    if "://" in location:
        parts = urlsplit(location)
        location = parts.path or parts.netloc  # the same bundle from a CDN or the origin is one file
    else:
        location = location.split("?", 1)[0].split("#", 1)[0]
    return _BUILD_HASH.sub("<hash>", location)


def top_frame(stack: str) -> tuple[str, str]:
    """(file, function) of the first frame of a Chrome/V8 or Firefox/Safari stack; ("", "") if none.

    Chrome: ``at fn (https://x/app.js:10:5)`` or ``at https://x/app.js:10:5``;
    Firefox and Safari: ``fn@https://x/app.js:10:5`` or ``@https://x/app.js:10:5``.
    """
    frames: list[tuple[str, str]] = []
    lines = stack.splitlines()[:100]
    if any(_CHROME_FRAME.match(line) for line in lines):  # then a message line with "@" is no frame
        for match in filter(None, map(_CHROME_FRAME.match, lines)):
            function = (match["function"] or "").removeprefix("async ").strip()
            frames.append((_file_normalise(match["location"] or match["bare"]), function))
    else:
        for match in filter(None, map(_GECKO_FRAME.match, lines)):
            frames.append((_file_normalise(match["location"]), match["function"].strip()))
    # The first frame in the page's own code: built-ins like Array.map say nothing about the bug.
    return next((frame for frame in frames if frame[0] not in _NOT_APP_CODE), frames[0] if frames else ("", ""))


def error_signature(*, meta: dict) -> Signature:
    """Fingerprint, title and culprit of one error event's meta (as the client sent it)."""
    message = _text(meta.get("message"))
    title = message_normalise(message)
    file, function = top_frame(_text(meta.get("stack")))
    if not file and not function and meta.get("source"):
        file = _file_normalise(_text(meta.get("source")))  # window.onerror without an Error object
    culprit = (f"{function} ({file})" if function and file else function or file)[:CULPRIT_MAX_LENGTH]
    override = meta.get("fingerprint")
    key = f"client\n{_text(override)}" if override not in (None, "", []) else f"{title}\n{file}\n{function}"
    return Signature(
        hashlib.sha256(key.encode("utf-8", "replace")).hexdigest(), title, culprit, message_one_line(message)
    )


@dataclass
class _Batch:
    """The events of one request that share a fingerprint."""

    signature: Signature
    events: list[BeaconEvent]
    first_seen: datetime
    last_seen: datetime
    message: str  # the latest event's


def _as_datetime(value) -> datetime | None:
    # RETURNING skips Django's converters: SQLite gives naive UTC (text or datetime), PostgreSQL aware.
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else parse_datetime(value)
    return moment.replace(tzinfo=UTC) if timezone.is_naive(moment) else moment


_TABLE = ErrorGroup._meta.db_table
_RESOLVED = ErrorGroup.Status.RESOLVED.value
_UPSERT = f"""
INSERT INTO {_TABLE} AS g (site_id, definition_id, fingerprint, title, message, culprit, first_seen, last_seen, count, status,
    window_started_at, window_count, alert_reason, alert_attempts, alert_failed_handlers)
VALUES {{values}}
ON CONFLICT (site_id, definition_id, fingerprint) DO UPDATE SET
    count = g.count + EXCLUDED.count,
    message = CASE WHEN EXCLUDED.last_seen >= g.last_seen THEN EXCLUDED.message ELSE g.message END,
    first_seen = CASE WHEN EXCLUDED.first_seen < g.first_seen THEN EXCLUDED.first_seen ELSE g.first_seen END,
    last_seen = CASE WHEN EXCLUDED.last_seen > g.last_seen THEN EXCLUDED.last_seen ELSE g.last_seen END,
    window_count = CASE WHEN g.window_started_at IS NULL OR g.window_started_at <= %s
        THEN EXCLUDED.count ELSE g.window_count + EXCLUDED.count END,
    window_started_at = CASE WHEN g.window_started_at IS NULL OR g.window_started_at <= %s
        THEN EXCLUDED.window_started_at ELSE g.window_started_at END,
    status = CASE WHEN g.status = '{_RESOLVED}' THEN 'unresolved' ELSE g.status END,
    resolved_at = CASE WHEN g.status = '{_RESOLVED}' THEN NULL ELSE g.resolved_at END,
    status_changed_by_id = CASE WHEN g.status = '{_RESOLVED}' THEN NULL ELSE g.status_changed_by_id END,
    status_changed_at = CASE WHEN g.status = '{_RESOLVED}' THEN EXCLUDED.last_seen ELSE g.status_changed_at END
RETURNING id, fingerprint, count, status, status_changed_at, status_changed_by_id, last_alerted_at, window_count
"""


@dataclass(frozen=True, slots=True)
class _Upserted:
    id: int
    fingerprint: str
    count: int
    status: str
    status_changed_at: datetime | None
    status_changed_by_id: int | None
    last_alerted_at: datetime | None
    window_count: int


def _groups_upsert(
    *, site_id: int, definition: BeaconDefinition, batches: Sequence[_Batch], window: timedelta
) -> list[_Upserted]:
    """Add each batch to its group of the site (created on first sight; a resolved group reopens) in one statement."""
    adapt = connection.ops.adapt_datetimefield_value
    params: list = []
    for batch in batches:  # sorted by fingerprint: concurrent writers lock rows in the same order
        s = batch.signature
        first, last = adapt(batch.first_seen), adapt(batch.last_seen)
        params += [
            site_id,
            definition.pk,
            s.fingerprint,
            s.title,
            batch.message,
            s.culprit,
            first,
            last,
            len(batch.events),
            last,
        ]
        params += [len(batch.events)]
    window_ends_before = adapt(max(b.last_seen for b in batches) - window)
    values = ",".join(["(%s,%s,%s,%s,%s,%s,%s,%s,%s,'unresolved',%s,%s,'',0,'[]')"] * len(batches))
    with connection.cursor() as cursor:
        cursor.execute(_UPSERT.format(values=values), [*params, window_ends_before, window_ends_before])
        rows = cursor.fetchall()
    return [
        _Upserted(row[0], row[1], row[2], row[3], _as_datetime(row[4]), row[5], _as_datetime(row[6]), row[7])
        for row in rows
    ]


def error_events_group(*, events: Sequence[BeaconEvent]) -> None:
    """Attach each (unsaved) error event to its ErrorGroup; call inside the transaction that saves them.

    One upsert statement per site and error definition in the batch (one, in practice), plus one
    small UPDATE for a group whose alert is due: at most once per group per cooldown, so
    an error storm costs nothing more. Alerts are queued on the group row and sent after
    the transaction commits (see ``beacons.errors.alerts``); nothing here sends mail or waits
    on the network.
    """
    by_series: dict[tuple[int, int], dict[str, _Batch]] = {}  # (site_id, definition_id): batches
    definitions: dict[int, BeaconDefinition] = {}
    for event in events:
        signature = error_signature(meta=event.meta)
        definitions[event.definition.pk] = event.definition
        batches = by_series.setdefault((event.site_id, event.definition.pk), {})
        batch = batches.get(signature.fingerprint)
        if batch is None:
            batches[signature.fingerprint] = _Batch(
                signature, [event], event.received_at, event.received_at, signature.message
            )
        else:
            batch.events.append(event)
            batch.first_seen = min(batch.first_seen, event.received_at)
            if event.received_at >= batch.last_seen:
                batch.last_seen, batch.message = event.received_at, signature.message

    due: dict[tuple[str, datetime, timedelta], list[int]] = {}  # (reason, now, cooldown): group ids
    suppressed = alerts.alerts_are_suppressed()
    for (site_id, definition_id), batches_by_fingerprint in sorted(by_series.items()):
        definition = definitions[definition_id]
        policy = alerts.AlertPolicy.for_definition(definition)
        batches = [batches_by_fingerprint[key] for key in sorted(batches_by_fingerprint)]
        for row in _groups_upsert(site_id=site_id, definition=definition, batches=batches, window=policy.window):
            batch = batches_by_fingerprint[row.fingerprint]
            for event in batch.events:
                event.error_group_id = row.id
            if suppressed:
                continue
            reason = alerts.alert_reason(
                policy=policy,
                status=row.status,
                last_alerted_at=row.last_alerted_at,
                now=batch.last_seen,
                # Counts only grow, so only the insert returns exactly ours.
                created=row.count == len(batch.events),
                # This statement reopened the group: it stamped the status change with our time and no user.
                reopened=row.status_changed_by_id is None and row.status_changed_at == batch.last_seen,
                window_count=row.window_count,
            )
            if reason:
                due.setdefault((reason, batch.last_seen, policy.cooldown), []).append(row.id)
    claimed = []
    for (reason, now, cooldown), group_ids in due.items():
        if alerts.alerts_claim(group_ids=group_ids, reason=reason, now=now, cooldown=cooldown):
            claimed += group_ids  # the sender skips any that lost the claim: nothing queued on them
    if claimed:
        transaction.on_commit(partial(alerts.alerts_dispatch, group_ids=claimed))


def error_group_status_set(*, group: ErrorGroup, status: str, user) -> ErrorGroup:
    """Resolve, ignore or reopen a group, recording who and when. A resolved group that
    happens again reopens by itself (and alerts as a regression)."""
    if status not in ErrorGroup.Status.values:
        raise ValueError(f"unknown error status {status!r}")
    now = timezone.now()
    group.status = status
    group.status_changed_at = now
    group.status_changed_by = user if getattr(user, "is_authenticated", False) else None
    group.resolved_at = now if status == ErrorGroup.Status.RESOLVED else None
    group.save(update_fields=["status", "status_changed_at", "status_changed_by", "resolved_at"])
    return group
