"""A crash between a step's intent and its result, and a rollback overtaking a slow step."""

from __future__ import annotations

import contextlib
import threading
import time

from commands.phases import Phase
from providers.sim.world import SimWorld
from tests.engine_helpers import make_harness, read_slb_weights


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
    assert world.state.calls("slb.set_weights") == calls_before + 2  # both groups, the first one's write had died


def test_crash_after_the_write_is_not_repeated(redis_url: str) -> None:
    world, h, outcomes, calls_before = _crash_then_restart(redis_url, "after")
    assert "Resumed" in outcomes[0].text
    m = h.migration()
    assert m.intent is None and m.mse_weight == 40 and m.phase is Phase.SHIFTING
    # The first group's write had landed: read back, found done, not written again; only the second group is.
    assert world.state.calls("slb.set_weights") == calls_before + 1
    assert read_slb_weights(world, m)["mse"] == 40


def test_crash_during_switch_keeps_the_original_annotations(redis_url: str) -> None:
    world = SimWorld.from_seed()
    original = world.cluster("demo-cluster").get_service(namespace="ingress-nginx", name="nginx-ingress-lb")
    h = make_harness(redis_url, world=world)
    h.ok("alice", "/migrate start cluster=demo-cluster gateway=gw-demo")
    h.ok("alice", "/migrate check")
    h.ok("alice", "/migrate method slb service=ingress-nginx/nginx-ingress-lb")
    world.state.fail_next("k8s.patch_service_annotations", times=3, code="InternalError")  # outlasts the retries
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
    arrived, release = world.state.hold("slb.set_weights")  # the slow step stops right before its write
    slow_result: list[object] = []
    slow = threading.Thread(target=lambda: slow_result.append(h.say("alice", "/migrate weight 60")))
    slow.start()
    assert arrived.wait(5)
    out = h.say("bob", "/migrate rollback")
    assert out.ok, out.text
    assert slow.is_alive()  # the rollback did not wait for the slow step
    assert read_slb_weights(world, h.migration())["mse"] == 0
    release.set()  # now the slow write lands, after the rollback's
    slow.join(10)
    m = h.migration()
    assert m.mse_weight == 0 and m.intent is None
    assert read_slb_weights(world, m)["mse"] == 0  # the overtaken step put the rollback's weights back
    assert "overtaken" in slow_result[0].text  # type: ignore[attr-defined]
    assert any(e.verb == "enforce" for e in h.store.events(m.id, limit=100))

def test_abort_after_a_half_done_switch_restores_the_slb(redis_url: str) -> None:
    world = SimWorld.from_seed()
    before = world.raw()
    h = make_harness(redis_url, world=world)
    h.ok("alice", "/migrate start cluster=demo-cluster gateway=gw-demo")
    h.ok("alice", "/migrate check")
    h.ok("alice", "/migrate method slb service=ingress-nginx/nginx-ingress-lb")
    world.state.fail_next("k8s.patch_service_annotations", times=3, code="Forbidden", temporary=False)
    assert not h.say("alice", "/migrate switch").ok
    assert world.raw()["slbs"]["lb-demo"]["tags"] == {}  # 4a happened: the SLB is detached
    out = h.ok("alice", "/migrate abort")
    assert "aborted" in out.text
    after = world.raw()
    assert after["slbs"]["lb-demo"]["tags"] == before["slbs"]["lb-demo"]["tags"]
    assert after["slbs"]["lb-demo"]["listeners"] == before["slbs"]["lb-demo"]["listeners"]
    assert after["slbs"]["lb-demo"]["vgroups"] == before["slbs"]["lb-demo"]["vgroups"]
    assert after["slbs"]["lb-demo"]["vgroup_names"] == before["slbs"]["lb-demo"]["vgroup_names"]  # k8s/... again
    svc = "ingress-nginx/nginx-ingress-lb"
    assert after["clusters"]["demo-cluster"]["services"][svc]["annotations"] == \
        before["clusters"]["demo-cluster"]["services"][svc]["annotations"]
    assert h.migration().phase is Phase.ABORTED and h.migration().intent is None


