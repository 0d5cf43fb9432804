"""One set of ClusterPort scenarios, run against SimCluster and against KubeCluster on the test API server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from commands.errors import ProviderError
from commands.ports import ClusterPort
from providers.kube import KubeCluster
from providers.sim.state import load_seed
from providers.sim.world import SimWorld
from tests.kube_api_server import KubeApiServer
from tests.kube_seed import seed_from_sim

NS, LB = "ingress-nginx", "nginx-ingress-lb"
IMAGE = "registry.k8s.io/ingress-nginx/controller:v1.9.6@sha256:1405cc613bd95b2c6edd8b2a152510ae91c7e62a"


def seed() -> dict[str, Any]:
    """The demo seed plus the class cases it lacks: the legacy annotation and no class at all."""
    data = load_seed()
    data["clusters"]["demo-cluster"]["deployments"]["ingress-nginx/ingress-nginx-controller"]["image"] = IMAGE
    data["clusters"]["demo-cluster"]["deployments"]["tools/other-app"] = {"labels": {"app.kubernetes.io/name": "x"},
                                                                          "args": ["--configmap=tools/x"]}
    data["clusters"]["demo-cluster"]["ingresses"] += [
        {"namespace": "legacy", "name": "old-style", "annotations": {"kubernetes.io/ingress.class": "nginx"},
         "rules": [{"host": "old.example.com", "paths": [{"path": "/", "pathType": "Prefix"}]}]},
        {"namespace": "legacy", "name": "classless",
         "rules": [{"host": "bare.example.com", "paths": [{"path": "/x", "pathType": "Prefix", "service": "bare"}]}]},
    ]
    return data


@pytest.fixture(params=["sim", "kube"])
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ClusterPort]:
    data = seed()
    if request.param == "sim":
        path = tmp_path / "seed.yaml"
        path.write_text(yaml.safe_dump(data))
        yield SimWorld.from_seed(path).cluster("demo-cluster")
        return
    with KubeApiServer() as api:
        seed_from_sim(api, data["clusters"]["demo-cluster"])
        yield KubeCluster("demo-cluster", kubeconfig=api.kubeconfig(), vpc_id="vpc-demo", backoff=0.001)


def test_describe(cluster: ClusterPort) -> None:
    info = cluster.describe()
    assert (info.id, info.vpc_id, info.default_ingress_class) == ("demo-cluster", "vpc-demo", "nginx")


def test_lists_the_class_with_legacy_and_default(cluster: ClusterPort) -> None:
    found = sorted(cluster.list_ingresses(ingress_class="nginx"), key=lambda i: (i.namespace, i.name))
    assert [(i.namespace, i.name, i.class_source) for i in found] == [
        ("api", "public-api", "spec"), ("legacy", "classless", "default"), ("legacy", "old-style", "annotation"),
        ("partner", "partner-portal", "spec"), ("shop", "storefront", "spec"), ("web", "website", "spec")]
    store = found[-2]
    assert store.addresses == ("47.100.0.10", "47.100.0.11")  # status.loadBalancer.ingress: where NGINX serves it
    assert store.tls_hosts == ("shop.example.com",) and store.paths == (("shop.example.com", "/", "Prefix"),)
    assert dict(store.annotations) == {"nginx.ingress.kubernetes.io/ssl-redirect": "true",
                                       "nginx.ingress.kubernetes.io/service-weight": ""}
    assert [i.name for i in cluster.list_ingresses(ingress_class="internal")] == ["grafana"]


def test_get_service(cluster: ClusterPort) -> None:
    svc = cluster.get_service(namespace=NS, name=LB)
    assert svc is not None and svc.load_balancer_ip == "47.100.0.10"
    assert svc.labels["service.k8s.alibaba/loadbalancer-id"] == "lb-demo"
    assert [(p.port, p.name, p.node_port) for p in svc.ports] == [(80, "http", 30080), (443, "https", 30443)]
    assert cluster.get_service(namespace=NS, name="nope") is None


def test_patch_sets_and_removes(cluster: ClusterPort) -> None:
    weight = "service.beta.kubernetes.io/alibaba-cloud-loadbalancer-weight"
    spec = "service.beta.kubernetes.io/alibaba-cloud-loadbalancer-spec"
    svc = cluster.patch_service_annotations(namespace=NS, name=LB, changes={weight: "0", spec: None, "absent": None})
    assert svc.annotations[weight] == "0" and spec not in svc.annotations


def test_writes_to_a_missing_service_fail_with_not_found(cluster: ClusterPort) -> None:
    with pytest.raises(ProviderError) as err:
        cluster.patch_service_annotations(namespace=NS, name="nope", changes={"a": "1"})
    assert err.value.code == "NotFound"


def test_delete_is_idempotent(cluster: ClusterPort) -> None:
    assert cluster.delete_service(namespace=NS, name=LB) is True
    assert cluster.delete_service(namespace=NS, name=LB) is False
    assert cluster.get_service(namespace=NS, name=LB) is None


def test_ingress_paths_carry_their_backend_service(cluster: ClusterPort) -> None:
    found = {i.name: i for i in cluster.list_ingresses(ingress_class="nginx")}
    assert found["classless"].backends == ("bare",)
    assert len(found["public-api"].backends) == len(found["public-api"].paths)


def test_get_config_map(cluster: ClusterPort) -> None:
    cm = cluster.get_config_map(namespace="ingress-nginx", name="ingress-nginx-controller")
    assert cm is not None and (cm.namespace, cm.name) == ("ingress-nginx", "ingress-nginx-controller")
    assert dict(cm.data) == {"allow-snippet-annotations": "true", "proxy-read-timeout": "120"}
    assert cluster.get_config_map(namespace="ingress-nginx", name="nope") is None


def test_list_deployments_by_label(cluster: ClusterPort) -> None:
    found = cluster.list_deployments(label_selector="app.kubernetes.io/name=ingress-nginx,"
                                                    "app.kubernetes.io/component=controller")
    assert [(d.namespace, d.name) for d in found] == [("ingress-nginx", "ingress-nginx-controller")]
    assert "--configmap=$(POD_NAMESPACE)/ingress-nginx-controller" in found[0].args
    assert found[0].images == (IMAGE,), "the image tells the controller's version (snippet default)"
    assert cluster.list_deployments(label_selector="app.kubernetes.io/name=nothing") == []
