"""``kill -9`` of the sink's Redis under load, with the append-only file on (as in
``beacon_site/redis-production.conf``): no answered hit is lost, none counted twice.

The Redis is a private ``redis-server`` on its own port and folder (never the shared one):
killed, it is started again on the same folder and replays its append-only file.
"""

import uuid

import pytest

from bench.servers import Server, hits_counted

from .redis_private import PrivateRedis
from .test_faults import Load, database_url, drain, server_errors  # noqa: F401 (database_url is a fixture)

pytestmark = [pytest.mark.serial]

AOF_ON = ("--appendonly", "yes", "--appendfsync", "everysec", "--save", "")


def crash_under_load(*, url: str, folder, persistence: tuple[str, ...]) -> tuple[int, int, Load]:
    """Load a server, drain once, ``kill -9`` Redis, keep loading, restart Redis, drain.
    Returns (hits answered 204, hits counted, the load)."""
    redis = PrivateRedis(folder, *persistence).start()
    event_type = f"fault_redis_kill_{uuid.uuid4().hex[:6]}"
    env = {
        "DATABASE_URL": url,
        "BEACONS_SINK": "redis",
        "BEACONS_REDIS_URL": redis.url,
        "BEACONS_REDIS_PREFIX": f"test-crash-{uuid.uuid4().hex[:8]}",
        "BEACONS_RATE_LIMIT": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "WEB_THREADS": "4",
    }
    server = Server(env=env, log_path=folder / "server.log").start()
    try:
        with Load(server.url, event_type) as load:
            load.wait_for(300)
            assert drain(env).returncode == 0  # a pass of the drain, as `beacons_drain --loop` makes
            load.wait_for(sum(load.statuses.values()) + 500)
            redis.kill()
            load.wait_for(sum(load.statuses.values()) + 200)  # answered while Redis is down: the database
            redis.start()
            load.wait_for(sum(load.statuses.values()) + 300)
        server.stop()
        result = drain(env)
        assert result.returncode == 0, result.stderr
        return load.statuses[204], hits_counted(url, event_type), load
    finally:
        server.stop()
        redis.stop()


def test_redis_killed_with_the_append_only_file_on_loses_no_answered_hit(database_url, tmp_path):  # noqa: F811 (the imported fixture)
    answered, counted, load = crash_under_load(url=database_url, folder=tmp_path, persistence=AOF_ON)
    assert server_errors(load) == {}
    assert answered >= 1000
    assert counted == answered
