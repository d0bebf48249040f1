"""Counts responses by path and status in each server process and writes the tally to
``$BENCH_STATUS_DIR/<pid>.json`` when the process exits: the server-side count of 204s,
exact even for requests the load generator gave up on at the end of a run."""

import atexit
import json
import multiprocessing.util
import os
from collections import Counter

_statuses: Counter[str] = Counter()


def _dump() -> None:
    directory = os.environ.get("BENCH_STATUS_DIR")
    if directory and _statuses:
        with open(os.path.join(directory, f"{os.getpid()}.json"), "w") as fh:
            json.dump(_statuses, fh)


atexit.register(_dump)


def status_tally(get_response):
    # Registered here, in the process that serves: a granian worker skips atexit, and its start
    # clears the multiprocessing exit hooks it inherited from the parent (which imports the project).
    multiprocessing.util.Finalize(None, _dump, exitpriority=100)

    def middleware(request):
        response = get_response(request)
        _statuses[f"{request.path} {response.status_code}"] += 1
        return response

    return middleware
