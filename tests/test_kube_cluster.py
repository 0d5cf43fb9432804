"""KubeCluster through the real `kubernetes` client against the local API server: what a user would see."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from commands.errors import ProviderError
from providers.kube import KubeCluster
from tests.kube_api_server import KubeApiServer, ingress_class_json, ingress_json, service_json

LB = ("ingress-nginx", "nginx-ingress-lb")


@pytest.fixture
def api() -> Iterator[KubeApiServer]:
    with KubeApiServer() as server:
        server.add_ingress_class(ingress_class_json("nginx", default=True))
        server.add_ingress_class(ingress_class_json("internal"))
        svc = service_json(*LB, annotations={"keep": "me"}, labels={"app": "nginx"})
        svc["spec"]["futureField"] = {"from": "a newer Kubernetes"}  # a field the client's models do not know
        server.add_service(svc)
        yield server


def cluster(api: KubeApiServer, **kw: object) -> KubeCluster:
    return KubeCluster("c1", kubeconfig=api.kubeconfig(), backoff=0.001, **kw)  # type: ignore[arg-type]


def names(c: KubeCluster, cls: str = "nginx") -> list[str]:
    return [f"{i.namespace}/{i.name}" for i in c.list_ingresses(ingress_class=cls)]


def test_lists_every_namespace_in_pages(api: KubeApiServer) -> None:
    for i in range(25):
        api.add_ingress(ingress_json(f"ns{i % 4}", f"web{i:02}", ingress_class="nginx"))
    c = cluster(api)
    c.page_size = 10
    assert len(names(c)) == 25
    pages = api.calls("GET", "/ingresses?")
    assert len(pages) == 3 and all("limit=10" in p for p in pages)
    assert sum("continue=" in p for p in pages) == 2


def test_class_from_spec_legacy_annotation_and_cluster_default(api: KubeApiServer) -> None:
    api.add_ingress(ingress_json("a", "by-spec", ingress_class="nginx"))
    api.add_ingress(ingress_json("a", "legacy", annotations={"kubernetes.io/ingress.class": "nginx"}))
    api.add_ingress(ingress_json("a", "no-class"))
    api.add_ingress(ingress_json("a", "other", ingress_class="internal"))
    sources = {i.name: i.class_source for i in cluster(api).list_ingresses(ingress_class="nginx")}
    assert sources == {"by-spec": "spec", "legacy": "annotation", "no-class": "default"}
    assert names(cluster(api), "internal") == ["a/other"]


def test_no_class_ingresses_are_left_out_without_a_single_default(api: KubeApiServer) -> None:
    api.add_ingress_class(ingress_class_json("internal", default=True))  # now two defaults: Kubernetes picks none
    api.add_ingress(ingress_json("a", "no-class"))
    c = cluster(api)
    assert c.describe().default_ingress_class == ""
    assert names(c) == []


def test_describe_reports_the_default_class_and_vpc(api: KubeApiServer) -> None:
    info = cluster(api, vpc_id="vpc-1").describe()
    assert (info.id, info.vpc_id, info.default_ingress_class) == ("c1", "vpc-1", "nginx")


def test_ingress_fields(api: KubeApiServer) -> None:
    api.add_ingress(ingress_json("shop", "store", ingress_class="nginx", annotations={"x": "1"},
                                 rules={"shop.example.com": ["/", "/cart"]}, tls=["shop.example.com"]))
    (ing,) = cluster(api).list_ingresses(ingress_class="nginx")
    assert ing.hosts == ("shop.example.com",) and ing.tls_hosts == ("shop.example.com",)
    assert ing.paths == (("shop.example.com", "/", "Prefix"), ("shop.example.com", "/cart", "Prefix"))
    assert dict(ing.annotations) == {"x": "1"}


def test_retries_throttling_and_server_errors(api: KubeApiServer) -> None:
    api.add_ingress(ingress_json("a", "web", ingress_class="nginx"))
    api.fail(429, times=2, path_contains="/ingresses", retry_after="0")
    api.fail(503, times=1, path_contains="/ingresses")
    assert names(cluster(api)) == ["a/web"]


def test_gives_up_after_bounded_retries(api: KubeApiServer) -> None:
    api.fail(500, times=10)
    with pytest.raises(ProviderError) as err:
        cluster(api, retries=2).describe()
    assert err.value.temporary and len(api.calls()) == 3


def test_forbidden_names_the_verb_and_resource(api: KubeApiServer) -> None:
    api.fail(403, method="PATCH")
    with pytest.raises(ProviderError) as err:
        cluster(api).patch_service_annotations(namespace=LB[0], name=LB[1], changes={"a": "b"})
    text = str(err.value)
    assert err.value.code == "Forbidden" and not err.value.temporary
    assert "may not patch services/nginx-ingress-lb in namespace ingress-nginx" in text
    assert "kubectl auth can-i patch services -n ingress-nginx" in text


def test_unauthorized_is_not_retried(api: KubeApiServer) -> None:
    c = KubeCluster("c1", kubeconfig=api.kubeconfig(token="wrong"))
    with pytest.raises(ProviderError, match="credentials"):
        c.describe()
    assert len(api.calls()) == 1


def test_unreachable_server_is_a_temporary_provider_error(api: KubeApiServer) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = Path(api.kubeconfig())
    path.write_text(path.read_text().replace(api.url, f"http://127.0.0.1:{port}"))
    with pytest.raises(ProviderError) as err:
        KubeCluster("c1", kubeconfig=str(path), retries=1, backoff=0.001, timeout=2).describe()
    assert err.value.temporary and err.value.code == "Unreachable"


def test_bad_kubeconfig_is_one_clear_error() -> None:
    with pytest.raises(ProviderError, match="could not load kubeconfig /nonexistent/kubeconfig"):
        KubeCluster("c1", kubeconfig="/nonexistent/kubeconfig")


def test_each_cluster_has_its_own_client_config(api: KubeApiServer) -> None:
    with KubeApiServer(token="other") as second:
        second.add_ingress(ingress_json("b", "two", ingress_class="nginx"))
        second.add_ingress_class(ingress_class_json("nginx"))
        api.add_ingress(ingress_json("a", "one", ingress_class="nginx"))
        first, other = cluster(api), cluster(second)
        assert names(first) == ["a/one"] and names(other) == ["b/two"]
    default = client.Configuration.get_default_copy()
    assert default.host not in (api.url, second.url) and not default.api_key


def test_get_service(api: KubeApiServer) -> None:
    svc = cluster(api).get_service(namespace=LB[0], name=LB[1])
    assert svc is not None and dict(svc.annotations) == {"keep": "me"} and svc.ports[0].node_port == 30080
    assert cluster(api).get_service(namespace=LB[0], name="missing") is None


def test_patch_sets_and_removes_and_survives_a_concurrent_writer(api: KubeApiServer) -> None:
    api.interfere("PATCH", lambda a: a.touch_service(*LB, annotations={"theirs": "x"}))
    svc = cluster(api).patch_service_annotations(namespace=LB[0], name=LB[1], changes={"w": "0", "keep": None})
    assert dict(svc.annotations) == {"theirs": "x", "w": "0"}
    assert len(api.calls("PATCH")) == 2


def test_writes_to_a_missing_service_say_so(api: KubeApiServer) -> None:
    with pytest.raises(ProviderError) as err:
        cluster(api).patch_service_annotations(namespace=LB[0], name="gone", changes={"a": "b"})
    assert err.value.code == "NotFound"


def test_delete_is_idempotent(api: KubeApiServer) -> None:
    c = cluster(api)
    assert c.delete_service(namespace=LB[0], name=LB[1]) is True
    assert c.delete_service(namespace=LB[0], name=LB[1]) is False
    assert api.service(*LB) is None
