"""Shared links: making one (its URL shown once), finding the link a token names, its password, revoking, last use.

A token is ``secrets.token_urlsafe(32)`` (256 random bits) and only its SHA-256 is stored, with the
API keys' rule (``key_hash``): a fast hash is enough for a random token nobody can guess. The optional
password is stored as Django's password hash. Wrong passwords are limited per link and client address
with the shared per-minute counters; the address is hashed before it becomes a cache key.
"""

import secrets
from datetime import datetime

from django.contrib.auth.hashers import check_password, make_password
from django.utils.crypto import salted_hmac

from beacons.api.keys import key_hash
from beacons.limits import minute_count_add
from beacons.models import SharedLink, Site

TOKEN_MAX_LENGTH = 64  # token_urlsafe(32) is 43 characters; anything longer is refused before any lookup
PASSWORD_ATTEMPTS_PER_MINUTE = 5  # per link and client address: a 6th try within the minute is refused


def shared_link_token_set(link: SharedLink) -> str:
    """Give the unsaved ``link`` a new token hash; returns the token itself, which is not stored and
    must be shown now."""
    token = secrets.token_urlsafe(32)
    link.token_hash = key_hash(token)
    return token


def shared_link_password_set(link: SharedLink, password: str) -> None:
    """Protect ``link`` with ``password`` ("" removes the password). Not saved here."""
    link.password = make_password(password) if password else ""


def shared_link_create(
    *, site: Site, label: str = "", password: str = "", expires_at: datetime | None = None, created_by=None
) -> tuple[SharedLink, str]:
    """A new link to ``site``'s dashboard: the saved ``SharedLink`` and its token (shown once, never stored)."""
    link = SharedLink(site=site, label=label, expires_at=expires_at, created_by=created_by)
    token = shared_link_token_set(link)
    shared_link_password_set(link, password)
    link.full_clean()
    link.save()
    return link, token


def shared_link_found(*, token: str, now: datetime) -> SharedLink | None:
    """The link ``token`` opens, with its site; None when unknown, revoked, expired or malformed alike.
    One query."""
    if not token or len(token) > TOKEN_MAX_LENGTH:
        return None
    link = SharedLink.objects.select_related("site").filter(token_hash=key_hash(token), is_active=True).first()
    if link is None or (link.expires_at is not None and link.expires_at <= now):
        return None
    return link


def shared_link_revoke(*, link: SharedLink, at: datetime | None = None) -> None:
    link.revoke(at)


def shared_link_used(*, link: SharedLink, at: datetime) -> None:
    link.mark_used(at)


def password_attempt_allowed(*, link: SharedLink, client_address: str, at: datetime) -> bool:
    """Count one password attempt on ``link`` from ``client_address``; False once there were more than
    PASSWORD_ATTEMPTS_PER_MINUTE this minute (then even the right password is refused, so trying tells
    nothing). When the cache is unreachable the attempt is allowed (as every per-minute limit does)."""
    key = f"beacons:share-password:{link.pk}:{key_hash(client_address)[:32]}"
    used = minute_count_add(key=key, amount=1, at=at)
    return used is None or used <= PASSWORD_ATTEMPTS_PER_MINUTE


def shared_link_password_correct(*, link: SharedLink, password: str) -> bool:
    return bool(link.password) and check_password(password, link.password)


def shared_link_unlock_mark(link: SharedLink) -> str:
    """What a session keeps once the right password was given: it stops matching when the password
    changes, and says nothing about the password itself."""
    return salted_hmac("beacons.sharing.unlock", f"{link.pk}:{link.password}").hexdigest()
