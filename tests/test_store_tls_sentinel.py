"""REDIS_URL beyond one plain node: the store over TLS (`rediss://`) and through Sentinel (`redis+sentinel://`).

Each test starts its own throwaway servers from the redis-server on PATH and skips, saying
why, where that build has no TLS or Sentinel will not start.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from commands.errors import MigrateError
from commands.model import Event, Migration
from commands.phases import Phase
from providers.store import RedisStore
from tests.bot_server import free_port
from tests.selfsigned import self_signed

REDIS = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(REDIS is None, reason="no redis-server on PATH")
START_S = 5.0


@contextmanager
def server(args: list[str], workdir: Path, ready: Callable[[], object]) -> Iterator[None]:
    """A redis-server with `args`; skips the test if it exits or does not answer within a few seconds."""
    log = workdir / f"redis-{len(list(workdir.iterdir()))}.log"
    with log.open("w") as out:
        proc = subprocess.Popen([str(REDIS), *args], cwd=workdir, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_S
        while True:
            if proc.poll() is not None:
                pytest.skip(f"redis-server {args[0]} did not start: {log.read_text()[-300:]}")
            try:
                ready()
                break
            except (redis.RedisError, MigrateError, OSError):
                if time.monotonic() > deadline:
                    pytest.skip(f"redis-server {args[0]} did not answer within {START_S:g}s")
                time.sleep(0.05)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def plain(port: int, workdir: Path) -> list[str]:
    return ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)]


def exercise(store: RedisStore) -> None:
    """What the bot does most: create a record, compare-and-set it, read it back, claim a delivery."""
    m = Migration(id="m-url", cluster="c1", gateway="gw", ingress_class="nginx", channel="C1", created_by="U1",
                  created_at=time.time())
    created = store.create(m, Event(at=time.time(), user="U1", verb="start", args={}, phase_before="",
                                    phase_after="draft", result="created"))
    store.commit(expected_version=created.version, migration=Migration.from_dict(
        {**created.to_dict(), "phase": Phase.LISTENING.value}), event=Event(
        at=time.time(), user="U1", verb="attach", args={}, phase_before="draft", phase_after="listening", result="ok"))
    loaded = store.load("m-url")
    assert loaded is not None and loaded.phase is Phase.LISTENING and loaded.version == 2
    assert [e.verb for e in store.events("m-url")] == ["start", "attach"]
    assert store.claim("delivery-1", ttl_seconds=60) and not store.claim("delivery-1", ttl_seconds=60)
    assert store.r.eval("return redis.call('SET', KEYS[1], ARGV[1], 'NX') and 1 or 0", 1, "lease", "a") == 1
    assert store.r.eval("return redis.call('SET', KEYS[1], ARGV[1], 'NX') and 1 or 0", 1, "lease", "b") == 0


def test_the_store_works_over_tls(tmp_path: Path) -> None:
    cert, key = self_signed()
    (tmp_path / "cert.pem").write_bytes(cert)
    (tmp_path / "key.pem").write_bytes(key)
    port = free_port()
    url = f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={tmp_path / 'cert.pem'}"
    args = ["--tls-port", str(port), "--port", "0", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(tmp_path), "--tls-cert-file", str(tmp_path / "cert.pem"),
            "--tls-key-file", str(tmp_path / "key.pem"), "--tls-ca-cert-file", str(tmp_path / "cert.pem"),
            "--tls-auth-clients", "no"]
    with server(args, tmp_path, lambda: RedisStore.from_url(url, timeout=0.5).ping()):
        exercise(RedisStore.from_url(url))
        assert RedisStore.from_url(f"rediss://127.0.0.1:{port}/1?ssl_cert_reqs=none").ping()
        with pytest.raises(MigrateError):  # a plain client on the TLS port gets nowhere
            RedisStore.from_url(f"redis://127.0.0.1:{port}/0", timeout=0.5).ping()


def test_the_store_works_through_sentinel(tmp_path: Path) -> None:
    master, sentinel = free_port(), free_port()
    conf = tmp_path / "sentinel.conf"  # Sentinel rewrites its config file: it must be its own and writable
    conf.write_text(f"port {sentinel}\nbind 127.0.0.1\ndir {tmp_path}\n"
                    f"sentinel monitor mymaster 127.0.0.1 {master} 1\n"
                    "sentinel down-after-milliseconds mymaster 5000\n")
    url = f"redis+sentinel://127.0.0.1:{sentinel}/mymaster/2"
    with server(plain(master, tmp_path), tmp_path, lambda: redis.Redis(port=master).ping()), \
            server([str(conf), "--sentinel"], tmp_path, lambda: RedisStore.from_url(url, timeout=0.5).ping()):
        exercise(RedisStore.from_url(url))
        assert redis.Redis(port=master, db=2, decode_responses=True).hget("migrate:m-url", "version") == "2"
