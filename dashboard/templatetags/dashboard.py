from django import template

register = template.Library()


@register.filter
def thousands(value) -> str:
    """12345 -> "12,345" (numbers staff read at a glance; no humanize app needed)."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return ""


@register.filter
def time_ago(value) -> str:
    """A past moment in words: "just now" under a minute, else its largest unit ("3 hours ago")."""
    from datetime import timedelta

    from django.utils import timezone
    from django.utils.timesince import timesince

    if not value:
        return ""
    if timezone.now() - value < timedelta(minutes=1):  # also a moment slightly ahead of this server's clock
        return "just now"
    return f"{timesince(value, depth=1)} ago"


@register.filter
def in_sentence(name) -> str:
    """A name as it reads mid-sentence: "Page views" -> "page views", while a word whose
    capitals matter stays ("JavaScript errors", "API calls")."""
    text = str(name or "")
    first, _, rest = text.partition(" ")
    if first[1:] == first[1:].lower():
        first = first[:1].lower() + first[1:]
    return f"{first} {rest}" if rest else first
