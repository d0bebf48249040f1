"""Dimensions at ingest: which values a hit carries, and how every sink and the drain count them."""

import pytest
from django.db.models import Sum
from django.utils import timezone

from beacons.counting.drain import drain_pass
from beacons.counting.redis_format import counter_rows, live_and_pending_keys
from beacons.counting.sinks import get_sink, sinks_flush
from beacons.dimensions import VALUE_MAX_LENGTH
from beacons.ingest.dimensions import dimensions_of
from beacons.ingest.extraction import property_value
from beacons.ingest.hits import hit_log_fold
from beacons.ingest.parsing import EventInput
from beacons.models import BeaconAggregate, BeaconDefinition, Granularity

G = Granularity


@pytest.fixture
def signup(db):
    return BeaconDefinition.objects.create(
        slug="signup", name="Sign-ups", granularities="H,D,MO,Y", property_keys="plan,method"
    )


def counted(definition, dimension, granularity=G.DAY):
    """{value: hits} of one dimension of ``definition``, summed over its buckets of ``granularity``."""
    rows = BeaconAggregate.objects.filter(definition=definition, dimension=dimension, granularity=granularity)
    return dict(rows.values_list("identifier").annotate(n=Sum("count")).values_list("identifier", "n"))


def total(definition, granularity=G.DAY):
    rows = BeaconAggregate.objects.filter(definition=definition, dimension="", identifier="", granularity=granularity)
    return rows.aggregate(n=Sum("count"))["n"] or 0


# --- the values of one event --------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, value",
    [
        ("  pro  ", "pro"),
        ("pro\x00\n\tplus", "pro plus"),
        ("\u202eevil\u200b", "evil"),  # a bidi override and a zero-width space
        ("x" * 500, "x" * 120),
        (" " + "y" * 119 + "  z", "y" * 119),  # cut, then trimmed again
        (42, "42"),
        (2.5, "2.5"),
        (True, "true"),
        ("", ""),
        ("   ", ""),
        ("\x01\x02", ""),
        (None, ""),
        ({"tier": "pro"}, ""),
        (["pro"], ""),
        ("Ünïcödé 😀", "Ünïcödé 😀"),
    ],
)
def test_a_property_value_is_trimmed_cleaned_and_cut_and_objects_count_nothing(raw, value):
    assert (property_value(raw) or "") == value


def test_only_declared_properties_with_a_value_become_dimensions(signup):
    event = EventInput("signup", meta={"plan": " pro ", "method": {"nested": 1}, "coupon": "SPRING"})
    assert dimensions_of(definition=signup, event=event, request_facts=None) == {"prop:plan": "pro"}


def test_a_type_keeping_no_day_month_or_year_carries_no_dimension_values():
    hourly = BeaconDefinition(slug="hourly", granularities="M,H", property_keys="plan")
    event = EventInput("hourly", meta={"plan": "pro"})
    assert dimensions_of(definition=hourly, event=event, request_facts=None) == {}
    hourly.dimensions_by_hour = True
    assert dimensions_of(definition=hourly, event=event, request_facts=None) == {"prop:plan": "pro"}


def test_a_type_without_dimensions_carries_none():
    definition = BeaconDefinition(slug="plain", granularities="D")
    assert (
        dimensions_of(definition=definition, event=EventInput("plain", meta={"plan": "pro"}), request_facts=None) == {}
    )


# --- counting them ------------------------------------------------------------------------------


def test_a_property_counts_per_day_month_and_year_but_not_per_hour_by_default(send, signup):
    for plan in ["pro", "pro", "free"]:
        assert send({"event_type": "signup", "meta": {"plan": plan}}).status_code == 204
    assert send({"event_type": "signup", "meta": {"coupon": "x"}}).status_code == 204  # no plan: only the total
    for granularity in (G.DAY, G.MONTH, G.YEAR):
        assert counted(signup, "prop:plan", granularity) == {"pro": 2, "free": 1}
    assert counted(signup, "prop:plan", G.HOUR) == {}
    assert total(signup) == 4


