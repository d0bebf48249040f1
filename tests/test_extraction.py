"""Dimension values of a hit (beacons.ingest.extraction): sources, campaigns, devices, countries,
client addresses and property values, as staff will read them in a breakdown."""

import ipaddress
import logging

import pytest
from django.test import RequestFactory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beacons.ingest import extraction
from beacons.ingest.extraction import (
    DIRECT,
    UNKNOWN,
    campaign_of,
    clean_text,
    client_ip,
    country_flag,
    country_name,
    country_of,
    device_of,
    property_value,
    source_of,
)

SITE = "example.com"


@pytest.fixture(autouse=True)
def _fresh_caches():
    """Each test parses for itself: a value cached by an earlier test would hide what this one runs."""
    for cached in (extraction._registrable, extraction._site_registrable, extraction._device_of, country_name):
        cached.cache_clear()


def source(referrer: str, *, site_domain: str = SITE, **options) -> str:
    return source_of(referrer, site_domain=site_domain, **options)


# --- Sources ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "referrer, name",
    [
        ("https://www.google.com/", "Google"),
        ("https://www.google.co.uk/search?q=beacons", "Google"),
        ("https://news.google.com/articles/x", "Google"),
        ("https://mail.google.com/mail/u/0/", "Gmail"),
        ("https://search.yahoo.co.jp/search?p=x", "Yahoo"),
        ("https://yandex.ru/search/?text=x", "Yandex"),
        ("https://www.bing.com/search?q=x", "Bing"),
        ("https://duckduckgo.com/", "DuckDuckGo"),
        ("https://l.facebook.com/l.php?u=x", "Facebook"),
        ("https://m.facebook.com/", "Facebook"),
        ("https://t.co/AbC123", "Twitter"),
        ("https://x.com/someone/status/1", "Twitter"),
        ("https://www.linkedin.com/feed/", "LinkedIn"),
        ("https://old.reddit.com/r/django/", "Reddit"),
        ("https://www.youtube.com/watch?v=x", "YouTube"),
        ("https://youtu.be/x", "YouTube"),
        ("https://news.ycombinator.com/item?id=1", "Hacker News"),
        ("HTTPS://NEWS.YCOMBINATOR.COM./item", "Hacker News"),
        ("https://chatgpt.com/", "ChatGPT"),
    ],
)
def test_search_engines_and_social_sites_are_named(referrer, name):
    assert source(referrer) == name


# Every name the tables give, spelled out here: a name dropped or mistyped there fails here.
@pytest.mark.parametrize(
    "referrer, name",
    [
        ("https://mail.google.com/", "Gmail"),
        ("https://duckduckgo.com/", "DuckDuckGo"),
        ("https://ecosia.org/", "Ecosia"),
        ("https://search.brave.com/", "Brave Search"),
        ("https://startpage.com/", "Startpage"),
        ("https://qwant.com/", "Qwant"),
        ("https://kagi.com/", "Kagi"),
        ("https://baidu.com/", "Baidu"),
        ("https://naver.com/", "Naver"),
        ("https://seznam.cz/", "Seznam"),
        ("https://chatgpt.com/", "ChatGPT"),
        ("https://chat.openai.com/", "ChatGPT"),
        ("https://perplexity.ai/", "Perplexity"),
        ("https://facebook.com/", "Facebook"),
        ("https://fb.com/", "Facebook"),
        ("https://fb.me/", "Facebook"),
        ("https://messenger.com/", "Messenger"),
        ("https://instagram.com/", "Instagram"),
        ("https://threads.net/", "Threads"),
        ("https://threads.com/", "Threads"),
        ("https://twitter.com/", "Twitter"),
        ("https://x.com/", "Twitter"),
        ("https://t.co/", "Twitter"),
        ("https://linkedin.com/", "LinkedIn"),
        ("https://lnkd.in/", "LinkedIn"),
        ("https://reddit.com/", "Reddit"),
        ("https://youtube.com/", "YouTube"),
        ("https://youtu.be/", "YouTube"),
        ("https://news.ycombinator.com/", "Hacker News"),
        ("https://bsky.app/", "Bluesky"),
        ("https://mastodon.social/", "Mastodon"),
        ("https://pinterest.com/", "Pinterest"),
        ("https://tiktok.com/", "TikTok"),
        ("https://vk.com/", "VK"),
        ("https://quora.com/", "Quora"),
        ("https://wikipedia.org/", "Wikipedia"),
        ("https://github.com/", "GitHub"),
        ("https://stackoverflow.com/", "Stack Overflow"),
        ("https://medium.com/", "Medium"),
        ("https://producthunt.com/", "Product Hunt"),
        ("https://slack.com/", "Slack"),
        ("https://discord.com/", "Discord"),
        ("https://t.me/", "Telegram"),
        ("https://web.telegram.org/", "Telegram"),
        ("https://web.whatsapp.com/", "WhatsApp"),
        ("https://outlook.live.com/", "Outlook"),
        ("https://outlook.office.com/", "Outlook"),
    ],
)
def test_every_named_site_is_recognised_from_its_referrer(referrer, name):
    assert source(referrer) == name


