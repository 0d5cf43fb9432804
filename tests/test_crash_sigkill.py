"""Crash at every kind of provider step: SIGKILL the process between intent and done, start again.

The simulated world lives in a file shared by the processes; a stall injected into one
operation holds the step there until the process is killed. The next process reconciles on
start-up: the migration resumes, nothing is done twice, and the NGINX Service's original
annotations can still be restored.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from commands.model import Migration
from providers.sim.state import SimState, load_seed
from providers.store import RedisStore

START = ["/migrate start cluster=demo-cluster gateway=gw-demo"]
TO_METHOD = [*START, "/migrate check", "/migrate method slb service=ingress-nginx/nginx-ingress-lb"]
TO_SHIFTING = [*TO_METHOD, "/migrate switch", "/migrate weight 10"]
TO_VERIFIED = [*TO_SHIFTING, "/migrate verify", "switch-user bob", "/migrate approve", "switch-user alice"]
TO_CUT_OVER = [*TO_VERIFIED, "/migrate cutover", "switch-user bob", "/migrate approve", "switch-user alice"]
DNS_METHOD = [*START, "/migrate check", "/migrate method dns"]

# (step kind, lines that lead up to it, the line that runs it, the operation to stall it in, who types it)
CASES = [
    ("listen", [], START[0], "mse.listen", "alice"),
    ("switch_slb", TO_METHOD, "/migrate switch", "k8s.patch_service_annotations", "alice"),
    ("switch_dns", DNS_METHOD, "/migrate switch", "dns.add_record", "alice"),
    ("weights", TO_SHIFTING, "/migrate weight 20", "k8s.get_service", "alice"),  # after the SLB write
    ("rollback", TO_SHIFTING, "/migrate rollback", "slb.set_weights", "alice"),
    ("cutover", [*TO_VERIFIED, "/migrate cutover"], "/migrate approve", "k8s.patch_service_annotations", "bob"),
    ("complete", [*TO_CUT_OVER, "/migrate complete delete-service=yes"], "/migrate approve", "k8s.delete_service",
     "bob"),
    ("restore", [*TO_SHIFTING, "/migrate abort"], "/migrate approve", "mse.leave_slb", "bob"),
]


def _console(redis_url: str, state: Path, user: str) -> subprocess.Popen[str]:
    env = {**os.environ, "REDIS_URL": redis_url, "MIGRATE_KEY_PREFIX": "crash"}
    return subprocess.Popen([sys.executable, "-m", "bot.cli", "console", "--user", user, "--dwell", "0",
                             "--sim-state", str(state)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _run(redis_url: str, state: Path, lines: list[str], user: str = "alice") -> str:
    proc = _console(redis_url, state, user)
    out, err = proc.communicate("\n".join(lines) + "\n", timeout=60)
    assert proc.returncode == 0, err
    return out


def _migration(redis_url: str) -> Migration:
    store = RedisStore.from_url(redis_url, prefix="crash")
    found = store.active_in_channel("console") or store.latest_in_channel("console")
    assert found is not None
    return found


@pytest.mark.parametrize(("kind", "before", "line", "stall", "user"), CASES, ids=[c[0] for c in CASES])
def test_sigkill_between_intent_and_done_resumes_once(redis_url: str, tmp_path: Path, kind: str, before: list[str],
                                                      line: str, stall: str, user: str) -> None:
    state_file = tmp_path / "world.json"
    if before:
        assert "✖" not in _run(redis_url, state_file, before).replace("✖ You asked", "")
    world = SimState.from_seed(path=state_file)
    original = load_seed()["clusters"]["demo-cluster"]["services"]["ingress-nginx/nginx-ingress-lb"]
    world.add_latency(stall, 60)
    proc = _console(redis_url, state_file, user)
    assert proc.stdin is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    deadline = time.monotonic() + 30
    while world.arrived(stall) == 0 and time.monotonic() < deadline:  # the step is now held in that call
        time.sleep(0.02)
    assert world.arrived(stall) > 0, f"{kind}: the step never reached {stall}"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    stuck = _migration(redis_url)
    assert stuck.intent is not None, f"{kind}: no intent recorded before the kill"
    world.clear_faults()
    writes_before = _writes(world)
    resumed = _run(redis_url, state_file, ["/migrate status"])
    assert "Resumed" in resumed, resumed
    m = _migration(redis_url)
    assert m.intent is None and m.phase.value == stuck.intent.then
    _assert_once(kind, world, writes_before)
    if m.active and m.phase.value in {"switched", "shifting"}:  # the originals can still be restored
        _run(redis_url, state_file, ["/migrate abort", "switch-user bob", "/migrate approve"])
        restored = world.snapshot()["clusters"]["demo-cluster"]["services"]["ingress-nginx/nginx-ingress-lb"]
        assert restored["annotations"] == original["annotations"]


def _writes(world: SimState) -> dict[str, int]:
    ops = ["mse.listen", "slb.set_weights", "k8s.patch_service_annotations",
           "k8s.delete_service", "dns.add_record", "mse.leave_slb", "mse.join_slb", "slb.set_tags"]
    return {op: world.calls(op) for op in ops}


def _assert_once(kind: str, world: SimState, before: dict[str, int]) -> None:
    """What the restart wrote: only what the kill had left undone, never a second copy."""
    data = world.snapshot()
    if kind == "listen":
        assert list(data["gateways"]["gw-demo"]["sources"]) == ["demo-cluster"]
    if kind == "weights":
        assert world.calls("slb.set_weights") == before["slb.set_weights"]  # the write had landed: not repeated
    if kind == "switch_dns":
        values = [r["value"] for r in data["dns"]["records"].values() if r["domain"] == "shop.example.com"]
        assert sorted(values) == ["47.100.0.10", "47.100.0.20"]  # one MSE record, not two
    if kind == "complete":
        assert "ingress-nginx/nginx-ingress-lb" not in data["clusters"]["demo-cluster"]["services"]
