"""The requests of the ingest benchmarks in Python, as ``bench/wrk_beacons.lua`` sends them through
a server: pages cycle over 500, user agents over 5 browsers, client addresses over 1,000 public
ones; three in eight send a search or link referrer, one in eight campaign tags."""

from typing import NamedTuple

USER_AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.6723.102 Mobile Safari/537.36",
]
REFERRERS = [
    "https://www.google.com/",
    "",
    "https://news.ycombinator.com/item?id=42",
    "",
    "https://blog.someone.org/a-post",
    "",
    "",
    "",
]
CAMPAIGN = {"utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "spring"}


class MixedHit(NamedTuple):
    identifier: str
    referrer: str
    campaign: dict[str, str]
    user_agent: str
    address: str  # sent in X-Forwarded-For


def mixed_hit(n: int) -> MixedHit:
    """The ``n``-th request of the mix (wrk's counter: 1 for the first)."""
    k = n % 1000
    return MixedHit(
        identifier=f"/page/{n % 500}",
        referrer=REFERRERS[n % len(REFERRERS)],
        campaign=CAMPAIGN if n % 8 == 0 else {},
        user_agent=USER_AGENTS[n % len(USER_AGENTS)],
        address=f"{20 + k % 180}.{(k * 7) % 256}.{(k * 13) % 256}.{1 + k % 250}",
    )
