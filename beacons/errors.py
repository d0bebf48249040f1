"""Error events: grouping by fingerprint (filled in by the error-alerts work)."""


def error_events_group(*, events) -> None:
    """Attach each error event to its ErrorGroup before the events are inserted."""
