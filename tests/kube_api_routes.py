"""The test API server's endpoints: discovery, Ingress and IngressClass lists, Service reads and writes,
ConfigMap reads and Deployment lists."""

from __future__ import annotations

import base64
import bisect
import copy
import json
import re
from typing import TYPE_CHECKING, Any

from tests.kube_api_server import NET, merge_patch, selector_matches

if TYPE_CHECKING:
    from tests.kube_api_server import KubeApiServer, _Handler

VERSION = {"major": "1", "minor": "31", "gitVersion": "v1.31.0", "platform": "linux/amd64"}
MERGE_TYPES = ("application/merge-patch+json", "application/strategic-merge-patch+json")


def _resources(*items: tuple[str, str, bool, list[str]]) -> list[dict[str, Any]]:
    return [{"name": name, "singularName": kind.lower(), "namespaced": namespaced, "kind": kind, "verbs": verbs}
            for name, kind, namespaced, verbs in items]


def discovery(api: KubeApiServer, path: str) -> dict[str, Any] | None:
    """Legacy (non-aggregated) discovery, which kubectl falls back to."""
    if path == "/version":
        return VERSION
    if path == "/api":
        return {"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": api.url.split("//")[1]}]}
    if path == "/apis":
        groups = []
        for name in (NET, "apps"):
            gv = {"groupVersion": f"{name}/v1", "version": "v1"}
            groups.append({"name": name, "versions": [gv], "preferredVersion": gv})
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
    rw = ["get", "list", "update", "patch", "delete"]
    if path == "/api/v1":
        return {"kind": "APIResourceList", "groupVersion": "v1", "resources": _resources(
            ("services", "Service", True, rw), ("namespaces", "Namespace", False, ["get", "list"]),
            ("configmaps", "ConfigMap", True, ["get", "list"]))}
    if path == "/apis/apps/v1":
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1",
                "resources": _resources(("deployments", "Deployment", True, ["get", "list"]))}
    if path == f"/apis/{NET}/v1":
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{NET}/v1", "resources": _resources(
            ("ingresses", "Ingress", True, rw), ("ingressclasses", "IngressClass", False, ["get", "list"]))}
    return None


def route(h: _Handler, method: str, path: str, query: dict[str, str], body: Any) -> None:
    api = h.api
    if method == "GET" and (doc := discovery(api, path)) is not None:
        return h._send(200, doc)
    if method == "GET" and path == f"/apis/{NET}/v1/ingresses":
        return h._send(200, list_ingresses(api, None, query))
    if method == "GET" and (m := re.fullmatch(rf"/apis/{NET}/v1/namespaces/([^/]+)/ingresses", path)):
        return h._send(200, list_ingresses(api, m.group(1), query))
    if method == "GET" and path == f"/apis/{NET}/v1/ingressclasses":
        with api.lock:
            items = [copy.deepcopy(c) for _, c in sorted(api.classes.items())]
        for item in items:
            item.pop("apiVersion"), item.pop("kind")
        return h._send(200, {"kind": "IngressClassList", "apiVersion": f"{NET}/v1",
                             "metadata": {"resourceVersion": str(api.rv)}, "items": items})
    if method == "GET" and (m := re.fullmatch(r"/api/v1/namespaces/([^/]+)/configmaps/([^/]+)", path)):
        with api.lock:
            cm = copy.deepcopy(api.config_maps.get((m.group(1), m.group(2))))
        if cm is None:
            return h._status(404, "NotFound", f'configmaps "{m.group(2)}" not found')
        return h._send(200, cm)
    if method == "GET" and path == "/apis/apps/v1/deployments":
        return h._send(200, list_deployments(api, query))
    if m := re.fullmatch(r"/api/v1/namespaces/([^/]+)/services/([^/]+)", path):
        return service(h, method, (m.group(1), m.group(2)), body)
    return h._status(404, "NotFound", f"the server could not find the requested resource ({method} {path})")


def _token(key: tuple[str, str], rv: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"rv": rv, "start": list(key)}).encode()).decode()


