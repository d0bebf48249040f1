"""Storable text: the one rule for text PostgreSQL cannot store (NUL, lone surrogates, undecodable bytes)."""

import re
from typing import Any

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def is_storable_text(value: str) -> bool:
    """False when ``value`` holds a NUL character or a lone surrogate (JSON may spell both as
    ``\\u`` escapes): PostgreSQL refuses the first and UTF-8 cannot encode the second."""
    return _UNSTORABLE.search(value) is None


def storable_text(value: str | bytes) -> str:
    """``value`` as text every database stores: undecodable UTF-8 bytes, lone surrogates and
    NUL each become U+FFFD, so bad text read back (from Redis, a file) is kept, marked, instead
    of failing the write it is part of."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return _UNSTORABLE.sub("\ufffd", value)


def is_storable_json(value: Any) -> bool:
    """``is_storable_text`` for every key and string inside a parsed JSON value."""
    if isinstance(value, str):
        return is_storable_text(value)
    if isinstance(value, dict):
        return all(is_storable_text(k) and is_storable_json(v) for k, v in value.items())
    if isinstance(value, list):
        return all(is_storable_json(v) for v in value)
    return True
