"""The migration that brings dimensions: every stored counter stays, on the identifier axis."""

from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, transaction

from .test_sites_migration import _migrate, migrator  # noqa: F401 (a fixture)

BEFORE = [("beacons", "0014_site_keys")]
AFTER = [("beacons", "0015_dimensions")]


@pytest.mark.django_db(transaction=True)
def test_every_counter_stays_as_an_identifier_counter_and_types_get_the_default_hour_retention(migrator):  # noqa: F811
    old = migrator(BEFORE)
    page_view = old.get_model("beacons", "BeaconDefinition").objects.get_or_create(
        slug="page_view", defaults={"name": "Page views"}
    )[0]
    site = old.get_model("beacons", "Site").objects.order_by("pk").first()
    moment = datetime(2026, 3, 1, tzinfo=UTC)
    Aggregate = old.get_model("beacons", "BeaconAggregate")
    for identifier, count in (("", 7), ("/pricing", 4), ("source", 3)):
        Aggregate.objects.create(
            site=site, definition=page_view, identifier=identifier, granularity="D", period_start=moment, count=count
        )

    new = migrator(AFTER)

    counts = new.get_model("beacons", "BeaconAggregate").objects.order_by("identifier")
    assert [(row.dimension, row.identifier, row.count) for row in counts] == [
        ("", "", 7),
        ("", "/pricing", 4),
        ("", "source", 3),
    ]
    assert new.get_model("beacons", "BeaconDefinition").objects.get(pk=page_view.pk).hour_retention_days == 92
    NewAggregate = new.get_model("beacons", "BeaconAggregate")
    key = {"site_id": site.pk, "definition_id": page_view.pk, "granularity": "D", "period_start": moment}
    with pytest.raises(IntegrityError), transaction.atomic():
        NewAggregate.objects.create(dimension="", identifier="/pricing", count=1, **key)
    NewAggregate.objects.create(dimension="browser", identifier="/pricing", count=1, **key)  # another axis, its own row
    assert NewAggregate.objects.filter(identifier="/pricing").count() == 2
