"""ClusterPort on the official `kubernetes` client: paged Ingress lists and safe Service writes.

Each instance owns its ApiClient and Configuration, so two clusters (or a test server) in one
process never share credentials through the client's global default. Every write carries the
resourceVersion it read; a 409 means someone else wrote first, so it re-reads and re-applies
only what the bot changes, and nothing another writer did is lost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import Any, TypeVar

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from commands.errors import ProviderError
from commands.ports import ClusterInfo, ConfigMap, Deployment, Ingress, Service
from providers.kube import convert
from providers.kube.errors import Op, call, load

T = TypeVar("T")
INGRESSES = "ingresses.networking.k8s.io"
CLASSES = "ingressclasses.networking.k8s.io"
SERVICES = "services"
CONFIGMAPS = "configmaps"
DEPLOYMENTS = "deployments.apps"
MERGE_PATCH = "application/merge-patch+json"


class KubeCluster:
    """One Kubernetes cluster, reached through a kubeconfig (path and context) or in-cluster config."""

    page_size = 500
    conflict_retries = 5

    def __init__(self, cluster_id: str, *, kubeconfig: str | None = None, context: str | None = None,
                 in_cluster: bool = False, vpc_id: str = "", timeout: float = 10.0, retries: int = 4,
                 backoff: float = 0.25) -> None:
        self.id, self.vpc_id = cluster_id, vpc_id
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        cfg = client.Configuration()
        try:
            if in_cluster:
                config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
            else:
                config.load_kube_config(  # type: ignore[no-untyped-call]
                    config_file=kubeconfig, context=context, client_configuration=cfg, persist_config=False)
        except Exception as err:  # the loaders raise ConfigException, OSError, YAML and key errors alike
            source = "in-cluster config" if in_cluster else f"kubeconfig {kubeconfig or '(default)'}"
            detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ProviderError(f"could not load {source}{f' context {context}' if context else ''}: {detail}",
                                code="KubeconfigInvalid", operation=f"connect to cluster {cluster_id}",
                                next_step=("run it inside a pod with a service account" if in_cluster else
                                           "check the kubeconfig path and context (`--kubeconfig`, `--context`, "
                                           "or the cluster's entry in the bot's config)")) from None
        cfg.retries = 0  # retries are ours: bounded, with backoff, and only where safe
        self.api = client.ApiClient(cfg)
        self.core = client.CoreV1Api(self.api)
        self.net = client.NetworkingV1Api(self.api)

    def close(self) -> None:
        self.api.close()  # type: ignore[no-untyped-call]

    def __enter__(self) -> KubeCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, op: Op, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A typed client method, raw JSON back (`_preload_content=False`), through the retry loop."""
        def once() -> Any:
            return load(fn(*args, _preload_content=False, _request_timeout=self.timeout, **kwargs))
        return call(once, op, cluster=self.id, retries=self.retries, backoff=self.backoff)

    # ---- reads ------------------------------------------------------------------------------

    def _pages(self, op: Op, fn: Callable[..., Any]) -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            page = self._call(op, fn, limit=self.page_size, _continue=token)
            yield from page.get("items") or []
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return

    def describe(self) -> ClusterInfo:
        classes = list(self._pages(Op("list", CLASSES), self.net.list_ingress_class))
        return ClusterInfo(self.id, self.vpc_id, convert.default_class(classes))

    def list_ingresses(self, *, ingress_class: str) -> Iterator[Ingress]:
        """The class's Ingresses in all namespaces, `page_size` at a time, as they arrive."""
        default = self.describe().default_ingress_class
        for raw in self._pages(Op("list", INGRESSES), self.net.list_ingress_for_all_namespaces):
            ing = convert.ingress(raw)
            if convert.matches_class(ing, ingress_class, default):
                yield ing

    def _read(self, namespace: str, name: str) -> dict[str, Any]:
        op = Op("get", SERVICES, namespace, name)
        return self._call(op, self.core.read_namespaced_service, name, namespace)  # type: ignore[no-any-return]

    def get_service(self, *, namespace: str, name: str) -> Service | None:
        try:
            return convert.service(self._read(namespace, name))
        except ProviderError as err:
            if err.code == "NotFound":
                return None
            raise

    def get_config_map(self, *, namespace: str, name: str) -> ConfigMap | None:
        """One ConfigMap by name: the bot's RBAC may allow `get` on that one object only."""
        try:
            raw = self._call(Op("get", CONFIGMAPS, namespace, name), self.core.read_namespaced_config_map, name,
                             namespace)
        except ProviderError as err:
            if err.code == "NotFound":
                return None
            raise
        return convert.config_map(raw)

    def list_deployments(self, *, label_selector: str) -> list[Deployment]:
        page = self._call(Op("list", DEPLOYMENTS), self._get, "/apis/apps/v1/deployments",
                          [("labelSelector", label_selector)])
        return [convert.deployment(raw) for raw in page.get("items") or []]

    # ---- writes -----------------------------------------------------------------------------

    def _write(self, namespace: str, name: str, change: Callable[[dict[str, Any]], Callable[[], Any] | None]
               ) -> Service:
        """Read, let `change` build the write (None when nothing changes), send it; on 409 start over."""
        for _ in range(self.conflict_retries):
            raw = self._read(namespace, name)
            send = change(raw)
            if send is None:
                return convert.service(raw)
            try:
                return convert.service(send())
            except ProviderError as err:
                if err.code != "Conflict":
                    raise
        raise ProviderError(f"Service {namespace}/{name} kept changing under the bot ({self.conflict_retries} "
                            "conflicts in a row)", code="Conflict", temporary=True,
                            operation=f"update services/{name} in namespace {namespace} on cluster {self.id}",
                            next_step="find who else is writing the Service, then retry")

    def patch_service_annotations(self, *, namespace: str, name: str, changes: Mapping[str, str | None]) -> Service:
        """Set or (with None) remove some annotations; a merge patch guarded by resourceVersion."""
        def change(raw: dict[str, Any]) -> Callable[[], Any] | None:
            have = raw["metadata"].get("annotations") or {}
            if all(have.get(k) == v for k, v in changes.items()):
                return None
            body = {"metadata": {"resourceVersion": raw["metadata"]["resourceVersion"], "annotations": dict(changes)}}
            return partial(self._call, Op("patch", SERVICES, namespace, name), self.core.patch_namespaced_service,
                           name, namespace, body, _content_type=MERGE_PATCH)

        return self._write(namespace, name, change)

    def delete_service(self, *, namespace: str, name: str) -> bool:
        """True when this call deleted it; False when it was already gone."""
        try:
            self._call(Op("delete", SERVICES, namespace, name), self.core.delete_namespaced_service, name, namespace)
        except ProviderError as err:
            if err.code == "NotFound":
                return False
            raise
        return True

    def _get(self, path: str, query: list[tuple[str, str]], *, _preload_content: bool,
             _request_timeout: float) -> Any:
        """A raw GET: importing the typed AppsV1Api for one list costs more start-up than the list."""
        params = self.api.param_serialize(method="GET", resource_path=path, query_params=query,
                                          header_params={"Accept": "application/json"}, auth_settings=["BearerToken"])
        response = self.api.call_api(*params, _request_timeout=_request_timeout)
        if not 200 <= response.status <= 299:
            response.read()  # type: ignore[no-untyped-call]
            raise ApiException.from_response(http_resp=response, body=None, data=None)
        return response.response
