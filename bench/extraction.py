"""CPU cost of each dimension extractor per call, cold (first sight of a value) and cached.

    .venv/bin/python -m bench.extraction
    .venv/bin/python -m bench.extraction --per-hit   # per hit of bench.ingest's request mix (it prints this)

Prints microseconds per call (median of five rounds, single thread) and what a process loads
for them. "cold" parses distinct inputs each time (a user agent the cache has not seen, a new
address); "cached" repeats a few common ones, as real traffic does.
"""

import os
import random
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "beacon_site.settings")
os.environ.setdefault("DEBUG", "1")  # the settings want a SECRET_KEY otherwise; nothing here serves
os.environ.setdefault("BEACONS_CLIENT_IP_HEADER", "HTTP_X_FORWARDED_FOR")  # as bench.ingest runs the server

import django

django.setup()

from django.test import RequestFactory  # noqa: E402 (after django.setup())

from beacons.ingest import extraction  # noqa: E402
from beacons.ingest.extraction import (  # noqa: E402
    campaign_of,
    client_ip,
    country_name,
    country_of,
    device_of,
    property_value,
    source_of,
)

from .request_mix import mixed_hit  # noqa: E402

ROUNDS = 5
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.6723.102 Mobile Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
]
REFERRERS = [
    "https://www.google.com/",
    "https://news.ycombinator.com/item?id=42",
    "https://blog.someone.org/2026/11/a-post-about-us",
    "https://www.example.com/pricing",
    "",
    "android-app://com.google.android.gm/",
]


def per_call_us(function, inputs: list) -> float:
    """Median over ROUNDS of the mean time of one call over ``inputs``."""
    rounds = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for item in inputs:
            function(item)
        rounds.append((time.perf_counter() - started) / len(inputs) * 1e6)
    return statistics.median(rounds)


def once_ms(function) -> float:
    started = time.perf_counter()
    function()
    return (time.perf_counter() - started) * 1000


def request_mix(count: int) -> list[tuple]:
    """(event, request facts, request) of ``count`` hits as ``bench/wrk_beacons.lua`` sends them."""
    from types import SimpleNamespace

    from beacons.ingest.parsing import EventInput

    factory = RequestFactory()
    mix = []
    for n in range(1, count + 1):
        hit = mixed_hit(n)
        event = EventInput(
            event_type="page_view", identifier=hit.identifier, referrer=hit.referrer, campaign=hit.campaign
        )
        request = factory.post("/beacon", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=hit.address)
        facts = SimpleNamespace(
            site_domain="127.0.0.1",
            user_agent=hit.user_agent,
            referer="",
            ip=hit.address,
            identity="anonymous",
        )
        mix.append((event, facts, request))
    return mix


def per_hit() -> int:
    """µs of CPU per hit for each extractor, and for all of ``dimensions_of``, on the ingest bench's mix."""
    from beacons.dimensions import BUILT_IN
    from beacons.ingest.dimensions import _campaign_values, dimensions_of
    from beacons.models import BeaconDefinition

    definition = BeaconDefinition(slug="page_view", dimensions=",".join(BUILT_IN))
    mix = request_mix(5000)
    wanted = set(BUILT_IN)
    for event, facts, _ in mix[:1000]:  # warm: data loaded, the five user agents cached
        dimensions_of(definition=definition, event=event, request_facts=facts)
    rows = [
        ("client address (client_ip, X-Forwarded-For)", lambda hit: client_ip(hit[2])),
        ("source, utm_medium, utm_campaign", lambda hit: _campaign_values(hit[0], hit[1], wanted)),
        ("browser, os, device (user agent, cached)", lambda hit: device_of(hit[1].user_agent)),
        ("country (iptocc)", lambda hit: country_of(hit[1].ip)),
        (
            "all of dimensions_of (+ value cleaning)",
            lambda hit: dimensions_of(definition=definition, event=hit[0], request_facts=hit[1]),
        ),
    ]
    print(f"  {'extractor':<46}{'µs per hit':>11}")
    for label, function in rows:
        print(f"  {label:<46}{per_call_us(function, mix):>11.2f}")
    return 0


