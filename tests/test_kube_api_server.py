"""The test API server speaks real Kubernetes: `kubectl` and the typed client both understand it."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from tests.kube_api_server import KubeApiServer, ingress_class_json, ingress_json, service_json

KUBECTL = shutil.which("kubectl") or ("/usr/bin/kubectl" if Path("/usr/bin/kubectl").exists() else None)


@pytest.fixture
def api() -> Iterator[KubeApiServer]:
    with KubeApiServer(tls=True) as server:
        server.add_ingress_class(ingress_class_json("nginx", default=True))
        for i in range(7):
            server.add_ingress(ingress_json(f"team{i % 3}", f"web{i}", ingress_class="nginx",
                                            labels={"tier": "front" if i % 2 else "back", "app": f"web{i}"}))
        server.add_service(service_json("ingress-nginx", "lb", annotations={"a": "1"}))
        yield server


def typed(api: KubeApiServer) -> client.NetworkingV1Api:
    cfg = client.Configuration()
    config.load_kube_config(config_file=api.kubeconfig(), client_configuration=cfg, persist_config=False)
    return client.NetworkingV1Api(client.ApiClient(cfg))


def kubectl(api: KubeApiServer, tmp_path: Path, *args: str) -> str:
    assert KUBECTL
    done = subprocess.run([KUBECTL, "--kubeconfig", api.kubeconfig(), "--cache-dir", str(tmp_path / "cache"), *args],
                          capture_output=True, text=True, timeout=60, env={"HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
def test_kubectl_lists_ingresses_in_chunks_over_tls_with_a_token(api: KubeApiServer, tmp_path: Path) -> None:
    out = json.loads(kubectl(api, tmp_path, "get", "ingress", "-A", "-o", "json", "--chunk-size", "3"))
    assert out["kind"] == "List" and len(out["items"]) == 7
    assert {i["kind"] for i in out["items"]} == {"Ingress"}
    assert out["items"][0]["spec"]["ingressClassName"] == "nginx"
    assert len(api.calls("GET", "/ingresses?")) == 3


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
def test_kubectl_annotates_a_service(api: KubeApiServer, tmp_path: Path) -> None:
    kubectl(api, tmp_path, "annotate", "service", "lb", "-n", "ingress-nginx", "b=2")
    assert api.service("ingress-nginx", "lb")["metadata"]["annotations"] == {"a": "1", "b": "2"}  # type: ignore[index]


def test_typed_client_reads_pages_per_namespace_with_a_label_selector(api: KubeApiServer) -> None:
    net = typed(api)
    page = net.list_namespaced_ingress("team0", label_selector="tier=back", limit=1)
    assert [i.metadata.name for i in page.items] == ["web0"] and page.metadata._continue
    rest = net.list_namespaced_ingress("team0", label_selector="tier=back", limit=1, _continue=page.metadata._continue)
    assert [i.metadata.name for i in rest.items] == ["web6"]
    every = net.list_ingress_for_all_namespaces(label_selector="tier in (front),app!=web1")
    assert sorted(i.metadata.name for i in every.items) == ["web3", "web5"]
    classes = net.list_ingress_class()
    assert classes.items[0].metadata.annotations == {"ingressclass.kubernetes.io/is-default-class": "true"}


def test_strategic_merge_patch_and_stale_put(api: KubeApiServer) -> None:
    cfg = client.Configuration()
    config.load_kube_config(config_file=api.kubeconfig(), client_configuration=cfg, persist_config=False)
    core = client.CoreV1Api(client.ApiClient(cfg))
    svc = core.patch_namespaced_service("lb", "ingress-nginx", {"metadata": {"annotations": {"a": None, "c": "3"}}},
                                        _content_type="application/strategic-merge-patch+json")
    assert svc.metadata.annotations == {"c": "3"}
    stale = core.read_namespaced_service("lb", "ingress-nginx")
    api.touch_service("ingress-nginx", "lb", annotations={"d": "4"})
    with pytest.raises(client.ApiException) as err:
        core.replace_namespaced_service("lb", "ingress-nginx", stale)
    assert err.value.status == 409
