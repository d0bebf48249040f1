"""System checks: settings that would only fail later, at delivery time, fail at start-up instead."""

from django.conf import settings
from django.core import checks
from django.utils.module_loading import import_string

FILE_BACKEND = "django.core.mail.backends.filebased.EmailBackend"


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
