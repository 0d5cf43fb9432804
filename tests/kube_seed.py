"""The simulated world's clusters as Kubernetes objects, so one scenario runs against both adapters."""

from __future__ import annotations

from typing import Any

from tests.kube_api_server import (
    KubeApiServer,
    config_map_json,
    deployment_json,
    ingress_class_json,
    ingress_json,
    service_json,
)


def seed_from_sim(api: KubeApiServer, cluster: dict[str, Any]) -> None:
    """Load one cluster of a SimWorld seed (`SimWorld.raw()["clusters"][id]`) into the test API server."""
    default = cluster.get("default_ingress_class", "")
    names = {default} | {i.get("ingress_class") for i in cluster["ingresses"] if i.get("ingress_class")}
    for name in sorted(n for n in names if n):
        api.add_ingress_class(ingress_class_json(name, default=name == default))
    for raw in cluster["ingresses"]:
        rules: dict[str, list[str]] = {}
        services = set()
        for rule in raw.get("rules", []):
            rules.setdefault(rule["host"], []).extend(p.get("path", "/") for p in rule.get("paths", []))
            services |= {p["service"] for p in rule.get("paths", []) if p.get("service")}
        api.add_ingress(ingress_json(raw["namespace"], raw["name"], ingress_class=raw.get("ingress_class"),
                                     annotations=raw.get("annotations"), rules=rules, tls=raw.get("tls"),
                                     addresses=raw.get("addresses"), service=min(services) if services else "web"))
    for key, data in (cluster.get("config_maps") or {}).items():
        api.add_config_map(config_map_json(*key.split("/", 1), {str(k): str(v) for k, v in data.items()}))
    for key, dep in (cluster.get("deployments") or {}).items():
        extra = {"image": dep["image"]} if dep.get("image") else {}
        api.add_deployment(deployment_json(*key.split("/", 1), labels=dep.get("labels"), args=dep.get("args"), **extra))
    for key, svc in cluster["services"].items():
        namespace, name = key.split("/")
        ports = [{"name": p.get("name", ""), "port": p["port"], "protocol": p.get("protocol", "TCP"),
                  "targetPort": p["port"], "nodePort": p.get("node_port", 0)} for p in svc.get("ports", [])]
        api.add_service(service_json(namespace, name, annotations=svc.get("annotations"), labels=svc.get("labels"),
                                     ports=ports, load_balancer_ip=svc.get("load_balancer_ip", "")))
