import json

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client

BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


@pytest.fixture(autouse=True)
def _fresh_process_state():
    """Caches that outlive a test (rate limits, dedupe ids, salts, sinks) start empty."""
    from beacons import privacy, sinks

    cache.clear()
    privacy._salt_cache.clear()
    sinks._SINKS.clear()
    yield
    cache.clear()


@pytest.fixture
def beacon_client():
    """A test client that looks like a real browser (empty and bot user agents are dropped)."""
    return Client(HTTP_USER_AGENT=BROWSER_UA)


@pytest.fixture
def send(beacon_client):
    """POST a JSON body to /beacon; returns the response."""

    def _send(body, content_type="application/json", **headers):
        data = body if isinstance(body, (str, bytes)) else json.dumps(body)
        return beacon_client.post("/beacon", data=data, content_type=content_type, **headers)

    return _send


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def pytest_collection_modifyitems(config, items):
    from django.db import connection as conn

    skip_pg = pytest.mark.skip(reason="needs PostgreSQL (run with DATABASE_URL=postgres://...)")
    for item in items:
        if "postgres" in item.keywords and conn.vendor != "postgresql":
            item.add_marker(skip_pg)
