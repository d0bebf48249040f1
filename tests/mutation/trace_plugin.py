"""A pytest plugin for the mutation run: which tests run which line of the mutated modules,
and how long each test takes.

Loaded with ``-p tests.mutation.trace_plugin`` (under xdist, in every worker). coverage.py
records each line with the test running it as its context; ``MUTATE_TRACE_FILES`` lists the
modules' files (``os.pathsep``-separated), ``MUTATE_TRACE_OUT`` the JSON written at the end
(one per xdist worker, suffixed with its name):
{"lines": {file: {line: [test ids]}}, "durations": {test id: seconds}}; a line run outside
any test (at import, while collecting) lists ``IMPORT`` among its tests.
"""

import json
import os

import coverage
import pytest

from tests.mutation import project_caches_clear

IMPORT = "(import)"
_files = [os.path.realpath(f) for f in os.environ.get("MUTATE_TRACE_FILES", "").split(os.pathsep) if f]
_durations: dict[str, float] = {}
_coverage = coverage.Coverage(data_file=None, include=_files, branch=False, config_file=False)


def pytest_configure(config):
    _coverage.start()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    # A cached function's body runs only in the first test that calls it with those arguments:
    # traced so, a mutant of it would run only that test, however many others depend on it.
    project_caches_clear()
    _coverage.switch_context(item.nodeid)
    yield
    _coverage.switch_context("")


def pytest_runtest_logreport(report):
    _durations[report.nodeid] = _durations.get(report.nodeid, 0.0) + report.duration


def pytest_sessionfinish(session, exitstatus):
    _coverage.stop()
    data = _coverage.get_data()
    lines = {}
    for path in _files:
        by_line = data.contexts_by_lineno(path)
        lines[path] = {line: sorted(c or IMPORT for c in contexts) for line, contexts in by_line.items()}
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with open(f"{os.environ['MUTATE_TRACE_OUT']}.{worker}", "w") as out:
        json.dump({"lines": lines, "durations": _durations}, out)
