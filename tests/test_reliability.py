"""Reliability: cloud faults across a whole migration, Redis going away, hostile command text."""

from __future__ import annotations

import re

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands.gates import Analysis, GateConfig
from commands.phases import Phase
from providers.sim.world import SimWorld
from tests.aof_redis import AofRedis
from tests.engine_helpers import Harness, make_harness, read_slb_weights

SCRIPT = [
    ("alice", "/migrate start cluster=demo-cluster gateway=gw-demo"),
    ("alice", "/migrate check"),
    ("alice", "/migrate method slb service=ingress-nginx/nginx-ingress-lb"),
    ("alice", "/migrate switch"),
    ("alice", "/migrate weight 10"),
    ("alice", "/migrate rollback"),
    ("alice", "/migrate weight 50"),
    ("alice", "/migrate weight 100"),
    ("alice", "/migrate verify"),
    ("bob", "/migrate approve"),
    ("alice", "/migrate cutover"),
    ("bob", "/migrate approve"),
    ("alice", "/migrate complete"),
    ("bob", "/migrate approve"),
]


def _persist(h: Harness, user: str, text: str, tries: int = 30) -> str:
    """What an operator does when a cloud call fails: read the message, do what it says or try again."""
    for _ in range(tries):
        out = h.say(user, text)
        if out.ok:
            return out.text
        queued = re.search(r"`(/migrate \w+)` retries it", out.text)
        if queued:
            user, text = "alice", queued.group(1)
            continue
        assert "\n" not in out.text and "Traceback" not in out.text
        if "Approval needed" in out.text or "already" in out.text:
            return out.text
        if text.endswith("approve") and "Nothing is waiting" in out.text:
            return out.text
    raise AssertionError(f"{text} never went through: {out.text}")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_thirty_percent_of_cloud_calls_failing_still_completes(redis_url: str, seed: int) -> None:
    world = SimWorld.from_seed()
    # No gates: with 30% of every cloud call failing they would (rightly) fail safe and ask for an
    # approval at each increase; this test is about the steps' own writes getting through.
    h = make_harness(redis_url, world=world, dwell_seconds=0,
                     gates=GateConfig(gates=(), analysis=Analysis(max_step_percent=100)))
    h.engine.sleep = lambda s: None
    world.state.fail_rate("*", 0.3, seed=seed)
    for user, text in SCRIPT:
        _persist(h, user, text)
        m = h.migration()
        assert m.intent is None  # every failure left the migration in a named phase, nothing in flight
    world.state.clear_faults()
    assert h.migration().phase is Phase.COMPLETED
    assert world.slb_split("lb-demo", "rsp-demo-80", "gw-demo") == 100
    assert world.state.calls("slb.set_weights") > 0


def test_rollback_lands_under_heavy_faults(redis_url: str) -> None:
    world = SimWorld.from_seed()
    h = make_harness(redis_url, world=world, dwell_seconds=0)
    h.engine.sleep = lambda s: None
    h.to_shifting()
    h.ok("alice", "/migrate weight 100")
    world.state.fail_rate("*", 0.3, seed=7)
    out = h.say("alice", "/migrate rollback")
    world.state.clear_faults()
    assert out.ok, out.text
    assert read_slb_weights(world, h.migration())["mse"] == 0


# ---- Redis going away -------------------------------------------------------------------


def test_redis_restart_loses_nothing_and_outage_changes_nothing(aof_redis: AofRedis) -> None:
    world = SimWorld.from_seed()
    h = make_harness(aof_redis.url, world=world)
    h.to_shifting()
    before = h.migration()
    events_before = len(h.store.events(before.id, limit=500))
    aof_redis.kill()
    out = h.say("alice", "/migrate rollback")
    assert not out.ok and "state store (Redis) is unavailable" in out.text and "\n" not in out.text
    assert read_slb_weights(world, before)["mse"] == 10  # nothing was done without a record of it
    aof_redis.start()
    after = h.migration()
    assert (after.version, after.phase, after.mse_weight) == (before.version, before.phase, 10)
    assert len(h.store.events(after.id, limit=500)) == events_before
    assert h.say("alice", "/migrate rollback").ok


def test_redis_dying_mid_step_is_reconciled_after_restart(aof_redis: AofRedis) -> None:
    world = SimWorld.from_seed()
    h = make_harness(aof_redis.url, world=world)
    h.to_shifting()
    inner = world.slb.set_weights

    def write_then_lose_redis(**kw):  # type: ignore[no-untyped-def]
        inner(**kw)
        aof_redis.kill()

    world.slb.set_weights = write_then_lose_redis  # type: ignore[method-assign]
    out = h.say("alice", "/migrate rollback")
    assert not out.ok and out.text.startswith("The change was made") and "nothing was changed" not in out.text
    world.slb.set_weights = inner  # type: ignore[method-assign]
    aof_redis.start()
    stuck = h.migration()
    assert stuck.intent is not None and stuck.intent.verb == "rollback"  # the intent survived in the AOF
    [resumed] = make_harness(aof_redis.url, world=world).engine.reconcile()
    assert resumed.ok and h.migration().intent is None and h.migration().mse_weight == 0


# ---- hostile input ------------------------------------------------------------------------

VERBS = ["start", "check", "method", "switch", "weight", "verify", "cutover", "complete", "rollback", "abort",
         "status", "history", "approve", "deny", "help", "frobnicate", ""]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(verb=st.sampled_from(VERBS), junk=st.text(max_size=300), keyed=st.booleans())
def test_hostile_text_never_crashes_and_invalid_input_changes_nothing(redis_url: str, verb: str, junk: str,
                                                                      keyed: bool) -> None:
    h = _shared_harness(redis_url)
    before = h.migration().version
    text = f"/migrate {verb} {'x=' if keyed else ''}{junk}"
    out = h.say("carol", text)
    assert isinstance(out.text, str) and out.text
    assert "Traceback" not in out.text
    if not out.ok:
        assert h.migration().version == before
    if h.migration().phase is not Phase.SHIFTING or h.migration().pending_approval:
        _HARNESS.clear()  # a valid command moved it on: start the next example from a fresh migration


_HARNESS: dict[str, Harness] = {}


def _shared_harness(redis_url: str) -> Harness:
    if redis_url not in _HARNESS:
        redis.Redis.from_url(redis_url).flushdb()
        h = make_harness(redis_url, dwell_seconds=0)
        h.to_shifting()
        _HARNESS.clear()
        _HARNESS[redis_url] = h
    return _HARNESS[redis_url]
