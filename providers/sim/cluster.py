"""The simulated cluster: Ingresses, the NGINX Service, and the cloud controller's reactions to it.

The controller (CCM) re-spreads the NGINX backends' weights when the Service's `-weight`
annotation changes and drops them when the Service is deleted, as the real one does on a
reused SLB; with `ccm_slb` it does so against another SLB (a rehearsal on real or emulated
cloud APIs).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from commands.ccm import LB_ID_LABEL, LB_PREFIX
from commands.errors import ProviderError
from commands.ports import ClusterInfo, Ingress, LoadBalancerPort, Service, ServicePort
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