def list_ingresses(api: KubeApiServer, namespace: str | None, query: dict[str, str]) -> bytes:
    """A page of Ingresses in namespace/name order, built from pre-encoded items."""
    limit = int(query.get("limit") or 0)
    selector = query.get("labelSelector", "")
    with api.lock:
        keys = api._sorted
        start = 0
        if query.get("continue"):
            try:
                after = tuple(json.loads(base64.urlsafe_b64decode(query["continue"]))["start"])
            except (ValueError, KeyError) as err:
                raise ValueError(f"continue key is not valid: {err}") from None
            start = bisect.bisect_right(keys, after)
        elif namespace is not None:
            start = bisect.bisect_left(keys, (namespace, ""))
        page: list[bytes] = []
        last: tuple[str, str] | None = None
        i = start
        while i < len(keys) and (not limit or len(page) < limit):
            key = keys[i]
            if namespace is not None and key[0] != namespace:
                i = len(keys)
                break
            i += 1
            obj, raw = api.ingresses[key]
            if selector and not selector_matches(selector, obj["metadata"].get("labels") or {}):
                continue
            page.append(raw)
            last = key
        more = i < len(keys) and (namespace is None or keys[i][0] == namespace)
        meta: dict[str, Any] = {"resourceVersion": str(api.rv)}
        if more and last is not None:
            meta["continue"] = _token(last, api.rv)
            if not selector:
                end = len(keys) if namespace is None else bisect.bisect_left(keys, (namespace + "\0", ""))
                meta["remainingItemCount"] = end - i
    head = json.dumps({"kind": "IngressList", "apiVersion": f"{NET}/v1", "metadata": meta})[:-1].encode()
    return head + b',"items":[' + b",".join(page) + b"]}"


def list_deployments(api: KubeApiServer, query: dict[str, str]) -> dict[str, Any]:
    selector = query.get("labelSelector", "")
    with api.lock:
        items = [copy.deepcopy(d) for _, d in sorted(api.deployments.items())
                 if not selector or selector_matches(selector, d["metadata"].get("labels") or {})]
    for item in items:
        item.pop("apiVersion"), item.pop("kind")
    return {"kind": "DeploymentList", "apiVersion": "apps/v1", "metadata": {"resourceVersion": str(api.rv)},
            "items": items}


def service(h: _Handler, method: str, key: tuple[str, str], body: Any) -> None:
    api = h.api
    ns, name = key
    if method in ("PUT", "PATCH"):
        with api.lock:
            hooks = [a for m, a in api.interference if m == method]
            api.interference = [(m, a) for m, a in api.interference if m != method] + [(method, a)
                                                                                       for a in hooks[1:]]
        if hooks:
            hooks[0](api)
    with api.lock:
        current = api.services.get(key)
        if current is None:
            return h._status(404, "NotFound", f'services "{name}" not found')
        if method == "GET":
            return h._send(200, current)
        if method == "DELETE":
            del api.services[key]
            return h._send(200, current)
        rv = current["metadata"]["resourceVersion"]
        if method == "PUT":
            sent = (body or {}).get("metadata", {})
            if not sent.get("resourceVersion"):
                return h._status(422, "Invalid", f'Service "{name}" is invalid: metadata.resourceVersion: '
                                 "Invalid value: 0x0: must be specified for an update")
            if sent.get("name") != name or sent.get("namespace", ns) != ns:
                return h._status(400, "BadRequest", "the name of the object does not match the name on the URL")
            updated = copy.deepcopy(body)
        elif method == "PATCH":
            ctype = (h.headers.get("Content-Type") or "").split(";")[0]
            if ctype not in MERGE_TYPES:
                return h._status(415, "UnsupportedMediaType", f"the body of the request was in an unknown format "
                                 f"- accepted media types include: {', '.join(MERGE_TYPES)}")
            sent = (body or {}).get("metadata", {})
            updated = merge_patch(current, body or {})
        else:
            return h._status(405, "MethodNotAllowed", f"{method} is not supported here")
        if sent.get("resourceVersion") and sent["resourceVersion"] != rv:
            return h._status(409, "Conflict", f'Operation cannot be fulfilled on services "{name}": the object has '
                             "been modified; please apply your changes to the latest version and try again")
        for field in ("uid", "creationTimestamp"):
            updated["metadata"][field] = current["metadata"][field]
        updated["metadata"]["resourceVersion"] = rv
        updated.update(apiVersion="v1", kind="Service")
        if updated != current:
            updated["metadata"]["resourceVersion"] = api._next_rv()
            api.services[key] = updated
        return h._send(200, updated)
