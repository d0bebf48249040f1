"""The alert handlers that ship: email (to the alert audience) and a JSON webhook.

Each is a dotted path for ``BEACONS_ALERT_HANDLERS``, called as ``handler(alert)`` with a
``beacons.errors.alerts.Alert`` after the alert is claimed; a handler that raises is retried once.
"""

import json
import logging
import re
import urllib.request
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.serializers.json import DjangoJSONEncoder
from django.template.loader import render_to_string

from beacons.errors.alerts import Alert
from beacons.models import BeaconDefinition

logger = logging.getLogger("beacons")

WEBHOOK_TIMEOUT_SECONDS = 5


@dataclass(frozen=True, slots=True)
class AlertAudience:
    addresses: list[str]
    source: str  # where the addresses come from, in words ("" when nobody will be told)


def alert_audience(*, definition: BeaconDefinition) -> AlertAudience:
    """Who error alerts of ``definition`` are emailed to, and why: the type's own addresses, else
    BEACONS_ALERT_EMAILS, else ADMINS, else the active superusers' addresses (so a fresh install
    tells someone). One query, only in the last case."""
    from django.contrib.auth import get_user_model

    listed = [address.strip() for address in re.split(r"[,;\n]", definition.alert_emails or "") if address.strip()]
    if listed:
        return AlertAudience(listed, "this event type's alert addresses")
    if settings.BEACONS_ALERT_EMAILS:
        return AlertAudience(list(settings.BEACONS_ALERT_EMAILS), "BEACONS_ALERT_EMAILS")
    admins = [admin[1] if isinstance(admin, (list, tuple)) else admin for admin in settings.ADMINS]
    if admins:
        return AlertAudience(admins, "ADMINS")
    superusers = (
        get_user_model()
        .objects.filter(is_superuser=True, is_active=True)
        .exclude(email="")
        .order_by("pk")
        .values_list("email", flat=True)
    )
    addresses = list(dict.fromkeys(superusers))
    return AlertAudience(addresses, "the superusers' addresses (no alert address is set)" if addresses else "")


def alert_recipients(*, definition: BeaconDefinition) -> list[str]:
    """The addresses error alerts of ``definition`` are emailed to (see ``alert_audience``)."""
    return alert_audience(definition=definition).addresses


def alert_emails_on() -> bool:
    return "beacons.errors.handlers.email_handler" in settings.BEACONS_ALERT_HANDLERS


def email_handler(alert: Alert) -> None:
    """Email the alert (plain text and HTML) to the definition's recipients (see alert_recipients)."""
    group = alert.group
    recipients = alert_recipients(definition=group.definition)
    if not recipients:
        logger.warning(
            "error alert for group %s not emailed: set BEACONS_ALERT_EMAILS or ADMINS, or give a superuser an email address",
            group.pk,
        )
        return
    context = {"alert": alert, "group": group}
    message = EmailMultiAlternatives(
        subject=alert.subject,
        body=render_to_string("beacons/email/error_alert.txt", context),
        to=recipients,
    )
    message.attach_alternative(render_to_string("beacons/email/error_alert.html", context), "text/html")
    message.send()


def webhook_handler(alert: Alert) -> None:
    """POST the alert as JSON to BEACONS_ALERT_WEBHOOK_URL (a chat or incident tool); raises on
    a network error or a non-2xx answer, so the alert is retried once."""
    url = settings.BEACONS_ALERT_WEBHOOK_URL
    if not url:
        logger.warning("webhook_handler is configured but BEACONS_ALERT_WEBHOOK_URL is empty")
        return
    group = alert.group
    body = {
        "reason": alert.reason,
        "text": alert.subject,
        "url": alert.url,
        "group": {
            "id": group.pk,
            "definition": group.definition.slug,
            "title": group.headline,  # the latest message, as staff read it
            "grouped_as": group.title,  # the masked message: the grouping key
            "culprit": group.culprit,
            "status": group.status,
            "count": group.count,
            "first_seen": group.first_seen,
            "last_seen": group.last_seen,
        },
        "message": alert.message,
        "page": alert.page,
        "pages": [{"page": page, "count": count} for page, count in alert.pages],
    }
    request = urllib.request.Request(
        url,
        data=json.dumps(body, cls=DjangoJSONEncoder).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "Beacons error alerts"},
    )
    with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:
        response.read(65536)
