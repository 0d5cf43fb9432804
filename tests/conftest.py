"""Shared fixtures: an isolated Redis for every test, whatever the machine has.

Order of preference: a throwaway `redis-server` from PATH on a free port (nothing shared,
nothing left behind); else the fakeredis TCP server from the test extra (a real socket, for
machines with no Redis at all). Each test gets its own database number and a flushed one.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
import redis

if TYPE_CHECKING:
    from tests.aof_redis import AofRedis
    from tests.slack_standin import SlackStandIn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(url: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            redis.Redis.from_url(url, socket_timeout=0.5).ping()
            return
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """Base URL (no database) of a Redis server private to this test session."""
    binary = os.environ.get("REDIS_SERVER_BIN") or shutil.which("redis-server")
    port = free_port()
    if binary:
        workdir = tempfile.mkdtemp(prefix="migrate-redis-")
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", workdir, "--databases", "64"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for(f"redis://127.0.0.1:{port}/0")
            yield f"redis://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            shutil.rmtree(workdir, ignore_errors=True)
        return
    from fakeredis import TcpFakeServer  # only where no redis-server exists

    server = TcpFakeServer(("127.0.0.1", port), server_type="redis")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        _wait_for(f"redis://127.0.0.1:{port}/0")
        yield f"redis://127.0.0.1:{port}"
    finally:
        server.shutdown()


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    """A local stand-in for the Slack Web API that records every call (tests/slack_standin.py)."""
    from tests.bot_server import GROUPS
    from tests.slack_standin import SlackStandIn as StandIn

    standin = StandIn(groups=GROUPS).start()
    yield standin
    standin.stop()


_next_db = iter(range(1, 10_000))


@pytest.fixture
def redis_url(redis_server: str) -> Iterator[str]:
    """A URL to an empty Redis database of its own, flushed again afterwards."""
    url = f"{redis_server}/{next(_next_db) % 63 + 1}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture(autouse=True)
def no_group_left_empty() -> Iterator[None]:
    """Every simulated world a test made kept the rule that no serving vServer group is ever
    emptied (providers/sim/state.py records each write that broke it): a test fails on it."""
    from providers.sim import state

    state.TRACKED = made = []
    try:
        yield
    finally:
        state.TRACKED = None
    broken = []
    for world in made:
        if world.path is not None and not world.path.exists():
            continue
        broken += world.take_violations()
    assert not broken, f"a write left a serving vServer group with no backend above weight 0: {broken}"


@pytest.fixture
def aof_redis() -> Iterator[AofRedis]:
    """A redis-server with AOF on, on a free port, that the test may stop, kill and start again."""
    from tests.aof_redis import AofRedis

    server = AofRedis()
    server.start()
    yield server
    server.close()

