"""Visitor keys without storing who the visitor is (Plausible's model).

A visitor key is sha256(daily salt + IP + user agent). The salt is random, changes every
day, and salts older than two days are deleted, so yesterday's keys cannot be linked to
today's and no key can be turned back into an address. The IP address itself is never
stored anywhere.
"""

import hashlib
import secrets
from datetime import date, timedelta

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.utils import timezone

from .models import DailySalt

_salt_cache: dict[date, str] = {}


def client_ip(meta: dict) -> str:
    header = settings.BEACONS_CLIENT_IP_HEADER
    if header and meta.get(header):
        return meta[header].split(",")[0].strip()
    return meta.get("REMOTE_ADDR", "")


def salt_for_today() -> str:
    today = timezone.now().date()
    salt = _salt_cache.get(today)
    if salt is None:
        try:
            salt = _salt_load_or_create(today)
        except (OperationalError, InterfaceError):
            # Database unreachable: keep hashing with the newest salt this process knows (a
            # temporary one, never stored, if none) and try the database again next time.
            if not _salt_cache:
                _salt_cache[date.min] = secrets.token_hex(32)
            return _salt_cache[max(_salt_cache)]
        _salt_cache.clear()
        _salt_cache[today] = salt
    return salt


def _salt_load_or_create(today: date) -> str:
    existing = DailySalt.objects.filter(day=today).values_list("salt", flat=True).first()
    if existing:
        return existing
    try:
        with transaction.atomic():
            DailySalt.objects.create(day=today, salt=secrets.token_hex(32))
    except IntegrityError:
        pass  # another process created today's salt first: use theirs
    salts_purge(today=today)
    return DailySalt.objects.get(day=today).salt


def salts_purge(*, today: date) -> int:
    deleted, _ = DailySalt.objects.filter(day__lt=today - timedelta(days=2)).delete()
    return deleted


def visitor_key(*, ip: str, user_agent: str) -> str:
    digest = hashlib.sha256(f"{salt_for_today()}|{ip}|{user_agent}".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:32]


def wants_no_tracking(meta: dict) -> bool:
    return settings.BEACONS_RESPECT_DNT and (meta.get("HTTP_DNT") == "1" or meta.get("HTTP_SEC_GPC") == "1")
