"""A small Kubernetes API server for tests and the benchmark, speaking real Kubernetes JSON.

It serves what the bot and `kubectl get ingress` use: discovery; Ingress lists (all namespaces
or one, `limit`/`continue`, label selectors); IngressClass lists; Service get, PUT (with
`resourceVersion`, 409 on a stale one), merge and strategic-merge PATCH, DELETE; ConfigMap get
and Deployment lists (label selectors), for the route check's look at the controller. Bearer-token
auth, optional TLS with a throwaway certificate, and injected faults (`fail(403, times=2)`)
let tests drive the real `kubernetes` client and `kubectl` over real sockets. Lists are not
snapshots: a write between pages shows in later pages (the tests do not rely on either).
"""

from __future__ import annotations

import base64
import bisect
import copy
import json
import re
import ssl
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

NET = "networking.k8s.io"
DEFAULT_CLASS = "ingressclass.kubernetes.io/is-default-class"
Key = tuple[str, str]


# ---- objects as the API server returns them --------------------------------------------------

def _meta(name: str, namespace: str | None, labels: dict[str, str] | None,
          annotations: dict[str, str] | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "uid": str(uuid.uuid4()), "creationTimestamp": "2026-01-01T00:00:00Z"}
    if namespace is not None:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def ingress_json(namespace: str, name: str, *, ingress_class: str | None = None,
                 annotations: dict[str, str] | None = None, labels: dict[str, str] | None = None,
                 rules: dict[str, list[str]] | None = None, tls: list[str] | None = None,
                 path_type: str = "Prefix", addresses: list[str] | None = None,
                 service: str = "web") -> dict[str, Any]:
    """An Ingress: `rules` maps each host to its paths, all sent to Service `service:80`."""
    backend = {"service": {"name": service, "port": {"number": 80}}}
    spec: dict[str, Any] = {"rules": [{"host": host, "http": {"paths": [
        {"path": p, "pathType": path_type, "backend": backend} for p in paths]}}
        for host, paths in (rules or {f"{name}.example.com": ["/"]}).items()]}
    if ingress_class:
        spec["ingressClassName"] = ingress_class
    if tls:
        spec["tls"] = [{"hosts": list(tls), "secretName": f"{name}-tls"}]
    return {"apiVersion": f"{NET}/v1", "kind": "Ingress", "metadata": _meta(name, namespace, labels, annotations),
            "spec": spec, "status": {"loadBalancer": {"ingress": [{"ip": a} for a in addresses or []]}}}


def ingress_class_json(name: str, *, default: bool = False, controller: str = "k8s.io/ingress-nginx") -> dict[str, Any]:
    ann = {DEFAULT_CLASS: "true"} if default else None
    return {"apiVersion": f"{NET}/v1", "kind": "IngressClass", "metadata": _meta(name, None, None, ann),
            "spec": {"controller": controller}}


def service_json(namespace: str, name: str, *, annotations: dict[str, str] | None = None,
                 labels: dict[str, str] | None = None, ports: list[dict[str, Any]] | None = None,
                 load_balancer_ip: str = "") -> dict[str, Any]:
    ports = ports or [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 80, "nodePort": 30080}]
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(name, namespace, labels, annotations),
            "spec": {"type": "LoadBalancer", "clusterIP": "172.16.0.10", "ports": ports,
                     "selector": {"app": name}, "externalTrafficPolicy": "Local"},
            "status": {"loadBalancer": {"ingress": [{"ip": load_balancer_ip}] if load_balancer_ip else []}}}


def config_map_json(namespace: str, name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(name, namespace, None, None),
            "data": dict(data)}


def deployment_json(namespace: str, name: str, *, labels: dict[str, str] | None = None,
                    args: list[str] | None = None,
                    image: str = "registry.k8s.io/ingress-nginx/controller:v1.15.0") -> dict[str, Any]:
    """A controller-like Deployment: one container with `args`, as the ingress-nginx chart writes it."""
    container = {"name": "controller", "image": image,
                 "args": list(args or [])}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(name, namespace, labels, None),
            "spec": {"replicas": 2, "selector": {"matchLabels": dict(labels or {})},
                     "template": {"metadata": {"labels": dict(labels or {})}, "spec": {"containers": [container]}}},
            "status": {"replicas": 2, "readyReplicas": 2}}


def status_json(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure" if code >= 300 else "Success",
            "message": message, "reason": reason, "code": code}


# ---- label selectors -------------------------------------------------------------------------

