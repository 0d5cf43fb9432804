"""A whole simulated world behind the same ports as the real one.

It behaves as the real parts do where the migration depends on it: the gateway's routes come
from the Ingresses it listens to; the SLB splits traffic by the weights in its vServer group;
the cloud controller (CCM) re-spreads the NGINX backends' weights when the Service's `-weight`
annotation changes and drops them when the Service is deleted; DNS splits by record weights.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from commands.ccm import LB_ID_LABEL, LB_PREFIX
from commands.errors import ProviderError
from commands.ports import (
    Backend,
    ClusterInfo,
    DnsRecord,
    Gateway,
    Ingress,
    IngressSource,
    Listener,
    LoadBalancer,
    LoadBalancerPort,
    Route,
    Service,
    ServicePort,
)
from commands.traffic import mse_share, spread
from providers.sim.state import SimState

PAGE = 500


def _ingress(raw: dict[str, Any], default_class: str) -> Ingress:
    cls = raw.get("ingress_class") or raw.get("annotations", {}).get("kubernetes.io/ingress.class", "")
    source = "spec" if raw.get("ingress_class") else ("annotation" if cls else "default")
    rules = raw.get("rules", [])
    paths = tuple((r["host"], p.get("path", "/"), p.get("pathType", "Prefix"))
                  for r in rules for p in r.get("paths", []))
    return Ingress(
        namespace=raw["namespace"], name=raw["name"], ingress_class=cls or "",
        annotations=dict(raw.get("annotations") or {}), hosts=tuple(r["host"] for r in rules),
        paths=paths, tls_hosts=tuple(raw.get("tls") or ()), class_source=source,
    )


def matches_class(ing: Ingress, ingress_class: str, default_class: str) -> bool:
    if ing.ingress_class:
        return ing.ingress_class == ingress_class
    return default_class == ingress_class


class SimCluster:
    """A simulated cluster. With `ccm_slb` it plays the cloud controller against another SLB (a
    rehearsal on real or emulated cloud APIs), as the real controller would."""

    def __init__(self, state: SimState, cluster_id: str, *, ccm_slb: LoadBalancerPort | None = None) -> None:
        self.state, self.id, self.ccm_slb = state, cluster_id, ccm_slb

    def _cluster(self, data: dict[str, Any]) -> dict[str, Any]:
        try:
            return data["clusters"][self.id]  # type: ignore[no-any-return]
        except KeyError:
            raise ProviderError(f"cluster {self.id} is not in the simulated world", code="ClusterNotFound",
                                next_step="use a cluster id from the seed (demo-cluster)") from None

    def describe(self) -> ClusterInfo:
        with self.state.op("k8s.describe") as data:
            c = self._cluster(data)
            return ClusterInfo(self.id, c.get("vpc_id", ""), c.get("default_ingress_class", ""))

    def list_ingresses(self, *, ingress_class: str) -> Iterator[Ingress]:
        start = 0
        while True:
            with self.state.op("k8s.list_ingresses") as data:
                c = self._cluster(data)
                page = c["ingresses"][start:start + PAGE]
                default = c.get("default_ingress_class", "")
            for raw in page:
                ing = _ingress(raw, default)
                if matches_class(ing, ingress_class, default):
                    yield ing
            if len(page) < PAGE:
                return
            start += PAGE

    def get_service(self, *, namespace: str, name: str) -> Service | None:
        with self.state.op("k8s.get_service") as data:
            raw = self._cluster(data)["services"].get(f"{namespace}/{name}")
            return _service(namespace, name, raw) if raw else None

    def replace_service_annotations(self, *, namespace: str, name: str, annotations: Mapping[str, str]) -> Service:
        with self.state.op("k8s.replace_service_annotations") as data:
            raw = self._require(data, namespace, name)
            if raw["annotations"] != dict(annotations):
                raw["annotations"] = dict(annotations)
                raw["resource_version"] += 1
                _ccm_reconcile(data, self.id, namespace, name)
            svc = _service(namespace, name, raw)
        self._external_ccm(svc.annotations)
        return svc

    def patch_service_annotations(self, *, namespace: str, name: str, changes: Mapping[str, str | None]) -> Service:
        with self.state.op("k8s.patch_service_annotations") as data:
            raw = self._require(data, namespace, name)
            before = dict(raw["annotations"])
            for key, value in changes.items():
                if value is None:
                    raw["annotations"].pop(key, None)
                else:
                    raw["annotations"][key] = value
            if raw["annotations"] != before:
                raw["resource_version"] += 1
                _ccm_reconcile(data, self.id, namespace, name)
            svc = _service(namespace, name, raw)
        self._external_ccm(svc.annotations)
        return svc

    def delete_service(self, *, namespace: str, name: str) -> bool:
        with self.state.op("k8s.delete_service") as data:
            raw = self._cluster(data)["services"].pop(f"{namespace}/{name}", None)
            if raw is None:
                return False
            _ccm_forget(data, raw)
        self._external_ccm({**raw["annotations"], LB_PREFIX + "weight": "0"})
        return True

    def _external_ccm(self, annotations: Mapping[str, str]) -> None:
        """Spread the Service's `-weight` over its NGINX backends in the other SLB's vServer group."""
        if self.ccm_slb is None or not annotations.get(LB_PREFIX + "vgroup-port"):
            return
        try:
            weight = int(annotations.get(LB_PREFIX + "weight", "100"))
        except ValueError:
            return
        for item in annotations[LB_PREFIX + "vgroup-port"].split(","):
            vgroup_id = item.split(":")[0].strip()
            nginx = [b for b in self.ccm_slb.backends(vgroup_id=vgroup_id) if b.description.startswith("k8s/")]
            shares = [0] * len(nginx) if weight == 0 else [max(1, w) for w in spread(weight, len(nginx))]
            changed = {b.server_id: w for b, w in zip(nginx, shares, strict=True) if b.weight != w}
            if changed:
                self.ccm_slb.set_weights(vgroup_id=vgroup_id, weights=changed)

    def _require(self, data: dict[str, Any], namespace: str, name: str) -> dict[str, Any]:
        raw = self._cluster(data)["services"].get(f"{namespace}/{name}")
        if raw is None:
            raise ProviderError(f"Service {namespace}/{name} does not exist", code="NotFound",
                                next_step="check the namespace and name of the NGINX Ingress Service")
        return raw  # type: ignore[no-any-return]


def _service(namespace: str, name: str, raw: dict[str, Any]) -> Service:
    ports = tuple(ServicePort(p["port"], p.get("protocol", "TCP"), p.get("name", ""), p.get("node_port", 0))
                  for p in raw.get("ports", []))
    return Service(namespace, name, dict(raw["annotations"]), dict(raw["labels"]), ports,
                   str(raw["resource_version"]), raw.get("load_balancer_ip", ""))


def _is_nginx_backend(backend: dict[str, Any]) -> bool:
    return str(backend.get("description", "")).startswith("k8s/")


def _ccm_reconcile(data: dict[str, Any], cluster: str, namespace: str, name: str) -> None:
    """What the cloud controller does with the Service's annotations on a reused SLB.

    Only with `-id` and `-vgroup-port` does `-weight` apply: the NGINX backends share it.
    """
    ann = data["clusters"][cluster]["services"][f"{namespace}/{name}"]["annotations"]
    slb_id = ann.get(LB_PREFIX + "id")
    vgroup_port = ann.get(LB_PREFIX + "vgroup-port", "")
    if not slb_id or not vgroup_port or slb_id not in data["slbs"]:
        return
    try:
        weight = int(ann.get(LB_PREFIX + "weight", "100"))
    except ValueError:
        return
    for item in vgroup_port.split(","):
        vgroup_id = item.split(":")[0].strip()
        backends = [b for b in data["slbs"][slb_id]["vgroups"].get(vgroup_id, []) if _is_nginx_backend(b)]
        shares = [0] * len(backends) if weight == 0 else [max(1, w) for w in spread(weight, len(backends))]
        for b, w in zip(backends, shares, strict=True):
            b["weight"] = w


def _ccm_forget(data: dict[str, Any], raw: dict[str, Any]) -> None:
    """A deleted Service's NGINX backends leave every vServer group of its SLB."""
    slb_id = raw["annotations"].get(LB_PREFIX + "id") or raw["labels"].get(LB_ID_LABEL)
    slb = data["slbs"].get(slb_id or "")
    if not slb:
        return
    for vgroup_id, backends in slb["vgroups"].items():
        slb["vgroups"][vgroup_id] = [b for b in backends if not _is_nginx_backend(b)]


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
                    ing = _ingress(raw, default)
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


