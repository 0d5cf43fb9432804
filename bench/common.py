"""What every benchmark shares: percentiles, a throwaway Redis, `serve` as a process, waiting.

Everything listens on 127.0.0.1 only and is stopped by the context manager that started it.
Times are `time.perf_counter()` in this process unless a name says otherwise.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
import yaml  # noqa: E402

from tests.bot_server import free_port, get, serve_env, stop  # noqa: E402
from tests.slack_standin import SlackStandIn  # noqa: E402

T = TypeVar("T")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): p99 of 100 samples is the 99th smallest, not an interpolation."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p99, min and max in milliseconds, and the sample count."""
    ms = [s * 1000 for s in seconds]
    return {"n": len(ms), "p50_ms": statistics.median(ms) if ms else float("nan"), "p99_ms": percentile(ms, 99),
            "min_ms": min(ms, default=float("nan")), "max_ms": max(ms, default=float("nan"))}


def wait_until(predicate: Callable[[], T], what: str, *, timeout: float = 30.0, interval: float = 0.005) -> T:
    """Poll until `predicate()` is truthy and return it; a bounded wait, never an endless loop."""
    deadline = time.monotonic() + timeout
    while True:
        found = predicate()
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A private `redis-server` on a free port, no persistence; yields its base URL (no database)."""
    binary = shutil.which("redis-server")
    if not binary:
        raise SystemExit("bench: redis-server is not on PATH")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="bench-redis-")
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", workdir, "--databases", "16"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}"
    try:
        wait_until(lambda: _pings(url + "/0"), "redis-server to answer", timeout=10, interval=0.05)
        yield url
    finally:
        stop(proc, timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def _pings(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=0.5).ping())
    except redis.RedisError:
        return False


@dataclass
class Serve:
    """A running `migrate-bot serve`: its base URL, its root PID and where it logs."""

    url: str
    pid: int
    log: Path


@contextlib.contextmanager
def running_serve(standin: SlackStandIn, redis_url: str, config: dict[str, Any], workdir: Path, *,
                  providers: str = "alibaba") -> Iterator[Serve]:
    """`serve` as its own process tree (gunicorn master + worker) with `config` as MIGRATE_CONFIG."""
    path = workdir / "migrate.yaml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    env = serve_env(standin, redis_url, path, port) | {"MIGRATE_PROVIDERS": providers, "LOG_LEVEL": "WARNING"}
    log_path = workdir / "serve.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen([sys.executable, "-c", "import sys; from bot.serve import main; sys.exit(main([]))"],
                                cwd=ROOT, env=env, stdout=log, stderr=log)
        url = f"http://127.0.0.1:{port}"
        try:
            def ready() -> bool:
                if proc.poll() is not None:
                    raise RuntimeError(f"serve exited {proc.returncode}: {log_path.read_text()[-2000:]}")
                with contextlib.suppress(OSError):
                    return get(url + "/readyz")[0] == 200
                return False

            wait_until(ready, "serve to be ready", timeout=60, interval=0.1)
            yield Serve(url, proc.pid, log_path)
        finally:
            stop(proc, timeout=20)


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
