"""`serve` processes with a config of the test's own, each in its own process group so a test can SIGKILL one.

tests/bot_server.py runs one bot with a fixed config; the replica, metrics and log tests need
several bots on one Redis and one simulated world (`sim: {state_file: ...}`), other secrets,
short timers, and the process's whole output afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.bot_server import ROOT, free_port, get, serve_env
from tests.slack_standin import SlackStandIn

CONFIG = """
operators: [U0ALICE01, U0BOB0001]
approvers: [U0ALICE01, U0BOB0001, U0DAVE001]
channels: [C0MIGRATE1]
required_approvals: 1
dwell_seconds: {dwell}
approval_ttl_minutes: {ttl}
sim: {{state_file: "{state}"}}
"""
TIMED_WORK_SECONDS = "0.3"  # rounds of timed work; the lease then lasts about a second


@dataclass
class Serve:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        """Everything the process tree wrote to stdout and stderr so far."""
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the gunicorn master and its worker at once: a crash, nothing cleaned up."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=20)

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def write_config(tmp: Path, name: str, *, state: Path, ttl_minutes: float = 30, dwell: float = 0) -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(CONFIG.format(dwell=dwell, ttl=ttl_minutes, state=state))
    return path


def launch(standin: SlackStandIn, redis_url: str, tmp: Path, name: str, config: Path,
           env: dict[str, str] | None = None) -> Serve:
    """Start `serve` (not waiting for it); stdout and stderr both go to `{name}.log`."""
    port = free_port()
    full = {**serve_env(standin, redis_url, config, port), "MIGRATE_TIMED_WORK_SECONDS": TIMED_WORK_SECONDS,
            **(env or {})}
    log = tmp / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", "import sys; from bot.serve import main; sys.exit(main([]))"],
                                cwd=ROOT, env=full, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return Serve(f"http://127.0.0.1:{port}", proc, log)


def wait_ready(*bots: Serve, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    for bot in bots:
        while True:
            if bot.proc.poll() is not None:
                raise AssertionError(f"serve exited {bot.proc.returncode}: {bot.output()[-3000:]}")
            try:
                if get(bot.url + "/readyz")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"serve did not become ready: {bot.output()[-3000:]}")
            time.sleep(0.05)


@contextmanager
def serving(*bots: Serve) -> Iterator[tuple[Serve, ...]]:
    """Wait for every bot to be ready; stop whichever is still running afterwards."""
    try:
        wait_ready(*bots)
        yield bots
    finally:
        for bot in bots:
            bot.stop()