_TERM = re.compile(r"^\s*(!?)([\w./-]+)\s*(?:(==|=|!=)\s*([\w./-]*)|\s+(in|notin)\s*\(([^)]*)\))?\s*$")


def selector_matches(selector: str, labels: dict[str, str]) -> bool:
    """Equality (`a=b`, `a!=b`), set (`a in (x,y)`, `a notin (x)`) and existence (`a`, `!a`) terms."""
    for term in filter(str.strip, re.split(r",(?![^()]*\))", selector)):
        m = _TERM.match(term)
        if not m:
            raise ValueError(f"unable to parse requirement: {term!r}")
        neg, key, op, value, set_op, values = m.groups()
        have = labels.get(key)
        if op in ("=", "=="):
            ok = have == value
        elif op == "!=":
            ok = have != value
        elif set_op:
            choices = {v.strip() for v in values.split(",")}
            ok = (have in choices) if set_op == "in" else (have not in choices)
        else:
            ok = (have is None) if neg else (have is not None)
        if not ok:
            return False
    return True


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386. Strategic merge patch is the same for the maps the bot patches (annotations)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


@dataclass
class Fault:
    code: int
    times: int
    method: str = ""
    path_contains: str = ""
    retry_after: str | None = None


# ---- the server ------------------------------------------------------------------------------

