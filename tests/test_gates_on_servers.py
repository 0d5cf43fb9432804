"""The gate sources against real servers: SLB health through the real SDK and the OpenAPI
emulator, and a migration whose increases a real Prometheus holds or lets through."""

from __future__ import annotations

import time
from typing import Any

import pytest

from commands.gates import GateConfig, parse
from providers.alibaba import AlibabaCloud
from providers.prometheus import PrometheusMetrics
from providers.sim.world import SimWorld
from tests.engine_helpers import make_harness
from tests.openapi_emulator import Emulator
from tests.prometheus_server import LivePrometheus, make_prometheus_fixture

live_prometheus = make_prometheus_fixture("module")


def test_slb_health_through_the_sdk_names_each_backend_and_port() -> None:
    with Emulator() as emu:
        cloud = AlibabaCloud.from_config(emu.config(max_attempts=1))
        emu.state.health["i-nginx-2:30443"] = "abnormal"
        seen = {(h.server_id, h.port): h.status for h in cloud.slb.health(slb_id="lb-demo", port=443, protocol="TCP")}
        assert seen == {("i-nginx-1", 30443): "normal", ("i-nginx-2", 30443): "abnormal"}
        assert emu.calls["DescribeHealthStatus"] == 1


def _wait_for(read: object, ok: object, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not ok(read()):  # type: ignore[operator]
        assert time.monotonic() < deadline, "Prometheus never showed the change"
        time.sleep(0.5)


def test_a_real_prometheus_lets_a_healthy_increase_through_and_holds_a_breach(
        redis_url: str, live_prometheus: LivePrometheus) -> None:
    world = SimWorld.from_seed()
    world.metrics = PrometheusMetrics(live_prometheus.url)  # type: ignore[assignment]
    cfg = parse([{"name": "success", "source": "prometheus", "query": "success_rate", "min": "nginx - 0.5",
                  "window": "15s"}], {"max_step_percent": 100})
    h = make_harness(redis_url, world=world, dwell_seconds=0, gates=GateConfig(cfg.gates, cfg.analysis))
    h.ok("alice", "/migrate start cluster=demo-cluster gateway=gw-demo")
    h.ok("alice", "/migrate check")
    h.ok("alice", "/migrate method slb service=ingress-nginx/nginx-ingress-lb")
    h.ok("alice", "/migrate switch")
    success = cfg.gates[0].promql("mse")
    _wait_for(lambda: world.metrics.value(promql=success), lambda v: v is not None)
    h.ok("alice", "/migrate weight 5")  # at 0% MSE has no traffic for its request metrics to judge
    healthy = h.ok("alice", "/migrate weight 10")
    assert healthy.approval is None and "✓ success 100% (NGINX 100%)" in healthy.text
    live_prometheus.exporter.set_mse(error_rate=0.2)  # MSE answers one request in five with a 5xx
    _wait_for(lambda: world.metrics.value(promql=success), lambda v: v is not None and v < 99)
    held = h.ok("alice", "/migrate weight 20")
    assert held.approval is not None and "gates fail: ✗ success" in held.text and "(NGINX 100%)" in held.text
    assert h.migration().mse_weight == 10
    live_prometheus.exporter.set_mse(error_rate=0.0)


def test_a_plan_climbs_to_fifty_percent_against_the_emulator_with_health_gates(redis_url: str) -> None:
    from providers.factory import build_world

    with Emulator() as emu:
        world = build_world("alibaba", {"alibaba": emu.config(), "clusters": {"demo-cluster": {"sim_seed": ""}}})
        h = make_harness(redis_url, world=world, dwell_seconds=60, gates=GateConfig(
            parse(None, {"interval": "30s"}).gates, parse(None, {"interval": "30s"}).analysis))
        h.ok("alice", "/migrate start cluster=demo-cluster gateway=gw-demo")
        h.ok("alice", "/migrate check")
        h.ok("alice", "/migrate method slb service=ingress-nginx/nginx-ingress-lb")
        h.ok("alice", "/migrate switch")
        h.ok("alice", "/migrate auto 1,5,10,25,50% every 1m")
        steps = []
        for _ in range(20):
            steps += [o.text for o in h.engine.tick_plans() if o.text.startswith("plan step")]
            h.clock.advance(30)
        assert len(steps) == 5 and "Gates: ✓ backends 100% healthy (NGINX 100% healthy)" in steps[-1]
        assert h.migration().plan["state"] == "done" and h.migration().observed["share"] == 50
        for vgroup_id in ("rsp-demo-80", "rsp-demo-443"):
            held = world.slb.backends(vgroup_id=vgroup_id)
            assert sum(b.weight for b in held if b.type == "eni") == sum(b.weight for b in held if b.type != "eni")
        assert emu.calls["DescribeHealthStatus"] >= 10 and emu.violations == []


@pytest.mark.parametrize(("gate", "breach"), [
    ({"name": "success", "source": "prometheus", "query": "success_rate", "min": "nginx - 0.5"}, {"error_rate": 0.3}),
    ({"name": "p99", "source": "prometheus", "query": "p99_latency", "max": "nginx + 50"}, {"p99_ms": 800}),
], ids=["errors", "latency"])
def test_a_breach_prometheus_sees_rolls_the_plan_back_at_the_next_check(
        redis_url: str, live_prometheus: LivePrometheus, gate: dict[str, Any], breach: dict[str, float]) -> None:
    world = SimWorld.from_seed()
    world.metrics = PrometheusMetrics(live_prometheus.url)  # type: ignore[assignment]
    cfg = parse([{**gate, "window": "15s"}], {"interval": "10s", "failures_before_rollback": 1, "max_step_percent": 25})
    h = make_harness(redis_url, world=world, dwell_seconds=0, gates=GateConfig(cfg.gates, cfg.analysis))
    h.ok("alice", "/migrate start cluster=demo-cluster gateway=gw-demo")
    h.ok("alice", "/migrate check")
    h.ok("alice", "/migrate method slb service=ingress-nginx/nginx-ingress-lb")
    h.ok("alice", "/migrate switch")
    g = cfg.gates[0]
    passes = (lambda v: v is not None and v > 99.9) if "error_rate" in breach else (lambda v: v is not None and v < 300)
    _wait_for(lambda: world.metrics.value(promql=g.promql("mse")), passes)
    h.ok("alice", "/migrate auto 1,5% every 1m")
    assert any(o.text.startswith("plan step to 1%") for o in h.engine.tick_plans())
    live_prometheus.exporter.set_mse(**breach)
    try:
        _wait_for(lambda: world.metrics.value(promql=g.promql("mse")), lambda v: v is not None and not passes(v))
        h.clock.advance(10)  # the next check: one interval later
        [back] = [o for o in h.engine.tick_plans() if o.verb == "rollback"]
    finally:
        live_prometheus.exporter.set_mse()
    assert back.broadcast and "Automatic rollback" in back.text and f"✗ {g.name}" in back.text
    assert world.slb_split("lb-demo", "rsp-demo-80", "gw-demo") == 0
    assert world.slb_split("lb-demo", "rsp-demo-443", "gw-demo") == 0
