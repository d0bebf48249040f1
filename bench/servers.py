"""Real servers on loopback for benchmarks and fault tests: start, wait until ready, stop."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"

# name -> command line (2 workers each, as the issue asks); {port} and {wsgi} are filled in.
SERVERS = {
    "granian": [sys.executable, "-m", "beacon_site.serve"],
    "gunicorn-sync": [
        str(BIN / "gunicorn"),
        "{wsgi}",
        "-k",
        "sync",
        "-w",
        "2",
        "-b",
        "127.0.0.1:{port}",
    ],
    "gunicorn-gthread": [
        str(BIN / "gunicorn"),
        "{wsgi}",
        "-k",
        "gthread",
        "--threads",
        "4",
        "-w",
        "2",
        "-b",
        "127.0.0.1:{port}",
    ],
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def children_of(pid: int) -> list[int]:
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False).stdout
    except FileNotFoundError:  # pragma: no cover - procps is on every Debian
        return []
    return [int(line) for line in out.split()]


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU the processes ``pids`` have used so far (Linux /proc; 0 for one gone)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / ticks


@dataclass
class Server:
    """One server process tree with its own environment (database, sink, Redis prefix)."""

    env: dict[str, str]
    kind: str = "granian"
    workers: int = 2
    port: int = field(default_factory=free_port)
    log_path: Path | None = None
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def wsgi_target(self) -> str:
        """gunicorn's application: the benchmark settings' (with its status tally) or the site's."""
        bench = self.env.get("DJANGO_SETTINGS_MODULE") == "bench.settings"
        return "bench.wsgi:application" if bench else "beacon_site.wsgi:application"

    def start(self, timeout: float = 60) -> "Server":
        env = {
            **os.environ,
            **self.env,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "WEB_CONCURRENCY": str(self.workers),
        }
        env.setdefault("PYTHONPATH", str(ROOT))
        command = [part.format(port=self.port, wsgi=self.wsgi_target) for part in SERVERS[self.kind]]
        log = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.process.returncode}; see {self.log_path}")
            if self.ready() and len(self.worker_pids()) >= self.workers:
                time.sleep(0.5)  # let every worker finish loading: a signal during loading is lost (granian)
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.kind} did not answer within {timeout} s")

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/beacon", timeout=2) as response:
                return response.status < 500
        except urllib.error.HTTPError as error:
            return error.code == 405  # GET /beacon: the app answered
        except OSError:
            return False

    def worker_pids(self) -> list[int]:
        return children_of(self.process.pid) if self.process else []

    def stop(self, timeout: float = 30) -> int | None:
        """Clean stop (SIGTERM: workers flush buffered counts); escalates if it hangs."""
        if not self.process or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            for pid in self.worker_pids():
                _signal(pid, signal.SIGTERM)
        try:
            return self.process.wait(10)
        except subprocess.TimeoutExpired:
            for pid in self.worker_pids():
                _signal(pid, signal.SIGKILL)
            self.process.kill()
            return self.process.wait(10)


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def manage(*args: str, env: dict[str, str], check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``manage.py`` with ``env`` added to this process's environment."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=check,
        timeout=timeout,
    )


def postgres_database_create(url: str, *, fresh: bool = False) -> None:
    """Create the database named in ``url`` (dropping it first when ``fresh``)."""
    import psycopg
    from psycopg import sql

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if fresh:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def postgres_database_drop(url: str) -> None:
    import psycopg
    from psycopg import sql

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


COUNTED_SQL = (
    "SELECT COALESCE(SUM(a.count), 0) FROM beacons_beaconaggregate a "
    "JOIN beacons_beacondefinition d ON d.id = a.definition_id "
    "WHERE d.slug = {p} AND a.dimension = '' AND a.identifier = '' AND a.granularity = 'H'"
)


def hits_counted(database_url: str, event_type: str) -> int:
    """Hits stored for ``event_type`` (its hour total rows), read straight from the database."""
    if database_url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as conn:
            return conn.execute(COUNTED_SQL.format(p="?"), [event_type]).fetchone()[0]
    import psycopg

    with psycopg.connect(database_url) as conn:
        return conn.execute(COUNTED_SQL.format(p="%s"), [event_type]).fetchone()[0]
