"""The simulated cluster: Ingresses, the NGINX Service, and the cloud controller's reactions to it.

The controller (CCM) re-spreads the NGINX backends' weights when the Service's `-weight`
annotation changes and drops them when the Service is deleted, as the real one does on a
reused SLB; with `ccm_slb` it does so against another SLB (a rehearsal on real or emulated
cloud APIs).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

from commands.ccm import CCM_TAGS, ID, LB_ID_LABEL, VGROUP_PORT, WEIGHT, is_ccm_name, serves
from commands.errors import ProviderError
from commands.ports import (
    Backend,
    ClusterInfo,
    ConfigMap,
    Deployment,
    Ingress,
    LoadBalancerPort,
    Service,
    ServicePort,
    VServerGroup,
)
from commands.traffic import spread
from providers.sim.state import SimState

PAGE = 500


def ingress_from_seed(raw: dict[str, Any], default_class: str) -> Ingress:
    cls = raw.get("ingress_class") or raw.get("annotations", {}).get("kubernetes.io/ingress.class", "")
    source = "spec" if raw.get("ingress_class") else ("annotation" if cls else "default")
    rules = raw.get("rules", [])
    paths = tuple((r["host"], p.get("path", "/"), p.get("pathType", "Prefix"))
                  for r in rules for p in r.get("paths", []))
    return Ingress(
        namespace=raw["namespace"], name=raw["name"], ingress_class=cls or "",
        annotations=dict(raw.get("annotations") or {}), hosts=tuple(r["host"] for r in rules),
        paths=paths, tls_hosts=tuple(raw.get("tls") or ()), class_source=source,
        addresses=tuple(raw.get("addresses") or ()),
        backends=tuple(p.get("service", "") for r in rules for p in r.get("paths", [])),
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
            known = ", ".join(sorted(data.get("clusters", {}))) or "none"
            raise ProviderError(f"cluster {self.id} is not in the simulated world", code="ClusterNotFound",
                                next_step=f"use a cluster id from the seed ({known})") from None

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
                ing = ingress_from_seed(raw, default)
                if matches_class(ing, ingress_class, default):
                    yield ing
            if len(page) < PAGE:
                return
            start += PAGE

    def get_service(self, *, namespace: str, name: str) -> Service | None:
        with self.state.op("k8s.get_service") as data:
            raw = self._cluster(data)["services"].get(f"{namespace}/{name}")
            return _service(namespace, name, raw) if raw else None

    def get_config_map(self, *, namespace: str, name: str) -> ConfigMap | None:
        with self.state.op("k8s.get_config_map") as data:
            raw = self._cluster(data).get("config_maps", {}).get(f"{namespace}/{name}")
            return ConfigMap(namespace, name, {str(k): str(v) for k, v in raw.items()}) if raw is not None else None

    def list_deployments(self, *, label_selector: str) -> list[Deployment]:
        """Equality selectors only (`a=b,c=d`), which is all the route check sends."""
        wanted = dict(term.split("=", 1) for term in label_selector.split(",") if "=" in term)
        with self.state.op("k8s.list_deployments") as data:
            raw = self._cluster(data).get("deployments", {})
            return [Deployment(*key.split("/", 1), tuple(d.get("args", [])), tuple(filter(None, [d.get("image")])))
                    for key, d in sorted(raw.items())
                    if all((d.get("labels") or {}).get(k) == v for k, v in wanted.items())]

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
        self._external_ccm(namespace, name, svc.annotations)
        return svc

    def delete_service(self, *, namespace: str, name: str) -> bool:
        with self.state.op("k8s.delete_service") as data:
            raw = self._cluster(data)["services"].pop(f"{namespace}/{name}", None)
            if raw is None:
                return False
            _ccm_forget(data, raw, namespace, name)
        self._external_ccm(namespace, name, {**raw["annotations"], WEIGHT: "0"})
        return True

    def _external_ccm(self, namespace: str, name: str, annotations: Mapping[str, str]) -> None:
        """The controller's reaction against the other SLB (emulated or real cloud APIs)."""
        if self.ccm_slb is None or not annotations.get(VGROUP_PORT) or not annotations.get(ID):
            return
        lb = self.ccm_slb.describe(slb_id=annotations[ID])
        if lb is None:
            return
        groups = {vg: self.ccm_slb.vgroup(vgroup_id=vg) for vg in vgroup_ids(annotations)}
        refusal, targets = ccm_decision(annotations, lb.tags, groups, namespace=namespace, service=name)
        if refusal:
            with self.state.op("k8s.controller_event") as data:
                _record_event(data, self.id, namespace, name, refusal)
            return
        for vgroup_id, backends in targets.items():
            if backends:
                self.ccm_slb.set_weights(vgroup_id=vgroup_id, backends=backends)

    def _require(self, data: dict[str, Any], namespace: str, name: str) -> dict[str, Any]:
        raw = self._cluster(data)["services"].get(f"{namespace}/{name}")
        if raw is None:
            raise ProviderError(f"Service {namespace}/{name} does not exist", code="NotFound",
                                next_step="check the namespace and name of the NGINX Ingress Service")
        return raw  # type: ignore[no-any-return]


