"""The migrations that bring sites: every counter, single event and error group moves to the first site."""

from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("beacons", "0011_bounded_type_lists")]
AFTER = [("beacons", "0014_site_keys")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def migrator():
    """Migrate the test database back and forth; always left at the latest migration."""
    yield _migrate
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_every_counter_event_and_error_group_moves_to_one_site_named_by_the_base_url(migrator, settings):
    old = migrator(BEFORE)
    Definition = old.get_model("beacons", "BeaconDefinition")
    page_view = Definition.objects.get_or_create(slug="page_view", defaults={"name": "Page views"})[0]
    error = Definition.objects.get_or_create(slug="error", defaults={"name": "Errors", "kind": "error"})[0]
    moment = datetime(2026, 3, 1, tzinfo=UTC)
    Aggregate = old.get_model("beacons", "BeaconAggregate")
    for identifier, count in (("", 7), ("/pricing", 4), ("/", 3)):
        Aggregate.objects.create(
            definition=page_view, identifier=identifier, granularity="D", period_start=moment, count=count
        )
    group = old.get_model("beacons", "ErrorGroup").objects.create(
        definition=error, fingerprint="f" * 64, title="Boom", first_seen=moment, last_seen=moment, count=2
    )
    Event = old.get_model("beacons", "BeaconEvent")
    for _ in range(2):
        Event.objects.create(definition=error, received_at=moment, identifier="/", error_group=group)
    settings.BEACONS_BASE_URL = "https://Shop.Example.com:8443/beacons/"

    new = migrator(AFTER)

    Site = new.get_model("beacons", "Site")
    site = Site.objects.get()
    assert (site.domain, site.name, site.is_active) == ("shop.example.com", "shop.example.com", True)
    counts = new.get_model("beacons", "BeaconAggregate").objects.order_by("identifier")
    assert [(row.site_id, row.identifier, row.count) for row in counts] == [
        (site.pk, "", 7),
        (site.pk, "/", 3),
        (site.pk, "/pricing", 4),
    ]
    assert list(new.get_model("beacons", "BeaconEvent").objects.values_list("site_id", flat=True)) == [site.pk] * 2
    moved_group = new.get_model("beacons", "ErrorGroup").objects.get()
    assert (moved_group.site_id, moved_group.count, moved_group.title) == (site.pk, 2, "Boom")
    # The new key holds: the same bucket of the same site cannot be stored twice, of another site it can.
    NewAggregate = new.get_model("beacons", "BeaconAggregate")
    with pytest.raises(IntegrityError), transaction.atomic():
        NewAggregate.objects.create(
            site_id=site.pk, definition_id=page_view.pk, identifier="", granularity="D", period_start=moment, count=1
        )
    other = Site.objects.create(domain="blog.example.com", name="Blog")
    NewAggregate.objects.create(
        site_id=other.pk, definition_id=page_view.pk, identifier="", granularity="D", period_start=moment, count=1
    )
    assert NewAggregate.objects.filter(identifier="", period_start=moment).count() == 2


@pytest.mark.django_db(transaction=True)
def test_without_a_base_url_the_first_site_is_the_first_concrete_allowed_host(migrator, settings):
    migrator(BEFORE)
    settings.BEACONS_BASE_URL = ""
    settings.ALLOWED_HOSTS = ["*", ".example.org", "[::1]", "Stats.Example.org"]
    new = migrator(AFTER)
    assert list(new.get_model("beacons", "Site").objects.values_list("domain", flat=True)) == ["stats.example.org"]


@pytest.mark.django_db(transaction=True)
def test_without_a_base_url_or_a_concrete_allowed_host_the_first_site_is_localhost(migrator, settings):
    migrator(BEFORE)
    settings.BEACONS_BASE_URL = ""
    settings.ALLOWED_HOSTS = ["*"]
    new = migrator(AFTER)
    assert list(new.get_model("beacons", "Site").objects.values_list("domain", flat=True)) == ["localhost"]