class SimLoadBalancer:
    def __init__(self, state: SimState) -> None:
        self.state = state

    def _slb(self, data: dict[str, Any], slb_id: str) -> dict[str, Any]:
        slb = data["slbs"].get(slb_id)
        if slb is None:
            raise ProviderError(f"SLB {slb_id} does not exist", code="InvalidLoadBalancerId.NotFound",
                                next_step="check the SLB id (lb-...) behind the NGINX Service")
        return slb  # type: ignore[no-any-return]

    def describe(self, *, slb_id: str) -> LoadBalancer | None:
        with self.state.op("slb.describe") as data:
            slb = data["slbs"].get(slb_id)
            if slb is None:
                return None
            listeners = tuple(Listener(int(li["port"]), li["protocol"].upper(), li.get("scheduler", "wrr"),
                                       bool(li.get("acl_on")), li.get("vgroup_id", "")) for li in slb["listeners"])
            return LoadBalancer(slb_id, slb["address"], slb.get("vpc_id", ""), listeners, dict(slb.get("tags", {})))

    def set_tags(self, *, slb_id: str, tags: Mapping[str, str], remove: Iterable[str] = ()) -> None:
        with self.state.op("slb.set_tags") as data:
            slb = self._slb(data, slb_id)
            current = slb.setdefault("tags", {})
            for key in remove:
                current.pop(key, None)
            current.update(tags)

    def set_scheduler(self, *, slb_id: str, port: int, protocol: str, scheduler: str) -> None:
        with self.state.op("slb.set_scheduler") as data:
            for li in self._slb(data, slb_id)["listeners"]:
                if int(li["port"]) == port and li["protocol"].upper() == protocol.upper():
                    li["scheduler"] = scheduler
                    return
            raise ProviderError(f"SLB {slb_id} has no listener {port}/{protocol}", code="InvalidParameter",
                                next_step="choose the listener again with `/migrate method slb`")

    def backends(self, *, vgroup_id: str) -> list[Backend]:
        with self.state.op("slb.backends") as data:
            return [Backend(b["server_id"], b["ip"], int(b["port"]), int(b["weight"]), b.get("type", "ecs"),
                            b.get("description", "")) for b in _vgroup(data, vgroup_id)]

    def set_weights(self, *, vgroup_id: str, weights: Mapping[str, int]) -> None:
        items = list(weights.items())
        for start in range(0, len(items), 20):  # the real API takes at most 20 servers a call
            with self.state.op("slb.set_weights") as data:
                group = {b["server_id"]: b for b in _vgroup(data, vgroup_id)}
                for server_id, weight in items[start:start + 20]:
                    if server_id not in group:
                        raise ProviderError(f"backend {server_id} is not in vServer group {vgroup_id}",
                                            code="BackendServer.NotExist")
                    group[server_id]["weight"] = int(weight)


