"""Visitor keys without storing who the visitor is (Plausible's model).

A visitor key is an HMAC-SHA256 of (daily salt + IP + user agent) under a key derived from
``SECRET_KEY``. The salt is random, changes every day, and salts older than two days are
deleted, so yesterday's keys cannot be linked to today's. The salt is in the database but
the key is not, so someone who reads the database alone cannot try candidate addresses
against a stored key. The IP address itself is never stored anywhere.
"""

import hashlib
import hmac
import ipaddress
import secrets
from datetime import date, timedelta
from functools import lru_cache

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.utils import timezone

from beacons.models import DailySalt

_salt_cache: dict[date, str] = {}


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


def _keyed_hash(purpose: str, message: str) -> str:
    """Django's ``salted_hmac(purpose, message, algorithm="sha256")`` as hex, cut to 32 digits: the
    same keys, with the key derived once per secret instead of on every hit."""
    key = _derived_key(purpose, settings.SECRET_KEY)
    return hmac.digest(key, message.encode("utf-8", "surrogatepass"), "sha256").hex()[:32]


@lru_cache(maxsize=8)
def _derived_key(purpose: str, secret: str) -> bytes:
    return hashlib.sha256((purpose + secret).encode()).digest()


def visitor_key(*, ip: str, user_agent: str) -> str:
    return _keyed_hash("beacons.ingest.privacy.visitor_key", f"{salt_for_today()}|{ip}|{user_agent}")


def network_of(ip: str) -> str:
    """The network an address belongs to: its IPv4 /24 or IPv6 /64 (one home, office or
    provider's customer), or the text itself when it is not an address."""
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return ip
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 64
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def network_key(*, ip: str) -> str:
    """A keyed hash of the address's network, for per-network limits (kept only in the cache)."""
    return _keyed_hash("beacons.ingest.privacy.network_key", f"{salt_for_today()}|{network_of(ip)}")


def wants_no_tracking(meta: dict) -> bool:
    return settings.BEACONS_RESPECT_DNT and (meta.get("HTTP_DNT") == "1" or meta.get("HTTP_SEC_GPC") == "1")