def _service(namespace: str, name: str, raw: dict[str, Any]) -> Service:
    ports = tuple(ServicePort(p["port"], p.get("protocol", "TCP"), p.get("name", ""), p.get("node_port", 0),
                              str(p.get("target_port", "")))
                  for p in raw.get("ports", []))
    return Service(namespace, name, dict(raw["annotations"]), dict(raw["labels"]), ports,
                   str(raw["resource_version"]), raw.get("load_balancer_ip", ""))


def vgroup_ids(annotations: Mapping[str, str]) -> list[str]:
    return [item.split(":")[0].strip() for item in annotations.get(VGROUP_PORT, "").split(",") if item.strip()]


def ccm_decision(annotations: Mapping[str, str], tags: Mapping[str, str], groups: Mapping[str, VServerGroup], *,
                 namespace: str, service: str) -> tuple[str, dict[str, list[Backend]]]:
    """What the ACK cloud controller does with a Service that reuses an SLB: a refusal, or the
    NGINX backends whose weight it changes, per group.

    Rules (cloud-api.md §2 and §4, from the controller's source):
    - `-id` is refused while the SLB carries the tags of an SLB the controller created
      (`isLoadBalancerReusable`: "can not reuse loadbalancer created by kubernetes.");
    - a `-vgroup-port` group named with a controller key is refused (`buildVGroupForServicePort`:
      "cannot reuse a ccm created vgroup");
    - `-weight` is the total of this Service's backends in each group, spread evenly, each at
      least 1; 0 sets them all to 0. Backends whose description is not this Service's key are
      someone else's (MSE's) and never touched (`isBackendManagedByMyService`).
    """
    present = [t for t in CCM_TAGS if t in tags]
    if present:
        return (f"can not reuse loadbalancer created by kubernetes. (tags {', '.join(present)} are still on "
                f"{annotations.get(ID)})", {})
    for vgroup_id, group in groups.items():
        if is_ccm_name(group.name):
            return f"cannot reuse a ccm created vgroup: {vgroup_id} is named {group.name}", {}
    try:
        weight = int(annotations.get(WEIGHT, "100"))
    except ValueError:
        return f"invalid {WEIGHT}: {annotations.get(WEIGHT)!r}", {}
    targets: dict[str, list[Backend]] = {}
    for vgroup_id, group in groups.items():
        nginx = [b for b in group.backends if serves(b.description, namespace=namespace, service=service)]
        shares = [0] * len(nginx) if weight == 0 else [max(1, w) for w in spread(weight, len(nginx))]
        targets[vgroup_id] = [dataclasses.replace(b, weight=w) for b, w in zip(nginx, shares, strict=True)
                              if b.weight != w]
    return "", targets


def _record_event(data: dict[str, Any], cluster: str, namespace: str, name: str, message: str) -> None:
    """A Warning event on the Service, as the controller leaves one (SyncLoadBalancerFailed)."""
    raw = data["clusters"][cluster]["services"].get(f"{namespace}/{name}")
    if raw is not None:
        raw.setdefault("events", []).append(message)
        del raw["events"][:-20]


def _sim_group(slb: dict[str, Any], vgroup_id: str) -> VServerGroup:
    backends = tuple(Backend(b["server_id"], b["ip"], int(b["port"]), int(b["weight"]), b.get("type", "ecs"),
                             b.get("description", "")) for b in slb["vgroups"].get(vgroup_id, []))
    return VServerGroup(vgroup_id, slb["vgroup_names"].get(vgroup_id, vgroup_id), backends)


def _ccm_reconcile(data: dict[str, Any], cluster: str, namespace: str, name: str) -> None:
    """The controller's reaction to the Service's annotations on a reused SLB in this world."""
    ann = data["clusters"][cluster]["services"][f"{namespace}/{name}"]["annotations"]
    slb = data["slbs"].get(ann.get(ID, ""))
    if slb is None or not ann.get(VGROUP_PORT):
        return
    groups = {vg: _sim_group(slb, vg) for vg in vgroup_ids(ann) if vg in slb["vgroups"]}
    refusal, targets = ccm_decision(ann, slb.get("tags", {}), groups, namespace=namespace, service=name)
    if refusal:
        _record_event(data, cluster, namespace, name, refusal)
        return
    for vgroup_id, backends in targets.items():
        by_key = {(b["server_id"], int(b["port"])): b for b in slb["vgroups"][vgroup_id]}
        for want in backends:
            by_key[want.key]["weight"] = want.weight


def _ccm_forget(data: dict[str, Any], raw: dict[str, Any], namespace: str, name: str) -> None:
    """A deleted Service's NGINX backends leave its `-vgroup-port` groups on a reused SLB; an SLB
    the controller created for it is deleted with it."""
    slb_id = raw["annotations"].get(ID) or raw["labels"].get(LB_ID_LABEL)
    slb = data["slbs"].get(slb_id or "")
    if not slb:
        return
    if not raw["annotations"].get(ID):  # an SLB the controller created goes with its Service (cloud-api.md §4 `-id`)
        del data["slbs"][slb_id]
        return
    for vgroup_id in vgroup_ids(raw["annotations"]):
        if vgroup_id in slb["vgroups"]:
            slb["vgroups"][vgroup_id] = [b for b in slb["vgroups"][vgroup_id]
                                         if not serves(str(b.get("description", "")), namespace=namespace,
                                                       service=name)]