@pytest.mark.parametrize(
    "brand, name", [("google", "Google"), ("yahoo", "Yahoo"), ("yandex", "Yandex"), ("bing", "Bing")]
)
def test_brands_are_named_on_their_country_domains(brand, name):
    assert source(f"https://www.{brand}.com/") == source(f"https://{brand}.com.tr/x") == name


@pytest.mark.parametrize(
    "package, name",
    [
        ("com.google.android.gm", "Gmail"),
        ("com.google.android.googlequicksearchbox", "Google"),
        ("com.google.android.youtube", "YouTube"),
        ("com.facebook.katana", "Facebook"),
        ("com.facebook.orca", "Messenger"),
        ("com.instagram.android", "Instagram"),
        ("com.twitter.android", "Twitter"),
        ("com.linkedin.android", "LinkedIn"),
        ("com.reddit.frontpage", "Reddit"),
        ("com.slack", "Slack"),
        ("com.discord", "Discord"),
        ("org.telegram.messenger", "Telegram"),
        ("com.whatsapp", "WhatsApp"),
        ("com.microsoft.office.outlook", "Outlook"),
    ],
)
def test_every_named_android_app_is_recognised(package, name):
    assert source(f"android-app://{package}/") == name


@pytest.mark.parametrize(
    "word, name",
    [
        ("fb", "Facebook"),
        ("ig", "Instagram"),
        ("x", "Twitter"),
        ("tw", "Twitter"),
        ("li", "LinkedIn"),
        ("yt", "YouTube"),
        ("hn", "Hacker News"),
        ("ddg", "DuckDuckGo"),
    ],
)
def test_short_tags_people_write_name_the_site(word, name):
    assert source("", campaign={"utm_source": word}) == name


@pytest.mark.parametrize(
    "referrer, name",
    [
        ("android-app://com.google.android.gm/", "Gmail"),
        ("android-app://com.google.android.googlequicksearchbox", "Google"),
        ("ANDROID-APP://com.reddit.frontpage/", "Reddit"),
        ("android-app://com.linkedin.android", "LinkedIn"),
        ("android-app://com.example.reader/", "com.example.reader"),
        ("android-app://Com.Example.Reader", "com.example.reader"),
        ("android-app://", UNKNOWN),
        ("android-app://not a package", UNKNOWN),
        ("android-app://nodots", UNKNOWN),
        ("android-app://" + "a." * 70 + "b", UNKNOWN),
    ],
)
def test_links_opened_from_android_apps_name_the_app(referrer, name):
    assert source(referrer) == name


@pytest.mark.parametrize(
    "referrer, shown",
    [
        ("https://Blog.Example.ORG:8080/post?id=1", "blog.example.org"),
        ("https://www.other.org/", "other.org"),
        ("http://wwwother.org/", "wwwother.org"),
        ("example.org/page", "example.org"),  # some trackers send a bare host
        ("https://google.com@evil.example/", "evil.example"),  # the host is after the credentials
        ("https://www.bücher.de/", "bücher.de"),
        ("http://127.0.0.1:8000/", "127.0.0.1"),
        ("http://[2001:db8::1]:8080/", "2001:db8::1"),
        ("http://[::ffff:198.51.100.7]/", "198.51.100.7"),
        ("http://localhost:3000/", "localhost"),
        ("https://other.github.io/", "other.github.io"),
    ],
)
def test_other_sites_show_as_their_lower_case_host_without_www(referrer, shown):
    assert source(referrer) == shown


@pytest.mark.parametrize(
    "referrer",
    [
        "https://example.com/pricing",
        "https://www.example.com/",
        "https://shop.example.com/cart",
        "http://EXAMPLE.com:8000/",
        "",
        "   ",
    ],
)
def test_same_site_and_empty_referrers_are_direct(referrer):
    assert source(referrer) == DIRECT


