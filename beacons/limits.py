"""Per-minute counters in the shared cache, the one mechanism behind the ingest limits."""

from datetime import datetime

from django.core.cache import cache

from beacons.logs import outage_warning


def minute_count_add(*, key: str, amount: int, at: datetime) -> int | None:
    """Add ``amount`` to the cache counter of ``key`` for the minute of ``at``; returns the
    minute's total, or None when the cache is unreachable (limits then let requests through)."""
    cache_key = f"{key}:{int(at.timestamp() // 60)}"
    try:
        cache.add(cache_key, 0, timeout=61)
        try:
            return cache.incr(cache_key, amount)
        except ValueError:  # expired between add and incr
            cache.set(cache_key, amount, timeout=61)
            return amount
    except Exception:  # a shared cache (CACHE_URL) that is down
        outage_warning("per-minute limit skipped: cache unreachable", exc_info=True)
        return None
