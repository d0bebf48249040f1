"""A private ``redis-server`` for tests: its own port and folder, never the shared Redis."""

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from bench.servers import free_port


class PrivateRedis:
    def __init__(self, folder: Path, *options: str):
        if not shutil.which("redis-server"):
            pytest.skip("redis-server is not installed")
        self.folder, self.options, self.port = folder, options, free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "PrivateRedis":
        config = [option for option in self.options[:1] if not option.startswith("--")]  # a config file goes first
        command = ["redis-server", *config, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.folder)]
        command += self.options[len(config) :]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if client.ping() and not client.info("persistence").get("loading"):
                    return self
            except redis.RedisError:
                pass
            time.sleep(0.05)
        raise RuntimeError("the private redis-server did not start")

    def kill(self) -> None:
        """``kill -9``: no shutdown, no final save."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
