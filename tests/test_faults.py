"""Crashes and outages with the real servers, PostgreSQL and Redis: no answered hit is lost,
none is counted twice.

Each test runs real processes (granian workers, ``manage.py beacons_drain``) against a
throwaway database of the engine under test (a fresh PostgreSQL database on the same
cluster, or a SQLite file): subprocesses cannot see pytest-django's test database inside
its transaction (and on SQLite it lives in memory), so they get their own, which this test
reads directly. Every service a test stops is started again in a ``finally``.
"""

import http.client
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings

from beacons.counting.drain import CRASH_ENV
from beacons.counting.increments import Hit, increments_for
from beacons.counting.sinks import RedisSink, redis_client
from bench.servers import BROWSER_UA, Server, hits_counted, manage, postgres_database_create, postgres_database_drop

pytestmark = [pytest.mark.serial, pytest.mark.redis]

IS_POSTGRES = django_settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


def _postgres_url(name: str) -> str:
    db = django_settings.DATABASES["default"]
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name}"


@pytest.fixture(scope="module")
def database_url(tmp_path_factory):
    """A migrated database the servers under test and this test both see."""
    if IS_POSTGRES:
        url = _postgres_url(f"beacons_faults_{os.getpid()}")
        postgres_database_create(url, fresh=True)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('faults') / 'faults.sqlite3'}"
    manage("migrate", "--noinput", env={"DATABASE_URL": url})
    yield url
    if IS_POSTGRES:
        postgres_database_drop(url)


@pytest.fixture
def environment(database_url):
    """Environment of the processes under test: redis sink, a Redis prefix of this test alone."""
    prefix = f"test-faults-{uuid.uuid4().hex[:10]}"
    env = {
        "DATABASE_URL": database_url,
        "BEACONS_SINK": "redis",
        "BEACONS_REDIS_URL": django_settings.BEACONS_REDIS_URL,
        "BEACONS_REDIS_PREFIX": prefix,
        "BEACONS_RATE_LIMIT": "0",  # the load comes from one visitor
        "BEACONS_NETWORK_RATE_LIMIT": "0",  # ... on one network
        "ALLOWED_HOSTS": "127.0.0.1",
        "WEB_THREADS": "4",
    }
    yield env
    try:
        client = redis_client(django_settings.BEACONS_REDIS_URL)
        keys = list(client.scan_iter(match=f"{{{prefix}}}:*"))
        if keys:
            client.delete(*keys)
    except Exception:  # Redis is restarted by the test that stops it; cleanup is best effort
        pass


@pytest.fixture
def server(environment, tmp_path):
    started = Server(env=environment, log_path=tmp_path / "server.log").start()
    yield started
    started.stop()


