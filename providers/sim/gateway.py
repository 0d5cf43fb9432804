"""The simulated MSE gateway: which clusters it listens to, the routes it parsed, the SLBs it joined."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from commands.errors import ProviderError
from commands.ports import Gateway, GatewayJoin, IngressSource, Route
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
            return [IngressSource(s["id"], cluster, s["ingress_class"], bool(s.get("enable_ingress", True)),
                                  s.get("enable_status", False))
                    for cluster, s in self._gw(data, gateway_id)["sources"].items()]

    def listen(self, *, gateway_id: str, cluster: str, ingress_class: str) -> IngressSource:
        with self.state.op("mse.listen") as data:
            gw = self._gw(data, gateway_id)
            src = gw["sources"].get(cluster)
            if src and not src.get("enable_ingress", True):
                # Listening off is no conflict (the FAQ: "has Ingress listening enabled"): switch it on with our class.
                src.update(ingress_class=ingress_class, enable_ingress=True, enable_status=False)
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

    def join_slb(self, *, gateway_id: str, slb_id: str, groups: Sequence[GatewayJoin]) -> None:
        """AddGatewaySlb: every node into every group, on the group's gateway port, at weight 0.

        One association per SLB: a second AddGatewaySlb for a bound SLB is refused, as MSE does
        (`SlbAlreadyBound`); joining what is already joined is a no-op.
        """
        with self.state.op("mse.join_slb") as data:
            gw = self._gw(data, gateway_id)
            slb = data["slbs"].get(slb_id)
            for g in groups:
                if slb is None or g.vgroup_id not in slb["vgroups"]:
                    raise ProviderError(f"SLB {slb_id} has no vServer group {g.vgroup_id}", code="InvalidParameter",
                                        next_step="choose the listeners again with `/migrate method slb`")
            wanted = [{"vgroup_id": g.vgroup_id, "port": g.port, "protocol": g.protocol} for g in groups]
            have = gw["slbs"].get(slb_id)
            if have is not None:
                if all(w in have for w in wanted):
                    return
                raise ProviderError(f"SLB {slb_id} is already bound to {gateway_id} with other groups",
                                    code="SlbAlreadyBound", temporary=False,
                                    next_step="the bot leaves and joins again; if this persists, remove the "
                                              "association in the MSE console")
            for w in wanted:
                _add_nodes(data["slbs"][slb_id]["vgroups"][w["vgroup_id"]], gateway_id, gw["node_ips"], w["port"], 0)
            gw["slbs"][slb_id] = wanted

    def joined(self, *, gateway_id: str, slb_id: str) -> list[GatewayJoin]:
        with self.state.op("mse.joined") as data:
            have = self._gw(data, gateway_id)["slbs"].get(slb_id) or []
            return [GatewayJoin(w["vgroup_id"], int(w["port"]), w["protocol"]) for w in have]

    def leave_slb(self, *, gateway_id: str, slb_id: str) -> None:
        with self.state.op("mse.leave_slb") as data:
            gw = self._gw(data, gateway_id)
            have = gw["slbs"].pop(slb_id, None) or []
            slb = data["slbs"].get(slb_id)
            for w in have:
                if slb and w["vgroup_id"] in slb["vgroups"]:
                    slb["vgroups"][w["vgroup_id"]] = [b for b in slb["vgroups"][w["vgroup_id"]]
                                                      if not _is_node_of(b, gateway_id)]

    # ---- test and demo controls ----------------------------------------------------------------

    def add_node(self, *, gateway_id: str, ip: str) -> None:
        """The gateway scales out: a new node appears in every group it joined, taking traffic at
        the weight its siblings have there (MSE spreads its service weight over its nodes)."""
        with self.state.op("mse.scale_out") as data:
            gw = self._gw(data, gateway_id)
            if ip not in gw["node_ips"]:
                gw["node_ips"].append(ip)
            for slb_id, have in gw["slbs"].items():
                for w in have:
                    group = data["slbs"][slb_id]["vgroups"][w["vgroup_id"]]
                    weight = max((int(b["weight"]) for b in group if _is_node_of(b, gateway_id)), default=0)
                    _add_nodes(group, gateway_id, gw["node_ips"], int(w["port"]), weight)


def _is_node_of(backend: dict[str, Any], gateway_id: str) -> bool:
    return str(backend.get("description", "")) == f"mse/{gateway_id}"


def _add_nodes(group: list[dict[str, Any]], gateway_id: str, node_ips: list[str], port: int, weight: int) -> None:
    """Each node's ENI joins on `port`; one ENI may already sit in the group on another port."""
    have = {(b["ip"], int(b["port"])) for b in group}
    for i, ip in enumerate(node_ips, start=1):
        if (ip, port) not in have:
            group.append({"server_id": f"eni-{gateway_id}-{i}", "ip": ip, "port": port, "weight": weight,
                          "type": "eni", "description": f"mse/{gateway_id}"})
