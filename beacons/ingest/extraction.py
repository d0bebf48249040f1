"""Dimension values of one hit: its request facts (referrer, page URL, user agent, address, properties) as counter values.

Pure functions, no database. Every input is attacker-controlled: each is cut to a bound before
it is parsed, and no function raises on any text; what cannot be read counts as UNKNOWN (or is
left out, where the function says so).

Referring sites are named from a short table of our own (``_SOURCE_BY_HOST`` and its
neighbours) on top of the Public Suffix List (``publicsuffixlist``, released with each list
update). The Python referer-parser packages were last released in 2016 (no X, Threads, Bluesky
or ChatGPT); a site not in the table shows as its host, which staff can still read.
"""

import ipaddress
import logging
import math
import re
from collections.abc import Mapping
from functools import cache, lru_cache
from urllib.parse import parse_qsl, urlsplit

from django.conf import settings
from django.http import HttpRequest

from beacons.dimensions import VALUE_MAX_LENGTH
from beacons.useragents import USER_AGENT_MAX_LENGTH, user_agent_names

logger = logging.getLogger("beacons")

DIRECT = "Direct / none"
UNKNOWN = "(unknown)"
REFERRER_MAX_LENGTH = 2048
PAGE_URL_MAX_LENGTH = 2048
CAMPAIGN_PARAMETERS = ("utm_source", "utm_medium", "utm_campaign", "ref")
_HOST_MAX_LENGTH = 253
_ADDRESS_MAX_LENGTH = 64  # the longest IPv6 text with a zone and a port is shorter
_FORWARDED_MAX_LENGTH = 1024

