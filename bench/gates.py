"""Breach to rollback: from the moment Prometheus shows MSE failing to the rollback's first SLB write.

A real Prometheus (Debian package) scrapes a fake app playing both gateways every second; the
real SLB/MSE SDK adapters talk to the OpenAPI emulator, which timestamps the arrival of the
weight-0 write; a thread ticks the plans every second, as `serve`'s housekeeper does. For each
sample a plan holds MSE at 1%, the app starts answering 30% of MSE's requests with a 5xx, this
process polls Prometheus until the gate's own query shows it (that instant is "visible"), and
the clock stops when the emulator receives the rollback. Target: under the gate interval + 2 s.

    .venv/bin/python bench/gates.py [--intervals 5,10] [--samples 3]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import percentile, redis_server  # noqa: E402
from bench.rollback import WatchedEmulator  # noqa: E402
from commands.engine import Engine  # noqa: E402
from commands.gates import GateConfig, parse  # noqa: E402
from commands.outcome import Request  # noqa: E402
from commands.policy import Policy  # noqa: E402
from providers.factory import build_world  # noqa: E402
from providers.prometheus import PrometheusMetrics  # noqa: E402
from providers.store import RedisStore  # noqa: E402
from tests.prometheus_server import GatewayExporter, running_prometheus  # noqa: E402

TICK_S = 1.0  # bot/housekeeper.py PLAN_TICK_S
CHANNEL = "C0BENCHGATES"


def _wait(read, ok, what: str, seconds: float = 60.0) -> float:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while True:
        if ok(read()):
            return time.perf_counter()
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


def sample(engine: Engine, metrics: PrometheusMetrics, exporter: GatewayExporter, emu: WatchedEmulator,
           query: str, *, interval: float) -> float:
    """One breach: seconds from Prometheus showing it to the emulator receiving the rollback."""
    exporter.set_mse()
    _wait(lambda: metrics.value(promql=query), lambda v: v is not None and v > 99.9, "MSE to look healthy")
    out = engine.handle(Request(text="/migrate auto 1,5% every 10m", user="alice", channel=CHANNEL))
    assert out.ok, out.text
    _wait(lambda: engine.store.active_in_channel(CHANNEL).mse_weight, lambda w: w == 1, "the plan's first step")
    emu.arm()
    exporter.set_mse(error_rate=0.3)
    visible = _wait(lambda: metrics.value(promql=query), lambda v: v is not None and v < 99.45, "the breach")
    hit = emu.wait_hit(timeout=interval + 30)
    return hit - visible


def run(intervals: list[int], samples: int) -> list[dict[str, float]]:
    rows = []
    exporter = GatewayExporter()
    with running_prometheus([exporter.address]) as url, redis_server() as redis_url, WatchedEmulator() as emu:
        for interval in intervals:
            store = RedisStore.from_url(f"{redis_url}/{intervals.index(interval)}")
            world = build_world("alibaba", {"alibaba": emu.config(), "clusters": {"demo-cluster": {"sim_seed": ""}}})
            world.metrics = metrics = PrometheusMetrics(url)
            cfg = parse([{"name": "success", "source": "prometheus", "query": "success_rate", "min": "nginx - 0.5",
                          "window": "5s"}], {"interval": f"{interval}s", "failures_before_rollback": 1})
            engine = Engine(store=store, world=world, policy=Policy(dwell_seconds=0, gates=GateConfig(
                cfg.gates, cfg.analysis)))
            for text in ("start cluster=demo-cluster gateway=gw-demo", "check",
                         "method slb service=ingress-nginx/nginx-ingress-lb", "switch"):
                assert engine.handle(Request(text=f"/migrate {text}", user="alice", channel=CHANNEL)).ok, text
            stop = threading.Event()
            ticker = threading.Thread(target=_tick, args=(engine, stop), daemon=True)
            ticker.start()
            try:
                got = [sample(engine, metrics, exporter, emu, cfg.gates[0].promql("mse"), interval=interval)
                       for _ in range(samples)]
            finally:
                stop.set()
                ticker.join(5)
            rows.append({"interval": interval, "n": len(got), "p50": percentile(got, 50), "max": max(got)})
            print(f"interval {interval}s: {', '.join(f'{g:.2f}' for g in got)} s", file=sys.stderr)
    exporter.close()
    return rows


def _tick(engine: Engine, stop: threading.Event) -> None:
    while not stop.is_set():
        engine.tick_plans()
        stop.wait(TICK_S)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--intervals", default="5,10", help="gate intervals to measure, in seconds")
    parser.add_argument("--samples", type=int, default=3)
    args = parser.parse_args(argv)
    rows = run([int(i) for i in args.intervals.split(",")], args.samples)
    print(f"{'gate interval':>13} | {'n':>2} | {'breach -> rollback p50':>22} | {'max':>7} | {'target':>9} | result")
    for r in rows:
        target = r["interval"] + 2
        print(f"{r['interval']:>12.0f}s | {r['n']:>2.0f} | {r['p50']:>21.2f}s | {r['max']:>6.2f}s | "
              f"< {target:>5.0f} s | {'met' if r['max'] < target else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
