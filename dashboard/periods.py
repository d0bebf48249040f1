"""Periods in words, in the bucket time zone: titles, KPI notes and what a period is compared with."""

from datetime import datetime, timedelta

from beacons.counting.buckets import bucket_zone, is_aligned
from beacons.models import Granularity as G


def comparison_label(start: datetime, end: datetime, *, now: datetime) -> str:
    """A previous period in words: "00:00–02:59 yesterday", "1–2 November 2026, to 02:59",
    "25 October – 23 November 2026"."""
    tz = bucket_zone()
    if start >= end:
        return "the period before"
    first, last = start.astimezone(tz), (end - timedelta(minutes=1)).astimezone(tz)
    if is_aligned(end, G.DAY):
        whole_months = is_aligned(start, G.MONTH) and is_aligned(end, G.MONTH)
        return period_label(start, end, G.MONTH if whole_months else G.DAY)
    if first.date() == last.date():
        today = now.astimezone(tz).date()
        day = "yesterday" if first.date() == today - timedelta(days=1) else f"on {first.day} {first:%B %Y}"
        return f"{first:%H:%M}–{last:%H:%M} {day}"
    return f"{period_label(start, end, G.DAY)}, to {last:%H:%M}"


def cut_comparison_label(start: datetime, end: datetime, cut: datetime, granularity: str, *, now: datetime) -> str:
    """A previous period cut at the same elapsed point as the current one, in words.

    To the minute: "00:00–02:05 yesterday", "1–2 November 2026, to 02:05". To the hour, where both
    sides lose the running hour: "yesterday, both to 02:00", "1–2 November 2026, both to 02:00";
    a shorter month that ends first: "February 2026, this period to 23:00". "" when nothing is
    comparable yet (00:05 read in whole hours)."""
    if end <= start:
        return ""
    tz = bucket_zone()
    first, cut_local = start.astimezone(tz), cut.astimezone(tz)
    last = (end - timedelta(minutes=1)).astimezone(tz)  # ends are whole minutes
    yesterday = now.astimezone(tz).date() - timedelta(days=1)
    wall = f"{end.astimezone(tz):%H:%M}"
    if is_aligned(start, G.DAY) and is_aligned(end, G.DAY):
        whole_months = is_aligned(start, G.MONTH) and is_aligned(end, G.MONTH)
        base = period_label(start, end, G.MONTH if whole_months else G.DAY)
        if wall == f"{cut_local:%H:%M}":
            return f"{base}, both in whole days"
        return f"{base}, this period to {cut_local:%H:%M}"
    one_day = first.date() == last.date() and is_aligned(start, G.DAY)
    day = "yesterday" if one_day and first.date() == yesterday else period_label(start, end, G.DAY)
    if not is_aligned(start, G.DAY):
        end_local = end.astimezone(tz)  # "to 00:00" is on the day the period ends
        day = f"{first.day} {first:%B} {first:%H:%M} – {end_local.day} {end_local:%B %Y}"
    if granularity == G.MINUTE:
        return f"{first:%H:%M}–{wall} {day}" if one_day else f"{day}, to {wall}"
    return f"{day}, both to {wall}"


def period_label(start: datetime, end: datetime, granularity: str) -> str:
    """[start, end) in words, in the bucket time zone: "1–30 November 2026", "March 2026"."""
    tz = bucket_zone()
    first = start.astimezone(tz)
    last = (max(end, start + timedelta(microseconds=1)) - timedelta(microseconds=1)).astimezone(tz)
    if granularity == G.YEAR:
        return f"{first.year}" if first.year == last.year else f"{first.year}–{last.year}"
    if granularity == G.MONTH:
        if (first.year, first.month) == (last.year, last.month):
            return f"{first:%B %Y}"
        if first.year == last.year:
            return f"{first:%B} – {last:%B %Y}"
        return f"{first:%B %Y} – {last:%B %Y}"
    if first.date() == last.date():
        return f"{first.day} {first:%B %Y}"
    if (first.year, first.month) == (last.year, last.month):
        return f"{first.day}–{last.day} {last:%B %Y}"
    if first.year == last.year:
        return f"{first.day} {first:%B} – {last.day} {last:%B %Y}"
    return f"{first.day} {first:%B %Y} – {last.day} {last:%B %Y}"
