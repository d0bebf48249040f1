"""Slow clients against a real granian server (beacon_site/serve.py): a client that trickles
its headers is cut off at the header deadline and never holds up a normal beacon."""

import socket
import time

import pytest

from bench.servers import BROWSER_UA, Server, hits_counted, manage

pytestmark = pytest.mark.serial  # wall-clock deadlines: a loaded machine (the parallel suite) misses them

BEACON = b'{"event_type":"page_view","identifier":"/prompt"}'


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("slow")
    url = f"sqlite:///{folder / 'slow.sqlite3'}"
    manage("migrate", "--noinput", env={"DATABASE_URL": url})
    env = {
        "DATABASE_URL": url,
        "WEB_THREADS": "2",
        "HEADER_READ_TIMEOUT_MS": "1000",
        "BEACONS_RATE_LIMIT": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
    }
    started = Server(env=env, workers=1, log_path=folder / "server.log").start()
    started.database_url = url
    yield started
    started.stop()


def beacon(port: int) -> tuple[bytes, float]:
    began = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        head = (
            f"POST /beacon HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nUser-Agent: {BROWSER_UA}\r\n"
            f"Content-Length: {len(BEACON)}\r\nConnection: close\r\n\r\n"
        )
        sock.sendall(head.encode() + BEACON)
        return sock.recv(64), time.monotonic() - began


def test_clients_that_trickle_their_headers_are_cut_off_and_beacons_still_answered(server):
    slow = []
    for _ in range(6):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        sock.sendall(b"POST /beacon HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le")  # and then nothing
        slow.append(sock)
    began = time.monotonic()
    answer, took = beacon(server.port)
    assert answer.startswith(b"HTTP/1.1 204") and took < 1.0

    for sock in slow:
        with sock:
            sock.recv(1024)  # returns when the server closes the connection (or raises at 10 s)
    assert time.monotonic() - began < 3.0  # the 1 s header deadline, not granian's default 30 s
    assert hits_counted(server.database_url, "page_view") == 1
