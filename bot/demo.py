"""`migrate-bot demo`: a whole SLB-reuse migration on the simulated world, narrated.

It runs the same engine, store and commands as Slack, with two people (alice asks, bob
approves) and a dwell shortened to one second so the demo takes seconds, not half an hour.
"""

from __future__ import annotations

import secrets
import sys
import time
from typing import Any, TextIO

from bot.console import render
from commands.engine import Engine
from commands.gates import parse as parse_gates
from commands.outcome import Request
from commands.policy import Policy
from commands.traffic import format_share
from providers.sim.world import SimWorld
from providers.store import RedisStore

DEMO_DWELL = 1.0
#: The demo's gates: the SLB's health checks and MSE's success rate against NGINX's (the sim's
#: Prometheus), read every second; two failed checks in a row roll back.
DEMO_GATES = parse_gates([{"name": "backends", "source": "slb_health", "min": 100},
                          {"name": "success", "source": "prometheus", "query": "success_rate", "min": "nginx - 0.5",
                           "window": "1m"}],
                         {"interval": "1s", "failures_before_rollback": 2})
PLANNED_RUN = ("housekeeper", "(the plan runs; at 5% the sim makes MSE fail 4% of requests)")
SCRIPT: list[tuple[str, str]] = [
    ("alice", "/migrate start cluster=demo-cluster gateway=gw-demo"),
    ("alice", "/migrate check"),
    ("alice", "/migrate method slb service=ingress-nginx/nginx-ingress-lb"),
    ("alice", "/migrate switch"),
    ("alice", "/migrate weight 1"),
    ("alice", "/migrate weight 10"),
    ("alice", "/migrate rollback"),
    ("alice", "/migrate auto 1,5,10% every 1s"),
    PLANNED_RUN,
    ("alice", "/migrate weight 10"),
    ("alice", "/migrate weight 50"),
    ("alice", "/migrate weight 100"),
    ("alice", "/migrate verify"),
    ("alice", "/migrate approve"),
    ("bob", "/migrate approve"),
    ("alice", "/migrate cutover"),
    ("bob", "/migrate approve"),
    ("alice", "/migrate complete delete-service=yes"),
    ("bob", "/migrate approve"),
]


def run(store: RedisStore, *, out: TextIO = sys.stdout, world: object | None = None) -> int:
    sim = world if world is not None else SimWorld.from_seed()
    # On the cloud APIs there is no Prometheus to ask, so only the SLB health gate applies.
    gates = DEMO_GATES if isinstance(sim, SimWorld) else parse_gates(None, {"interval": "1s"})
    policy = Policy(operators=frozenset({"alice"}), approvers=frozenset({"alice", "bob"}), dwell_seconds=DEMO_DWELL,
                    gates=gates)
    engine = Engine(store=store, world=sim, policy=policy)  # type: ignore[arg-type]
    channel = f"demo-{secrets.token_hex(3)}"
    where = "the simulated world" if isinstance(sim, SimWorld) else "Alibaba Cloud APIs (MIGRATE_PROVIDERS=alibaba)"
    out.write(f"Demo: NGINX Ingress → MSE on {where} "
              "(cluster demo-cluster, gateway gw-demo, SLB lb-demo).\n"
              f"The dwell between weight increases is shortened from 180 s to {DEMO_DWELL:g} s for the demo.\n\n")
    migration = None
    for user, text in SCRIPT:
        if (text.startswith("/migrate auto") or (user, text) == PLANNED_RUN) and not isinstance(sim, SimWorld):
            continue  # the planned run injects errors into the simulated world's metrics: sim only
        out.write(f"{user}> {text}\n")
        if (user, text) == PLANNED_RUN:
            if not isinstance(sim, SimWorld) or not _planned_run(engine, sim, out):
                out.write("Demo stopped: the planned run did not roll itself back.\n")
                return 1
            continue
        outcome = engine.handle(Request(text=text, user=user, channel=channel))
        while not outcome.ok and "Too soon to increase" in outcome.text:
            time.sleep(0.2)  # the dwell: wait it out as a careful operator would
            outcome = engine.handle(Request(text=text, user=user, channel=channel))
        out.write("   " + render(outcome).replace("\n", "\n   ") + "\n\n")
        migration = outcome.migration or migration
        expected_refusal = user == "alice" and text == "/migrate approve"
        if not outcome.ok and not expected_refusal:
            out.write(f"Demo stopped: `{text}` failed.\n")
            return 1
        if expected_refusal and outcome.ok:
            out.write("Demo stopped: a self-approval was accepted.\n")
            return 1
    final = store.load(migration.id) if migration else None
    if final is None or final.phase.value != "completed":
        out.write("Demo stopped: the migration did not complete.\n")
        return 1
    seen = _read_back(sim, final)
    share = float(seen["share"])
    listeners = ", ".join(v["listeners"] for v in seen["groups"].values())
    out.write(f"Migration {final.id} completed: {format_share(share)} of traffic on MSE "
              f"(read back from the SLB on every moved listener: {listeners}).\n")
    return 0 if share >= 100 else 1


def _planned_run(engine: Engine, sim: SimWorld, out: TextIO, *, seconds: float = 30.0) -> bool:
    """Housekeeping rounds as `serve` runs them: the plan climbs; once at 5% the sim's MSE starts
    failing requests, and the plan must roll itself back. True when it did."""
    deadline = time.monotonic() + seconds
    broken = False
    while time.monotonic() < deadline:
        for outcome in engine.tick_plans():
            out.write("   " + render(outcome).replace("\n", "\n   ") + "\n\n")
            if outcome.verb == "rollback" and outcome.ok:
                sim.set_metrics("mse", success_rate=99.95)  # the fault is gone again for the rest
                return True
            if not broken and outcome.text.startswith("plan step to 5%"):
                sim.set_metrics("mse", success_rate=96.0)
                broken = True
        time.sleep(0.25)
    return False


def _read_back(world: object, m: object) -> dict[str, Any]:
    """What the SLB itself holds in every moved group, read through the providers, not the record."""
    from commands import slb
    from commands.model import Migration

    assert isinstance(m, Migration) and m.slb is not None
    return slb.read(world, m, mse=m.mse_weight, nginx=0)  # type: ignore[arg-type]
