"""A whole simulated world behind the same ports as the real one.

It behaves as the real parts do where the migration depends on it: the gateway's routes come
from the Ingresses it listens to (`gateway.py`); the SLB splits traffic by the weights in its
vServer group and DNS by record weights (`network.py`); the cluster's controller reacts to the
NGINX Service's annotations (`cluster.py`). All of it is one state (`state.py`).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from commands.traffic import mse_share
from providers.sim.cluster import SimCluster
from providers.sim.gateway import SimGateway
from providers.sim.metrics import SimMetrics
from providers.sim.network import SimDns, SimLoadBalancer, SimResolver, is_weighted
from providers.sim.state import SimState

__all__ = ["SimCluster", "SimDns", "SimGateway", "SimLoadBalancer", "SimWorld"]


class SimWorld:
    """The simulated world the demo, the console, rehearsals and tests run against."""

    def __init__(self, state: SimState, *, controller_configmap: str = "") -> None:
        self.state = state
        self.controller_configmap = controller_configmap  # "" = found from the controller Deployment
        self.gateway = SimGateway(state)
        self.slb = SimLoadBalancer(state)
        self.dns = SimDns(state)
        self.resolver = SimResolver(state)
        self.metrics = SimMetrics(state)

    @classmethod
    def from_seed(cls, seed: str | Path | None = None, *, path: str | Path | None = None,
                  controller_configmap: str = "") -> SimWorld:
        return cls(SimState.from_seed(seed, path=path), controller_configmap=controller_configmap)

    def cluster(self, cluster_id: str) -> SimCluster:
        return SimCluster(self.state, cluster_id)

    # ---- what an observer of the real world would measure ---------------------------------

    def slb_split(self, slb_id: str, vgroup_id: str, gateway_id: str) -> float:
        """MSE's share of the connections the SLB sends through `vgroup_id`, in percent."""
        data = self.state.snapshot()
        ips = set(data["gateways"][gateway_id]["node_ips"])
        group = data["slbs"][slb_id]["vgroups"][vgroup_id]
        mse = sum(b["weight"] for b in group if b["ip"] in ips)
        other = sum(b["weight"] for b in group if b["ip"] not in ips)
        return mse_share(mse, other)

    def dns_split(self, domain: str, gateway_id: str, *, line: str = "default") -> float:
        """MSE's share of the IPv4 answers for `domain`: by weight when weighted round robin is on,
        else every enabled A record alike (Alibaba Cloud DNS then returns them all)."""
        data = self.state.snapshot()
        target = data["gateways"][gateway_id]["slb_address"]
        on = is_weighted(data, domain, "A", line)
        live = [r for r in data["dns"]["records"].values()
                if r["domain"] == domain and r["enabled"] and r["type"] == "A" and r.get("line", "default") == line]
        mse = sum(r["weight"] if on else 1 for r in live if r["value"] == target)
        other = sum(r["weight"] if on else 1 for r in live if r["value"] != target)
        return mse_share(mse, other)

    def controller_events(self, cluster: str, namespace: str, name: str) -> list[str]:
        """Warnings the simulated cloud controller left on a Service (what it refused)."""
        services = self.state.snapshot()["clusters"][cluster]["services"]
        return list(services.get(f"{namespace}/{name}", {}).get("events", []))

    def set_metrics(self, side: str, *, success_rate: float | None = None, p99_latency: float | None = None,
                    down: bool | None = None) -> None:
        """What Prometheus would say about `mse` or `nginx` from now on (or that it is `down`)."""
        with self.state._mutate() as data:
            metrics = data.setdefault("metrics", {})
            if down is not None:
                metrics["down"] = down
            values = metrics.setdefault(side, {})
            for key, value in (("success_rate", success_rate), ("p99_latency", p99_latency)):
                if value is not None:
                    values[key] = value

    def set_health(self, server_id: str, port: int, status: str) -> None:
        """A backend's health check result from now on (`normal`, `abnormal`)."""
        with self.state._mutate() as data:
            data.setdefault("health", {})[f"{server_id}:{port}"] = status

    def raw(self) -> dict[str, Any]:
        return copy.deepcopy(self.state.snapshot())
