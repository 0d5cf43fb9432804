"""The gate sources against real servers: SLB health through the real SDK and the OpenAPI
emulator, and a migration whose increases a real Prometheus holds or lets through."""

from __future__ import annotations

import time

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


def _wait_for(read: object, ok: object, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not ok(read()):  # type: ignore[operator]
        assert time.monotonic() < deadline, "Prometheus never showed the change"
        time.sleep(0.5)


def test_a_real_prometheus_lets_a_healthy_increase_through_and_holds_a_breach(
        redis_url: str, live_prometheus: LivePrometheus) -> None:
    world = SimWorld.from_seed()
    world.metrics = PrometheusMetrics(live_prometheus.url)  # type: ignore[assignment]
    cfg = parse([{"name": "success", "source": "prometheus", "query": "success_rate", "min": "nginx - 0.5",
                  "window": "1m"}], {"max_step_percent": 100})
    h = make_harness(redis_url, world=world, dwell_seconds=0, gates=GateConfig(cfg.gates, cfg.analysis))
    h.ok("alice", "/migrate start cluster=demo-cluster gateway=gw-demo")
    h.ok("alice", "/migrate check")
    h.ok("alice", "/migrate method slb service=ingress-nginx/nginx-ingress-lb")
    h.ok("alice", "/migrate switch")
    success = cfg.gates[0].promql("mse")
    _wait_for(lambda: world.metrics.value(promql=success), lambda v: v is not None)
    healthy = h.ok("alice", "/migrate weight 10")
    assert healthy.approval is None and "✓ success 100% (NGINX 100%)" in healthy.text
    live_prometheus.exporter.set_mse(error_rate=0.2)  # MSE answers one request in five with a 5xx
    _wait_for(lambda: world.metrics.value(promql=success), lambda v: v is not None and v < 99)
    held = h.ok("alice", "/migrate weight 20")
    assert held.approval is not None and "gates fail: ✗ success" in held.text and "(NGINX 100%)" in held.text
    assert h.migration().mse_weight == 10
    live_prometheus.exporter.set_mse(error_rate=0.0)
