"""A throwaway redis-server with AOF on, that tests stop, kill and start again (Redis going away)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time

import pytest
import redis

from tests.conftest import free_port


class AofRedis:
    """A redis-server of our own with AOF on (fsync always), that a test can kill and restart."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if not binary:
            pytest.skip("redis-server is not installed")
        self.binary, self.dir, self.port = binary, tempfile.mkdtemp(prefix="aof-"), free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
                                      "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(self.url).ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def close(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