def test_site_domain_is_read_like_a_host_with_www_port_or_case():
    assert source("https://blog.example.co.uk/", site_domain="WWW.Example.co.uk:443") == DIRECT
    assert source("https://other.co.uk/", site_domain="example.co.uk") == "other.co.uk"


def test_the_page_urls_own_host_is_the_same_site_too():
    page = "https://landing.example.net/offer"
    assert source("https://www.example.net/", page_url=page) == DIRECT
    assert source("https://www.example.net/") == "example.net"


def test_sites_that_share_a_hosting_suffix_are_different_sites():
    assert source("https://other.github.io/", site_domain="mine.github.io") == "other.github.io"
    assert source("https://mine.github.io/about", site_domain="mine.github.io") == DIRECT


def test_an_address_referrer_is_the_same_site_only_for_that_address():
    assert source("http://127.0.0.1:8000/a", site_domain="127.0.0.1") == DIRECT
    assert source("http://127.0.0.2/", site_domain="127.0.0.1") == "127.0.0.2"
    assert source("http://10.9.0.1/", site_domain="10.0.0.1") == "10.9.0.1"  # the list would call both "0.1"


@pytest.mark.parametrize(
    "referrer",
    [
        "not a url at all",
        "javascript:alert(1)",
        "about:blank",
        "ftp://files.example.org/",
        "file:///home/me/page.html",
        "http://[::1/",
        "http:///path-only",
        "https://bad_host-.org/",
        "https://-bad.org/",
        "https://a..b.org/",
        "https://" + "a" * 250 + ".com/",
        "http://<script>/",
    ],
)
def test_referrers_that_are_not_web_pages_are_unknown(referrer):
    assert source(referrer) == UNKNOWN


def test_a_host_of_253_characters_is_a_host_and_is_shown_cut_to_the_value_limit():
    host = ".".join(["a" * 63] * 3) + "." + "b" * 61  # 253 characters
    assert source(f"https://{host}/") == host[:120]


def test_a_referrer_is_read_up_to_its_2048th_character():
    padding = " " * (2048 - len("https://t.co"))
    assert source(padding + "https://t.co") == "Twitter"
    assert source(padding + " https://t.co") == "t.c"


def test_an_unreadable_site_domain_matches_no_referrer():
    assert source("https://t.co/", site_domain="not:an:address") == "Twitter"
    assert source("https://t.co/", site_domain="") == "Twitter"


def test_ipv6_sites_are_the_same_site_as_their_own_address():
    assert source("http://[::1]:8000/", site_domain="::1") == DIRECT
    assert source("http://[2001:db8::1]/", site_domain="2001:db8::1") == DIRECT
    assert source("http://[2001:db8::2]/", site_domain="[2001:db8::1]:443") == "2001:db8::2"


def test_a_64_kb_referrer_is_read_from_its_start():
    assert source("https://news.ycombinator.com/item?id=" + "1" * 65536) == "Hacker News"
    assert source("x" * 3000 + "https://news.ycombinator.com/") == UNKNOWN


@pytest.mark.parametrize(
    "page_url, shown",
    [
        ("https://example.com/?utm_source=newsletter", "newsletter"),
        ("https://example.com/?utm_source=Newsletter", "Newsletter"),  # as written when no name matches
        ("https://example.com/?utm_source=Spring%20Mailing", "Spring Mailing"),
        ("https://example.com/?utm_source=google", "Google"),
        ("https://example.com/?utm_source=GOOGLE", "Google"),
        ("https://example.com/?utm_source=fb", "Facebook"),
        ("https://example.com/?utm_source=hn", "Hacker News"),
        ("https://example.com/?utm_source=hacker+news", "Hacker News"),
        ("https://example.com/?utm_source=news.ycombinator.com", "Hacker News"),
        ("https://example.com/?utm_source=www.producthunt.com", "Product Hunt"),
        ("https://example.com/?utm_source=Partner.Example.org", "partner.example.org"),
        ("https://example.com/?ref=producthunt", "Product Hunt"),
        ("https://example.com/?ref=friend&utm_source=mail", "mail"),
        ("https://example.com/?utm_source=%20%0A&ref=friend", "friend"),
        ("https://example.com/?utm_source=a:b:c", "a:b:c"),
    ],
)
def test_utm_source_then_ref_in_the_page_url_win_over_the_referrer(page_url, shown):
    assert source("https://www.google.com/", page_url=page_url) == shown