class Load:
    """Threads POSTing beacons over keep-alive connections, tallying every outcome."""

    def __init__(self, url: str, event_type: str, threads: int = 4):
        self.address = urlsplit(url)
        self.body = f'{{"event_type":"{event_type}","identifier":"/fault"}}'
        self.statuses: Counter[int] = Counter()
        self.unanswered = 0  # connection dropped before an answer: may or may not be counted
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _run(self):
        conn = None
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.address.hostname, self.address.port, timeout=10)
                conn.request(
                    "POST", "/beacon", self.body, {"Content-Type": "application/json", "User-Agent": BROWSER_UA}
                )
                response = conn.getresponse()
                response.read()
                with self._lock:
                    self.statuses[response.status] += 1
            except (OSError, http.client.HTTPException):
                with self._lock:
                    self.unanswered += 1
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.05)
            time.sleep(0.002)  # leave the two CPUs some room for the servers

    def wait_for(self, answered: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while sum(self.statuses.values()) < answered and time.monotonic() < deadline:
            time.sleep(0.05)


def drain(env: dict[str, str], **extra) -> subprocess.CompletedProcess:
    return manage("beacons_drain", env={**env, **extra}, check=False, timeout=120)


def server_errors(load: Load) -> dict[int, int]:
    return {status: n for status, n in load.statuses.items() if status >= 500}


# --- a worker killed under load -----------------------------------------------------------


def test_worker_killed_under_load_loses_no_answered_hit(server, environment, database_url):
    event_type = f"fault_kill_{uuid.uuid4().hex[:6]}"
    with Load(server.url, event_type) as load:
        load.wait_for(200)
        victim = server.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        load.wait_for(sum(load.statuses.values()) + 200)  # the other worker (and the respawned one) keep going
    server.stop(timeout=3)  # granian's main process misses a SIGTERM while a respawned worker loads
    assert drain(environment).returncode == 0
    counted = hits_counted(database_url, event_type)
    answered = load.statuses[204]
    assert answered > 0
    # Every 204 is counted; a request cut off by the kill may have been counted without its 204.
    assert answered <= counted <= answered + load.unanswered
    assert server_errors(load) == {}


# --- the drain killed at each step ---------------------------------------------------------


def _page_view_key(database_url: str) -> tuple[int, int]:
    """(first site id, page_view id)."""
    if database_url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as conn:
            return conn.execute(_PAGE_VIEW_KEY_SQL).fetchone()
    import psycopg

    with psycopg.connect(database_url) as conn:
        return conn.execute(_PAGE_VIEW_KEY_SQL).fetchone()


_PAGE_VIEW_KEY_SQL = (
    "SELECT (SELECT min(id) FROM beacons_site), id FROM beacons_beacondefinition WHERE slug = 'page_view'"
)


def _identifier_counted(database_url: str, identifier: str) -> int:
    sql = "SELECT COALESCE(SUM(count), 0) FROM beacons_beaconaggregate WHERE identifier = {p} AND granularity = 'H'"
    if database_url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as conn:
            return conn.execute(sql.format(p="?"), [identifier]).fetchone()[0]
    import psycopg

    with psycopg.connect(database_url) as conn:
        return conn.execute(sql.format(p="%s"), [identifier]).fetchone()[0]


@pytest.mark.parametrize("step", ["after_rename", "in_transaction", "after_commit"])
def test_drain_killed_at_any_step_neither_loses_nor_doubles(environment, database_url, step, monkeypatch):
    # The site lives in the drained database, not in this process's: its buckets in the default zone.
    monkeypatch.setattr("beacons.sites.site_time_zone", lambda site_id: "")
    sink = RedisSink(url=environment["BEACONS_REDIS_URL"], prefix=environment["BEACONS_REDIS_PREFIX"])
    identifier = f"/drain-{step}-{uuid.uuid4().hex[:6]}"
    hit = Hit(*_page_view_key(database_url), ("H", "D"), identifier)
    sink.add(increments_for(hits=[hit] * 5, received_at=datetime.now(UTC)))

    crashed = drain(environment, **{CRASH_ENV: step})
    assert crashed.returncode == 70, crashed.stderr
    sink.add(increments_for(hits=[hit] * 3, received_at=datetime.now(UTC)))  # traffic goes on meanwhile
    assert drain(environment).returncode == 0
    assert _identifier_counted(database_url, identifier) == 8
    assert drain(environment).returncode == 0  # a further drain finds nothing to repeat
    assert _identifier_counted(database_url, identifier) == 8
    leftovers = list(sink.client.scan_iter(match=f"{{{environment['BEACONS_REDIS_PREFIX']}}}:*"))
    assert leftovers == []


# --- PostgreSQL stopped under load -----------------------------------------------------------


def _postgres_cluster() -> tuple[str, str]:
    """(version, cluster name) of the cluster serving the test database's port."""
    port = str(django_settings.DATABASES["default"]["PORT"] or 5432)
    for line in subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=True).stdout.splitlines():
        version, cluster, cluster_port, *_ = line.split()
        if cluster_port == port:
            return version, cluster
    return sorted(os.listdir("/etc/postgresql"))[0], "main"


def _postgres_ready() -> bool:
    db = django_settings.DATABASES["default"]
    host, port = db["HOST"] or "127.0.0.1", str(db["PORT"] or 5432)
    return subprocess.run(["pg_isready", "-q", "-h", host, "-p", port], check=False).returncode == 0


def _postgres(action: str) -> None:
    version, cluster = _postgres_cluster()
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", version, cluster, action]
    if action == "stop":
        command += ["-m", "fast"]  # do not wait for the servers' pooled connections to close
    subprocess.run(command, check=False, capture_output=True, timeout=60)


