"""System checks: settings that would only fail later (at delivery, or in a crash) are named at start-up."""

from django.conf import settings
from django.core import checks
from django.utils.module_loading import import_string

FILE_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
PERSISTENCE_OFF = "beacons.W001"


@checks.register(checks.Tags.compatibility, deploy=False)
def email_settings_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Error alerts are mailed from a background thread: a backend that cannot send must stop the start."""
    problems = []
    backend = settings.EMAIL_BACKEND
    try:
        import_string(backend)
    except ImportError:
        problems.append(
            checks.Error(
                f"EMAIL_BACKEND {backend!r} cannot be imported.",
                hint="Use e.g. django.core.mail.backends.smtp.EmailBackend (see the README's settings table).",
                id="beacons.E001",
            )
        )
    if backend == FILE_BACKEND and not getattr(settings, "EMAIL_FILE_PATH", None):
        problems.append(
            checks.Error(
                "EMAIL_BACKEND is the file backend but EMAIL_FILE_PATH is not set.",
                hint="Set EMAIL_FILE_PATH to a folder the server may write, e.g. EMAIL_FILE_PATH=/var/tmp/beacons-mail.",
                id="beacons.E002",
            )
        )
    if settings.EMAIL_USE_TLS and settings.EMAIL_USE_SSL:
        problems.append(
            checks.Error(
                "EMAIL_USE_TLS and EMAIL_USE_SSL are both on; only one can be.",
                hint="Port 587 usually takes EMAIL_USE_TLS, port 465 EMAIL_USE_SSL.",
                id="beacons.E003",
            )
        )
    return problems


@checks.register(checks.Tags.compatibility, deploy=False)
def visit_gap_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """A gap under a second is no visit at all: every page view would be a visit of its own, and
    Django's cache, which keeps a visit's state for the gap, keeps nothing for 0 (or less)."""
    if settings.BEACONS_VISIT_GAP_SECONDS >= 1:
        return []
    return [
        checks.Error(
            f"BEACONS_VISIT_GAP_SECONDS is {settings.BEACONS_VISIT_GAP_SECONDS}; a visit needs a gap of a second or more.",
            hint="The usual gap is 1800 (30 minutes).",
            id="beacons.E004",
        )
    ]


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

    from beacons.counting.sinks import redis_client

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
