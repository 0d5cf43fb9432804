"""The two gateways' request metrics in the simulated world, behind `MetricsPort`.

A query is answered from the world's state by what it asks about: Envoy's metric names are
MSE's (Higress), `nginx_ingress_controller_*` NGINX's; a `histogram_quantile` is the p99
latency in milliseconds, anything else the success rate in percent. Tests and the demo inject
errors or latency on either side (`SimWorld.set_metrics`), or take Prometheus away.
"""

from __future__ import annotations

from commands.errors import ProviderError
from providers.sim.state import SimState

HEALTHY = {"success_rate": 99.95, "p99_latency": 180.0}


class SimMetrics:
    def __init__(self, state: SimState) -> None:
        self.state = state

    def value(self, *, promql: str) -> float | None:
        with self.state.op("prometheus.query") as data:
            metrics = data.setdefault("metrics", {})
            if metrics.get("down"):
                raise ProviderError("Prometheus did not answer at the simulated URL", code="PrometheusUnreachable",
                                    temporary=True, next_step="check `prometheus.url` and that the server is up")
            if promql.count("(") != promql.count(")"):
                raise ProviderError(f"Prometheus refused the query: parse error in `{promql[:120]}`",
                                    code="PrometheusBadQuery", next_step="fix the gate's query in the config")
            side = "mse" if "envoy_" in promql else "nginx" if "nginx_ingress_controller" in promql else ""
            if not side:
                return None  # a query about anything else matches no series here
            kind = "p99_latency" if "histogram_quantile" in promql else "success_rate"
            return float(metrics.get(side, {}).get(kind, HEALTHY[kind]))
