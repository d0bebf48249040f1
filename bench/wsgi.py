"""The site's WSGI application with a tally of response statuses by path (for benchmarks only).

Each server process writes its tally to ``$BENCH_STATUS_DIR/<pid>.json`` when it exits: the
server-side count of 204s, exact even for requests the load generator gave up on at the end of
a run. At the WSGI level, so beacons taking the ingest fast path (no middleware) are tallied too.
"""

import atexit
import json
import multiprocessing.util
import os
from collections import Counter

from beacon_site.wsgi import application as site_application

_statuses: Counter[str] = Counter()
_exit_hook_pid: int | None = None


def _dump() -> None:
    directory = os.environ.get("BENCH_STATUS_DIR")
    if directory and _statuses:
        with open(os.path.join(directory, f"{os.getpid()}.json"), "w") as fh:
            json.dump(_statuses, fh)


atexit.register(_dump)  # gunicorn's workers run atexit; granian's do not (see below)


def application(environ, start_response):
    global _exit_hook_pid
    if _exit_hook_pid != os.getpid():
        # Registered in the process that serves: a granian worker skips atexit, and its start clears
        # the multiprocessing exit hooks it inherited from the parent (which imports the project).
        _exit_hook_pid = os.getpid()
        multiprocessing.util.Finalize(None, _dump, exitpriority=100)
    path = environ.get("PATH_INFO", "")

    def start_response_tallied(status, headers, exc_info=None):
        _statuses[f"{path} {status.split(' ', 1)[0]}"] += 1
        return start_response(status, headers, exc_info)

    return site_application(environ, start_response_tallied)
