"""Planned progression (`/migrate auto`): steps taken under the gates, and a rollback of its own
when they fail, judged on the simulated world's SLB."""

from __future__ import annotations

import pytest

from commands.gates import GateConfig, parse
from commands.phases import Phase
from tests.engine_helpers import Harness, make_harness

SUCCESS = {"name": "success", "source": "prometheus", "query": "success_rate", "min": "nginx - 0.5", "window": "1m"}
GROUPS = ("rsp-demo-80", "rsp-demo-443")


def _switched(redis_url: str, *, failures: int = 2, world: object = None) -> Harness:
    cfg = parse([{"name": "backends", "source": "slb_health", "min": 100, "window": "1m"}, SUCCESS],
                {"interval": "30s", "failures_before_rollback": failures, "max_step_percent": 25})
    h = make_harness(redis_url, world=world, dwell_seconds=60, gates=GateConfig(cfg.gates, cfg.analysis),
                     rollback=frozenset({"U0ONCALL1"}))
    h.ok("alice", "/migrate start cluster=demo-cluster gateway=gw-demo")
    h.ok("alice", "/migrate check")
    h.ok("alice", "/migrate method slb service=ingress-nginx/nginx-ingress-lb")
    h.ok("alice", "/migrate switch")
    return h


def _split(h: Harness) -> list[int]:
    return [round(h.world.slb_split("lb-demo", g, "gw-demo")) for g in GROUPS]


def _run(h: Harness, seconds: float, step: float = 30) -> list[str]:
    """Housekeeping rounds while the clock moves on; the texts they would post."""
    said: list[str] = []
    for _ in range(int(seconds / step)):
        said += [o.text for o in h.engine.tick_plans()]
        h.clock.advance(step)
    return said


@pytest.mark.parametrize(("text", "why"), [
    ("/migrate auto 1,5,10% every 30s", "shorter than the dwell"),
    ("/migrate auto 1,5,50% every 5m", "from 5% to 50% is more than the 25 points"),
    ("/migrate auto 5,1% every 5m", "must rise"),
    ("/migrate auto 1,5 every 5m", "not a list of shares"),
    ("/migrate auto 1,5% every soon", "not a pace"),
])
def test_a_plan_that_would_break_a_rule_is_refused_in_one_line(redis_url: str, text: str, why: str) -> None:
    h = _switched(redis_url)
    out = h.say("alice", text)
    assert not out.ok and why in out.text and "\n" not in out.text
    assert not h.migration().plan


def test_a_healthy_plan_climbs_to_its_last_share_and_stops_there(redis_url: str) -> None:
    h = _switched(redis_url)
    out = h.ok("alice", "/migrate auto 1,5,10,25,50% every 5m")
    assert "*1%* → 5% → 10% → 25% → 50% every 5m (running)" in out.text
    said = _run(h, 25 * 60)
    assert [t.split(":")[0] for t in said if t.startswith("plan step")] == [
        "plan step to 1%", "plan step to 5%", "plan step to 10%", "plan step to 25%", "plan step to 50%"]
    assert "The plan is done" in said[-1] and "Gates: ✓ backends" in said[-1]
    assert _split(h) == [50, 50]  # both listeners, read from the SLB
    assert h.migration().plan["state"] == "done"
    assert "Plan: 1% → 5% → 10% → 25% → 50% every 5m (done)" in h.ok("alice", "/migrate status").text


def test_a_breach_rolls_back_by_itself_and_tells_the_channel(redis_url: str) -> None:
    h = _switched(redis_url, failures=2)
    h.ok("alice", "/migrate auto 1,5,10% every 5m")
    _run(h, 6 * 60)
    assert _split(h) == [5, 5]
    h.world.set_metrics("mse", success_rate=97.0)  # MSE starts failing one request in thirty
    said = _run(h, 90)
    assert any("Gate check 1 of 2 failed" in t for t in said)
    [auto] = [o for o in _rollbacks(said)]
    assert "Automatic rollback" in auto and "2 failed gate checks in a row" in auto
    assert "✗ success 97% (NGINX 99.95%)" in auto and "Rollback group: U0ONCALL1" in auto
    assert _split(h) == [0, 0]
    m = h.migration()
    assert m.plan["state"] == "stopped" and m.phase is Phase.SHIFTING and m.mse_weight == 0
    assert _run(h, 10 * 60) == []  # a stopped plan does nothing more