_LINE_BREAKS = re.compile("[\t\n\v\f\r\x1c-\x1f\x85\u2028\u2029]+")
# Text that would break a table cell or a log line, or that no database stores (C0 and C1
# controls, lone surrogates), bidi overrides that reorder what follows them, and invisible
# format characters (zero-width spaces, direction marks, the byte-order mark, soft hyphens; the
# joiners stay: emoji and Persian text need them): a value shown to staff must look like what it is.
_INVISIBLE = re.compile("[\x00-\x1f\x7f-\x9f\xad\ud800-\udfff\u200b\u200e\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


def clean_text(raw: str, *, limit: int = VALUE_MAX_LENGTH) -> str:
    """``raw`` trimmed, line breaks and tabs as single spaces, other control characters (and
    lone surrogates, bidi overrides) removed, cut to ``limit`` characters."""
    text = raw[: limit * 4]  # bound the work; removals rarely shrink text 4×
    if not text.isprintable():  # every character either pattern matches is unprintable: most text skips both
        text = _INVISIBLE.sub("", _LINE_BREAKS.sub(" ", text))
    return text.strip()[:limit].rstrip()


def property_value(raw: object) -> str | None:
    """A custom property's value as a dimension value: text, numbers and booleans (as JSON
    spells them) become clean text; objects, lists, null, blanks and NaN become None."""
    if isinstance(raw, bool):
        text = "true" if raw else "false"
    elif isinstance(raw, int):
        if not -(10**119) < raw < 10**120:  # longer than a value: cutting it would show another number
            return None
        text = str(raw)
    elif isinstance(raw, float):
        if not math.isfinite(raw):
            return None
        text = repr(raw)
    elif isinstance(raw, str):
        text = raw
    else:
        return None
    return clean_text(text) or None


# --- Sources and campaigns -------------------------------------------------------------------


def campaign_of(page_url: str) -> dict[str, str]:
    """The campaign parameters (``CAMPAIGN_PARAMETERS``) of a page URL's query, each clean
    text; a parameter absent or blank is left out. The first of repeated parameters wins, as
    ``URLSearchParams.get`` reads it in the browser."""
    page_url = page_url[:PAGE_URL_MAX_LENGTH]
    if "?" not in page_url:  # no query: most page views, spared the parse
        return {}
    try:
        query = urlsplit(page_url).query
    except ValueError:  # a malformed IPv6 host: "http://[::1/?utm_source=x"
        return {}
    found: dict[str, str] = {}
    for name, value in parse_qsl(query, errors="replace"):
        if name in CAMPAIGN_PARAMETERS and name not in found:
            found[name] = clean_text(value)
    return {name: value for name, value in found.items() if value}


def source_of(referrer: str, *, site_domain: str, page_url: str = "", campaign: Mapping[str, str] | None = None) -> str:
    """Where a visit came from, as one dimension value.

    A tag (``utm_source``, else ``ref``) wins: from ``campaign`` when given, else from
    ``page_url``'s query; a known name ("google", "fb", "news.ycombinator.com") becomes its
    display name, anything else stays as written. Without a tag, the referrer: empty or from
    the same site (the registrable domain of ``site_domain`` or of the page URL's host) is
    DIRECT; a known search engine, social site or Android app is named ("Google", "Reddit",
    "Gmail"); any other web page is its host, lower-case, without "www."; anything that is not
    an http(s) URL is UNKNOWN."""
    tags = campaign_of(page_url) if campaign is None else campaign
    tag = clean_text(tags.get("utm_source") or "") or clean_text(tags.get("ref") or "")
    if tag:
        return _tag_source(tag)
    return _referrer_source(referrer, site_domain=site_domain, page_url=page_url)


def _tag_source(tag: str) -> str:
    word = tag.lower()
    name = _SOURCE_BY_WORD.get(word)
    if name:
        return name
    host = _host_normalise(word)
    if host and "." in host:
        return _host_source(host)
    return tag


def _referrer_source(referrer: str, *, site_domain: str, page_url: str) -> str:
    text = referrer[:REFERRER_MAX_LENGTH].strip()
    if not text:
        return DIRECT
    if text[:14].lower() == "android-app://":
        return _app_source(text[14:])
    host = _url_host(text)
    if host is None:
        return UNKNOWN
    registrable = _registrable(host)
    if registrable == _site_registrable(site_domain) or (
        page_url and registrable == _registrable(_url_host(page_url) or "")
    ):
        return DIRECT
    return _host_source(host)


@lru_cache(maxsize=64)  # a few sites, asked on every hit
def _site_registrable(site_domain: str) -> str:
    return _registrable(_host_normalise(site_domain))  # "" for no site: no referrer's registrable domain is ""


_HOST_LABELS = re.compile(r"[^\W_](?:[\w-]*[^\W_])?(?:\.[^\W_](?:[\w-]*[^\W_])?)*")


def _host_normalise(host: str) -> str:
    """A host name or IP address as compared and shown: lower-case, without "www.", a final
    dot or a port; "" when it is not one."""
    host = host.strip().lower().rstrip(".")
    if host.startswith("[") or host.count(":") > 1:
        return _address_text(host)
    host = host.partition(":")[0]
    if host.startswith("www."):
        host = host[4:]
    if len(host) > _HOST_MAX_LENGTH or not _HOST_LABELS.fullmatch(host):
        return ""
    return host


def _url_host(url: str) -> str | None:
    """The normalised host of an http(s) URL (or of a bare host and path, as some trackers
    send a referrer); None when ``url`` is not one."""
    text = url[:REFERRER_MAX_LENGTH].strip()
    if "://" not in text:
        if ":" in text.partition("/")[0]:  # another scheme ("javascript:", "about:blank")
            return None
        text = "http://" + text
    try:
        parts = urlsplit(text)
        netloc = parts.netloc
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https"):
        return None
    return _host_normalise(netloc.rpartition("@")[2]) or None


@cache
def _public_suffixes():
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


@lru_cache(maxsize=4096)  # referrers come from few sites; a Public Suffix List walk costs ~2 µs
def _registrable(host: str) -> str:
    """The part of a host a person registers ("bbc.co.uk" of "news.bbc.co.uk"): the unit of
    "same site", as browsers use it. An IP address, "localhost" or a bare suffix is itself."""
    if ":" in host or host.replace(".", "").isdigit():  # the list would call "0.1" the domain of 10.0.0.1
        return host
    return _public_suffixes().privatesuffix(host) or host


def _host_source(host: str) -> str:
    name = _SOURCE_BY_HOST.get(host)
    if name:
        return name
    registrable = _registrable(host)
    name = _SOURCE_BY_HOST.get(registrable) or _SOURCE_BY_BRAND.get(registrable.partition(".")[0])
    return name or host[:VALUE_MAX_LENGTH]


_ANDROID_PACKAGE = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+")


def _app_source(rest: str) -> str:
    """``android-app://com.google.android.gm/`` (what Chrome on Android sends for a link opened
    from an app): the app's name when known, else its package name."""
    package = rest.partition("/")[0].strip().lower()
    if not _ANDROID_PACKAGE.fullmatch(package[:VALUE_MAX_LENGTH]):
        return UNKNOWN
    return _SOURCE_BY_APP.get(package, package)


# Hosts and registrable domains named by what staff call them. A registrable domain covers
# its subdomains (m.facebook.com, l.instagram.com); an exact host wins over its domain.
# Google, Bing, Yahoo and Yandex are named by _SOURCE_BY_BRAND, on every country domain.
_SOURCE_BY_HOST = {
    "mail.google.com": "Gmail",
    "duckduckgo.com": "DuckDuckGo",
    "ecosia.org": "Ecosia",
    "search.brave.com": "Brave Search",
    "startpage.com": "Startpage",
    "qwant.com": "Qwant",
    "kagi.com": "Kagi",
    "baidu.com": "Baidu",
    "naver.com": "Naver",
    "seznam.cz": "Seznam",
    "chatgpt.com": "ChatGPT",
    "chat.openai.com": "ChatGPT",
    "perplexity.ai": "Perplexity",
    "facebook.com": "Facebook",
    "fb.com": "Facebook",
    "fb.me": "Facebook",
    "messenger.com": "Messenger",
    "instagram.com": "Instagram",
    "threads.net": "Threads",
    "threads.com": "Threads",
    "twitter.com": "Twitter",
    "x.com": "Twitter",
    "t.co": "Twitter",
    "linkedin.com": "LinkedIn",
    "lnkd.in": "LinkedIn",
    "reddit.com": "Reddit",
    "youtube.com": "YouTube",
    "youtu.be": "YouTube",
    "news.ycombinator.com": "Hacker News",
    "bsky.app": "Bluesky",
    "mastodon.social": "Mastodon",
    "pinterest.com": "Pinterest",
    "tiktok.com": "TikTok",
    "vk.com": "VK",
    "quora.com": "Quora",
    "wikipedia.org": "Wikipedia",
    "github.com": "GitHub",
    "stackoverflow.com": "Stack Overflow",
    "medium.com": "Medium",
    "producthunt.com": "Product Hunt",
    "slack.com": "Slack",
    "discord.com": "Discord",
    "t.me": "Telegram",
    "web.telegram.org": "Telegram",
    "web.whatsapp.com": "WhatsApp",
    "outlook.live.com": "Outlook",
    "outlook.office.com": "Outlook",
}
# Brands with a domain per country (google.de, yandex.ru, yahoo.co.jp): the registrable
# domain's first label names them.
_SOURCE_BY_BRAND = {"google": "Google", "yahoo": "Yahoo", "yandex": "Yandex", "bing": "Bing"}
_SOURCE_BY_APP = {
    "com.google.android.gm": "Gmail",
    "com.google.android.googlequicksearchbox": "Google",
    "com.google.android.youtube": "YouTube",
    "com.facebook.katana": "Facebook",
    "com.facebook.orca": "Messenger",
    "com.instagram.android": "Instagram",
    "com.twitter.android": "Twitter",
    "com.linkedin.android": "LinkedIn",
    "com.reddit.frontpage": "Reddit",
    "com.slack": "Slack",
    "com.discord": "Discord",
    "org.telegram.messenger": "Telegram",
    "com.whatsapp": "WhatsApp",
    "com.microsoft.office.outlook": "Outlook",
}
# What people write in utm_source / ref: every display name in lower case, with and without its
# spaces ("hacker news", "hackernews"), and common short forms.
_SOURCE_BY_WORD = {
    spelling: name
    for name in {*_SOURCE_BY_HOST.values(), *_SOURCE_BY_BRAND.values()}
    for spelling in (name.lower(), name.lower().replace(" ", ""))
} | {
    "fb": "Facebook",
    "ig": "Instagram",
    "x": "Twitter",
    "tw": "Twitter",
    "li": "LinkedIn",
    "yt": "YouTube",
    "hn": "Hacker News",
    "ddg": "DuckDuckGo",
}


# --- Browsers, operating systems, devices ----------------------------------------------------

DESKTOP, MOBILE, TABLET = "desktop", "mobile", "tablet"
# "Mobi" is the token every mobile browser puts in its user agent (MDN's advice); Android
# without it is a tablet (Google's advice to sites). iPadOS 13+ Safari says "Macintosh" by
# default and counts as desktop: nothing in its user agent tells them apart.
_TABLET_TOKENS = re.compile(r"iPad|Tablet(?! PC)|Kindle|Silk/|PlayBook")
_MOBILE_OS = {"iOS", "Android", "Windows Phone", "Symbian OS", "BlackBerry OS", "KaiOS", "Firefox OS"}
_DESKTOP_OS = {
    "Windows",
    "Mac OS X",
    "Linux",
    "Ubuntu",
    "Debian",
    "Fedora",
    "Linux Mint",
    "Chrome OS",
    "FreeBSD",
    "OpenBSD",
    "NetBSD",
}


def device_of(user_agent: str) -> tuple[str, str, str]:
    """(browser, operating system, device) of a user agent: ua-parser's family names
    ("Chrome Mobile", "iOS") and one of desktop / mobile / tablet; UNKNOWN for each part it
    cannot tell. Bots are dropped before extraction and are not recognised here."""
    return _device_of(user_agent[:USER_AGENT_MAX_LENGTH])  # cut first: the cache keeps its keys


@lru_cache(maxsize=4096)  # visitors share few user agents; a parse costs ~15 µs, a cache hit well under 1
def _device_of(user_agent: str) -> tuple[str, str, str]:
    names = user_agent_names(user_agent)
    return names.browser or UNKNOWN, names.os or UNKNOWN, _device_kind(user_agent, names.os, names.device)


def _device_kind(user_agent: str, os: str, device: str) -> str:
    if device in ("iPad", "Kindle", "Generic Tablet") or _TABLET_TOKENS.search(user_agent):
        return TABLET
    if "Mobi" in user_agent or device in ("iPhone", "iPod", "Generic Smartphone"):
        return MOBILE
    if os == "Android":
        return TABLET
    if os in _MOBILE_OS:
        return MOBILE
    if os in _DESKTOP_OS:
        return DESKTOP
    return UNKNOWN


# --- Addresses and countries -----------------------------------------------------------------


@lru_cache(maxsize=4096)  # a visitor's hits come from one address; a parse costs ~4 µs
def _address_text(text: str) -> str:
    """An IP address as text ("203.0.113.7", "2001:db8::1"), read from an address with or
    without a port or brackets; an IPv4 address mapped into IPv6 as IPv4; "" when none."""
    text = text[:_ADDRESS_MAX_LENGTH].strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return ""
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    return str(address)


def client_ip(request: HttpRequest) -> str:
    """The visitor's address: the socket's (REMOTE_ADDR), or, when BEACONS_CLIENT_IP_HEADER
    names a header set by the proxies in front, the address the nearest of them saw.

    X-Forwarded-For lists addresses left to right, each proxy appending the one it received
    from; everything left of what our proxies appended was written by the client and can be
    forged. So the entry taken is BEACONS_CLIENT_IP_PROXY_COUNT from the right (the first when
    there are fewer). A header that is absent or holds no address there leaves REMOTE_ADDR."""
    meta = request.META
    header = settings.BEACONS_CLIENT_IP_HEADER
    if header and meta.get(header):
        entries = [entry.strip() for entry in meta[header][:_FORWARDED_MAX_LENGTH].split(",")]
        entries = [entry for entry in entries if entry]
        if entries:
            proxies = max(1, settings.BEACONS_CLIENT_IP_PROXY_COUNT)
            chosen = _address_text(entries[max(0, len(entries) - proxies)])
            if chosen:
                return chosen
    remote = meta.get("REMOTE_ADDR", "")
    return _address_text(remote) or remote


def country_of(ip: str) -> str:
    """The ISO 3166-1 alpha-2 code of the country an address is registered in, or "" when
    unknown (private, reserved, not an address). From the operator's MaxMind or DB-IP file
    when GEOIP_PATH is set and readable (Django's GeoIP2, which needs the ``geoip2`` package),
    else from the Regional Internet Registries' data that ``iptocc`` ships."""
    reader = _geoip2_reader(str(getattr(settings, "GEOIP_PATH", "") or ""))
    if reader is None:
        from iptocc import country_code

        text = ip[:_ADDRESS_MAX_LENGTH]
        code = country_code(text) if text.isascii() else None  # most arrive plain: no parse first
        if code is None:  # or a port, brackets, an IPv4-mapped form, junk: read it as an address
            address = _address_text(ip)
            code = country_code(address) if address else None
        return _country_code_checked(code)
    address = _address_text(ip)
    if not address or not ipaddress.ip_address(address).is_global:
        return ""
    try:
        code = reader.country_code(address)
    except Exception:  # AddressNotFoundError, a damaged file: unknown, never a failed hit
        return ""
    return _country_code_checked(code)


def _country_code_checked(code: str | None) -> str:
    return code.upper() if code and len(code) == 2 and code.isascii() and code.isalpha() else ""


@lru_cache(maxsize=2)
def _geoip2_reader(path: str):
    """Django's GeoIP2 on ``path``, or None (no path, or it cannot be opened: logged once)."""
    if not path:
        return None
    try:
        from django.contrib.gis.geoip2 import GeoIP2

        return GeoIP2(path)
    except Exception as problem:  # ImportError without geoip2, GeoIP2Exception for a bad path or file
        logger.warning("GEOIP_PATH %s cannot be read (%s): countries come from iptocc", path, problem)
        return None


# --- Countries for people --------------------------------------------------------------------


@lru_cache(maxsize=512)
def country_name(code: str) -> str:
    """ "Germany" for "DE", "South Korea" for "KR" (pycountry's common name when it has one);
    UNKNOWN for ""; a code pycountry does not know stays as it is."""
    code = code.strip().upper()[:8]
    if not code:
        return UNKNOWN
    import pycountry

    country = pycountry.countries.get(alpha_2=code) if len(code) == 2 else None
    if country is None:
        return code
    return getattr(country, "common_name", None) or country.name


def country_flag(code: str) -> str:
    """The flag emoji of a two-letter country code (regional indicator letters), "" for
    anything else."""
    code = code.strip().upper()
    if len(code) != 2 or not (code.isascii() and code.isalpha()):
        return ""
    return "".join(chr(0x1F1E6 + ord(letter) - ord("A")) for letter in code)