def test_campaign_tags_sent_beside_the_hit_win_over_the_page_url():
    page = "https://example.com/?utm_source=newsletter"
    assert source("https://t.co/x", page_url=page, campaign={"utm_source": "bluesky"}) == "Bluesky"
    assert source("https://t.co/x", page_url=page, campaign={}) == "Twitter"
    assert source("", campaign={"ref": " producthunt "}) == "Product Hunt"
    assert source("", campaign={"utm_source": "x" * 500}) == "x" * 120


def test_tags_are_cleaned_like_every_dimension_value():
    assert source("", campaign={"utm_source": "\u202espring\x00 sale\n"}) == "spring sale"
    assert source("", campaign={"utm_source": "\x00", "ref": "friend"}) == "friend"


# --- Campaigns -------------------------------------------------------------------------------


def test_campaign_parameters_are_read_from_the_page_url():
    url = "https://example.com/landing?utm_source=newsletter&utm_medium=email&utm_campaign=Spring+Sale&ref=x&q=1"
    assert campaign_of(url) == {
        "utm_source": "newsletter",
        "utm_medium": "email",
        "utm_campaign": "Spring Sale",
        "ref": "x",
    }


@pytest.mark.parametrize(
    "url, expected",
    [
        ("https://example.com/", {}),
        ("", {}),
        ("https://example.com/?utm_medium=&utm_campaign=%20%20", {}),
        ("https://example.com/?utm_medium=email&utm_medium=social", {"utm_medium": "email"}),
        ("https://example.com/?utm_medium=&utm_medium=social", {"utm_medium": "social"}),
        ("https://example.com/#?utm_medium=email", {}),  # the fragment is not the query
        ("https://example.com/?utm_campaign=a%0Ab%00c%E2%80%AE", {"utm_campaign": "a bc"}),
        ("https://example.com/?utm_campaign=%FF%FE", {"utm_campaign": "\ufffd\ufffd"}),
        ("http://[::1/?utm_medium=email", {}),
        ("/relative/path?utm_medium=email", {"utm_medium": "email"}),
        ("?utm_medium=%E2%9C%93", {"utm_medium": "✓"}),
    ],
)
def test_campaign_parameters_blank_repeated_or_malformed(url, expected):
    assert campaign_of(url) == expected


def test_campaign_values_are_cut_to_120_characters():
    assert campaign_of("https://example.com/?utm_campaign=" + "c" * 300) == {"utm_campaign": "c" * 120}


def test_a_page_url_is_read_up_to_2048_characters():
    head = "https://example.com/?pad=" + "p" * 3000
    tail = "&utm_medium=email"
    assert campaign_of(head[: 2048 - len(tail)] + tail) == {"utm_medium": "email"}
    assert campaign_of(head[: 2048 - len(tail) + 1] + tail) == {"utm_medium": "emai"}


# --- Property values and clean text -------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, value",
    [
        ("  pro  ", "pro"),
        (3, "3"),
        (-12, "-12"),
        (2.5, "2.5"),
        (1e300, "1e+300"),
        (True, "true"),
        (False, "false"),
        (0, "0"),
        ("line\nbreak\ttab", "line break tab"),
        ("a\r\n\r\nb", "a b"),
        ("nul\x00here", "nulhere"),
        ("\x7fdel\x9fc1", "delc1"),
        ("\u202egnp.exe\u202c", "gnp.exe"),
        ("lone \ud800 surrogate", "lone  surrogate"),
        ("emoji 👍🏽 and zwj 👩‍💻", "emoji 👍🏽 and zwj 👩‍💻"),
        ("x" * 120, "x" * 120),
        ("x" * 121, "x" * 120),
        ("x" * 119 + " y", "x" * 119),
        (10**120 - 1, "9" * 120),
        (-(10**119) + 1, "-" + "9" * 119),
    ],
)
def test_property_values_become_clean_text(raw, value):
    assert property_value(raw) == value


@pytest.mark.parametrize(
    "raw",
    [None, "", "   ", "\x00\x01", {}, {"a": 1}, [], ["a"], float("nan"), float("inf"), float("-inf"), b"x"]
    + [10**120, -(10**119)],  # a number longer than a value is left out, not cut into another number
)
def test_property_values_that_are_not_text_or_numbers_or_are_blank_are_none(raw):
    assert property_value(raw) is None


def test_a_number_too_long_to_print_is_left_out_without_printing_it():
    assert property_value(10**5000) is None  # str() refuses more than 4300 digits


