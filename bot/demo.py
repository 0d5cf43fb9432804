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
from commands.outcome import Request
from commands.policy import Policy
from commands.traffic import format_share
from providers.sim.world import SimWorld
from providers.store import RedisStore

DEMO_DWELL = 1.0
SCRIPT: list[tuple[str, str]] = [
    ("alice", "/migrate start cluster=demo-cluster gateway=gw-demo"),
    ("alice", "/migrate check"),
    ("alice", "/migrate method slb service=ingress-nginx/nginx-ingress-lb"),
    ("alice", "/migrate switch"),
    ("alice", "/migrate weight 1"),
    ("alice", "/migrate weight 10"),
    ("alice", "/migrate rollback"),
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
    policy = Policy(operators=frozenset({"alice"}), approvers=frozenset({"alice", "bob"}), dwell_seconds=DEMO_DWELL)
    engine = Engine(store=store, world=sim, policy=policy)  # type: ignore[arg-type]
    channel = f"demo-{secrets.token_hex(3)}"
    where = "the simulated world" if isinstance(sim, SimWorld) else "Alibaba Cloud APIs (MIGRATE_PROVIDERS=alibaba)"
    out.write(f"Demo: NGINX Ingress → MSE on {where} "
              "(cluster demo-cluster, gateway gw-demo, SLB lb-demo).\n"
              f"The dwell between weight increases is shortened from 180 s to {DEMO_DWELL:g} s for the demo.\n\n")
    migration = None
    for user, text in SCRIPT:
        out.write(f"{user}> {text}\n")
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


def _read_back(world: object, m: object) -> dict[str, Any]:
    """What the SLB itself holds in every moved group, read through the providers, not the record."""
    from commands import slb
    from commands.model import Migration

    assert isinstance(m, Migration) and m.slb is not None
    return slb.read(world, m, mse=m.mse_weight, nginx=0)  # type: ignore[arg-type]