def test_hourly_breakdowns_when_the_type_asks(send, signup):
    signup.dimensions_by_hour = True
    signup.save()
    assert send({"event_type": "signup", "meta": {"plan": "pro"}}).status_code == 204
    assert counted(signup, "prop:plan", G.HOUR) == {"pro": 1}


def test_a_request_with_dimensions_still_writes_its_counts_in_one_statement(
    send, signup, django_assert_num_queries, monkeypatch
):
    moment = timezone.now().replace(hour=12, minute=30)  # one day for every send: a new day reads the cap again
    monkeypatch.setattr(timezone, "now", lambda: moment)
    assert send({"event_type": "signup", "meta": {"plan": "warm-up"}}).status_code == 204  # caches the type
    # A dimension's first value of the day reads the values it already has (the cap); later ones do not.
    # Beside the counter upsert: the visitor sketches' savepoint, insert, read, write and release.
    with django_assert_num_queries(2 + 5):
        assert send({"event_type": "signup", "meta": {"plan": "warm-up", "method": "warm-up"}}).status_code == 204
    with django_assert_num_queries(1 + 5):
        events = [{"event_type": "signup", "meta": {"plan": "pro", "method": f"m{i}"}} for i in range(3)]
        assert send({"events": events}).status_code == 204
    assert counted(signup, "prop:method") == {"warm-up": 1, "m0": 1, "m1": 1, "m2": 1}


@pytest.mark.django_db(transaction=True)
def test_the_memory_sink_counts_dimension_values_at_its_flush(send, settings, signup):
    settings.BEACONS_SINK = "memory"
    settings.BEACONS_FLUSH_SECONDS = 3600
    assert send({"event_type": "signup", "meta": {"plan": "pro"}}).status_code == 204
    assert counted(signup, "prop:plan") == {}
    sinks_flush()
    assert counted(signup, "prop:plan") == {"pro": 1}


@pytest.mark.redis
def test_the_redis_sink_writes_dimension_values_in_the_same_round_trip(send, redis_sink, settings, signup, monkeypatch):
    assert send({"event_type": "signup", "meta": {"plan": "warm-up"}}).status_code == 204  # loads the script
    sink = get_sink()
    sent = []
    connection = sink._connection
    original = type(connection).send_packed_command
    monkeypatch.setattr(
        type(connection), "send_packed_command", lambda self, *a, **k: (sent.append(1), original(self, *a, **k))[1]
    )
    assert send({"event_type": "signup", "meta": {"plan": "pro", "method": "google"}}).status_code == 204
    assert len(sent) == 1
    hit_log_fold(sink=sink)  # the drain's first step: the logged hits join the live hash
    live, _ = live_and_pending_keys(settings.BEACONS_REDIS_PREFIX)
    stored = counter_rows(redis_sink.hgetall(live))
    day_rows = {(dimension, value): n for _, _, dimension, value, g, _, n in stored if g == G.DAY}
    assert day_rows == {
        ("", ""): 2,
        ("prop:plan", "warm-up"): 1,
        ("prop:plan", "pro"): 1,
        ("prop:method", "google"): 1,
    }


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)  # parts are written by other threads' connections
@pytest.mark.parametrize("parts", [1, 2])
def test_the_drain_carries_dimension_values_exactly_once(send, redis_sink, settings, signup, monkeypatch, parts):
    from beacons.counting import drain

    if parts == 2:
        monkeypatch.setattr(drain, "PARALLEL_MIN_KEYS", 1)
        settings.BEACONS_DRAIN_WORKERS = 2
    awkward = "a|b\\c|"  # the field separator and COPY's escape character inside a value
    for plan in ["pro", "pro", awkward]:
        assert send({"event_type": "signup", "meta": {"plan": plan}}).status_code == 204
    result = drain_pass()
    assert result.hits == 3  # dimension rows are not hits
    assert drain_pass().batches == 0
    for granularity in (G.DAY, G.MONTH, G.YEAR):
        assert counted(signup, "prop:plan", granularity) == {"pro": 2, awkward: 1}
    assert total(signup) == 3