def test_every_character_clean_text_removes_or_replaces_is_unprintable():
    # clean_text leaves printable text to strip() alone: a printable character in either pattern would pass uncleaned
    assert [c for c in map(chr, range(0x110000)) if c.isprintable() and extraction._INVISIBLE.search(c)] == []
    assert [c for c in map(chr, range(0x110000)) if c.isprintable() and extraction._LINE_BREAKS.search(c)] == []


def test_clean_text_works_on_at_most_four_times_its_limit():
    assert clean_text("\x00" * 40 + "tail", limit=10) == ""
    assert clean_text("\x00" * 39 + "tail", limit=10) == "t"
    assert clean_text("a" * 5000, limit=2048) == "a" * 2048


# --- Browsers, systems, devices ----------------------------------------------------------------

WINDOWS_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
MAC_SAFARI = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15"
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
IPAD = "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1"


@pytest.mark.parametrize(
    "user_agent, expected",
    [
        (WINDOWS_CHROME, ("Chrome", "Windows", "desktop")),
        (MAC_SAFARI, ("Safari", "Mac OS X", "desktop")),
        ("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", ("Firefox", "Linux", "desktop")),
        (
            "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
            ("Chrome", "Chrome OS", "desktop"),
        ),
        (
            "Mozilla/5.0 (X11; OpenBSD amd64; rv:120.0) Gecko/20100101 Firefox/120.0",
            ("Firefox", "OpenBSD", "desktop"),
        ),
        (
            "Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.1; Trident/4.0; SLCC2; Tablet PC 2.0)",
            ("IE", "Windows", "desktop"),
        ),
        (IPHONE, ("Mobile Safari", "iOS", "mobile")),
        (
            "Mozilla/5.0 (iPod touch; CPU iPhone OS 15_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/15.0 Safari/604.1",
            ("Mobile Safari UI/WKWebView", "iOS", "mobile"),
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.6723.102 Mobile Safari/537.36",
            ("Chrome Mobile", "Android", "mobile"),
        ),
        (
            "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0",
            ("Firefox Mobile", "Android", "mobile"),
        ),
        (
            "Opera/9.80 (J2ME/MIDP; Opera Mini/9.80 (S60; SymbOS; Opera Mobi/23.348; U; en) Presto/2.5.25 Version/10.54",
            ("Opera Mini", "Symbian OS", "mobile"),
        ),
        (
            "Mozilla/5.0 (BB10; Touch) AppleWebKit/537.10+ (KHTML, like Gecko) Version/10.0.9.2372 Safari/537.10+",
            ("BlackBerry WebKit", "BlackBerry OS", "mobile"),
        ),
        ("MyApp/1.0 CFNetwork/1240.0.4 Darwin/20.5.0", ("MyApp", "iOS", "mobile")),
        (IPAD, ("Mobile Safari", "iOS", "tablet")),
        (
            "Mozilla/5.0 (Linux; Android 12; Lenovo TB-X606F) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
            ("Chrome", "Android", "tablet"),
        ),
        (
            "Mozilla/5.0 (Android 14; Tablet; rv:133.0) Gecko/133.0 Firefox/133.0",
            ("Firefox Mobile", "Android", "tablet"),
        ),
        (
            "Mozilla/5.0 (Linux; Android 9; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) Silk/120.3.1 like Chrome/120.0.6099.230 Safari/537.36",
            ("Amazon Silk", "Android", "tablet"),
        ),
        (
            "Mozilla/5.0 (PlayBook; U; RIM Tablet OS 2.1.0; en-US) AppleWebKit/536.2+ (KHTML, like Gecko) Version/7.2.1.0 Safari/536.2+",
            ("BlackBerry WebKit", "BlackBerry Tablet OS", "tablet"),
        ),
        (
            "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/4.0 Chrome/76.0.3809.146 TV Safari/537.36",
            ("Samsung Internet", "Tizen", UNKNOWN),
        ),
        ("curl/8.0", ("curl", UNKNOWN, UNKNOWN)),
        ("", (UNKNOWN, UNKNOWN, UNKNOWN)),
        ("\x00\xff garbage ###", (UNKNOWN, UNKNOWN, UNKNOWN)),
    ],
)
def test_browser_system_and_kind_of_device(user_agent, expected):
    assert device_of(user_agent) == expected


def test_a_user_agent_is_read_from_its_first_1024_characters():
    assert device_of("x" * 1019 + " iPad")[2] == "tablet"
    assert device_of("x" * 1020 + " iPad")[2] == UNKNOWN
    assert device_of(WINDOWS_CHROME + " " + "z" * 65536) == ("Chrome", "Windows", "desktop")


