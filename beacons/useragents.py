"""User agents in words: the browser, operating system and device a user agent string names."""

from dataclasses import dataclass
from functools import lru_cache

# Real user agents stay under 500 characters; the parser's cost grows with the length it reads.
USER_AGENT_MAX_LENGTH = 1024


@dataclass(frozen=True)
class UserAgentNames:
    """What ua-parser recognised; "" wherever it could not tell."""

    browser: str = ""  # "Firefox", "Mobile Safari", "Chrome Mobile"
    browser_major: str = ""  # "133"
    os: str = ""  # "Windows", "Mac OS X", "iOS", "Android"
    device: str = ""  # "iPhone", "iPad", "Samsung SM-S918B", "Generic Tablet"


def _known(family: str | None) -> str:
    return "" if family in (None, "Other") else family


def user_agent_names(user_agent: str) -> UserAgentNames:
    """The names ua-parser finds in a user agent (its first USER_AGENT_MAX_LENGTH characters).
    ua-parser's own parser keeps a small cache; callers on a hot path keep their own."""
    from ua_parser import parse

    text = user_agent[:USER_AGENT_MAX_LENGTH]
    if not text.isascii():  # the Rust matcher takes UTF-8: a lone surrogate would raise
        text = text.encode("utf-8", "replace").decode()
    parsed = parse(text)
    browser, os, device = parsed.user_agent, parsed.os, parsed.device
    return UserAgentNames(
        browser=_known(browser and browser.family),
        browser_major=(browser and browser.major) or "",
        os=_known(os and os.family),
        device=_known(device and device.family),
    )


@lru_cache(maxsize=4096)
def browser_label(user_agent: str) -> str:
    """A person-readable browser name and major version ("Firefox 133", "Mobile Safari 17") from a
    user agent string; "Unknown browser" when ua-parser cannot tell. Parsed once per process."""
    names = user_agent_names(user_agent or "")
    if not names.browser:
        return "Unknown browser"
    return f"{names.browser} {names.browser_major}" if names.browser_major else names.browser