# --- built-in dimensions, through the real ingest view -----------------------------------------

IPHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


@pytest.fixture
def page_view(db):
    return BeaconDefinition.objects.get(slug="page_view")


def test_a_campaign_tag_on_the_page_wins_over_a_search_referrer(send, page_view):
    body = {"event_type": "page_view", "identifier": "/", "referrer": "https://www.google.com/search?q=beacons"}
    page = "http://testserver/landing?utm_source=newsletter&utm_medium=email&utm_campaign=spring"
    assert send(body, HTTP_REFERER=page).status_code == 204
    assert send(body).status_code == 204  # no tag: the referrer names the source
    assert counted(page_view, "source") == {"newsletter": 1, "Google": 1}
    assert counted(page_view, "utm_medium") == {"email": 1}
    assert counted(page_view, "utm_campaign") == {"spring": 1}


def test_campaign_tags_sent_beside_the_event_win_over_the_page_url(send, page_view):
    body = {"event_type": "page_view", "identifier": "/", "utm_source": "fb", "utm_campaign": "sale"}
    assert send(body, HTTP_REFERER="http://testserver/?utm_source=newsletter&utm_campaign=spring").status_code == 204
    assert counted(page_view, "source") == {"Facebook": 1}
    assert counted(page_view, "utm_campaign") == {"sale": 1}