class KubeApiServer:
    """Start with `with KubeApiServer() as api:`; seed with `add_*`; point clients at `kubeconfig()`."""

    def __init__(self, *, token: str | None = "test-token", tls: bool = False) -> None:
        self.token, self.tls = token, tls
        self.lock = threading.RLock()
        self.rv = 1000
        self.ingresses: dict[Key, tuple[dict[str, Any], bytes]] = {}
        self._sorted: list[Key] = []
        self.classes: dict[str, dict[str, Any]] = {}
        self.services: dict[Key, dict[str, Any]] = {}
        self.config_maps: dict[Key, dict[str, Any]] = {}
        self.deployments: dict[Key, dict[str, Any]] = {}
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []  # (method, path?query) of every API call
        self.interference: list[tuple[str, Callable[[KubeApiServer], None]]] = []
        self._tmp = tempfile.TemporaryDirectory(prefix="kube-api-")
        self.ca_pem = b""
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.api = self  # type: ignore[attr-defined]
        if tls:
            self._wrap_tls()
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.httpd.server_address[1]}"

    # lifecycle
    def __enter__(self) -> KubeApiServer:
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._tmp.cleanup()

    def _wrap_tls(self) -> None:
        from tests.selfsigned import self_signed  # cryptography is only needed for TLS

        cert, key = self_signed()
        cert_path, key_path = Path(self._tmp.name, "tls.crt"), Path(self._tmp.name, "tls.key")
        cert_path.write_bytes(cert)
        key_path.write_bytes(key)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert_path, key_path)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.ca_pem = cert

    def kubeconfig(self, path: str | Path | None = None, *, context: str = "test",
                   token: str | None = None) -> str:
        """Write a kubeconfig that reaches this server; returns its path."""
        cluster: dict[str, Any] = {"server": self.url}
        if self.tls:
            cluster["certificate-authority-data"] = base64.b64encode(self.ca_pem).decode()
        user: dict[str, Any] = {"token": token or self.token} if (token or self.token) else {}
        doc = {"apiVersion": "v1", "kind": "Config", "current-context": context,
               "clusters": [{"name": "test", "cluster": cluster}], "users": [{"name": "bot", "user": user}],
               "contexts": [{"name": context, "context": {"cluster": "test", "user": "bot"}}]}
        target = Path(path) if path else Path(self._tmp.name, f"kubeconfig-{context}")
        target.write_text(yaml.safe_dump(doc))
        return str(target)

    # seeding and inspection
    def _next_rv(self) -> str:
        self.rv += 1
        return str(self.rv)

    def add_ingress(self, obj: dict[str, Any]) -> None:
        with self.lock:
            obj["metadata"]["resourceVersion"] = self._next_rv()
            key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
            item = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}  # list items omit them
            if key not in self.ingresses:
                bisect.insort(self._sorted, key)
            self.ingresses[key] = (obj, json.dumps(item, separators=(",", ":")).encode())

    def add_ingress_class(self, obj: dict[str, Any]) -> None:
        with self.lock:
            obj["metadata"]["resourceVersion"] = self._next_rv()
            self.classes[obj["metadata"]["name"]] = obj

    def add_service(self, obj: dict[str, Any]) -> None:
        with self.lock:
            obj["metadata"]["resourceVersion"] = self._next_rv()
            self.services[(obj["metadata"]["namespace"], obj["metadata"]["name"])] = obj

    def add_config_map(self, obj: dict[str, Any]) -> None:
        with self.lock:
            obj["metadata"]["resourceVersion"] = self._next_rv()
            self.config_maps[(obj["metadata"]["namespace"], obj["metadata"]["name"])] = obj

    def add_deployment(self, obj: dict[str, Any]) -> None:
        with self.lock:
            obj["metadata"]["resourceVersion"] = self._next_rv()
            self.deployments[(obj["metadata"]["namespace"], obj["metadata"]["name"])] = obj

    def service(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            svc = self.services.get((namespace, name))
            return copy.deepcopy(svc) if svc else None

    def touch_service(self, namespace: str, name: str, *, annotations: dict[str, str | None] | None = None,
                      labels: dict[str, str | None] | None = None) -> None:
        """Someone else writes the Service (as `kubectl annotate` would): new resourceVersion."""
        with self.lock:
            meta = self.services[(namespace, name)]["metadata"]
            meta["annotations"] = merge_patch(meta.get("annotations", {}), annotations or {})
            meta["labels"] = merge_patch(meta.get("labels", {}), labels or {})
            meta["resourceVersion"] = self._next_rv()

    def fail(self, code: int, *, times: int = 1, method: str = "", path_contains: str = "",
             retry_after: str | None = None) -> None:
        """The next `times` matching calls answer `code` (401, 403, 429, 500...) with a Status."""
        with self.lock:
            self.faults.append(Fault(code, times, method.upper(), path_contains, retry_after))

    def interfere(self, method: str, action: Callable[[KubeApiServer], None]) -> None:
        """Run `action` just before the next `method` write is handled (a concurrent writer)."""
        with self.lock:
            self.interference.append((method.upper(), action))

    def calls(self, method: str = "", contains: str = "") -> list[str]:
        with self.lock:
            return [p for m, p in self.requests if (not method or m == method) and contains in p]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kube-api-test/1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    @property
    def api(self) -> KubeApiServer:
        return self.server.api  # type: ignore[attr-defined,no-any-return]

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_POST(self) -> None:
        self._dispatch("POST")

    # plumbing
    def _send(self, code: int, body: bytes | dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _status(self, code: int, reason: str, message: str, headers: dict[str, str] | None = None) -> None:
        self._send(code, status_json(code, reason, message), headers)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw) if raw else None

    def _dispatch(self, method: str) -> None:
        api = self.api
        parts = urlsplit(self.path)
        body = self._body() if method in ("PUT", "PATCH", "POST") else None
        with api.lock:
            api.requests.append((method, self.path))
        if api.token and self.headers.get("Authorization") != f"Bearer {api.token}":
            return self._status(401, "Unauthorized", "Unauthorized")
        if self._injected_fault(method, parts.path):
            return None
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        try:
            from tests.kube_api_routes import route

            return route(self, method, parts.path.rstrip("/"), query, body)
        except ValueError as err:
            return self._status(400, "BadRequest", str(err))

    def _injected_fault(self, method: str, path: str) -> bool:
        with self.api.lock:
            for fault in self.api.faults:
                if fault.times > 0 and fault.method in ("", method) and fault.path_contains in path:
                    fault.times -= 1
                    break
            else:
                return False
        reason = {401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict",
                  429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable"}.get(fault.code, "Unknown")
        message = forbidden_message(method, path) if fault.code == 403 else f"injected {fault.code}"
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else None
        self._status(fault.code, reason, message, headers)
        return True


def forbidden_message(method: str, path: str) -> str:
    """The apiserver's 403 text: which user may not do which verb on which resource."""
    segs = [s for s in path.split("/") if s]
    group = segs[1] if segs and segs[0] == "apis" else ""
    rest = segs[3:] if group else segs[2:]
    namespace = rest[1] if len(rest) >= 2 and rest[0] == "namespaces" else ""
    rest = rest[2:] if namespace else rest
    resource = rest[0] if rest else ""
    verb = {"GET": "get" if len(rest) > 1 else "list", "PUT": "update", "PATCH": "patch", "DELETE": "delete",
            "POST": "create"}[method]
    where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    full = f"{resource}.{group}" if group else resource
    return (f'{full} is forbidden: User "system:serviceaccount:ops:migrate-bot" cannot {verb} resource '
            f'"{resource}" in API group "{group}" {where}')
