"""The production server: granian (WSGI), the fastest of the servers measured for ingest
(README, "Running at scale"). ``make serve`` runs collectstatic and migrate, then this.

    .venv/bin/python -m beacon_site.serve

Environment: ``HOST`` (default 0.0.0.0), ``PORT`` (8000), ``WEB_CONCURRENCY`` worker
processes (default: the CPU count), ``WEB_THREADS`` Python threads per worker (default 4:
on 2 cores, 4 beat 2 and 8 for the ingest path with every sink, as fewer threads contend
for the GIL yet enough stay busy while one waits on Redis or the database; each may hold
one database connection for ``CONN_MAX_AGE``, so workers × threads must stay under
PostgreSQL's ``max_connections``). Static files are served by whitenoise.

Slow clients: ``HEADER_READ_TIMEOUT_MS`` (default 5000) bounds the time a client may take to
send its headers. granian 2.x has no body timeout and reads a WSGI body on the worker thread,
so a client that sends part of a body and waits holds a thread: in production a reverse
proxy that buffers whole request bodies before passing them on (nginx does by default) with
a short body timeout goes in front (README, "Production settings").

Buffered counts (``BEACONS_SINK=memory``) are written when a worker stops cleanly
(SIGTERM/SIGINT to this process): ``beacons.counting.sinks`` registers its flush with the exit hooks
multiprocessing runs in each granian worker.
"""

import os

from granian import Granian
from granian.constants import Interfaces
from granian.http import HTTP1Settings

# A client gets this long to send its request headers (granian's default is 30 s).
HEADER_READ_MILLISECONDS = 5000


def workers_default() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def checks_pass() -> None:
    """Django's system checks, as runserver runs them: a setting that cannot work stops the start
    here with its message (e.g. the file email backend without EMAIL_FILE_PATH), not at delivery."""
    import django
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    django.setup()
    try:
        call_command("check", fail_level="ERROR")
    except SystemCheckError as problems:
        raise SystemExit(str(problems)) from None


def wsgi_target() -> str:
    """granian's "module:name" of the settings' WSGI_APPLICATION ("beacon_site.wsgi.application")."""
    from django.conf import settings

    module, _, name = settings.WSGI_APPLICATION.rpartition(".")
    return f"{module}:{name}"


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "beacon_site.settings")
    checks_pass()
    threads = int(os.environ.get("WEB_THREADS") or 4)
    Granian(
        wsgi_target(),
        address=os.environ.get("HOST", "0.0.0.0"),
        port=int(os.environ.get("PORT") or 8000),
        interface=Interfaces.WSGI,
        workers=int(os.environ.get("WEB_CONCURRENCY") or workers_default()),
        blocking_threads=threads,
        backpressure=threads * 4,  # requests a worker takes in before the kernel backlog holds them
        websockets=False,
        http1_settings=HTTP1Settings(
            header_read_timeout=int(os.environ.get("HEADER_READ_TIMEOUT_MS") or HEADER_READ_MILLISECONDS)
        ),
        respawn_failed_workers=True,  # a crashed worker is replaced; the others keep serving
        log_access=os.environ.get("ACCESS_LOG", "").lower() in {"1", "true", "yes", "on"},
    ).serve()


if __name__ == "__main__":
    main()