@pytest.mark.skipif(not IS_POSTGRES, reason="stops PostgreSQL: runs in the PostgreSQL suite")
def test_postgres_down_under_load_ingest_still_answers_and_drain_catches_up(server, environment, database_url):
    from django.db import connections

    event_type = f"fault_pg_{uuid.uuid4().hex[:6]}"
    connections.close_all()  # this process's connections would break with the server
    try:
        with Load(server.url, event_type) as load:
            load.wait_for(300)  # both workers have seen the type (and cached its definition)
            _postgres("stop")
            assert not _postgres_ready()
            during = sum(load.statuses.values())
            load.wait_for(during + 300)
            answered_while_down = sum(load.statuses.values()) - during
            _postgres("start")
            deadline = time.monotonic() + 60
            while not _postgres_ready() and time.monotonic() < deadline:
                time.sleep(0.5)
            load.wait_for(sum(load.statuses.values()) + 100)
    finally:
        if not _postgres_ready():
            _postgres("start")
            deadline = time.monotonic() + 60
            while not _postgres_ready() and time.monotonic() < deadline:
                time.sleep(0.5)
        connections.close_all()
    server.stop()
    assert answered_while_down >= 300
    assert server_errors(load) == {}
    assert drain(environment).returncode == 0
    assert hits_counted(database_url, event_type) == load.statuses[204]
    assert load.unanswered == 0


# --- Redis stopped under load --------------------------------------------------------------


def _redis_alive(client) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


def _redis_stop_keeping_data(client) -> tuple[Path, bool]:
    """Stop Redis so that no command is half-applied and its data survives the restart.

    Clients are paused first (a paused command never runs, so its sender fails cleanly and
    falls back), then SIGTERM with a save point configured writes the data to an RDB file
    that the restarted server loads. Returns (the RDB's folder, whether the file is ours).
    """
    info = client.info("server")
    folder = Path(client.config_get("dir")["dir"])
    rdb = folder / client.config_get("dbfilename")["dbfilename"]
    ours = not rdb.exists()
    client.config_set("save", "3600 1")
    client.execute_command("CLIENT", "PAUSE", "10000", "ALL")
    os.kill(int(info["process_id"]), signal.SIGTERM)
    deadline = time.monotonic() + 20
    while _redis_alive(redis_client(django_settings.BEACONS_REDIS_URL)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return folder, ours


def _redis_start(folder: Path) -> None:
    port = str(urlsplit(django_settings.BEACONS_REDIS_URL).port or 6379)
    subprocess.run(
        [
            "redis-server",
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "--port",
            port,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ],
        check=True,
        capture_output=True,
    )
    client = redis_client(django_settings.BEACONS_REDIS_URL)
    deadline = time.monotonic() + 30
    while not _redis_alive(client) and time.monotonic() < deadline:
        time.sleep(0.1)
    while _redis_alive(client) and client.info("persistence").get("loading") and time.monotonic() < deadline:
        time.sleep(0.1)


def test_redis_down_under_load_falls_back_to_the_database_and_counts_every_hit(server, environment, database_url):
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    event_type = f"fault_redis_{uuid.uuid4().hex[:6]}"
    client = redis_client(django_settings.BEACONS_REDIS_URL)
    original_save = client.config_get("save")["save"]
    folder, rdb_ours = Path(tempfile.gettempdir()), False
    try:
        with Load(server.url, event_type) as load:
            load.wait_for(200)
            folder, rdb_ours = _redis_stop_keeping_data(client)
            assert not _redis_alive(client)
            during = sum(load.statuses.values())
            load.wait_for(during + 200)
            answered_while_down = sum(load.statuses.values()) - during
            _redis_start(folder)
            load.wait_for(sum(load.statuses.values()) + 200)
    finally:
        if not _redis_alive(client):
            _redis_start(folder)
        client.config_set("save", original_save)  # the stop set a save point to keep the data
        if rdb_ours:
            (folder / "dump.rdb").unlink(missing_ok=True)
    server.stop()
    assert answered_while_down >= 200
    assert server_errors(load) == {}
    assert drain(environment).returncode == 0
    assert hits_counted(database_url, event_type) == load.statuses[204]
    assert load.unanswered == 0
