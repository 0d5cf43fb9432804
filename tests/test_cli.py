"""The console and the demo as a person runs them: real processes, real pipes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

#: The demo's last line: what the SLB holds on every moved listener, read back.
DEMO_END = "100% of traffic on MSE (read back from the SLB on every moved listener: 80/TCP, 443/TCP)."


def _run(args: list[str], redis_url: str, stdin: str = "", timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REDIS_URL": redis_url}
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], input=stdin, capture_output=True, text=True,
                          env=env, timeout=timeout, check=False)


def test_console_prints_one_clear_error_per_bad_line(redis_url: str) -> None:
    done = _run(["console", "--user", "alice"], redis_url, stdin="/migrate weight abc\n/migrate frobnicate\n")
    assert done.returncode == 0
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == 2
    assert "`abc` is not a weight" in lines[0]
    assert "Unknown verb `frobnicate`" in lines[1]
    assert "Traceback" not in done.stderr


def test_console_switch_user_for_an_approval(redis_url: str) -> None:
    script = "\n".join([
        "/migrate start cluster=demo-cluster gateway=gw-demo", "/migrate check",
        "/migrate method slb service=ingress-nginx/nginx-ingress-lb", "/migrate switch", "/migrate weight 10",
        "/migrate verify", "/migrate approve", "switch-user bob", "/migrate approve", "/migrate status",
    ]) + "\n"
    done = _run(["console", "--user", "alice"], redis_url, stdin=script)
    assert done.returncode == 0, done.stderr
    assert "someone else must approve" in done.stdout
    saved = next(line for line in done.stdout.splitlines() if "route-check.md saved to " in line)
    with open(saved.split(" saved to ")[1], encoding="utf-8") as report:
        assert report.read().startswith("# Route check\n"), "the full report is on disk, as Slack would get it"
    assert "Traffic verified by alice, approved by bob" in done.stdout
    assert "MSE █░░░░░░░░░ 9%" in done.stdout


def test_demo_completes_with_all_traffic_on_mse_and_leaves_nothing(redis_url: str) -> None:
    done = _run(["demo"], redis_url)
    assert done.returncode == 0, done.stdout + done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("Migration m-") and last.endswith("completed: " + DEMO_END)
    assert "shortened" in done.stdout
    assert "someone else must approve" in done.stdout  # the refused self-approval
    assert redis.Redis.from_url(redis_url).dbsize() == 0


def test_demo_without_redis_says_so_and_still_runs() -> None:
    done = _run(["demo"], "redis://127.0.0.1:1/0")
    assert done.returncode == 0, done.stderr
    assert "nothing is persisted" in done.stderr
    assert done.stdout.strip().endswith(DEMO_END)


def test_the_console_can_be_run_again_without_leftovers(redis_url: str) -> None:
    start = "/migrate start cluster=demo-cluster gateway=gw-demo\n"
    for _ in range(2):  # the world is in memory, so the records do not outlive the run either
        done = _run(["console", "--user", "alice"], redis_url, stdin=start)
        assert done.returncode == 0 and "started by alice" in done.stdout, done.stdout
    assert redis.Redis.from_url(redis_url).dbsize() == 0


@pytest.mark.parametrize(("args", "line"), [
    (["console", "--user", "a", "--dwell", "-5"], "migrate-bot console: argument --dwell: must be from 0 to 86400"),
    (["console", "--user", "a", "--dwell", "nan"], "migrate-bot console: argument --dwell: must be from 0 to 86400"),
    (["console", "--user", "a", "--dwell", "inf"], "migrate-bot console: argument --dwell: must be from 0 to 86400"),
    (["console", "--user", "a", "--seed", "/no/such.yaml"], "migrate-bot console: argument --seed: no such file"),
    (["console", "--user", "a", "--seed", "TMP/bad.yaml"],
     "migrate-bot console: argument --seed: TMP/bad.yaml is not valid YAML (line 2)"),
    (["console", "--user", "a", "--sim-state", "/no/such/dir/sim.json"],
     "migrate-bot console: argument --sim-state: no such directory: /no/such/dir"),
    (["console", "--user", "a", "--redis-url", "redis://127.0.0.1:6379/99"], "migrate-bot: --redis-url: DB index"),
    (["console", "--user", "a", "--redis-url", "http://x"], "migrate-bot: --redis-url: Redis URL must specify"),
])
def test_every_option_error_is_one_line_with_exit_code_2(args: list[str], line: str, tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("clusters: [\n")
    args, line = [a.replace("TMP", str(tmp_path)) for a in args], line.replace("TMP", str(tmp_path))
    done = subprocess.run([sys.executable, "-m", "bot.cli", *args], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()] and done.stderr.startswith(line), done.stderr


def test_version() -> None:
    done = subprocess.run([sys.executable, "-m", "bot.cli", "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("migrate-bot 0.")
