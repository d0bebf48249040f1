"""User agents in words: the browser family and major version a user agent string names."""

from functools import lru_cache


@lru_cache(maxsize=4096)
def browser_label(user_agent: str) -> str:
    """A person-readable browser name and major version ("Firefox 133", "Mobile Safari 17") from a
    user agent string; "Unknown browser" when ua-parser cannot tell. Parsed once per process."""
    from ua_parser import parse

    parsed = parse(user_agent or "").user_agent
    if parsed is None or parsed.family == "Other":
        return "Unknown browser"
    return f"{parsed.family} {parsed.major}" if parsed.major else parsed.family