def test_each_user_agent_is_parsed_once_and_the_cache_keeps_only_cut_keys():
    extraction._device_of.cache_clear()
    huge = IPHONE + "z" * 65536
    for _ in range(3):
        assert device_of(huge) == ("Mobile Safari", "iOS", "mobile")
    info = extraction._device_of.cache_info()
    assert (info.misses, info.hits) == (1, 2)
    assert extraction._device_of.cache_parameters()["maxsize"] == 4096


# --- Countries -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ip, country",
    [
        ("8.8.8.8", "US"),
        ("81.2.69.142", "GB"),
        ("1.0.16.1", "JP"),
        ("2001:4860:4860::8888", "US"),
        ("::ffff:8.8.8.8", "US"),  # what a dual-stack socket reports for an IPv4 client
        (" 8.8.8.8 ", "US"),
        ("8.8.8.8:443", "US"),
        ("[2001:4860:4860::8888]:443", "US"),
        ("10.0.0.1", ""),
        ("192.168.1.20", ""),
        ("127.0.0.1", ""),
        ("::1", ""),
        ("fe80::1%eth0", ""),
        ("100.64.0.1", ""),
        ("", ""),
        ("not an address", ""),
        ("8.8.8.8.8", ""),
        (" " * 57 + "8.8.8.8", "US"),  # 64 characters: read whole
        (" " * 58 + "8.8.8.8", ""),  # read from its first 64 characters
    ],
)
def test_country_of_an_address(ip, country):
    assert country_of(ip) == country


class FakeGeoIP2:
    """Django's GeoIP2 over an operator's file: answers from a table, raises for the rest."""

    opened: list[str] = []

    def __init__(self, path):
        self.opened.append(str(path))
        self.looked_up: list[str] = []

    def country_code(self, query):
        self.looked_up.append(query)
        return {"8.8.8.8": "de", "1.0.16.1": "EU1", "81.2.69.142": None}[query]


@pytest.fixture
def operator_geoip(settings, monkeypatch):
    from django.contrib.gis import geoip2

    FakeGeoIP2.opened = []
    monkeypatch.setattr(geoip2, "GeoIP2", FakeGeoIP2, raising=False)
    extraction._geoip2_reader.cache_clear()
    settings.GEOIP_PATH = "/srv/geo/GeoLite2-Country.mmdb"
    yield
    extraction._geoip2_reader.cache_clear()


def test_the_operators_geoip_file_answers_when_geoip_path_is_set(operator_geoip):
    assert country_of("8.8.8.8") == "DE"
    assert country_of("8.8.8.8") == "DE"
    assert FakeGeoIP2.opened == ["/srv/geo/GeoLite2-Country.mmdb"]  # opened once, not per hit


def test_the_operators_file_is_never_asked_about_private_addresses_or_junk(operator_geoip):
    assert country_of("10.0.0.1") == ""
    assert country_of("junk") == ""
    assert extraction._geoip2_reader("/srv/geo/GeoLite2-Country.mmdb").looked_up == []


def test_addresses_the_operators_file_cannot_place_are_unknown(operator_geoip):
    assert country_of("2001:4860:4860::8888") == ""  # the file raises (not found)
    assert country_of("81.2.69.142") == ""  # the file has no country
    assert country_of("1.0.16.1") == ""  # not a two-letter code


def test_an_unreadable_geoip_path_falls_back_to_the_shipped_data_with_one_warning(settings, caplog):
    extraction._geoip2_reader.cache_clear()
    settings.GEOIP_PATH = "/nowhere/GeoLite2-Country.mmdb"
    with caplog.at_level(logging.WARNING, logger="beacons"):
        assert country_of("8.8.8.8") == "US"
        assert country_of("81.2.69.142") == "GB"
    assert [r.getMessage() for r in caplog.records if "GEOIP_PATH" in r.getMessage()] == [
        caplog.records[0].getMessage()
    ]
    assert "/nowhere/GeoLite2-Country.mmdb" in caplog.records[0].getMessage()
    assert caplog.records[0].name == "beacons"
    extraction._geoip2_reader.cache_clear()


@pytest.mark.parametrize(
    "code, name",
    [("DE", "Germany"), ("de", "Germany"), (" kr ", "South Korea"), ("GB", "United Kingdom"), ("TW", "Taiwan")],
)
def test_country_names_for_people(code, name):
    assert country_name(code) == name