def _rollbacks(said: list[str]) -> list[str]:
    return [t for t in said if t.startswith("Automatic rollback")]


def test_the_automatic_rollback_is_broadcast(redis_url: str) -> None:
    h = _switched(redis_url, failures=1)
    h.ok("alice", "/migrate auto 1,5% every 5m")
    _run(h, 60)
    h.world.set_health("eni-gw-demo-2", 80, "abnormal")
    outcomes = h.engine.tick_plans()
    h.clock.advance(30)
    outcomes += h.engine.tick_plans()
    [back] = [o for o in outcomes if o.verb == "rollback"]
    assert back.broadcast and back.ok and "all traffic on NGINX" in back.text


def test_prometheus_down_holds_the_plan_without_rolling_back(redis_url: str) -> None:
    h = _switched(redis_url, failures=1)
    h.ok("alice", "/migrate auto 1,5,10% every 5m")
    _run(h, 60)
    h.world.set_metrics("mse", down=True)
    said = _run(h, 20 * 60)
    assert len([t for t in said if t.startswith("Plan waits")]) == 1  # said once, not every 30 s
    assert _rollbacks(said) == [] and _split(h) == [1, 1]
    h.world.set_metrics("mse", down=False)
    assert any(t.startswith("plan step to 5%") for t in _run(h, 60))


def test_pause_resume_and_a_manual_rollback_end_or_hold_the_plan(redis_url: str) -> None:
    h = _switched(redis_url)
    h.ok("alice", "/migrate auto 1,5,10% every 5m")
    _run(h, 60)
    refused = h.say("alice", "/migrate weight 10")
    assert not refused.ok and "`/migrate pause` it first" in refused.text
    h.ok("alice", "/migrate pause")
    assert _run(h, 20 * 60) == [] and _split(h) == [1, 1]
    h.ok("alice", "/migrate resume")
    assert any(t.startswith("plan step to 5%") for t in _run(h, 60))
    h.ok("U0ONCALL1", "/migrate rollback")  # the on-call, from the rollback group
    assert h.migration().plan["state"] == "stopped" and _run(h, 20 * 60) == []


def test_two_replicas_ticking_at_once_take_each_step_once(redis_url: str) -> None:
    h = _switched(redis_url)
    other = make_harness(redis_url, world=h.world, dwell_seconds=60, gates=h.engine.policy.gates)
    other.clock = h.clock
    other.engine.clock = h.clock
    h.ok("alice", "/migrate auto 1,5% every 5m")
    first, second = h.engine.tick_plans(), other.engine.tick_plans()
    steps = [o for o in first + second if o.text.startswith("plan step")]
    assert len(steps) == 1 and _split(h) == [1, 1]
    events = [e for e in h.store.events(h.migration().id, limit=200) if e.verb == "weight"]
    assert len([e for e in events if e.result.startswith("SLB holds")]) == 1


def _at(h: Harness, share: int) -> None:
    """A running plan that has reached `share` (from 1,5,10,25,50% every 5m)."""
    h.ok("alice", "/migrate auto 1,5,10,25,50% every 5m")
    while round(h.migration().observed.get("share", 0)) < share:
        _run(h, 30)


def test_a_failed_automatic_rollback_is_told_to_the_channel_and_tried_again(redis_url: str) -> None:
    h = _switched(redis_url, failures=1)
    _at(h, 5)
    h.world.set_metrics("mse", success_rate=90.0)
    h.world.state.fail_next("slb.set_weights", times=30, code="Forbidden", temporary=False)
    h.engine.sleep = lambda s: None
    h.clock.advance(30)
    [failed] = [o for o in h.engine.tick_plans() if o.verb == "rollback"]
    assert not failed.ok and failed.broadcast and "Automatic rollback of" in failed.text and "FAILED" in failed.text
    assert "`/migrate rollback`" in failed.text and _split(h) == [5, 5]
    h.world.state.clear_faults()
    h.world.state.fail_next("slb.set_weights", times=0)
    [back] = [o for o in h.engine.tick_plans() if o.verb == "rollback"]  # the very next round, not an interval later
    assert back.ok and _split(h) == [0, 0] and h.migration().plan["state"] == "stopped"