def test_abort_after_a_half_done_dns_switch_removes_the_new_records(redis_url: str) -> None:
    world = SimWorld.from_seed()
    before = world.raw()["dns"]["records"]
    h = make_harness(redis_url, world=world)
    h.ok("alice", "/migrate start cluster=demo-cluster gateway=gw-demo")
    h.ok("alice", "/migrate check")
    h.ok("alice", "/migrate method dns domains=shop.example.com,api.example.com partial=yes")
    calls = world.state.calls("dns.add_record")
    real = world.dns.set_weighted
    seen: list[str] = []

    def second_fails(*, domain: str, on: bool) -> None:  # the second domain is refused for good
        seen.append(domain)
        if len(seen) > 1:
            world.state.fail_next("dns.set_weighted", times=1, code="Forbidden", temporary=False)
        real(domain=domain, on=on)

    world.dns.set_weighted = second_fails  # type: ignore[method-assign]
    out = h.say("alice", "/migrate switch")
    assert not out.ok and "`/migrate abort` removes them" in out.text
    assert world.state.calls("dns.add_record") == calls + 1  # the first domain got its MSE record
    h.ok("alice", "/migrate abort")
    assert world.raw()["dns"]["records"] == before


def _while_slow(h, world: SimWorld, op: str, text: str, during) -> object:  # type: ignore[no-untyped-def]
    """Run `text` with `op` stalled; call `during()` once its intent is recorded; return both outcomes."""
    world.state.add_latency(op, 0.8)
    results: list[object] = []
    slow = threading.Thread(target=lambda: results.append(h.say("alice", text)))
    slow.start()
    deadline = time.monotonic() + 5
    while h.migration().intent is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert h.migration().intent is not None
    other = during()
    slow.join()
    world.state.add_latency(op, 0)
    return results[0], other


def test_an_unrelated_write_during_a_step_does_not_undo_it(redis_url: str) -> None:
    world = SimWorld.from_seed()
    h = make_harness(redis_url, world=world, dwell_seconds=0)
    h.to_shifting()
    step, _ = _while_slow(h, world, "slb.set_weights", "/migrate weight 30",
                          lambda: h.engine.attach_card(h.migration().id, card_ts="1795000000.000200"))
    assert step.ok and "overtaken" not in step.text  # type: ignore[attr-defined]
    m = h.migration()
    assert m.intent is None and m.mse_weight == 30 and m.card_ts == "1795000000.000200"
    assert read_slb_weights(world, m)["mse"] == 30


def test_verification_is_refused_while_a_weight_step_runs(redis_url: str) -> None:
    world = SimWorld.from_seed()
    h = make_harness(redis_url, world=world, dwell_seconds=0)
    h.to_shifting()
    h.ok("alice", "/migrate verify")
    _step, approve = _while_slow(h, world, "slb.set_weights", "/migrate weight 30",
                                lambda: h.say("bob", "/migrate approve"))
    assert not approve.ok and "still running" in approve.text  # type: ignore[attr-defined]
    m = h.migration()
    assert m.phase is Phase.SHIFTING and m.mse_weight == 30


def test_a_switch_typed_twice_runs_once_and_abort_waits_for_it(redis_url: str) -> None:
    world = SimWorld.from_seed()
    h = make_harness(redis_url, world=world)
    h.ok("alice", "/migrate start cluster=demo-cluster gateway=gw-demo")
    h.ok("alice", "/migrate check")
    h.ok("alice", "/migrate method slb service=ingress-nginx/nginx-ingress-lb")
    first, others = _while_slow(h, world, "k8s.patch_service_annotations", "/migrate switch",
                                lambda: (h.say("alice", "/migrate switch"), h.say("alice", "/migrate abort")))
    again, abort = others  # type: ignore[misc]
    assert first.ok and not again.ok and "still running" in again.text  # type: ignore[attr-defined]
    assert not abort.ok and "still running" in abort.text
    assert world.state.calls("k8s.patch_service_annotations") == 1
    assert h.migration().phase is Phase.SWITCHED


def test_rollback_still_works_after_an_approved_abort_failed(redis_url: str) -> None:
    world = SimWorld.from_seed()
    h = make_harness(redis_url, world=world)
    h.engine.sleep = lambda s: None
    h.to_shifting()
    h.ok("alice", "/migrate abort")
    world.state.fail_next("mse.leave_slb", times=3, code="Forbidden", temporary=False)
    failed = h.say("bob", "/migrate approve")
    assert not failed.ok and "stays queued" in failed.text
    out = h.ok("carol", "/migrate rollback")
    assert "Rolled back" in out.text
    m = h.migration()
    assert m.phase is Phase.SHIFTING and m.intent is None and read_slb_weights(world, m)["mse"] == 0
