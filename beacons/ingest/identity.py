"""Signed-in visitors: the token ``{% beacon_script %}`` gives a signed-in user, and its check at ingest.

With ``BEACONS_IDENTIFY_USERS`` on, the page's script carries ``uid``: a keyed hash of the user id
(HMAC-SHA256 under ``BEACONS_IDENTIFY_SECRET``, 32 hex digits: never the id itself), signed with
``django.core.signing`` under the same secret. The beacon sends it back; a valid one makes the
hash the visitor's key, the same every day, so a signed-in user counts once a month however
many days they come. Anyone can copy their own token, but nobody can make a new one without
the secret, so signed-in visitors cannot be inflated with made-up strings; a token that is
malformed, forged or from another secret counts the hit as an anonymous visitor's.
"""

import re

from django.conf import settings
from django.core import signing
from django.utils.crypto import salted_hmac

UID_MAX_LENGTH = 80  # 32 hex digits, ":" and a 43-character signature
_UID_PATTERN = re.compile(r"[0-9a-f]{32}:[A-Za-z0-9_-]{43}")
_SIGNING_SALT = "beacons.ingest.identity.uid"


def _secret() -> str:
    return settings.BEACONS_IDENTIFY_SECRET or salted_hmac("beacons.identify", "secret").hexdigest()


def user_hash(user_id: object) -> str:
    """The keyed hash of ``user_id`` (32 hex digits): what identifies a signed-in user, never the id."""
    return salted_hmac("beacons.ingest.identity.user", str(user_id), secret=_secret(), algorithm="sha256").hexdigest()[
        :32
    ]


def user_token(user_id: object) -> str:
    """The ``uid`` a signed-in user's pages send: the signed keyed hash of ``user_id``."""
    return signing.Signer(key=_secret(), salt=_SIGNING_SALT).sign(user_hash(user_id))


def signed_visitor(uid: object) -> str:
    """The user's keyed hash when ``uid`` is a valid token and identification is on, else ""."""
    if not settings.BEACONS_IDENTIFY_USERS or not isinstance(uid, str) or len(uid) > UID_MAX_LENGTH:
        return ""
    if not _UID_PATTERN.fullmatch(uid):
        return ""
    try:
        return signing.Signer(key=_secret(), salt=_SIGNING_SALT).unsign(uid)
    except signing.BadSignature:
        return ""