def test_a_step_that_failed_is_taken_again_not_skipped(redis_url: str) -> None:
    h = _switched(redis_url)
    _at(h, 1)
    h.world.state.fail_next("slb.set_weights", times=30, code="Forbidden", temporary=False)
    said = _run(h, 6 * 60)
    assert any("could not take its step to 5%" in t for t in said) and _split(h) == [1, 1]
    h.world.state.clear_faults()
    h.world.state.fail_next("slb.set_weights", times=0)
    said = _run(h, 60)
    assert any(t.startswith("plan step to 5%") for t in said) and _split(h) == [5, 5]


def test_one_unreadable_gate_does_not_hide_a_failing_one(redis_url: str) -> None:
    h = _switched(redis_url, failures=2)
    _at(h, 5)
    h.world.set_metrics("mse", down=True)
    for node in ("eni-gw-demo-1", "eni-gw-demo-2", "eni-gw-demo-3"):
        h.world.set_health(node, 80, "abnormal")
    said = _run(h, 90)
    assert len(_rollbacks(said)) == 1 and "✗ backends 50% healthy" in _rollbacks(said)[0] and _split(h) == [0, 0]


def test_health_checks_that_are_off_hold_the_plan_without_rolling_back(redis_url: str) -> None:
    h = _switched(redis_url, failures=1)
    _at(h, 5)
    for node in ("eni-gw-demo-1", "eni-gw-demo-2", "eni-gw-demo-3"):
        for port in (80, 443):
            h.world.set_health(node, port, "unavailable")
    said = _run(h, 10 * 60)
    assert _rollbacks(said) == [] and any(t.startswith("Plan waits") for t in said) and _split(h) == [5, 5]


def test_the_last_share_is_still_watched(redis_url: str) -> None:
    h = _switched(redis_url, failures=1)
    h.ok("alice", "/migrate auto 1,5% every 5m")
    said = _run(h, 6 * 60)
    assert any("That was the last step" in t for t in said) and any("The plan is done at 5%" in t for t in said)
    h.world.set_metrics("mse", success_rate=90.0)
    assert len(_rollbacks(_run(h, 60))) == 1 and _split(h) == [0, 0]


def test_a_paused_plan_is_still_watched(redis_url: str) -> None:
    h = _switched(redis_url, failures=1)
    _at(h, 5)
    h.ok("alice", "/migrate pause")
    h.world.set_metrics("mse", success_rate=90.0)
    assert len(_rollbacks(_run(h, 60))) == 1 and _split(h) == [0, 0]


def test_a_manual_change_while_paused_is_taken_into_account(redis_url: str) -> None:
    h = _switched(redis_url)
    _at(h, 1)
    h.ok("alice", "/migrate pause")
    h.clock.advance(60)  # the dwell since the plan's step
    h.ok("alice", "/migrate weight 20%")
    h.ok("alice", "/migrate resume")
    said = _run(h, 6 * 60)
    assert not any(t.startswith(("plan step to 5%", "plan step to 10%")) for t in said)  # never down
    assert any(t.startswith("plan step to 25%") for t in said)
    h.ok("alice", "/migrate pause")
    h.ok("alice", "/migrate weight 0")
    h.ok("alice", "/migrate resume")
    said = _run(h, 6 * 60)
    assert any("Plan paused: the step from 0% to 50%" in t for t in said) and _split(h) == [0, 0]


def test_verify_and_abort_wait_for_a_running_plan_and_the_card_drops_it_after(redis_url: str) -> None:
    h = _switched(redis_url)
    _at(h, 1)
    for verb in ("verify", "abort"):
        out = h.say("alice", f"/migrate {verb}")
        assert not out.ok and "while a plan is moving the weights" in out.text
    h.ok("alice", "/migrate pause")
    h.ok("alice", "/migrate verify")
    h.ok("bob", "/migrate approve")
    assert "Plan:" not in h.ok("alice", "/migrate status").text


def test_auto_waits_for_a_pending_request_and_for_the_dwell(redis_url: str) -> None:
    h = _switched(redis_url)
    h.ok("alice", "/migrate weight 1")
    h.clock.advance(60)
    h.ok("alice", "/migrate abort")  # an approval request waits
    out = h.say("alice", "/migrate auto 5,10% every 5m")
    assert not out.ok and "is waiting for an approver" in out.text
    h.ok("alice", "/migrate deny")
    h.ok("alice", "/migrate weight 2")
    h.ok("alice", "/migrate auto 5,10% every 5m")
    assert _run(h, 30) == [] and _split(h) == [2, 2]  # the dwell after `weight 2` is not over yet
    assert any(t.startswith("plan step to 5%") for t in _run(h, 60))
