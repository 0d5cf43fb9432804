"""A crash between a step's intent and its result, and a rollback overtaking a slow step."""

from __future__ import annotations

import contextlib
import threading
import time

from commands.phases import Phase
from commands.steps import read_slb_weights
from providers.sim.world import SimWorld
from tests.engine_helpers import make_harness


class Killed(BaseException):
    """Stands for SIGKILL: not an Exception, so nothing in the engine catches or records it."""


class CrashingSlb:
    """Wraps the sim SLB; dies before or after the weight write, once."""

    def __init__(self, inner, *, when: str) -> None:  # type: ignore[no-untyped-def]
        self.inner, self.when, self.armed = inner, when, False

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)

    def set_weights(self, **kw):  # type: ignore[no-untyped-def]
        if self.armed and self.when == "before":
            self.armed = False
            raise Killed()
        self.inner.set_weights(**kw)
        if self.armed and self.when == "after":
            self.armed = False
            raise Killed()


def _crash_then_restart(redis_url: str, when: str):  # type: ignore[no-untyped-def]
    world = SimWorld.from_seed()
    crashing = CrashingSlb(world.slb, when=when)
    world.slb = crashing  # type: ignore[assignment]
    h = make_harness(redis_url, world=world)
    h.to_shifting()
    h.clock.advance(200)
    crashing.armed = True
    with contextlib.suppress(Killed):
        h.say("alice", "/migrate weight 40")
    stuck = h.migration()
    assert stuck.intent is not None and stuck.intent.args["mse"] == 40
    calls_before = world.state.calls("slb.set_weights")
    restarted = make_harness(redis_url, world=world)  # a new process: new engine, same Redis, same world
    outcomes = restarted.engine.reconcile()
    return world, restarted, outcomes, calls_before


def test_crash_before_the_write_is_finished_on_restart(redis_url: str) -> None:
    world, h, outcomes, calls_before = _crash_then_restart(redis_url, "before")
    assert len(outcomes) == 1 and "Resumed `weight`" in outcomes[0].text
    m = h.migration()
    assert m.intent is None and m.mse_weight == 40
    assert read_slb_weights(world, m)["mse"] == 40
    assert world.state.calls("slb.set_weights") == calls_before + 1


def test_crash_after_the_write_is_not_repeated(redis_url: str) -> None:
    world, h, outcomes, calls_before = _crash_then_restart(redis_url, "after")
    assert "Resumed" in outcomes[0].text
    m = h.migration()
    assert m.intent is None and m.mse_weight == 40 and m.phase is Phase.SHIFTING
    assert world.state.calls("slb.set_weights") == calls_before  # read back, found done, not written again


def test_crash_during_switch_keeps_the_original_annotations(redis_url: str) -> None:
    world = SimWorld.from_seed()
    original = world.cluster("demo-cluster").get_service(namespace="ingress-nginx", name="nginx-ingress-lb")
    h = make_harness(redis_url, world=world)
    h.ok("alice", "/migrate start cluster=demo-cluster gateway=gw-demo")
    h.ok("alice", "/migrate check")
    h.ok("alice", "/migrate method slb service=ingress-nginx/nginx-ingress-lb")
    world.state.fail_next("k8s.replace_service_annotations", times=3, code="InternalError")  # outlasts the retries
    failed = h.say("alice", "/migrate switch")
    assert not failed.ok and "InternalError" in failed.text and "`/migrate switch` finishes it" in failed.text
    stuck = h.migration()
    assert stuck.phase is Phase.METHOD_CHOSEN and stuck.intent is not None  # 4a done, 4b not: kept for the reminder
    assert "Retried switch" in h.ok("alice", "/migrate switch").text  # the retry finishes what was left
    h.ok("alice", "/migrate abort")
    h.ok("bob", "/migrate approve")
    restored = world.cluster("demo-cluster").get_service(namespace="ingress-nginx", name="nginx-ingress-lb")
    assert original is not None and restored is not None
    assert dict(restored.annotations) == dict(original.annotations)


def test_rollback_overtakes_a_slow_weight_step(redis_url: str) -> None:
    world = SimWorld.from_seed()
    h = make_harness(redis_url, world=world)
    h.to_shifting()
    h.clock.advance(200)
    world.state.add_latency("slb.set_weights", 0.8)
    slow = threading.Thread(target=h.say, args=("alice", "/migrate weight 60"))
    slow.start()
    deadline = time.monotonic() + 5
    while h.migration().intent is None and time.monotonic() < deadline:
        time.sleep(0.01)
    world.state.add_latency("slb.set_weights", 0)
    out = h.say("bob", "/migrate rollback")
    slow.join()
    assert out.ok, out.text
    m = h.migration()
    assert m.mse_weight == 0
    assert read_slb_weights(world, m)["mse"] == 0  # the slow write landed first or was undone: MSE gets nothing


def test_abort_after_a_half_done_switch_restores_the_slb(redis_url: str) -> None:
    world = SimWorld.from_seed()
    before = world.raw()
    h = make_harness(redis_url, world=world)
    h.ok("alice", "/migrate start cluster=demo-cluster gateway=gw-demo")
    h.ok("alice", "/migrate check")
    h.ok("alice", "/migrate method slb service=ingress-nginx/nginx-ingress-lb")
    world.state.fail_next("k8s.replace_service_annotations", times=3, code="Forbidden", temporary=False)
    assert not h.say("alice", "/migrate switch").ok
    assert world.raw()["slbs"]["lb-demo"]["tags"] == {}  # 4a happened: the SLB is detached
    out = h.ok("alice", "/migrate abort")
    assert "aborted" in out.text
    after = world.raw()
    assert after["slbs"]["lb-demo"]["tags"] == before["slbs"]["lb-demo"]["tags"]
    assert after["slbs"]["lb-demo"]["listeners"] == before["slbs"]["lb-demo"]["listeners"]
    assert after["slbs"]["lb-demo"]["vgroups"] == before["slbs"]["lb-demo"]["vgroups"]
    svc = "ingress-nginx/nginx-ingress-lb"
    assert after["clusters"]["demo-cluster"]["services"][svc]["annotations"] == \
        before["clusters"]["demo-cluster"]["services"][svc]["annotations"]
    assert h.migration().phase is Phase.ABORTED and h.migration().intent is None
