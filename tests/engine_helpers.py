"""Small helpers for engine tests: a clock the test moves, and an engine on a fresh sim world."""

from __future__ import annotations

from dataclasses import dataclass, field

from commands.engine import Engine
from commands.gates import Analysis, GateConfig
from commands.outcome import Outcome, Request
from commands.policy import Policy
from providers.sim.world import SimWorld
from providers.store import RedisStore


@dataclass
class Clock:
    t: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@dataclass
class Harness:
    engine: Engine
    store: RedisStore
    world: SimWorld
    clock: Clock
    channel: str = "C-test"
    keys: list[str] = field(default_factory=list)

    def say(self, user: str, text: str, *, key: str = "") -> Outcome:
        return self.engine.handle(Request(text=text, user=user, channel=self.channel, idempotency_key=key))

    def ok(self, user: str, text: str) -> Outcome:
        out = self.say(user, text)
        assert out.ok, f"{text!r} failed: {out.text}"
        return out

    def migration(self):  # type: ignore[no-untyped-def]
        m = self.store.active_in_channel(self.channel) or self.store.latest_in_channel(self.channel)
        assert m is not None
        return m

    def to_shifting(self) -> None:
        self.ok("alice", "/migrate start cluster=demo-cluster gateway=gw-demo")
        self.ok("alice", "/migrate check")
        self.ok("alice", "/migrate method slb service=ingress-nginx/nginx-ingress-lb")
        self.ok("alice", "/migrate switch")
        self.ok("alice", "/migrate weight 10")


def make_harness(redis_url: str, *, world: SimWorld | None = None, **policy: object) -> Harness:
    clock = Clock()
    store = RedisStore.from_url(redis_url)
    world = world or SimWorld.from_seed()
    settings: dict[str, object] = {"operators": frozenset({"alice", "carol"}),
                                   "approvers": frozenset({"alice", "bob", "carol", "dave"}),
                                   "dwell_seconds": 180}
    # Steps of any size are allowed unless a test asks for the guard (tests of gates do).
    settings["gates"] = GateConfig(analysis=Analysis(max_step_percent=100))
    settings.update(policy)
    engine = Engine(store=store, world=world, policy=Policy(**settings), clock=clock)  # type: ignore[arg-type]
    return Harness(engine, store, world, clock)


def read_slb_weights(world, m):  # type: ignore[no-untyped-def]
    """What the SLB holds over every moved group (the lowest group's totals and share)."""
    from commands import slb

    return slb.read(world, m, mse=m.mse_weight, nginx=m.nginx_weight)