@pytest.mark.parametrize(
    "code, shown", [("", UNKNOWN), ("  ", UNKNOWN), ("EU", "EU"), ("USA", "USA"), ("x" * 50, "X" * 8)]
)
def test_codes_without_a_country_show_as_they_are(code, shown):
    assert country_name(code) == shown


@pytest.mark.parametrize(
    "code, flag",
    [("DE", "🇩🇪"), ("de", "🇩🇪"), ("US", "🇺🇸"), ("AZ", "🇦🇿"), ("", ""), ("D", ""), ("DEU", ""), ("1A", ""), ("ÄB", "")],
)
def test_country_flags(code, flag):
    assert country_flag(code) == flag


# --- Client addresses ------------------------------------------------------------------------


def request_from(remote: str = "203.0.113.9", **headers):
    return RequestFactory().post("/beacon", REMOTE_ADDR=remote, **headers)


def test_the_socket_address_is_used_and_forwarded_headers_ignored_by_default(settings):
    settings.BEACONS_CLIENT_IP_HEADER = ""
    assert client_ip(request_from(HTTP_X_FORWARDED_FOR="198.51.100.1")) == "203.0.113.9"


@pytest.mark.parametrize(
    "forwarded, proxies, chosen",
    [
        ("198.51.100.1", 1, "198.51.100.1"),
        ("6.6.6.6, 198.51.100.1", 1, "198.51.100.1"),  # the left entry was written by the client
        ("6.6.6.6, 198.51.100.1, 10.0.0.2", 2, "198.51.100.1"),
        ("198.51.100.1, 10.0.0.2", 3, "198.51.100.1"),  # fewer entries than proxies: the first
        ("6.6.6.6,198.51.100.1,", 1, "198.51.100.1"),
        ("6.6.6.6, 198.51.100.1", 0, "198.51.100.1"),  # 0 is read as 1
        ("198.51.100.1:52000", 1, "198.51.100.1"),
        ("[2001:db8::7]:443", 1, "2001:db8::7"),
        ("2001:db8::7", 1, "2001:db8::7"),
        ("::ffff:198.51.100.1", 1, "198.51.100.1"),
        ("198.51.100.1, unknown", 1, "203.0.113.9"),  # not an address: the socket's
        (" , ", 1, "203.0.113.9"),
    ],
)
def test_the_configured_header_gives_the_address_the_nearest_proxy_saw(settings, forwarded, proxies, chosen):
    settings.BEACONS_CLIENT_IP_HEADER = "HTTP_X_FORWARDED_FOR"
    settings.BEACONS_CLIENT_IP_PROXY_COUNT = proxies
    assert client_ip(request_from(HTTP_X_FORWARDED_FOR=forwarded)) == chosen


def test_a_configured_header_that_is_missing_leaves_the_socket_address(settings):
    settings.BEACONS_CLIENT_IP_HEADER = "HTTP_X_REAL_IP"
    assert client_ip(request_from()) == "203.0.113.9"
    assert client_ip(request_from(HTTP_X_REAL_IP="198.51.100.4")) == "198.51.100.4"


def test_a_huge_forwarded_header_is_read_from_its_first_kilobyte(settings):
    settings.BEACONS_CLIENT_IP_HEADER = "HTTP_X_FORWARDED_FOR"
    padding = " " * (1024 - len("198.51.100.1,6.6.6.6"))
    assert client_ip(request_from(HTTP_X_FORWARDED_FOR="198.51.100.1," + padding + "6.6.6.6")) == "6.6.6.6"
    assert client_ip(request_from(HTTP_X_FORWARDED_FOR="198.51.100.1, " + padding + "6.6.6.6")) == "203.0.113.9"
    assert client_ip(request_from(HTTP_X_FORWARDED_FOR="198.51.100.1," + " " * 5000 + "6.6.6.6")) == "198.51.100.1"


@pytest.mark.parametrize(
    "remote, chosen", [("::ffff:203.0.113.9", "203.0.113.9"), ("2001:db8::1", "2001:db8::1"), ("", ""), ("x", "x")]
)
def test_the_socket_address_is_read_as_an_address_when_it_is_one(settings, remote, chosen):
    settings.BEACONS_CLIENT_IP_HEADER = ""
    assert client_ip(request_from(remote)) == chosen


