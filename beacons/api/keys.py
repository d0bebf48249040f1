"""API keys: making one (shown once), finding the key a request presents, revoking, and the last-used time.

A key reads ``bk_<prefix>_<secret>``: the 8-character prefix is stored and shown (it finds the
row), the secret is 32 random bytes, and only the SHA-256 of the whole key is stored. A hash
this fast is enough: the key is a random 256-bit token, not a password someone could guess.
"""

import hashlib
import hmac
import secrets
from datetime import datetime

from django.db import transaction

from beacons.models import ApiKey, Site

KEY_PREFIX = "bk_"
KEY_MAX_LENGTH = 100  # a longer Authorization value is not a key: refused before any lookup


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_secret_set(api_key: ApiKey) -> str:
    """Give the unsaved ``api_key`` a new prefix and secret hash; returns the key itself, which is not
    stored and must be shown now. (Prefixes are 32 random bits: a clash fails the save on the unique prefix.)"""
    prefix = secrets.token_hex(4)
    key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    api_key.prefix, api_key.secret_hash = prefix, key_hash(key)
    return key


def api_key_create(*, name: str, created_by=None, sites: list[Site] = ()) -> tuple[ApiKey, str]:
    """A new key scoped to ``sites``: the saved ``ApiKey`` and the key itself (shown once, never stored)."""
    api_key = ApiKey(name=name, created_by=created_by)
    key = api_key_secret_set(api_key)
    with transaction.atomic():
        api_key.save()
        api_key.sites.set(sites)
    return api_key, key


def api_key_found(key: str) -> ApiKey | None:
    """The active key ``key`` is, or None (unknown, revoked, malformed). One query; the hashes are
    compared in constant time."""
    if len(key) > KEY_MAX_LENGTH or not key.startswith(KEY_PREFIX):
        return None
    prefix, _, secret = key.removeprefix(KEY_PREFIX).partition("_")
    if not (prefix and secret):
        return None
    found = ApiKey.objects.filter(prefix=prefix, is_active=True).first()
    if found is None or not hmac.compare_digest(found.secret_hash, key_hash(key)):
        return None
    return found


def api_key_revoke(*, api_key: ApiKey, at: datetime | None = None) -> None:
    api_key.revoke(at)


def api_key_used(*, api_key: ApiKey, at: datetime) -> None:
    api_key.mark_used(at)


def site_readable(*, api_key: ApiKey, domain: str) -> Site | None:
    """The site of ``domain`` when ``api_key`` is scoped to it; None for a site outside its scope and
    for one that does not exist alike (an answer must not tell which sites exist). One query."""
    return api_key.sites.filter(domain=domain.strip().lower()[:253]).first()