def _vgroup(data: dict[str, Any], vgroup_id: str) -> list[dict[str, Any]]:
    for slb in data["slbs"].values():
        if vgroup_id in slb["vgroups"]:
            return slb["vgroups"][vgroup_id]  # type: ignore[no-any-return]
    raise ProviderError(f"vServer group {vgroup_id} does not exist", code="VServerGroupId.NotFound")


class SimDns:
    def __init__(self, state: SimState) -> None:
        self.state = state

    def zone_for(self, *, domain: str) -> str | None:
        with self.state.op("dns.zone_for") as data:
            return _zone(data, domain)

    def records(self, *, domain: str) -> list[DnsRecord]:
        with self.state.op("dns.records") as data:
            return [_record(r) for r in data["dns"]["records"].values() if r["domain"] == domain]

    def add_record(self, *, domain: str, type: str, value: str, enabled: bool) -> DnsRecord:
        with self.state.op("dns.add_record") as data:
            if not _zone(data, domain):
                raise ProviderError(f"{domain} is not hosted in this DNS account", code="InvalidDomainName.NoExist",
                                    temporary=False, next_step="create the record at your DNS provider by hand")
            for r in data["dns"]["records"].values():
                if r["domain"] == domain and r["value"] == value and r["type"] == type:
                    return _record(r)
            rid = f"rec-{data['dns']['next_id']}"
            data["dns"]["next_id"] += 1
            rec = {"id": rid, "domain": domain, "type": type, "value": value, "weight": 1, "enabled": enabled,
                   "ttl": 600}
            data["dns"]["records"][rid] = rec
            return _record(rec)

    def set_weighted(self, *, domain: str, on: bool) -> None:
        with self.state.op("dns.set_weighted") as data:
            data["dns"]["weighted"][domain] = on

    def set_weight(self, *, record_id: str, weight: int) -> None:
        if not 1 <= weight <= 100:
            raise ProviderError("DNS record weights are 1..100", code="InvalidParameter.Weight")
        with self.state.op("dns.set_weight") as data:
            self._rec(data, record_id)["weight"] = weight

    def set_enabled(self, *, record_id: str, enabled: bool) -> None:
        with self.state.op("dns.set_enabled") as data:
            self._rec(data, record_id)["enabled"] = enabled

    def delete_record(self, *, record_id: str) -> None:
        with self.state.op("dns.delete_record") as data:
            data["dns"]["records"].pop(record_id, None)

    def _rec(self, data: dict[str, Any], record_id: str) -> dict[str, Any]:
        rec = data["dns"]["records"].get(record_id)
        if rec is None:
            raise ProviderError(f"DNS record {record_id} does not exist", code="DomainRecordNotBelongToUser")
        return rec  # type: ignore[no-any-return]