@pytest.mark.django_db
def test_a_forged_forwarded_entry_does_not_escape_the_per_network_limit(settings, send):
    settings.BEACONS_CLIENT_IP_HEADER = "HTTP_X_FORWARDED_FOR"
    settings.BEACONS_NETWORK_RATE_LIMIT = 1
    settings.BEACONS_RATE_LIMIT = 0
    first = send({"event_type": "page_view"}, HTTP_X_FORWARDED_FOR="1.1.1.1, 198.51.100.1")
    second = send({"event_type": "page_view"}, HTTP_X_FORWARDED_FOR="2.2.2.2, 198.51.100.1")
    assert (first.status_code, second.status_code) == (204, 429)


@pytest.mark.django_db
def test_a_hit_with_an_oversized_referrer_and_campaign_is_counted(send):
    response = send(
        {
            "event_type": "page_view",
            "identifier": "/",
            "referrer": "https://news.ycombinator.com/?" + "x" * 20000,
            "utm_campaign": "c" * 5000,
            "utm_source": {"not": "text"},
        }
    )
    assert response.status_code == 204


# --- Nothing raises --------------------------------------------------------------------------

hostile_text = st.text(alphabet=st.characters(categories=["Cs", "Cc", "Cf", "L", "N", "P", "S", "Z"]), max_size=400)
junk = st.one_of(
    hostile_text,
    st.binary(max_size=400).map(lambda b: b.decode("latin-1")),
    st.binary(max_size=400).map(lambda b: b.decode("utf-8", "replace")),
    st.integers(min_value=1, max_value=70_000).map(lambda n: "a" * n),
)
url_like = st.builds(
    lambda scheme, host, rest: scheme + host + rest,
    st.sampled_from(["http://", "https://", "HTTP://", "android-app://", "//", "", "javascript:", "http://["]),
    st.one_of(hostile_text, st.from_regex(r"[a-z0-9.\-\[\]:@%]{0,80}", fullmatch=True)),
    st.one_of(hostile_text, st.from_regex(r"[/?#&=a-z_%0-9.:+\[\]]{0,120}", fullmatch=True), st.just("?utm_source=")),
)
addresses = st.one_of(
    st.ip_addresses().map(str),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]:443"),
    st.ip_addresses(v=4).map(lambda a: f"::ffff:{a}"),
    junk,
)
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
    ],  # settings: same values each input
)


def _is_clean_value(value: str) -> bool:
    return len(value) <= 120 and value == clean_text(value)


@FUZZ
@given(referrer=st.one_of(url_like, junk), page_url=st.one_of(url_like, junk), site=st.one_of(url_like, junk))
def test_any_referrer_page_url_and_site_give_one_clean_source(referrer, page_url, site):
    value = source_of(referrer, site_domain=site, page_url=page_url)
    assert value and _is_clean_value(value)
    campaign = campaign_of(page_url)
    assert set(campaign) <= {"utm_source", "utm_medium", "utm_campaign", "ref"}
    assert all(value and _is_clean_value(value) for value in campaign.values())


@FUZZ
@given(user_agent=junk)
def test_any_user_agent_gives_three_values(user_agent):
    browser, os, device = device_of(user_agent)
    assert browser and os and device in {"desktop", "mobile", "tablet", UNKNOWN}


@FUZZ
@given(ip=addresses, forwarded=st.one_of(st.lists(addresses, max_size=5).map(", ".join), junk))
def test_any_address_gives_a_country_code_or_nothing(settings, ip, forwarded):
    code = country_of(ip)
    assert code == "" or (len(code) == 2 and code.isupper() and code.isascii())
    settings.BEACONS_CLIENT_IP_HEADER = "HTTP_X_FORWARDED_FOR"
    chosen = client_ip(request_from(ip, HTTP_X_FORWARDED_FOR=forwarded))
    assert chosen == ip or ipaddress.ip_address(chosen)


@FUZZ
@given(
    raw=st.one_of(
        junk, st.integers(), st.floats(), st.booleans(), st.none(), st.lists(st.integers()), st.dictionaries(junk, junk)
    )
)
def test_any_property_value_is_clean_text_or_none(raw):
    value = property_value(raw)
    assert value is None or (value and _is_clean_value(value))


@FUZZ
@given(code=junk)
def test_any_country_code_gives_a_name_and_a_flag_or_nothing(code):
    assert country_name(code)
    assert len(country_flag(code)) in (0, 2)


@pytest.mark.parametrize("hidden", ["\u200b", "\u200e", "\u200f", "\u2060", "\ufeff", "\xad"])
def test_invisible_characters_cannot_make_two_values_look_the_same(hidden):
    assert property_value(f"pro{hidden}") == "pro"
    assert clean_text(f"Goo{hidden}gle") == "Google"
