"""A pytest plugin for the mutation run: which tests call which function of the mutated module.

Loaded with ``-p tests.mutation.trace_plugin``; ``MUTATE_TRACE_FILE`` names the module's
file, ``MUTATE_TRACE_OUT`` the JSON written at the end: {"first line of a function": [test ids]}.
"""

import json
import os
import sys
import threading

import pytest

_target = os.path.realpath(os.environ.get("MUTATE_TRACE_FILE", ""))
_calls: dict[int, set[str]] = {}
_current = {"test": None}


def _profile(frame, event, arg):
    if event == "call" and _current["test"] and frame.f_code.co_filename == _target:
        _calls.setdefault(frame.f_code.co_firstlineno, set()).add(_current["test"])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _current["test"] = item.nodeid
    sys.setprofile(_profile)
    threading.setprofile(_profile)
    yield
    sys.setprofile(None)
    threading.setprofile(None)
    _current["test"] = None


def pytest_sessionfinish(session, exitstatus):
    with open(os.environ["MUTATE_TRACE_OUT"], "w") as out:
        json.dump({line: sorted(tests) for line, tests in _calls.items()}, out)
