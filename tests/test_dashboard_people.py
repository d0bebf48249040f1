"""The visitor and visit cards of the dashboard, from real beacons: two visitors, their visits, one bounce."""

import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_CURRENT_URL": "http://testserver/dashboard/"}
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"


@pytest.fixture
def staff(client, make_staff):
    client.force_login(make_staff(is_superuser=True))
    return client


def cards(response) -> dict:
    return {card["label"]: card["value"] for card in response.context["kpis"]["people"]}


@pytest.fixture
def clock(monkeypatch):
    """Noon, stopped: the three page views of one visitor come in the same second (0 s of visit),
    however slowly a loaded machine runs the test."""
    from datetime import UTC, datetime

    from django.utils import timezone

    monkeypatch.setattr(timezone, "now", lambda: datetime(2026, 12, 2, 12, 0, 30, tzinfo=UTC))


def test_two_visitors_give_two_visitors_their_visits_and_one_bounce(staff, clock, send):
    for page in ("/", "/pricing", "/docs"):  # one visitor reads three pages
        assert send({"event_type": "page_view", "identifier": page}, REMOTE_ADDR="81.2.69.142").status_code == 204
    assert (
        send({"event_type": "page_view", "identifier": "/"}, REMOTE_ADDR="8.8.8.8", HTTP_USER_AGENT=PHONE).status_code
        == 204
    )
    assert send({"event_type": "page_view", "identifier": "/"}, REMOTE_ADDR="9.9.9.9", HTTP_DNT="1").status_code == 204
    page = staff.get(reverse("dashboard:index"), {"range": "today"})
    assert cards(page) == {
        "Unique visitors": "2",  # the Do-Not-Track visitor is a page view, never a visitor
        "Visits": "2",
        "Views per visit": "2.00",
        "Bounce rate": "50%",
        "Visit duration": "0s",
    }
    assert not any(card.get("estimate") for card in page.context["kpis"]["people"])
    html = page.content.decode()
    assert re.search(r'kpi-label">Unique visitors</div>\s*<div class="kpi-value">2</div>', html)
    assert page.context["live"]["visitors"] == 2
    live = staff.get(reverse("dashboard:panel", args=["live"]), {"range": "today"}, **HX)
    assert "in the last 5 minutes, whatever the dates, from 2 visitors" in live.content.decode()


def test_a_type_that_is_not_page_views_shows_no_visitor_cards(staff, send):
    send({"event_type": "signup", "identifier": "free"})
    page = staff.get(reverse("dashboard:index"), {"type": "signup", "range": "today"})
    assert page.context["kpis"]["people"] == []


def test_the_visitor_cards_change_compares_whole_sketch_hours_of_both_days(staff, send, monkeypatch):
    """At 12:40 today is compared with yesterday to 12:00, the last whole hour the visitor sketches
    keep: a visitor yesterday at 12:50, after the elapsed part, is not in the period before."""
    from datetime import UTC, datetime

    from django.utils import timezone

    def at(hour: int, minute: int, day: int = 2):
        monkeypatch.setattr(timezone, "now", lambda: datetime(2026, 12, day, hour, minute, tzinfo=UTC))

    for day, hour, minute, address in ((1, 11, 10, "81.2.69.142"), (1, 12, 50, "8.8.8.8"), (2, 11, 30, "9.9.9.9")):
        at(hour, minute, day)
        assert send({"event_type": "page_view", "identifier": "/"}, REMOTE_ADDR=address).status_code == 204
    at(12, 40)
    page = staff.get(reverse("dashboard:index"), {"range": "today"})
    [card] = [card for card in page.context["kpis"]["people"] if card["label"] == "Unique visitors"]
    assert card["value"] == "1"
    assert card["change_percent"] == 0  # 1 visitor before 12:00 on both days (not −50 %: 1 against 2)
    assert "12:00" in card["compared_label"]
