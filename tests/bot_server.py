"""Run `migrate-bot serve` as a real process tree against the Slack stand-in and a test Redis."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.slack_standin import BOT_TOKEN, SIGNING_SECRET, SlackStandIn

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """
operators: [U0ALICE01, U0BOB0001, S0ONCALL1]
approvers: [U0ALICE01, U0BOB0001, U0DAVE001]
channels: [C0MIGRATE1]
required_approvals: {required}
dwell_seconds: 0
approval_ttl_minutes: {ttl}
"""
GROUPS = {"S0ONCALL1": ["U0CAROL01"]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(proc: subprocess.Popen[Any], *, timeout: float) -> None:
    """Ask a child process to stop; kill it if it has not within `timeout` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def serve_env(standin: SlackStandIn, redis_url: str, config: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "MIGRATE_"))}
    env.update(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=standin.api_url,
               REDIS_URL=redis_url, MIGRATE_CONFIG=str(config), MIGRATE_PROVIDERS="sim", PORT=str(port),
               PYTHONPATH=str(ROOT), LOG_LEVEL="INFO")
    return env


@contextmanager
def running_bot(standin: SlackStandIn, redis_url: str, tmp: Path, *, required: int = 1,
                ttl_minutes: float = 30) -> Iterator[str]:
    """The bot's base URL once /readyz answers; the process tree is stopped afterwards."""
    config = tmp / "migrate.yaml"
    config.write_text(CONFIG.format(required=required, ttl=ttl_minutes))
    port = free_port()
    log = (tmp / "serve.log").open("w")
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from bot.serve import main; sys.exit(main([]))"],
                            cwd=ROOT, env=serve_env(standin, redis_url, config, port), stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"serve exited {proc.returncode}: {(tmp / 'serve.log').read_text()[-3000:]}")
            try:
                if get(url + "/readyz")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("serve did not become ready")
            time.sleep(0.1)
        yield url
    finally:
        stop(proc, timeout=20)
        log.close()


def jobs_drained(client: Any) -> bool:
    """No job queued or taken (a taken job leaves its list once handled) on any lane of any worker."""
    from bot.keys import BotKeys

    keys = BotKeys()
    lists = [*client.scan_iter(keys.jobs("*", "*")), *client.scan_iter(keys.taken("*", "*"))]
    return all(client.llen(key) == 0 for key in lists)

