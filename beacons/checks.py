"""System checks of the deployment Beacons runs in (run by ``manage.py`` commands at start-up)."""

from django.conf import settings
from django.core import checks

PERSISTENCE_OFF = "beacons.W001"


@checks.register(checks.Tags.compatibility)
def redis_persistence_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Warn when the redis sink counts into a Redis that keeps nothing on disk.

    Without append-only persistence a crash of Redis loses every count since the last drain
    pass. Asks ``CONFIG GET appendonly``, else (CONFIG disabled or renamed, as on managed
    Redis) ``INFO persistence``; an unreachable Redis gives no warning here (the sink then
    writes to the database).
    """
    if settings.BEACONS_SINK != "redis":
        return []
    import redis

    from .sinks import redis_client

    client = redis_client(settings.BEACONS_REDIS_URL)
    try:
        try:
            enabled = client.config_get("appendonly").get("appendonly") == "yes"
        except redis.ResponseError:
            enabled = bool(client.info("persistence").get("aof_enabled"))
    except redis.RedisError:
        return []
    finally:
        client.close()
    if enabled:
        return []
    return [
        checks.Warning(
            "The Redis at BEACONS_REDIS_URL has append-only persistence off: a crash of Redis loses "
            "every count since the last beacons_drain pass.",
            hint="Run it with appendonly yes and appendfsync everysec (beacon_site/redis-production.conf).",
            id=PERSISTENCE_OFF,
        )
    ]
