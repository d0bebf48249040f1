"""One mutation worker: loads pytest and the third-party libraries once, then runs each job
(a JSON line of pytest arguments) in a forked child, so a mutant costs its tests and not an
interpreter start. Project modules are never imported here: each child imports the mutated
tree afresh. Answers one JSON line per job: {"passed": bool, "failed": the first failing test id or ""}
(over the timeout: killed, no test named)."""

import importlib
import json
import os
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.getcwd())
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
PROJECT = ("beacons", "dashboard", "beacon_site", "tests")

for name in PRELOADED:
    try:
        importlib.import_module(name)
    except Exception:
        pass
for name in [n for n in sys.modules if n.split(".")[0] in PROJECT]:
    del sys.modules[name]

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
        import pytest

        os._exit(int(pytest.main(job["args"], plugins=[FirstFailure()])))
    deadline = time.monotonic() + job["timeout"]
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            passed = os.waitstatus_to_exitcode(status) == 0
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            passed = False
            break
        time.sleep(0.02)
    failed = ""
    if not passed and os.path.exists(failed_file):
        with open(failed_file) as recorded:
            failed = recorded.read()
    print(json.dumps({"passed": passed, "failed": failed}), flush=True)