def _zone(data: dict[str, Any], domain: str) -> str | None:
    for zone in data["dns"]["zones"]:
        if domain == zone or domain.endswith("." + zone):
            return str(zone)
    return None


def _record(r: dict[str, Any]) -> DnsRecord:
    return DnsRecord(r["id"], r["domain"], r["type"], r["value"], int(r["weight"]), bool(r["enabled"]),
                     int(r.get("ttl", 600)))


class SimWorld:
    """The simulated world the demo, the console, rehearsals and tests run against."""

    def __init__(self, state: SimState) -> None:
        self.state = state
        self.gateway = SimGateway(state)
        self.slb = SimLoadBalancer(state)
        self.dns = SimDns(state)

    @classmethod
    def from_seed(cls, seed: str | Path | None = None, *, path: str | Path | None = None) -> SimWorld:
        return cls(SimState.from_seed(seed, path=path))

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

    def dns_split(self, domain: str, gateway_id: str) -> float:
        data = self.state.snapshot()
        target = data["gateways"][gateway_id]["slb_address"]
        live = [r for r in data["dns"]["records"].values() if r["domain"] == domain and r["enabled"]]
        mse = sum(r["weight"] for r in live if r["value"] == target)
        other = sum(r["weight"] for r in live if r["value"] != target)
        return mse_share(mse, other)

    def raw(self) -> dict[str, Any]:
        return copy.deepcopy(self.state.snapshot())
