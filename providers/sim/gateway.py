"""The simulated MSE gateway: which clusters it listens to, the routes it parsed, the SLBs it joined."""

from __future__ import annotations

from typing import Any

from commands.errors import ProviderError
from commands.ports import Gateway, IngressSource, Route
from providers.sim.cluster import ingress_from_seed, matches_class
from providers.sim.state import SimState


class SimGateway:
    def __init__(self, state: SimState) -> None:
        self.state = state

    def _gw(self, data: dict[str, Any], gateway_id: str) -> dict[str, Any]:
        gw = data["gateways"].get(gateway_id)
        if gw is None:
            raise ProviderError(f"gateway {gateway_id} does not exist", code="GatewayNotFound",
                                next_step="check the gateway id (gw-...) in the MSE console")
        return gw  # type: ignore[no-any-return]

    def get_gateway(self, *, gateway_id: str) -> Gateway | None:
        with self.state.op("mse.get_gateway") as data:
            gw = data["gateways"].get(gateway_id)
            if gw is None:
                return None
            return Gateway(gateway_id, gw.get("name", gateway_id), gw.get("status", "running"), str(gw["version"]),
                           gw.get("vpc_id", ""), gw.get("slb_address", ""), tuple(gw.get("node_ips", [])))

    def ingress_sources(self, *, gateway_id: str) -> list[IngressSource]:
        with self.state.op("mse.ingress_sources") as data:
            return [IngressSource(s["id"], cluster, s["ingress_class"], True, s.get("enable_status", False))
                    for cluster, s in self._gw(data, gateway_id)["sources"].items()]

    def listen(self, *, gateway_id: str, cluster: str, ingress_class: str) -> IngressSource:
        with self.state.op("mse.listen") as data:
            gw = self._gw(data, gateway_id)
            src = gw["sources"].get(cluster)
            if src and src["ingress_class"] != ingress_class:
                raise ProviderError(
                    f"the gateway already listens to cluster {cluster} with Ingress class {src['ingress_class']}",
                    code="mse.backend.gw.MIGRATE_INGRESS_CLASS_CONFLICT",
                    next_step="use that class, or change the gateway's Ingress listening settings in the MSE console")
            if not src:
                src = {"id": f"src-{cluster}", "ingress_class": ingress_class, "enable_status": False}
                gw["sources"][cluster] = src
            return IngressSource(src["id"], cluster, src["ingress_class"], True, False)

    def unlisten(self, *, gateway_id: str, cluster: str) -> bool:
        with self.state.op("mse.unlisten") as data:
            return self._gw(data, gateway_id)["sources"].pop(cluster, None) is not None

    def routes(self, *, gateway_id: str) -> list[Route]:
        with self.state.op("mse.routes") as data:
            gw = self._gw(data, gateway_id)
            out: list[Route] = []
            for cluster, src in gw["sources"].items():
                c = data["clusters"].get(cluster, {})
                default = c.get("default_ingress_class", "")
                for raw in c.get("ingresses", []):
                    ing = ingress_from_seed(raw, default)
                    if matches_class(ing, src["ingress_class"], default):
                        out += [Route(h, p) for h, p, _ in ing.paths]
            hidden = set(gw.get("missing_routes", []))
            return [r for r in out if f"{r.host}{r.path}" not in hidden]

    def join_slb(self, *, gateway_id: str, slb_id: str, vgroup_id: str, port: int, protocol: str) -> None:
        with self.state.op("mse.join_slb") as data:
            gw = self._gw(data, gateway_id)
            slb = data["slbs"].get(slb_id)
            if slb is None or vgroup_id not in slb["vgroups"]:
                raise ProviderError(f"SLB {slb_id} has no vServer group {vgroup_id}", code="InvalidParameter",
                                    next_step="choose the listener again with `/migrate method slb`")
            group = slb["vgroups"][vgroup_id]
            have = {b["ip"] for b in group}
            for i, ip in enumerate(gw["node_ips"], start=1):
                if ip not in have:
                    group.append({"server_id": f"eni-{gateway_id}-{i}", "ip": ip, "port": 80, "weight": 0,
                                  "type": "eni", "description": f"mse/{gateway_id}"})
            gw["slbs"][slb_id] = vgroup_id

    def leave_slb(self, *, gateway_id: str, slb_id: str) -> None:
        with self.state.op("mse.leave_slb") as data:
            gw = self._gw(data, gateway_id)
            vgroup_id = gw["slbs"].pop(slb_id, None)
            slb = data["slbs"].get(slb_id)
            if slb and vgroup_id in slb["vgroups"]:
                ips = set(gw["node_ips"])
                slb["vgroups"][vgroup_id] = [b for b in slb["vgroups"][vgroup_id] if b["ip"] not in ips]
