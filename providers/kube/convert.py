"""Kubernetes JSON to the port's dataclasses, and which Ingresses belong to the migrated class.

The adapter reads raw JSON rather than the client's typed models: the models cost most of
the time of a 10,000-Ingress scan, and a model round trip drops fields the client does not
know, which a read-modify-write of a Service must never do.
"""

from __future__ import annotations

from typing import Any

from commands.ports import ConfigMap, Deployment, Ingress, Service, ServicePort

LEGACY_CLASS = "kubernetes.io/ingress.class"
DEFAULT_CLASS = "ingressclass.kubernetes.io/is-default-class"


def ingress(raw: dict[str, Any]) -> Ingress:
    meta, spec = raw.get("metadata") or {}, raw.get("spec") or {}
    annotations = dict(meta.get("annotations") or {})
    cls = spec.get("ingressClassName") or ""
    source = "spec"
    if not cls:
        cls = annotations.get(LEGACY_CLASS, "")
        source = "annotation" if cls else "default"
    hosts: list[str] = []
    paths: list[tuple[str, str, str]] = []
    backends: list[str] = []
    for rule in spec.get("rules") or []:
        host = rule.get("host") or ""
        hosts.append(host)
        for p in (rule.get("http") or {}).get("paths") or []:
            paths.append((host, p.get("path") or "/", p.get("pathType") or "ImplementationSpecific"))
            backends.append(((p.get("backend") or {}).get("service") or {}).get("name") or "")
    tls_hosts = tuple(h for t in spec.get("tls") or [] for h in t.get("hosts") or [])
    published = ((raw.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    addresses = tuple(str(p.get("ip") or p.get("hostname")) for p in published if p.get("ip") or p.get("hostname"))
    return Ingress(meta.get("namespace", ""), meta.get("name", ""), cls, annotations, tuple(hosts), tuple(paths),
                   tls_hosts, source, addresses, tuple(backends))


def matches_class(ing: Ingress, ingress_class: str, default_class: str) -> bool:
    """An explicit class must match; an Ingress with none belongs to the cluster's default class."""
    if ing.ingress_class:
        return ing.ingress_class == ingress_class
    return bool(default_class) and default_class == ingress_class


def default_class(classes: list[dict[str, Any]]) -> str:
    """The IngressClass marked default; none when zero or several are (Kubernetes then assigns none)."""
    marked = sorted(c["metadata"]["name"] for c in classes
                    if ((c.get("metadata") or {}).get("annotations") or {}).get(DEFAULT_CLASS) == "true")
    return marked[0] if len(marked) == 1 else ""


def service(raw: dict[str, Any]) -> Service:
    meta, spec = raw.get("metadata") or {}, raw.get("spec") or {}
    ports = tuple(ServicePort(int(p["port"]), p.get("protocol", "TCP"), p.get("name", ""), int(p.get("nodePort") or 0),
                              str(p.get("targetPort", ""))) for p in spec.get("ports") or [])
    lb = ((raw.get("status") or {}).get("loadBalancer") or {}).get("ingress") or [{}]
    return Service(meta.get("namespace", ""), meta.get("name", ""), dict(meta.get("annotations") or {}),
                   dict(meta.get("labels") or {}), ports, str(meta.get("resourceVersion", "")),
                   lb[0].get("ip") or lb[0].get("hostname") or "")


def config_map(raw: dict[str, Any]) -> ConfigMap:
    meta = raw.get("metadata") or {}
    return ConfigMap(meta.get("namespace", ""), meta.get("name", ""),
                     {str(k): str(v) for k, v in (raw.get("data") or {}).items()})


def deployment(raw: dict[str, Any]) -> Deployment:
    """Every container's command and args, in order: `--configmap` may sit in either."""
    meta = raw.get("metadata") or {}
    pod = ((raw.get("spec") or {}).get("template") or {}).get("spec") or {}
    args = tuple(str(a) for c in pod.get("containers") or [] for a in [*(c.get("command") or []),
                                                                        *(c.get("args") or [])])
    images = tuple(str(c.get("image") or "") for c in pod.get("containers") or [])
    return Deployment(meta.get("namespace", ""), meta.get("name", ""), args, images)
