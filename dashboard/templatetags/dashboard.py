from django import template

register = template.Library()


@register.filter
def thousands(value) -> str:
    """12345 -> "12,345" (numbers staff read at a glance; no humanize app needed)."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return ""
