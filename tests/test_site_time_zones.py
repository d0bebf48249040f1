"""Each site's buckets and dashboard periods are in its own time zone (fixed clock at awkward moments)."""

from datetime import date, datetime

import pytest
from django.urls import reverse

from beacons.counting.buckets import bucket_zone
from beacons.counting.increments import Hit, aggregates_add, increments_for
from beacons.counting.value_cap import values_dropped_add
from beacons.models import BeaconAggregate, BeaconDefinition, DroppedValues, Site
from beacons.models import Granularity as G
from beacons.transfer.imports import RowInvalid, aggregate_row_parse

from .conftest import first_site, first_site_zone, utc


def page_view() -> BeaconDefinition:
    return BeaconDefinition.objects.get(slug="page_view")


def totals(site, granularity) -> dict[datetime, int]:
    rows = BeaconAggregate.objects.filter(
        site=site, definition__slug="page_view", dimension="", identifier="", granularity=granularity
    )
    return {row.period_start: row.count for row in rows}


def view_sent(send, site) -> None:
    assert send({"event_type": "page_view", "identifier": "/", "site": site.domain}).status_code == 204


def test_a_hit_at_2330_utc_on_new_years_eve_counts_in_tokyos_new_year_and_the_utc_sites_old_one(send, clock, tokyo):
    first_site_zone("UTC")
    clock(utc(2026, 12, 31, 23, 30))  # 08:30 on 1 January 2027 in Tokyo
    view_sent(send, tokyo)
    view_sent(send, first_site())
    tokyo_midnight = utc(2026, 12, 31, 15)  # 1 January 2027 00:00 JST
    assert totals(tokyo, G.DAY) == {tokyo_midnight: 1}
    assert totals(tokyo, G.MONTH) == {tokyo_midnight: 1}
    assert totals(tokyo, G.YEAR) == {tokyo_midnight: 1}
    assert totals(first_site(), G.DAY) == {utc(2026, 12, 31): 1}
    assert totals(first_site(), G.MONTH) == {utc(2026, 12, 1): 1}
    assert totals(first_site(), G.YEAR) == {utc(2026, 1, 1): 1}


def test_hits_of_two_sites_received_together_each_count_in_their_sites_day(tokyo):
    first_site_zone("UTC")
    definition = page_view()
    hits = [Hit(site.pk, definition.pk, (G.DAY,), "/") for site in (tokyo, first_site())]
    aggregates_add(increments=increments_for(hits=hits, received_at=utc(2026, 12, 2, 23, 30)))
    assert totals(tokyo, G.DAY) == {utc(2026, 12, 2, 15): 1}  # 3 December in Tokyo
    assert totals(first_site(), G.DAY) == {utc(2026, 12, 2): 1}


def test_a_berlin_sites_day_when_clocks_go_forward_is_23_hours(db, send, clock):
    berlin = Site.objects.create(domain="berlin.example.com", name="Berlin", time_zone="Europe/Berlin")
    for moment in (
        utc(2026, 3, 28, 22, 59),  # 23:59 CET on 28 March
        utc(2026, 3, 28, 23, 0),  # 00:00 CET on 29 March: the short day starts
        utc(2026, 3, 29, 21, 59),  # 23:59 CEST on 29 March
        utc(2026, 3, 29, 22, 0),  # 00:00 CEST on 30 March
    ):
        clock(moment)
        view_sent(send, berlin)
    assert totals(berlin, G.DAY) == {utc(2026, 3, 27, 23): 1, utc(2026, 3, 28, 23): 2, utc(2026, 3, 29, 22): 1}


def test_a_site_without_a_zone_of_its_own_counts_in_beacons_time_zone(settings, tokyo):
    settings.BEACONS_TIME_ZONE = "America/New_York"
    Site.objects.filter(pk=tokyo.pk).update(time_zone="")
    assert bucket_zone(Site.objects.get(pk=tokyo.pk)).key == "America/New_York"
    Site.objects.filter(pk=tokyo.pk).update(time_zone="Mars/Olympus")  # only a raw UPDATE gets past the validator
    assert bucket_zone(Site.objects.get(pk=tokyo.pk)).key == "America/New_York"


@pytest.fixture
def staff(client, make_staff):
    client.force_login(make_staff(is_superuser=True))
    return client


def test_today_on_a_tokyo_sites_dashboard_is_tokyos_day(staff, clock, tokyo):
    first_site_zone("UTC")
    clock(utc(2026, 12, 2, 16, 0))  # 01:00 on 3 December in Tokyo, 16:00 on 2 December in UTC
    definition = page_view()
    for site in (tokyo, first_site()):
        hit = Hit(site.pk, definition.pk, tuple(definition.granularity_codes), "/")
        aggregates_add(increments=increments_for(hits=[hit] * 5, received_at=utc(2026, 12, 2, 14, 30)))  # 23:30 JST
        aggregates_add(increments=increments_for(hits=[hit] * 2, received_at=utc(2026, 12, 2, 15, 30)))  # 00:30 JST
    tokyo_today = staff.get(reverse("dashboard:index"), {"site": tokyo.domain, "range": "today"})
    assert tokyo_today.context["kpis"]["total"] == 2
    assert "3 December 2026" in tokyo_today.content.decode()
    assert "Time in Asia/Tokyo" in tokyo_today.content.decode()
    utc_today = staff.get(reverse("dashboard:index"), {"site": first_site().domain, "range": "today"})
    assert utc_today.context["kpis"]["total"] == 7
    assert "2 December 2026" in utc_today.content.decode()


def test_an_imported_day_must_start_at_its_sites_midnight(tokyo):
    row = {"site": tokyo.domain, "event_type": "page_view", "granularity": "day", "count": 3}
    parsed = aggregate_row_parse({**row, "period_start": "2026-12-03T00:00:00+09:00"})
    assert parsed.period_start == utc(2026, 12, 2, 15)
    with pytest.raises(RowInvalid) as problem:
        aggregate_row_parse({**row, "period_start": "2026-12-03T00:00:00+00:00"})
    assert "in Asia/Tokyo; that day starts at 2026-12-03T00:00:00+09:00" in str(problem.value.errors["period_start"])


def test_values_over_the_cap_are_tallied_on_their_sites_day(tokyo):
    first_site_zone("UTC")
    definition = page_view()
    values_dropped_add(
        over={
            (tokyo.pk, definition.pk, "source", utc(2026, 12, 2, 15)): 4,  # 3 December in Tokyo
            (first_site().pk, definition.pk, "source", utc(2026, 12, 2)): 2,
        }
    )
    tallied = {(row.site_id, row.day): row.count for row in DroppedValues.objects.all()}
    assert tallied == {(tokyo.pk, date(2026, 12, 3)): 4, (first_site().pk, date(2026, 12, 2)): 2}
