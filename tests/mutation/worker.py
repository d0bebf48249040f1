"""One mutation worker: loads pytest and the third-party libraries once, then runs each job
(a JSON line of pytest arguments) in a forked child, so a mutant costs its tests and not an
interpreter start. Answers one JSON line per job: {"passed": bool, "failed": the first failing
test id or ""} (over the timeout: killed, no test named).

Two kinds, by the first argument:
- ``fresh``: project modules are never imported here; each child imports the mutated tree afresh
  (any mutant, any database).
- ``preloaded``: Django is set up and every project and test module imported here, once, from
  the unmutated tree; a child swaps the code of the one function the mutant is in
  (``job["patch"]``: the mutated module's source and the function's qualified name) into the
  live function object, so every module that imported it calls the mutant, and imports and
  collection cost nothing. Only for a change inside a function's body, on SQLite (the settings
  are read here, once); the caller sends the rest to a ``fresh`` worker.
"""

import importlib
import json
import os
import pkgutil
import signal
import sys
import tempfile
import time
import types
import warnings

sys.path.insert(0, os.getcwd())
from tests.mutation import PROJECT, project_caches_clear

PRELOADED = [
    "pytest",
    "pytest_django",
    "django",
    "django.db.models",
    "django.test",
    "django.http",
    "django.forms",
    "django.contrib.auth.models",
    "ua_parser",
    "redis",
    "psycopg",
    "plotly.graph_objects",
    "crawlerdetect",
]
for name in PRELOADED:
    try:
        importlib.import_module(name)
    except Exception:
        pass
for name in [n for n in sys.modules if n.split(".")[0] in PROJECT]:
    del sys.modules[name]

PRELOADED_KIND = len(sys.argv) > 1 and sys.argv[1] == "preloaded"
if PRELOADED_KIND:
    import django
    import pytest

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "beacon_site.settings")
    os.environ.setdefault("PYTEST_VERSION", pytest.__version__)  # as under pytest: the settings read it
    warnings.filterwarnings("ignore", message="No directory at")  # as pyproject's filterwarnings: no collectstatic
    django.setup()
    for package in PROJECT:
        importlib.import_module(package)
        for found in pkgutil.walk_packages(sys.modules[package].__path__, prefix=f"{package}."):
            if ".migrations." in found.name or found.name.startswith("tests.mutation"):
                continue
            try:
                importlib.import_module(found.name)
            except Exception:  # a module only its own tests import (skipped there): the child imports it
                pass


def _code_named(code: types.CodeType, qualname: str) -> types.CodeType | None:
    """The code object of ``qualname`` among ``code``'s constants, at any depth."""
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            if constant.co_qualname == qualname:
                return constant
            found = _code_named(constant, qualname)
            if found is not None:
                return found
    return None


def _function_of(holder, name: str) -> object:
    """The plain function behind ``holder.name``: through classmethod, staticmethod, property,
    cached_property, lru_cache and decorators that keep ``__wrapped__``."""
    attribute = holder.__dict__[name] if isinstance(holder, type) else getattr(holder, name)
    for _ in range(8):
        if isinstance(attribute, types.FunctionType) and not hasattr(attribute, "__wrapped__"):
            break
        inner = next((a for a in ("__wrapped__", "__func__", "fget", "func") if hasattr(attribute, a)), None)
        if inner is None:
            break
        attribute = getattr(attribute, inner)
    return attribute


def _patch(module_name: str, path: str, source: str, qualname: str) -> None:
    """Put the mutated code of function ``qualname`` into the live function; clear every
    lru_cache of the project (a cached answer of the unmutated code must not stand in)."""
    code = _code_named(compile(source, path, "exec"), qualname)
    holder = sys.modules[module_name]
    *outer, name = qualname.split(".")
    for part in outer:
        holder = getattr(holder, part)
    function = _function_of(holder, name)
    if code is None or not isinstance(function, types.FunctionType):
        raise LookupError(qualname)
    function.__code__ = code
    project_caches_clear()


UNPATCHABLE = 99  # the child's exit code when the function cannot be found: run the job fresh

# The test database is made by this worker's first job for each database (new code since the
# last run may have new migrations) and reused by every later job: a mutant changes code, never
# the schema, and creating the database again cost ~2 s a mutant.
databases_made: set[str] = set()
failed_file = os.path.join(tempfile.mkdtemp(prefix="beacons-mutate-worker-"), "failed")


class FirstFailure:
    """Writes the id of the first failing test, so the next mutant of that function runs it first."""

    @staticmethod
    def pytest_runtest_logreport(report):
        if report.failed and not os.path.exists(failed_file):
            with open(failed_file, "w") as out:
                out.write(report.nodeid)


for line in sys.stdin:
    job = json.loads(line)
    database_flag = "--reuse-db" if job["database"] in databases_made else "--create-db"
    databases_made.add(job["database"])
    job["args"] = [database_flag, *job["args"]]
    if os.path.exists(failed_file):
        os.unlink(failed_file)
    pid = os.fork()
    if pid == 0:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        if job["database"]:
            os.environ["DATABASE_URL"] = job["database"]
        else:
            os.environ.pop("DATABASE_URL", None)
        if job.get("patch"):
            try:
                _patch(**job["patch"])
            except Exception:
                os._exit(UNPATCHABLE)
        import pytest

        os._exit(int(pytest.main(job["args"], plugins=[FirstFailure()])))
    deadline = time.monotonic() + job["timeout"]
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            passed = code == 0
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            passed, code = False, None
            break
        time.sleep(0.02)
    if code == UNPATCHABLE:
        print(json.dumps({"unpatchable": True}), flush=True)
        continue
    failed = ""
    if not passed and os.path.exists(failed_file):
        with open(failed_file) as recorded:
            failed = recorded.read()
    print(json.dumps({"passed": passed, "failed": failed}), flush=True)