def main() -> int:
    if "--per-hit" in sys.argv[1:]:
        return per_hit()
    rng = random.Random(14)
    print(f"Python {sys.version.split()[0]}; µs per call, median of {ROUNDS} rounds\n")
    print(f"{'first call (loads its data)':<44}{'ms':>10}")
    for label, first in [
        ("device_of (ua-parser rules)", lambda: device_of(USER_AGENTS[0] + " first")),
        ("source_of (Public Suffix List)", lambda: source_of("https://a.example.org/", site_domain="example.com")),
        ("country_of (iptocc)", lambda: country_of("8.8.8.8")),
        ("country_name (pycountry)", lambda: country_name("DE")),
    ]:
        print(f"  {label:<42}{once_ms(first):>10.1f}")

    import ua_parser

    print(f"\nua-parser resolver: {type(ua_parser.parser.resolver.parser).__module__}")
    print(f"\n{'extractor':<44}{'cold µs':>10}{'cached µs':>11}")
    fresh_agents = [f"{rng.choice(USER_AGENTS)} build/{n}" for n in range(2000 * ROUNDS)]
    agents = iter(fresh_agents)
    extraction._device_of.cache_clear()
    cold = per_call_us(lambda _: device_of(next(agents)), range(2000))
    cached = per_call_us(device_of, USER_AGENTS * 2000)
    print(f"  {'device_of(user_agent)':<42}{cold:>10.2f}{cached:>11.2f}")

    site = "example.com"
    fresh_referrers = [f"https://site{n}.example.org/page/{n}" for n in range(5000)]
    cold = per_call_us(lambda r: source_of(r, site_domain=site), fresh_referrers)
    common = per_call_us(lambda r: source_of(r, site_domain=site), REFERRERS * 1000)
    print(f"  {'source_of(referrer) (no cache; common ones)':<42}{cold:>10.2f}{common:>11.2f}")
    huge = "https://news.ycombinator.com/?" + "x" * 65536
    print(
        f"  {'source_of(64 KB referrer)':<42}{per_call_us(lambda r: source_of(r, site_domain=site), [huge] * 200):>10.2f}"
    )
    page = "https://example.com/landing?utm_source=newsletter&utm_medium=email&utm_campaign=spring&x=1"
    print(
        f"  {'source_of(utm_source in the page URL)':<42}{per_call_us(lambda r: source_of(r, site_domain=site, page_url=page), REFERRERS * 1000):>10.2f}"
    )
    print(f"  {'campaign_of(page_url)':<42}{per_call_us(campaign_of, [page] * 5000):>10.2f}")

    addresses = [".".join(str(rng.randrange(1, 255)) for _ in range(4)) for _ in range(20000)]
    print(f"  {'country_of(ip) (iptocc, no cache)':<42}{per_call_us(country_of, addresses):>10.2f}")
    v6 = [f"2a0{rng.randrange(10)}:{rng.randrange(65536):x}::{rng.randrange(65536):x}" for _ in range(5000)]
    print(f"  {'country_of(IPv6)':<42}{per_call_us(country_of, v6):>10.2f}")

    factory = RequestFactory()
    request = factory.post("/beacon", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.1")
    print(f"  {'client_ip(request)':<42}{per_call_us(client_ip, [request] * 20000):>10.2f}")
    values = ["pro", 42, True, "  Spring sale\n", {"a": 1}] * 4000
    print(f"  {'property_value(raw)':<42}{per_call_us(property_value, values):>10.2f}")
    print(f"  {'country_name(code) (cached)':<42}{'':>10}{per_call_us(country_name, ['DE', 'US', 'GB'] * 5000):>11.2f}")

    print("\ninstalled size of the data packages:")
    for module in ("iptocc", "ua_parser_rs", "ua_parser_builtins", "publicsuffixlist", "pycountry"):
        path = Path(__import__(module).__file__).parent
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        print(f"  {module:<24}{size / 1e6:>8.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