def test_the_image_beacon_counts_the_referrer_and_campaign_it_is_given(beacon_client, page_view):
    opened = beacon_client.get(
        "/beacon/page_view.gif",
        {"i": "/mail", "utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "<b>winter</b>"},
    )
    assert opened.status_code == 200 and opened["Content-Type"] == "image/gif"
    assert (
        beacon_client.get("/beacon/page_view.gif", {"i": "/", "r": "https://www.google.com/search?q=x"}).status_code
        == 200
    )
    assert (
        beacon_client.get("/beacon/page_view.gif", {"i": "/", "referrer": "https://news.ycombinator.com/"}).status_code
        == 200
    )
    assert counted(page_view, "source") == {"newsletter": 1, "Google": 1, "Hacker News": 1}
    assert counted(page_view, "utm_medium") == {"email": 1}
    assert counted(page_view, "utm_campaign") == {"<b>winter</b>": 1}


def test_the_image_beacon_cuts_a_long_campaign_and_still_answers_the_image_for_garbage(beacon_client, page_view):
    query = "i=/&utm_campaign=" + "x" * 5000 + "&referrer=" + "%00" * 10 + "&utm_medium=%ff%fe"
    response = beacon_client.get("/beacon/page_view.gif?" + query)
    assert response.status_code == 200 and response["Content-Type"] == "image/gif"
    [(campaign, n)] = counted(page_view, "utm_campaign").items()
    assert n == 1 and len(campaign) == VALUE_MAX_LENGTH
    assert counted(page_view, "source") == {"Direct / none": 1}


def test_a_referrer_from_the_site_itself_is_direct(send, page_view, site):
    assert (
        send({"event_type": "page_view", "identifier": "/b", "referrer": f"https://{site.domain}/a"}).status_code == 204
    )
    assert counted(page_view, "source") == {"Direct / none": 1}


def test_an_iphone_counts_as_mobile_safari_on_ios(send, page_view):
    assert send({"event_type": "page_view", "identifier": "/"}, HTTP_USER_AGENT=IPHONE_UA).status_code == 204
    assert counted(page_view, "device") == {"mobile": 1}
    assert counted(page_view, "os") == {"iOS": 1}
    assert counted(page_view, "browser") == {"Mobile Safari": 1}


def test_a_known_address_counts_under_its_country_and_a_private_one_as_unknown(send, page_view):
    assert send({"event_type": "page_view", "identifier": "/"}, REMOTE_ADDR="81.2.69.142").status_code == 204
    assert send({"event_type": "page_view", "identifier": "/"}, REMOTE_ADDR="10.1.2.3").status_code == 204
    assert counted(page_view, "country") == {"GB": 1, "(unknown)": 1}
    stored = BeaconAggregate.objects.values_list("identifier", flat=True)
    assert not any("81.2.69" in value or "10.1.2" in value for value in stored)


def test_a_custom_type_counts_its_declared_property_and_no_built_in_dimension(send, signup):
    body = {"event_type": "signup", "meta": {"plan": "pro"}, "referrer": "https://news.ycombinator.com/"}
    assert send(body, HTTP_USER_AGENT=IPHONE_UA).status_code == 204
    assert set(BeaconAggregate.objects.filter(definition=signup).values_list("dimension", flat=True)) == {
        "",
        "prop:plan",
    }
    assert counted(signup, "prop:plan") == {"pro": 1}


@pytest.mark.parametrize(
    "referrer, user_agent",
    [
        ("javascript:alert(1)", "\x00\x01garbage"),
        ("http://[::1/", "Mozilla/5.0 (" + "A" * 5000),
        ("https://" + "a." * 2000 + "com", "😀" * 300),
        ("\u202e<script>", "Mozilla/5.0 (compatible; unknown)"),
    ],
)
def test_garbage_referrers_and_user_agents_count_as_unknown_never_fail(send, page_view, referrer, user_agent):
    body = {"event_type": "page_view", "identifier": "/", "referrer": referrer}
    assert send(body, HTTP_USER_AGENT=user_agent, REMOTE_ADDR="not an address").status_code == 204
    assert counted(page_view, "source") == {"(unknown)": 1}
    assert counted(page_view, "country") == {"(unknown)": 1}
    for code in ("browser", "os", "device", "source", "country"):
        assert all(len(value) <= 120 for value in counted(page_view, code))


def test_a_type_that_keeps_no_built_in_dimension_never_parses_the_user_agent(send, signup, monkeypatch):
    from beacons.ingest import extraction

    monkeypatch.setattr(extraction, "device_of", lambda ua: pytest.fail("parsed"))
    monkeypatch.setattr(extraction, "country_of", lambda ip: pytest.fail("looked up"))
    monkeypatch.setattr(extraction, "source_of", lambda *a, **k: pytest.fail("named"))
    assert send({"event_type": "signup", "meta": {"plan": "pro"}}).status_code == 204


def test_a_type_declares_up_to_ten_property_keys_of_up_to_32_characters():
    from django.core.exceptions import ValidationError

    from beacons.models import validate_property_keys

    validate_property_keys(",".join(f"k{i}" for i in range(10)))
    validate_property_keys("a" * 32)
    with pytest.raises(ValidationError, match="At most 10 properties"):
        validate_property_keys(",".join(f"k{i}" for i in range(11)))
    with pytest.raises(ValidationError, match="1–32 letters"):
        validate_property_keys("a" * 33)


@pytest.mark.parametrize(
    "kept, value",
    [
        ("source", "Google"),
        ("utm_medium", "email"),
        ("utm_campaign", "spring"),
        ("browser", "Firefox"),
        ("os", "Windows"),
        ("device", "desktop"),
        ("country", "DE"),
        ("identity", "anonymous"),
    ],
)
def test_a_type_keeping_one_built_in_dimension_counts_that_one_alone(kept, value):
    from datetime import UTC, datetime

    from beacons.ingest.recording import RequestContext

    facts = RequestContext(
        site_id=1,
        received_at=datetime(2026, 3, 10, tzinfo=UTC),
        user_agent="Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
        referer="https://example.com/a?utm_medium=email&utm_campaign=spring",
        source="beacon",
        site_domain="example.com",
        ip="5.9.0.1",  # a German address
        tracked=True,
    )
    definition = BeaconDefinition(slug="one", granularities="D", dimensions=kept)
    event = EventInput("one", identifier="/a", referrer="https://www.google.com/")
    assert dimensions_of(definition=definition, event=event, request_facts=facts) == {kept: value}


def test_staff_read_each_dimension_by_its_label():
    from beacons.dimensions import dimension_label

    assert [dimension_label(code) for code in ("", "browser", "prop:plan", "gone")] == [
        "Identifier",
        "Browser",
        "Property “plan”",
        "gone",
    ]
