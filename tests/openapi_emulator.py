"""A local Alibaba Cloud OpenAPI for the real SDK clients: MSE, SLB and DNS on 127.0.0.1.

Why: contract tests must drive the real tea-openapi clients (signing, retries, error parsing)
over a real socket, and the demo must run without an account. The emulator

- verifies the ACS3-HMAC-SHA256 signature (V3 canonical request) and answers a bad one as
  the cloud does (`SignatureDoesNotMatch`, 400; unknown AccessKey: `InvalidAccessKeyId.NotFound`, 404);
- dispatches on `x-acs-version` + `x-acs-action`, and rejects unknown actions (404) and
  parameters it does not model (400) with the cloud's error JSON;
- keeps MSE, SLB and DNS state seeded from the simulated world's YAML (providers/sim/seed.yaml),
  and follows the cloud's documented rules (each rule cites its source where it is enforced);
- watches one safety invariant without refusing anything: after an SLB or MSE write, every
  vServer group that had a backend with weight > 0 still has one (`Emulator.violations`);
- injects faults per action (or "*"): throttling (400 `Throttling.User` + `x-acs-retry-after`),
  5xx, MSE `Success: false` bodies, slow answers; for the next N calls or with a probability.

Run standalone: `python -m tests.openapi_emulator --port 18080 [--seed FILE]
[--access-key-id ID --access-key-secret S]` (defaults: the test key pair below).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import hmac
import json
import random
import re
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from providers.sim.state import load_seed

TEST_ACCESS_KEY_ID = "emulator-ak"
TEST_ACCESS_KEY_SECRET = "emulator-secret"  # a public test value, not a secret
PRODUCTS = {"2019-05-31": "mse", "2014-05-15": "slb", "2015-01-09": "dns"}
PRODUCT_NAMES = {"mse": "mse", "slb": "Slb", "dns": "Alidns"}
#: Parameters every action of a product accepts and the emulator ignores.
COMMON = {"mse": {"AcceptLanguage"},
          "slb": {"RegionId", "OwnerId", "OwnerAccount", "ResourceOwnerAccount", "ResourceOwnerId"},
          "dns": {"Lang", "UserClientIp"}}
READ_PREFIXES = ("Describe", "List", "Get", "Query")  # RPC naming: everything else writes
GATEWAY_STATUS = {"creating": 0, "running": 2, "changing": 3, "updating": 12, "deleting": 8}


class ApiError(Exception):
    """An answer in the cloud's error shape: HTTP status, code, message."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


class BusinessError(Exception):
    """An MSE failure answered with HTTP 200 and `Success: false`."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass
class Fault:
    kind: str  # throttle | error | business | slow
    remaining: int | None  # None: use `probability` forever
    probability: float = 1.0
    status: int = 503
    code: str = "ServiceUnavailable"
    message: str = "The request has failed due to a temporary failure of the server."
    seconds: float = 0.0


Handler = Callable[["CloudState", dict[str, str]], dict[str, Any]]
ACTIONS: dict[tuple[str, str], tuple[frozenset[str], Handler]] = {}


def action(product: str, name: str, params: str) -> Callable[[Handler], Handler]:
    """Register a handler with the parameters it models (`Name.N` stands for a list)."""
    def register(fn: Handler) -> Handler:
        ACTIONS[(product, name)] = (frozenset(params.split()), fn)
        return fn
    return register


# ---- signature ------------------------------------------------------------------------------

def canonical_query(query: dict[str, str]) -> str:
    return "&".join(f"{k}={quote(query[k], safe='~')}" for k in sorted(query))


def expected_signature(secret: str, method: str, path: str, query: dict[str, str], headers: dict[str, str],
                       signed: list[str], payload_hash: str) -> str:
    """The V3 (ACS3-HMAC-SHA256) signature the request should carry."""
    canon_headers = "".join(f"{h}:{headers.get(h, '').strip()}\n" for h in signed)
    canonical = "\n".join([method, path or "/", canonical_query(query), canon_headers, ";".join(signed), payload_hash])
    to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    return hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()


_AUTH = re.compile(r"^ACS3-HMAC-SHA256 Credential=([^,]+),SignedHeaders=([^,]+),Signature=([0-9a-f]+)$")


def check_signature(keys: dict[str, str], method: str, path: str, query: dict[str, str],
                    headers: dict[str, str], body: bytes) -> None:
    found = _AUTH.match(headers.get("authorization", ""))
    if not found:
        raise ApiError(400, "IncompleteSignature", "The request signature does not conform to Aliyun standards.")
    key_id, signed, signature = found.group(1), found.group(2).split(";"), found.group(3)
    if key_id not in keys:
        raise ApiError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
    if hashlib.sha256(body).hexdigest() != headers.get("x-acs-content-sha256"):
        raise ApiError(400, "IncompleteSignature", "The request body hash does not match x-acs-content-sha256.")
    if not {"host", "x-acs-action", "x-acs-version", "x-acs-date", "x-acs-signature-nonce"} <= set(signed):
        raise ApiError(400, "IncompleteSignature", "Required headers are not signed.")
    want = expected_signature(keys[key_id], method, path, query, headers, signed,
                              headers.get("x-acs-content-sha256", ""))
    if not hmac.compare_digest(want, signature):
        raise ApiError(400, "SignatureDoesNotMatch",
                       "Specified signature does not match our calculation.")


# ---- state ----------------------------------------------------------------------------------

class CloudState:
    """MSE, SLB and DNS as one dict, guarded by one lock (handlers run one at a time)."""

    def __init__(self, seed: dict[str, Any], region: str) -> None:
        self.region = region
        self.lock = threading.RLock()
        self.clusters = copy.deepcopy(seed["clusters"])
        self.slbs = copy.deepcopy(seed["slbs"])
        self.health: dict[str, str] = dict(seed.get("health") or {})  # "<server>:<port>" -> status
        for slb in self.slbs.values():
            slb.setdefault("vgroups", {})
            names = slb.setdefault("vgroup_names", {})
            for vg in slb["vgroups"]:
                names.setdefault(vg, vg)  # a seed without a name: the group id stands in for it
        self.next_id = 1000
        self.gateways: dict[str, dict[str, Any]] = {}
        for gw_id, gw in seed["gateways"].items():
            sources = [self._source(cluster, s.get("ingress_class", ""), bool(s.get("enable_status")))
                       for cluster, s in gw.get("sources", {}).items()]
            links = [self._seeded_link(slb_id, joined) for slb_id, joined in (gw.get("slbs") or {}).items()]
            self.gateways[gw_id] = {**copy.deepcopy(gw), "sources": sources, "links": links}
        self.zones = list(seed["dns"]["zones"])
        self.records: dict[str, dict[str, Any]] = {}
        for rec in seed["dns"]["records"].values():
            rid = str(self.new_id())
            self.records[rid] = {"line": "default", **rec, "id": rid}
        #: Weighted round robin, per name, record type and line: `"www.example.com|A|default": True`.
        self.weighted: dict[str, bool] = dict(seed["dns"].get("weighted", {}))
        #: Names hosted at another DNS provider, as a resolver sees them (`{name: [addresses]}`).
        self.elsewhere: dict[str, list[str]] = copy.deepcopy(seed["dns"].get("elsewhere") or {})

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def _source(self, cluster: str, ingress_class: str, enable_status: bool = False) -> dict[str, Any]:
        return {"Id": self.new_id(), "Name": cluster, "Address": cluster, "Source": "K8s", "Type": "K8s",
                "IngressOptions": {"EnableIngress": True, "IngressClass": ingress_class,
                                   "EnableStatus": enable_status, "WatchNamespace": ""}}

    def _seeded_link(self, slb_id: str, joined: Any) -> dict[str, Any]:
        """An association the seed says exists: a vServer group id (HTTP, port 80), or a list of
        `{vgroup_id, port, protocol}`. Only the record: the seed places the backends itself."""
        items = [joined] if isinstance(joined, str) else list(joined or [])
        services = []
        for item in items:
            vg = item if isinstance(item, str) else item["vgroup_id"]
            protocol = "HTTP" if isinstance(item, str) else str(item.get("protocol", "HTTP")).upper()
            port = 80 if isinstance(item, str) else int(item.get("port", 443 if protocol == "HTTPS" else 80))
            name = self.slbs.get(slb_id, {}).get("vgroup_names", {}).get(vg, vg)
            services.append({"VServerGroupId": vg, "VServerGroupName": name, "Port": port, "Protocol": protocol})
        http = next((v for v in services if v["Protocol"] == "HTTP"), None)
        https = next((v for v in services if v["Protocol"] == "HTTPS"), None)
        return {"Id": self.new_id(), "SlbId": slb_id, "ServiceWeight": 0,
                "VServerGroupId": http["VServerGroupId"] if http else "", "HttpPort": http["Port"] if http else None,
                "HttpsVServerGroupId": https["VServerGroupId"] if https else "",
                "HttpsPort": https["Port"] if https else None, "VServiceList": services}

    def weighted_groups(self) -> set[str]:
        """The vServer groups with at least one backend that receives traffic (weight > 0)."""
        return {vg for slb in self.slbs.values() for vg, group in slb["vgroups"].items()
                if any(int(b["weight"]) > 0 for b in group)}

    def gateway(self, gw_id: str) -> dict[str, Any]:
        if gw_id not in self.gateways:
            raise ApiError(404, "GatewayNotFound", f"The gateway {gw_id} does not exist.")
        return self.gateways[gw_id]

    def slb(self, slb_id: str) -> dict[str, Any]:
        if slb_id not in self.slbs:
            raise ApiError(400, "InvalidLoadBalancerId.NotFound",
                           f"The specified LoadBalancerId {slb_id} does not exist.")
        return self.slbs[slb_id]  # type: ignore[no-any-return]

    def vgroup(self, vgroup_id: str) -> tuple[str, list[dict[str, Any]]]:
        for slb_id, slb in self.slbs.items():
            if vgroup_id in slb["vgroups"]:
                return slb_id, slb["vgroups"][vgroup_id]
        raise ApiError(400, "VServerGroupId.NotFound", f"The specified VServerGroupId {vgroup_id} does not exist.")

    def vgroup_name(self, vgroup_id: str) -> str:
        slb_id, _ = self.vgroup(vgroup_id)
        return str(self.slbs[slb_id]["vgroup_names"].get(vgroup_id, vgroup_id))

    def zone(self, name: str) -> str | None:
        best = [z for z in self.zones if name == z or name.endswith("." + z)]
        return max(best, key=len) if best else None

    def record(self, record_id: str) -> dict[str, Any]:
        if record_id not in self.records:
            raise ApiError(400, "DomainRecordNotBelongToUser", "The DNS record does not belong to the user.")
        return self.records[record_id]


def _need(q: dict[str, str], *names: str) -> None:
    for n in names:
        if not q.get(n):
            raise ApiError(400, f"Missing{n}", f"{n} is mandatory for this action.")


def _json(q: dict[str, str], name: str, default: Any) -> Any:
    if name not in q:
        return default
    try:
        return json.loads(q[name])
    except ValueError:
        raise ApiError(400, "InvalidParameter", f"The parameter {name} is not valid JSON.") from None


def _listed(q: dict[str, str], name: str) -> list[str]:
    """Values of a flattened list parameter (`Name.1`, `Name.2`, ...), in order."""
    pat = re.compile(rf"^{re.escape(name)}\.(\d+)$")
    items = sorted((int(mt.group(1)), v) for k, v in q.items() if (mt := pat.match(k)))
    return [v for _, v in items]


def _ok(**data: Any) -> dict[str, Any]:
    return {"Success": True, "Code": 200, "HttpStatusCode": 200, "Message": "OK", **data}


def _bool(value: str | None) -> bool:
    return str(value).lower() == "true"


# ---- MSE ------------------------------------------------------------------------------------

def _gateway_view(gw_id: str, gw: dict[str, Any]) -> dict[str, Any]:
    status = GATEWAY_STATUS.get(str(gw.get("status", "running")), 3)
    own = {"SlbId": f"lb-{gw_id}-own", "SlbIp": gw.get("slb_address", ""), "SlbPort": "80", "Type": "PUB_NET",
           "GatewaySlbMode": "CREATE", "GatewaySlbStatus": "Ready"}
    return {"GatewayUniqueId": gw_id, "Name": gw.get("name", gw_id), "Status": status,
            "StatusDesc": str(gw.get("status", "running")), "VpcId": gw.get("vpc_id", ""), "Vpc": gw.get("vpc_id", ""),
            "GatewayVersion": str(gw["version"]), "Replica": len(gw.get("node_ips", [])),
            "InternetSlb": [own] if own["SlbIp"] else [], "Slb": []}


@action("mse", "ListGateway", "PageNumber PageSize FilterParams DescSort OrderItem")
def list_gateway(s: CloudState, q: dict[str, str]) -> dict[str, Any]:
    flt = _json(q, "FilterParams", {})
    page, size = int(q.get("PageNumber", 1)), int(q.get("PageSize", 10))
    rows = [_gateway_view(k, g) for k, g in sorted(s.gateways.items())
            if flt.get("GatewayUniqueId") in (None, k) and flt.get("Vpc") in (None, g.get("vpc_id"))
            and flt.get("Name") in (None, g.get("name"))]
    return _ok(Data={"Result": rows[(page - 1) * size: page * size], "TotalSize": len(rows),
                     "PageNumber": page, "PageSize": size})


@action("mse", "GetGateway", "GatewayUniqueId")
def get_gateway(s: CloudState, q: dict[str, str]) -> dict[str, Any]:
    _need(q, "GatewayUniqueId")
    view = _gateway_view(q["GatewayUniqueId"], s.gateway(q["GatewayUniqueId"]))
    return _ok(Data={k: view[k] for k in ("GatewayUniqueId", "Name", "Status", "StatusDesc", "Vpc", "Replica")})


@action("mse", "ListServiceSource", "GatewayUniqueId Source")
def list_service_source(s: CloudState, q: dict[str, str]) -> dict[str, Any]:
    _need(q, "GatewayUniqueId")
    gw = s.gateway(q["GatewayUniqueId"])
    rows = [{**src, "GatewayUniqueId": q["GatewayUniqueId"]} for src in gw["sources"]
            if q.get("Source") in (None, src["Source"])]
    return _ok(Data=copy.deepcopy(rows))


INGRESS_OPTIONS = {"EnableIngress", "EnableStatus", "IngressClass", "WatchNamespace"}


def _ingress_options(q: dict[str, str]) -> dict[str, Any] | None:
    opts = _json(q, "IngressOptionsRequest", None)
    if opts is None:
        return None
    if not isinstance(opts, dict) or set(opts) - INGRESS_OPTIONS:
        raise ApiError(400, "InvalidParameter", "IngressOptionsRequest has unknown fields.")
    return opts


def _conflict(cluster: str, have: str, want: str) -> BusinessError:
    return BusinessError("mse.backend.gw.MIGRATE_INGRESS_CLASS_CONFLICT",
                         f"mse.backend.gw.MIGRATE_INGRESS_CLASS_CONFLICT: cluster {cluster} is already "
                         f"associated with Ingress class {have}, not {want}")


@action("mse", "AddServiceSource", "GatewayUniqueId Source Type Name Address IngressOptionsRequest GroupList "
        "PathList ToAuthorizeSecurityGroups")
def add_service_source(s: CloudState, q: dict[str, str]) -> dict[str, Any]:
    _need(q, "GatewayUniqueId", "Source", "Name", "Address")
    gw = s.gateway(q["GatewayUniqueId"])
    opts = _ingress_options(q) or {}
    for src in gw["sources"]:
        if src["Address"] == q["Address"]:
            have = src["IngressOptions"]
            if have.get("EnableIngress") and have.get("IngressClass", "") != opts.get("IngressClass", ""):
                raise _conflict(q["Address"], have.get("IngressClass", ""), opts.get("IngressClass", ""))
            raise BusinessError("ServiceSourceExists", f"ServiceSourceExists: cluster {q['Address']} is already added")
    src = s._source(q["Address"], str(opts.get("IngressClass", "")), bool(opts.get("EnableStatus", False)))
    src["Name"] = q["Name"]
    src["IngressOptions"]["EnableIngress"] = bool(opts.get("EnableIngress", False))
    gw["sources"].append(src)
    return _ok(Data=src["Id"])


@action("mse", "UpdateServiceSource", "GatewayUniqueId Id GatewayId Name Address Source Type PathList "
        "IngressOptionsRequest")
def update_service_source(s: CloudState, q: dict[str, str]) -> dict[str, Any]:
    _need(q, "GatewayUniqueId", "Id")
    gw = s.gateway(q["GatewayUniqueId"])
    for src in gw["sources"]:
        if str(src["Id"]) == q["Id"]:
            opts = _ingress_options(q)
            if opts is not None:
                src["IngressOptions"].update(opts)
            return _ok(Data=src["Id"])
    raise BusinessError("SourceNotFound", f"SourceNotFound: no service source {q['Id']}", status=404)


@action("mse", "DeleteServiceSource", "GatewayUniqueId SourceId")
def delete_service_source(s: CloudState, q: dict[str, str]) -> dict[str, Any]:
    _need(q, "GatewayUniqueId", "SourceId")
    gw = s.gateway(q["GatewayUniqueId"])
    before = len(gw["sources"])
    gw["sources"] = [src for src in gw["sources"] if str(src["Id"]) != q["SourceId"]]
    if len(gw["sources"]) == before:
        raise BusinessError("SourceNotFound", f"SourceNotFound: no service source {q['SourceId']}", status=404)
    return _ok()


def _routes(s: CloudState, gw: dict[str, Any]) -> list[dict[str, Any]]:
    """The routes the gateway parsed from the Ingresses of the classes it listens to."""
    out: list[dict[str, Any]] = []
    hidden = set(gw.get("missing_routes", []))
    for src in gw["sources"]:
        opts = src["IngressOptions"]
        cluster = s.clusters.get(src["Address"], {})
        if not opts.get("EnableIngress"):
            continue
        default = cluster.get("default_ingress_class", "")
        for ing in cluster.get("ingresses", []):
            cls = ing.get("ingress_class") or (ing.get("annotations") or {}).get("kubernetes.io/ingress.class", "")
            if (cls or default) != opts.get("IngressClass", ""):
                continue
            for rule in ing.get("rules", []):
                for p in rule.get("paths", []):
                    path = p.get("path", "/")
                    if f"{rule['host']}{path}" in hidden:
                        continue
                    out.append({"Id": len(out) + 1, "Name": f"{ing['namespace']}-{ing['name']}-{len(out) + 1}",
                                "DomainName": rule["host"], "DomainNameList": [rule["host"]], "Type": "Ingress",
                                "Status": 2, "RoutePredicates": {"PathPredicates": {"Path": path, "Type": "PRE"}},
                                "tls": rule["host"] in (ing.get("tls") or [])})
    return out


@action("mse", "ListGatewayRoute", "PageNumber PageSize FilterParams DescSort OrderItem")
def list_gateway_route(s: CloudState, q: dict[str, str]) -> dict[str, Any]:
    flt = _json(q, "FilterParams", {})
    if not flt.get("GatewayUniqueId"):
        raise ApiError(400, "MissingGatewayUniqueId", "FilterParams.GatewayUniqueId is mandatory for this action.")
    rows = [{k: v for k, v in r.items() if k != "tls"} for r in _routes(s, s.gateway(flt["GatewayUniqueId"]))]
    page, size = int(q.get("PageNumber", 1)), int(q.get("PageSize", 10))
    return _ok(Data={"Result": rows[(page - 1) * size: page * size], "TotalSize": len(rows),
                     "PageNumber": page, "PageSize": size})


@action("mse", "ListGatewayDomain", "GatewayUniqueId DomainName Type")
def list_gateway_domain(s: CloudState, q: dict[str, str]) -> dict[str, Any]:
    _need(q, "GatewayUniqueId")
    domains: dict[str, bool] = {}
    for r in _routes(s, s.gateway(q["GatewayUniqueId"])):
        domains[r["DomainName"]] = domains.get(r["DomainName"], False) or r["tls"]
    rows = [{"Id": i, "Name": d, "Protocol": "HTTPS" if tls else "HTTP", "Type": "Ingress", "Status": 2}
            for i, (d, tls) in enumerate(sorted(domains.items()), start=1) if q.get("DomainName") in (None, d)]
    return _ok(Data=rows)


def _targets(link: dict[str, Any]) -> list[tuple[str, int]]:
    """Every (vServer group, port) an association put the gateway's nodes into, in order."""
    out: list[tuple[str, int]] = []
    if link.get("VServerGroupId"):
        out.append((link["VServerGroupId"], int(link.get("HttpPort") or 80)))
    if link.get("HttpsVServerGroupId"):
        out.append((link["HttpsVServerGroupId"], int(link.get("HttpsPort") or 443)))
    out += [(v["VServerGroupId"], int(v["Port"])) for v in link["VServiceList"]]
    return list(dict.fromkeys(out))


def _node_id(gw_id: str, i: int) -> str:
    return f"eni-{gw_id}-{i}"


def _is_node_of(gw_id: str, b: dict[str, Any]) -> bool:
    return str(b["server_id"]).startswith(f"eni-{gw_id}-")


def _place_nodes(s: CloudState, gw_id: str, slb_id: str, targets: list[tuple[str, int]],
                 nodes: list[tuple[int, str, int]]) -> None:
    """Put each node (index, ip, weight) into each (group, port) where it is not already."""
    for vg, port in targets:
        group = s.slbs[slb_id]["vgroups"][vg]
        for i, ip, weight in nodes:
            sid = _node_id(gw_id, i)
            if not any(b["server_id"] == sid and int(b["port"]) == port for b in group):
                group.append({"server_id": sid, "ip": ip, "port": port, "weight": weight, "type": "eni",
                              "description": f"mse/{gw_id}"})


def _link_view(s: CloudState, link: dict[str, Any]) -> dict[str, Any]:
    slb = s.slbs.get(link["SlbId"], {})
    services = [{**v, "Port": str(v["Port"])} for v in link["VServiceList"]]
    row = {"Id": str(link["Id"]), "SlbId": link["SlbId"], "SlbIp": slb.get("address", ""), "Type": "PUB_NET",
           "GatewaySlbMode": "UserSelect", "GatewaySlbStatus": "Ready", "ServiceWeight": link["ServiceWeight"],
           "VServiceList": services, "VsMetaInfo": json.dumps(services), "EditEnable": True}
    # ListGatewaySlb (SDK 6.24.0 ListGatewaySlbResponseBodyData): the HTTP and HTTPS group ids and their ports
    if link.get("VServerGroupId"):
        row.update(VServerGroupId=link["VServerGroupId"], HttpPort=int(link.get("HttpPort") or 80))
    if link.get("HttpsVServerGroupId"):
        row.update(HttpsVServerGroupId=link["HttpsVServerGroupId"], HttpsPort=int(link.get("HttpsPort") or 443))
    return row


@action("mse", "ListGatewaySlb", "GatewayUniqueId")
def list_gateway_slb(s: CloudState, q: dict[str, str]) -> dict[str, Any]:
    _need(q, "GatewayUniqueId")
    gw_id = q["GatewayUniqueId"]
    gw = s.gateway(gw_id)
    rows = []
    if gw.get("slb_address"):
        rows.append({"Id": f"own-{gw_id}", "SlbId": f"lb-{gw_id}-own", "SlbIp": gw["slb_address"], "SlbPort": "80",
                     "Type": "PUB_NET", "GatewaySlbMode": "CREATE", "GatewaySlbStatus": "Ready", "EditEnable": False})
    rows += [_link_view(s, link) for link in gw["links"]]
    return _ok(Data=rows)


def _spread(total: int, n: int) -> list[int]:
    base, extra = divmod(total, n) if n else (0, 0)
    return [base + (1 if i < extra else 0) for i in range(n)]


VSERVICE_FIELDS = {"VServerGroupId", "VServerGroupName", "Port", "Protocol"}


def _port(value: Any, default: int) -> int:
    try:
        port = int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        raise ApiError(400, "InvalidParameter", f"The port {value!r} is not a number.") from None
    if not 1 <= port <= 65535:
        raise ApiError(400, "InvalidParameter", f"The port {port} is out of range 1..65535.")
    return port


def _vservices(s: CloudState, slb_id: str, q: dict[str, str]) -> list[dict[str, Any]]:
    services = _json(q, "VServiceList", [])
    if not isinstance(services, list):
        raise ApiError(400, "InvalidParameter", "VServiceList must be a list.")
    out = []
    for v in services:
        if not isinstance(v, dict) or set(v) - VSERVICE_FIELDS or not v.get("VServerGroupId"):
            raise ApiError(400, "InvalidParameter", "VServiceList entries are {VServerGroupId, VServerGroupName, "
                                                    "Port, Protocol}, with VServerGroupId.")
        protocol = str(v.get("Protocol") or "HTTP").upper()
        # AddGatewaySlbRequestVServiceList.protocol (SDK 6.24.0): valid values HTTP, HTTPS
        if protocol not in ("HTTP", "HTTPS"):
            raise ApiError(400, "InvalidParameter", f"VServiceList Protocol {v.get('Protocol')} is not HTTP or HTTPS.")
        name = v.get("VServerGroupName") or s.slbs[slb_id]["vgroup_names"].get(v["VServerGroupId"], "")
        out.append({"VServerGroupId": v["VServerGroupId"], "VServerGroupName": name,
                    "Port": _port(v.get("Port"), 443 if protocol == "HTTPS" else 80), "Protocol": protocol})
    return out


@action("mse", "AddGatewaySlb", "GatewayUniqueId SlbId Type VServerGroupId HttpsVServerGroupId HttpPort HttpsPort "
        "ServiceWeight VServiceList")
def add_gateway_slb(s: CloudState, q: dict[str, str]) -> dict[str, Any]:
    _need(q, "GatewayUniqueId", "SlbId")
    gw_id = q["GatewayUniqueId"]
    gw = s.gateway(gw_id)
    slb = s.slbs.get(q["SlbId"])
    if slb is None:
        raise ApiError(400, "InvalidParameter", f"SLB {q['SlbId']} does not exist.")
    # help.aliyun.com AddGatewaySlb: VServerGroupId = the HTTP group on HttpPort (e.g. 80), HttpsVServerGroupId
    # = the HTTPS group on HttpsPort (e.g. 443), VServiceList = every group with its own Port and Protocol
    weight = int(q.get("ServiceWeight") or 0)
    link: dict[str, Any] = {"Id": 0, "SlbId": q["SlbId"], "ServiceWeight": weight,
            "VServerGroupId": q.get("VServerGroupId", ""),
            "HttpPort": _port(q.get("HttpPort"), 80) if q.get("VServerGroupId") else None,
            "HttpsVServerGroupId": q.get("HttpsVServerGroupId", ""),
            "HttpsPort": _port(q.get("HttpsPort"), 443) if q.get("HttpsVServerGroupId") else None,
            "VServiceList": _vservices(s, q["SlbId"], q)}
    targets = _targets(link)
    if not targets:
        raise ApiError(400, "InvalidParameter", "Give VServerGroupId, HttpsVServerGroupId or VServiceList.")
    for vg, _ in targets:
        if vg not in slb["vgroups"]:
            raise ApiError(400, "InvalidParameter", f"SLB {q['SlbId']} has no vServer group {vg}.")
    # one association per SLB (the emulator's earlier SlbAlreadyBound rule; the exact cloud code is INFERENCE)
    if any(existing["SlbId"] == q["SlbId"] for existing in gw["links"]):
        raise BusinessError("SlbAlreadyBound", f"SlbAlreadyBound: SLB {q['SlbId']} is already bound to {gw_id}")
    if not 0 <= weight <= 100:
        raise ApiError(400, "InvalidParameter", "ServiceWeight must be within 0..100.")
    nodes = gw.get("node_ips", [])
    # cloud-api.md §1/§4: ServiceWeight is the gateway's total, spread over its nodes as CCM does (INFERENCE)
    spread = _spread(weight, len(nodes))
    _place_nodes(s, gw_id, q["SlbId"], targets, [(i, ip, spread[i - 1]) for i, ip in enumerate(nodes, start=1)])
    link["Id"] = s.new_id()
    gw["links"].append(link)
    return _ok(Data=q["SlbId"])


@action("mse", "DeleteGatewaySlb", "GatewayUniqueId SlbId Id DeleteSlb")
def delete_gateway_slb(s: CloudState, q: dict[str, str]) -> dict[str, Any]:
    _need(q, "GatewayUniqueId", "SlbId")
    gw_id = q["GatewayUniqueId"]
    gw = s.gateway(gw_id)
    gone = [link for link in gw["links"] if link["SlbId"] == q["SlbId"] and q.get("Id") in (None, str(link["Id"]))]
    if not gone:
        raise BusinessError("SlbNotBound", f"SlbNotBound: SLB {q['SlbId']} is not bound to the gateway", status=404)
    for link in gone:
        gw["links"].remove(link)
        slb = s.slbs.get(link["SlbId"])
        # the gateway takes back what AddGatewaySlb put in: its nodes, from every group and port of the association
        for vg, port in _targets(link):
            if slb and vg in slb["vgroups"]:
                slb["vgroups"][vg] = [b for b in slb["vgroups"][vg]
                                      if not (_is_node_of(gw_id, b) and int(b["port"]) == port)]
    return _ok(Data=q["SlbId"])


# ---- SLB ------------------------------------------------------------------------------------

def _region(s: CloudState, q: dict[str, str]) -> None:
    _need(q, "RegionId")
    if q["RegionId"] != s.region:
        raise ApiError(400, "InvalidRegionId", f"The region {q['RegionId']} is not served here.")


@action("slb", "DescribeLoadBalancerAttribute", "LoadBalancerId ListenerPort")
def describe_lb(s: CloudState, q: dict[str, str]) -> dict[str, Any]:
    _region(s, q)
    _need(q, "LoadBalancerId")
    slb = s.slb(q["LoadBalancerId"])
    ports = [{"ListenerPort": int(li["port"]), "ListenerProtocol": li["protocol"].lower()} for li in slb["listeners"]]
    return {"LoadBalancerId": q["LoadBalancerId"], "Address": slb["address"], "VpcId": slb.get("vpc_id", ""),
            "AddressType": "internet", "LoadBalancerStatus": "active", "RegionId": s.region,
            "ListenerPortsAndProtocol": {"ListenerPortAndProtocol": ports},
            "Tags": {"Tag": [{"TagKey": k, "TagValue": v} for k, v in slb.get("tags", {}).items()]}}


@action("slb", "DescribeLoadBalancerListeners", "LoadBalancerId.N ListenerProtocol ListenerPort MaxResults NextToken")
def describe_listeners(s: CloudState, q: dict[str, str]) -> dict[str, Any]:
    _region(s, q)
    rows = []
    for slb_id in _listed(q, "LoadBalancerId"):
        for li in s.slb(slb_id)["listeners"]:
            if q.get("ListenerProtocol", li["protocol"]).lower() != li["protocol"].lower():
                continue
            if int(q.get("ListenerPort", li["port"])) != int(li["port"]):
                continue
            rows.append({"LoadBalancerId": slb_id, "ListenerPort": int(li["port"]),
                         "ListenerProtocol": li["protocol"].lower(), "Scheduler": li.get("scheduler", "wrr"),
                         "AclStatus": "on" if li.get("acl_on") else "off", "VServerGroupId": li.get("vgroup_id", ""),
                         "Status": "running"})
    start, size = int(q.get("NextToken") or 0), int(q.get("MaxResults") or 20)
    nxt = str(start + size) if start + size < len(rows) else ""
    return {"Listeners": rows[start:start + size], "TotalCount": len(rows), "MaxResults": size, "NextToken": nxt}


def _instances(s: CloudState, q: dict[str, str]) -> list[dict[str, Any]]:
    if q.get("ResourceType") != "instance":
        raise ApiError(400, "InvalidParameter.ResourceType", "Only ResourceType instance is emulated.")
    ids = _listed(q, "ResourceId")
    if not ids:
        raise ApiError(400, "MissingResourceId", "ResourceId is mandatory for this action.")
    return [s.slb(i) for i in ids]


@action("slb", "TagResources", "ResourceType ResourceId.N Tag.N.Key Tag.N.Value")
def tag_resources(s: CloudState, q: dict[str, str]) -> dict[str, Any]:
    _region(s, q)
    names = [k for k in sorted(q, key=_natural) if re.match(r"^Tag\.\d+\.Key$", k)]
    keys = [q[k] for k in names]
    values = [q.get(k[: -len("Key")] + "Value", "") for k in names]
    if not keys or len(keys) > 20:
        raise ApiError(400, "InvalidParameter.Tag", "Between 1 and 20 tags are allowed in one call.")
    for slb in _instances(s, q):
        slb.setdefault("tags", {}).update(zip(keys, values, strict=True))
    return {}


@action("slb", "UntagResources", "ResourceType ResourceId.N TagKey.N All")
def untag_resources(s: CloudState, q: dict[str, str]) -> dict[str, Any]:
    _region(s, q)
    keys = _listed(q, "TagKey")
    if len(keys) > 20:
        raise ApiError(400, "InvalidParameter.TagKey", "At most 20 tag keys are allowed in one call.")
    for slb in _instances(s, q):
        tags = slb.setdefault("tags", {})
        for k in list(tags) if _bool(q.get("All")) else keys:
            tags.pop(k, None)
    return {}


def _natural(key: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in key.split(".")]


def _set_listener(protocol: str) -> Handler:
    def handler(s: CloudState, q: dict[str, str]) -> dict[str, Any]:
        _region(s, q)
        _need(q, "LoadBalancerId", "ListenerPort")
        for li in s.slb(q["LoadBalancerId"])["listeners"]:
            if int(li["port"]) == int(q["ListenerPort"]) and li["protocol"].lower() == protocol.lower():
                if q.get("Scheduler"):
                    if q["Scheduler"] not in ("wrr", "rr", "wlc", "sch", "tch"):
                        raise ApiError(400, "InvalidParameter.Scheduler", "The Scheduler is not valid.")
                    li["scheduler"] = q["Scheduler"]
                return {}
        raise ApiError(400, "InvalidParameter",
                       f"The listener {q['ListenerPort']}/{protocol} does not exist on {q['LoadBalancerId']}.")
    return handler


for _proto in ("TCP", "HTTP", "HTTPS"):
    action("slb", f"SetLoadBalancer{_proto}ListenerAttribute", "LoadBalancerId ListenerPort Scheduler")(
        _set_listener(_proto))


def _backend_view(b: dict[str, Any]) -> dict[str, Any]:
    return {"ServerId": b["server_id"], "ServerIp": b.get("ip", ""), "Port": int(b["port"]),
            "Weight": int(b["weight"]), "Type": b.get("type", "ecs"), "Description": b.get("description", "")}


@action("slb", "DescribeVServerGroups", "LoadBalancerId IncludeListener IncludeRule Description")
def describe_vgroups(s: CloudState, q: dict[str, str]) -> dict[str, Any]:
    _region(s, q)
    _need(q, "LoadBalancerId")
    slb = s.slb(q["LoadBalancerId"])
    rows = []
    for vg, group in slb["vgroups"].items():
        name = slb["vgroup_names"].get(vg, vg)
        # DescribeVServerGroupsRequest.description (SDK 3.3.31): "the name of the vServer group" (substring: INFERENCE)
        if q.get("Description") and q["Description"] not in name:
            continue
        row: dict[str, Any] = {"VServerGroupId": vg, "VServerGroupName": name, "ServerCount": len(group)}
        # DescribeVServerGroupsRequest.include_listener/include_rule: associated objects only when asked (default no)
        if _bool(q.get("IncludeListener")) or _bool(q.get("IncludeRule")):
            row["AssociatedObjects"] = {}
        if _bool(q.get("IncludeListener")):
            row["AssociatedObjects"]["Listeners"] = {"Listener": [
                {"Port": int(li["port"]), "Protocol": li["protocol"].lower()}
                for li in slb["listeners"] if li.get("vgroup_id") == vg]}
        if _bool(q.get("IncludeRule")):
            row["AssociatedObjects"]["Rules"] = {"Rule": []}
        rows.append(row)
    return {"VServerGroups": {"VServerGroup": rows}}


@action("slb", "DescribeHealthStatus", "LoadBalancerId ListenerPort ListenerProtocol")
def describe_health_status(s: CloudState, q: dict[str, str]) -> dict[str, Any]:
    """Every backend of the listener's vServer group (all listeners when no port is given), `normal`
    unless the seed's `health: {"<server id>:<port>": "abnormal"}` says otherwise (cloud-api.md §2)."""
    _region(s, q)
    _need(q, "LoadBalancerId")
    slb = s.slb(q["LoadBalancerId"])
    marks = s.health
    rows = []
    for li in slb["listeners"]:
        if q.get("ListenerPort") and int(q["ListenerPort"]) != int(li["port"]):
            continue
        for b in slb["vgroups"].get(li.get("vgroup_id", ""), []):
            rows.append({"ServerId": b["server_id"], "ServerIp": b.get("ip", ""), "Port": int(b["port"]),
                         "ListenerPort": int(li["port"]), "Protocol": li["protocol"].lower(),
                         "ServerHealthStatus": marks.get(f"{b['server_id']}:{b['port']}", "normal")})
    return {"BackendServers": {"BackendServer": rows}}


@action("slb", "DescribeVServerGroupAttribute", "VServerGroupId")
def describe_vgroup(s: CloudState, q: dict[str, str]) -> dict[str, Any]:
    _region(s, q)
    _need(q, "VServerGroupId")
    slb_id, group = s.vgroup(q["VServerGroupId"])
    return {"VServerGroupId": q["VServerGroupId"], "VServerGroupName": s.vgroup_name(q["VServerGroupId"]),
            "LoadBalancerId": slb_id, "BackendServers": {"BackendServer": [_backend_view(b) for b in group]}}


BACKEND_FIELDS = {"ServerId", "Weight", "Port", "Type", "ServerIp", "Description"}


def _match_backend(group: list[dict[str, Any]], item: dict[str, Any]) -> dict[str, Any]:
    """The one backend a BackendServers entry names."""
    sid = item.get("ServerId")
    same = [b for b in group if b["server_id"] == sid]
    # SetVServerGroupAttributeRequest.backend_servers (SDK 3.3.31): ENIs with several IPs are told apart by ServerIp
    if item.get("ServerIp"):
        same = [b for b in same if b.get("ip", "") == item["ServerIp"]]
    if "Port" in item:
        # cloud-api.md §2: a backend is ServerId + Port (one server may sit in a group on several ports)
        match = [b for b in same if int(b["port"]) == int(item["Port"])]
    elif len({int(b["port"]) for b in same}) > 1:
        # the same rule: without Port an entry for a server on several ports names no one backend (INFERENCE)
        ports = ", ".join(str(b["port"]) for b in same)
        raise ApiError(400, "InvalidParameter",
                       f"The backend server {sid} is in the vServer group on ports {ports}: the entry without Port "
                       "is ambiguous.")
    else:
        match = same
    if not match:
        raise ApiError(400, "BackendServer.NotExist", f"The backend server {sid} does not exist.")
    b = match[0]
    # SetVServerGroupAttributeRequest.backend_servers (SDK 3.3.31): an ENI or ECI ServerId needs Type
    if b.get("type", "ecs") in ("eni", "eci") and item.get("Type") != b["type"]:
        raise ApiError(400, "InvalidParameter", f"The backend server {sid} is of type {b['type']}: set Type.")
    return b


@action("slb", "SetVServerGroupAttribute", "VServerGroupId BackendServers VServerGroupName")
def set_vgroup(s: CloudState, q: dict[str, str]) -> dict[str, Any]:
    _region(s, q)
    _need(q, "VServerGroupId")
    slb_id, group = s.vgroup(q["VServerGroupId"])
    wanted = _json(q, "BackendServers", [])
    # SetVServerGroupAttributeRequest.backend_servers (SDK 3.3.31): at most 20 backend servers in each call
    if not isinstance(wanted, list) or len(wanted) > 20:
        raise ApiError(400, "InvalidParameter.BackendServers", "At most 20 backend servers are allowed in one call.")
    changes = []
    for item in wanted:
        if not isinstance(item, dict) or set(item) - BACKEND_FIELDS:
            raise ApiError(400, "InvalidParameter.BackendServers", "BackendServers has unknown fields.")
        weight = int(item.get("Weight", 100))
        # same docstring: Weight 0..100, default 100
        if not 0 <= weight <= 100:
            raise ApiError(400, "InvalidParameter.Weight", "Weight must be within 0..100.")
        changes.append((_match_backend(group, item), weight))
    name = q.get("VServerGroupName")
    # CreateVServerGroupRequest.vserver_group_name (SDK 3.3.31): a group name is 1 to 80 characters
    if name is not None and not 1 <= len(name) <= 80:
        raise ApiError(400, "InvalidParameter.VServerGroupName", "VServerGroupName must be 1..80 characters.")
    for b, w in changes:
        b["weight"] = w
    # SetVServerGroupAttribute doc: "only used to modify the weights of backend servers and names of vServer groups"
    if name is not None:
        s.slbs[slb_id]["vgroup_names"][q["VServerGroupId"]] = name
    return {"VServerGroupId": q["VServerGroupId"], "VServerGroupName": s.vgroup_name(q["VServerGroupId"]),
            "LoadBalancerId": slb_id, "BackendServers": {"BackendServer": [_backend_view(b) for b in group]}}


# ---- DNS ------------------------------------------------------------------------------------
# Rules modelled (Alibaba Cloud DNS documentation): weights apply among records of one name, type
# and line, only to A, AAAA and CNAME records ("Weight configuration"); the weighted-round-robin
# flag is set per name, type and line (SetDNSSLBStatus: SubDomain, Type, Line) and read back with
# DescribeDNSSLBSubDomains; a CNAME shares its name and line with no A or AAAA record ("DNS record
# conflict rules", DomainRecordConflict); UpdateDomainRecord takes RR, Type and Value again with
# the TTL (its API reference: all three required). That it refuses a write that changes nothing
# with DomainRecordDuplicate is INFERENCE from the action's error codes: the adapter takes it as done.

WEIGHTED_TYPES = ("A", "AAAA", "CNAME")
ADDRESS_TYPES = ("A", "AAAA")


def _sub_name(sub: str) -> str:
    return sub[2:] if sub.startswith("@.") else sub


def _record_view(s: CloudState, r: dict[str, Any]) -> dict[str, Any]:
    zone = s.zone(r["domain"]) or r["domain"]
    rr = "@" if r["domain"] == zone else r["domain"][: -len(zone) - 1]
    view = {"RecordId": r["id"], "RR": rr, "DomainName": zone, "Type": r["type"], "Value": r["value"],
            "TTL": int(r.get("ttl", 600)), "Line": r.get("line", "default"),
            "Status": "ENABLE" if r["enabled"] else "DISABLE", "Weight": int(r["weight"]), "Locked": False}
    if r.get("priority") is not None:
        view["Priority"] = int(r["priority"])
    return view


def _weighted(s: CloudState, name: str, type: str, line: str) -> bool:
    key = f"{name}|{type.upper()}|{line}"
    if key in s.weighted:
        return s.weighted[key]
    return bool(s.weighted.get(name)) and type.upper() == "A" and line == "default"  # an old seed's flag


@action("dns", "DescribeDomains", "PageNumber PageSize KeyWord SearchMode GroupId ResourceGroupId Starmark")
def describe_domains(s: CloudState, q: dict[str, str]) -> dict[str, Any]:
    rows = [{"DomainId": f"dom-{i}", "DomainName": z, "RecordCount": sum(1 for r in s.records.values()
                                                                          if s.zone(r["domain"]) == z)}
            for i, z in enumerate(s.zones, start=1) if q.get("KeyWord", "") in z]
    page, size = int(q.get("PageNumber", 1)), int(q.get("PageSize", 20))
    return {"Domains": {"Domain": rows[(page - 1) * size: page * size]}, "TotalCount": len(rows),
            "PageNumber": page, "PageSize": size}


@action("dns", "DescribeDomainInfo", "DomainName NeedDetailAttributes")
def describe_domain_info(s: CloudState, q: dict[str, str]) -> dict[str, Any]:
    _need(q, "DomainName")
    if q["DomainName"] not in s.zones:
        raise ApiError(400, "InvalidDomainName.NoExist", "The specified domain name does not exist.")
    return {"DomainId": f"dom-{s.zones.index(q['DomainName']) + 1}", "DomainName": q["DomainName"]}


@action("dns", "DescribeSubDomainRecords", "SubDomain DomainName Type Line PageNumber PageSize")
def describe_sub_domain_records(s: CloudState, q: dict[str, str]) -> dict[str, Any]:
    _need(q, "SubDomain")
    name = _sub_name(q["SubDomain"])
    # Without DomainName, Alidns takes the last two labels as the zone (DescribeSubDomainRecords API
    # reference: "a.www.example.com" with no DomainName is RR "a.www" in example.com).
    zone = q.get("DomainName") or ".".join(name.split(".")[-2:])
    rows = [_record_view(s, r) for r in s.records.values()
            if r["domain"] == name and s.zone(r["domain"]) == zone and q.get("Type", r["type"]) == r["type"]
            and q.get("Line", r.get("line", "default")) == r.get("line", "default")]
    page, size = int(q.get("PageNumber", 1)), int(q.get("PageSize", 20))
    return {"DomainRecords": {"Record": rows[(page - 1) * size: page * size]}, "TotalCount": len(rows),
            "PageNumber": page, "PageSize": size}


def _conflict(s: CloudState, name: str, type: str, line: str, skip: str = "") -> None:
    kinds = {r["type"] for r in s.records.values()
             if r["domain"] == name and r.get("line", "default") == line and r["id"] != skip}
    if (type in ADDRESS_TYPES and "CNAME" in kinds) or (type == "CNAME" and kinds & set(ADDRESS_TYPES)):
        raise ApiError(400, "DomainRecordConflict", "The DNS record conflicts with other records.")


@action("dns", "AddDomainRecord", "DomainName RR Type Value TTL Line Priority")
def add_domain_record(s: CloudState, q: dict[str, str]) -> dict[str, Any]:
    _need(q, "DomainName", "RR", "Type", "Value")
    if q["DomainName"] not in s.zones:
        raise ApiError(400, "InvalidDomainName.NoExist", "The specified domain name does not exist.")
    name = q["DomainName"] if q["RR"] == "@" else f"{q['RR']}.{q['DomainName']}"
    line = q.get("Line", "default")
    for r in s.records.values():
        if r["domain"] == name and r["type"] == q["Type"] and r["value"] == q["Value"] \
                and r.get("line", "default") == line:
            raise ApiError(400, "DomainRecordDuplicate", "The DNS record already exists.")
    _conflict(s, name, q["Type"], line)
    rid = str(s.new_id())
    s.records[rid] = {"id": rid, "domain": name, "type": q["Type"], "value": q["Value"], "weight": 1,
                      "enabled": True, "ttl": int(q.get("TTL", 600)), "line": line}
    return {"RecordId": rid}


@action("dns", "UpdateDomainRecord", "RecordId RR Type Value TTL Line Priority")
def update_domain_record(s: CloudState, q: dict[str, str]) -> dict[str, Any]:
    _need(q, "RecordId", "RR", "Type", "Value")
    r = s.record(q["RecordId"])
    zone = s.zone(r["domain"]) or r["domain"]
    name = zone if q["RR"] == "@" else f"{q['RR']}.{zone}"
    want = {"domain": name, "type": q["Type"], "value": q["Value"], "ttl": int(q.get("TTL", r.get("ttl", 600))),
            "line": q.get("Line", r.get("line", "default"))}
    if all(r.get(k) == v for k, v in want.items()):
        raise ApiError(400, "DomainRecordDuplicate", "The DNS record already exists.")
    _conflict(s, name, q["Type"], want["line"], skip=r["id"])
    r.update(want)
    return {"RecordId": q["RecordId"]}


@action("dns", "SetDNSSLBStatus", "SubDomain DomainName Open Type Line")
def set_dnsslb_status(s: CloudState, q: dict[str, str]) -> dict[str, Any]:
    _need(q, "SubDomain")
    name = _sub_name(q["SubDomain"])
    if not s.zone(name):
        raise ApiError(400, "InvalidDomainName.NoExist", "The specified domain name does not exist.")
    type, line = q.get("Type", "A").upper(), q.get("Line", "default")
    if type not in WEIGHTED_TYPES:
        raise ApiError(400, "InvalidParameter.Type", "Weights apply to A, AAAA and CNAME records only.")
    opened = q.get("Open", "true").lower() != "false"
    s.weighted[f"{name}|{type}|{line}"] = opened
    count = sum(1 for r in s.records.values()
                if r["domain"] == name and r["type"] == type and r.get("line", "default") == line)
    return {"Open": opened, "RecordCount": count}


@action("dns", "DescribeDNSSLBSubDomains", "DomainName Rr PageNumber PageSize")
def describe_dnsslb_sub_domains(s: CloudState, q: dict[str, str]) -> dict[str, Any]:
    """Names with more than one record of a weighted type, and their flags (per type, per line)."""
    _need(q, "DomainName")
    zone = q["DomainName"]
    if zone not in s.zones:
        raise ApiError(400, "InvalidDomainName.NoExist", "The specified domain name does not exist.")
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in s.records.values():
        if s.zone(r["domain"]) == zone and r["type"] in WEIGHTED_TYPES:
            rr = "@" if r["domain"] == zone else r["domain"][: -len(zone) - 1]
            if q.get("Rr", rr) == rr:
                groups.setdefault((r["domain"], r["type"]), []).append(r)
    rows = []
    for (name, type), recs in sorted(groups.items()):
        lines = sorted({r.get("line", "default") for r in recs})
        rows.append({"SubDomain": f"@.{name}" if name == zone else name, "Type": type, "RecordCount": len(recs),
                     "Open": _weighted(s, name, type, "default"),
                     "LineAlgorithms": {"LineAlgorithm": [{"Line": ln, "Open": _weighted(s, name, type, ln)}
                                                          for ln in lines]}})
    page, size = int(q.get("PageNumber", 1)), int(q.get("PageSize", 20))
    return {"SlbSubDomains": {"SlbSubDomain": rows[(page - 1) * size: page * size]}, "TotalCount": len(rows),
            "PageNumber": page, "PageSize": size}


@action("dns", "UpdateDNSSLBWeight", "RecordId Weight")
def update_dnsslb_weight(s: CloudState, q: dict[str, str]) -> dict[str, Any]:
    _need(q, "RecordId", "Weight")
    weight = int(q["Weight"])
    if not 1 <= weight <= 100:
        raise ApiError(400, "InvalidParameter.Weight", "Weight must be within 1..100.")
    s.record(q["RecordId"])["weight"] = weight
    return {"RecordId": q["RecordId"], "Weight": weight}


@action("dns", "SetDomainRecordStatus", "RecordId Status")
def set_domain_record_status(s: CloudState, q: dict[str, str]) -> dict[str, Any]:
    _need(q, "RecordId", "Status")
    if q["Status"].lower() not in ("enable", "disable"):
        raise ApiError(400, "InvalidParameter.Status", "Status must be Enable or Disable.")
    s.record(q["RecordId"])["enabled"] = q["Status"].lower() == "enable"
    return {"RecordId": q["RecordId"], "Status": q["Status"].upper()}


@action("dns", "DeleteDomainRecord", "RecordId")
def delete_domain_record(s: CloudState, q: dict[str, str]) -> dict[str, Any]:
    _need(q, "RecordId")
    s.record(q["RecordId"])
    del s.records[q["RecordId"]]
    return {"RecordId": q["RecordId"]}


class PublicResolver:
    """What a resolver on the internet gets for a name (ResolverPort) from the emulated Alibaba Cloud
    DNS: the enabled A records on the default line, all of them with weighting off; with it on ONE
    value per query picked by weight, never one weighted 0 (Alibaba Cloud DNS "Weight configuration",
    the same rule as `providers.sim.network.SimResolver`); names hosted elsewhere from the seed."""

    def __init__(self, emulator: Emulator) -> None:
        self.state = emulator.state
        self._rng = random.Random(11)

    def addresses(self, *, domain: str) -> list[str]:
        s = self.state
        with s.lock:
            if not s.zone(domain):
                return sorted(s.elsewhere.get(domain, []))
            live = [r for r in s.records.values() if r["domain"] == domain and r["enabled"] and r["type"] == "A"
                    and r.get("line", "default") == "default"]
            if not _weighted(s, domain, "A", "default"):
                return sorted({r["value"] for r in live})
            drawn = [r for r in live if int(r["weight"]) > 0]
            return [self._rng.choices([r["value"] for r in drawn], weights=[int(r["weight"]) for r in drawn])[0]] \
                if drawn else []


# ---- the server -----------------------------------------------------------------------------

class Emulator:
    """The emulator's state, faults and HTTP server; use as a context manager or start()/stop()."""

    def __init__(self, seed: str | Path | dict[str, Any] | None = None, *, access_key_id: str = TEST_ACCESS_KEY_ID,
                 access_key_secret: str = TEST_ACCESS_KEY_SECRET, region: str = "cn-hangzhou",
                 host: str = "127.0.0.1", port: int = 0, retry_after_ms: int = 20, rng_seed: int = 7,
                 latency_s: float = 0.0) -> None:
        data = seed if isinstance(seed, dict) else load_seed(seed)
        # A regional API's round trip, tens of ms: half before the request is handled (its way there),
        # half before the answer leaves (its way back), so "the emulator received it" includes the first.
        self.latency_s = latency_s
        self.state = CloudState(data, region)
        self.keys = {access_key_id: access_key_secret}
        self.region = region
        self.retry_after_ms = retry_after_ms
        self.faults: dict[str, list[Fault]] = {}
        self.calls: Counter[str] = Counter()
        self.log: list[str] = []  # actions in the order they arrived, for tests of call order
        #: Writes that left a vServer group with no weighted backend where it had one: {action, vgroup_id}.
        self.violations: list[dict[str, str]] = []
        self._rng = random.Random(rng_seed)
        self._faults_lock = threading.Lock()
        self.server = ThreadingHTTPServer((host, port), _make_handler(self))
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host!s}:{port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    def config(self, **overrides: Any) -> dict[str, Any]:
        """An `alibaba:` config section pointing every product at this emulator."""
        cfg = {"region": self.region, "protocol": "http",
               "endpoints": {"mse": self.endpoint, "slb": self.endpoint, "dns": self.endpoint},
               "access_key_id": next(iter(self.keys)), "access_key_secret": next(iter(self.keys.values()))}
        cfg.update(overrides)
        return cfg

    def start(self) -> Emulator:
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="openapi-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- faults ------------------------------------------------------------------------------

    def _add(self, action_name: str, fault: Fault) -> None:
        with self._faults_lock:
            self.faults.setdefault(action_name, []).append(fault)

    def throttle(self, action_name: str, times: int | None = 1, probability: float = 1.0) -> None:
        """The next `times` calls (None: every call, with `probability`) answer `Throttling.User`."""
        self._add(action_name, Fault("throttle", times, probability, 400, "Throttling.User",
                                     "Request was denied due to user flow control."))

    def fail(self, action_name: str, times: int | None = 1, *, status: int = 503, code: str = "ServiceUnavailable",
             message: str = "The request has failed due to a temporary failure of the server.",
             probability: float = 1.0) -> None:
        self._add(action_name, Fault("error", times, probability, status, code, message))

    def business_error(self, action_name: str, code: str, times: int | None = 1, message: str = "") -> None:
        """MSE only: answer HTTP 200 with `Success: false` and `code` in the message."""
        self._add(action_name, Fault("business", times, 1.0, 400, code, message or f"{code}: refused"))

    def slow(self, action_name: str, seconds: float, times: int | None = 1, probability: float = 1.0) -> None:
        self._add(action_name, Fault("slow", times, probability, seconds=seconds))

    def clear_faults(self) -> None:
        with self._faults_lock:
            self.faults.clear()

    def _take_fault(self, action_name: str) -> Fault | None:
        with self._faults_lock:
            for key in (action_name, "*"):
                for fault in self.faults.get(key, []):
                    if fault.remaining is not None and fault.remaining <= 0:
                        continue
                    if fault.remaining is None and self._rng.random() >= fault.probability:
                        continue
                    if fault.remaining is not None:
                        fault.remaining -= 1
                    return fault
        return None

    # ---- control and invariant ---------------------------------------------------------------

    def add_gateway_node(self, gateway_id: str, ip: str) -> str:
        """The gateway scales out: a new node, which MSE puts into every group of every association
        of the gateway, on each group's port(s), at the largest weight its nodes already have there."""
        with self.state.lock:
            s = self.state
            gw = s.gateway(gateway_id)
            nodes = gw.setdefault("node_ips", [])
            if ip not in nodes:
                nodes.append(ip)
            i = nodes.index(ip) + 1
            for link in gw["links"]:
                targets = _targets(link)
                for vg in dict.fromkeys(vg for vg, _ in targets):
                    group = s.slbs[link["SlbId"]]["vgroups"].get(vg, [])
                    weight = max((int(b["weight"]) for b in group if _is_node_of(gateway_id, b)), default=0)
                    _place_nodes(s, gateway_id, link["SlbId"], [t for t in targets if t[0] == vg], [(i, ip, weight)])
            return _node_id(gateway_id, i)

    def _check_weighted(self, action_name: str, before: set[str]) -> None:
        for vg in sorted(before - self.state.weighted_groups()):
            self.violations.append({"action": action_name, "vgroup_id": vg})

    # ---- one request -------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str],
                                                                                               dict[str, Any]]:
        request_id = str(uuid.uuid4()).upper()
        version, name = headers.get("x-acs-version", ""), headers.get("x-acs-action", "")
        product = PRODUCTS.get(version, "")
        extra: dict[str, str] = {}
        try:
            parts = urlsplit(target)
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            check_signature(self.keys, method, parts.path, query, headers, body)
            if (product, name) not in ACTIONS:
                raise ApiError(404, "InvalidAction.NotFound", f"Specified api {name} is not found, please check "
                                                              "your url and method.")
            params, handler = ACTIONS[(product, name)]
            unknown = sorted(k for k in query if re.sub(r"\.\d+", ".N", k) not in params | COMMON[product])
            if unknown:
                raise ApiError(400, "InvalidParameter", f"The parameter(s) {', '.join(unknown)} are not recognized.")
            self.calls[name] += 1
            self.log.append(name)
            fault = self._take_fault(name)
            if fault and fault.kind == "slow":
                time.sleep(fault.seconds)
            elif fault and fault.kind == "throttle":
                raise ApiError(fault.status, fault.code, fault.message, {"x-acs-retry-after": str(self.retry_after_ms)})
            elif fault and fault.kind == "error":
                raise ApiError(fault.status, fault.code, fault.message)
            elif fault and fault.kind == "business":
                raise BusinessError(fault.code, fault.message)
            with self.state.lock:
                watched = product in ("slb", "mse") and not name.startswith(READ_PREFIXES)
                before = self.state.weighted_groups() if watched else set()
                try:
                    answer = handler(self.state, query)
                finally:
                    if watched:
                        self._check_weighted(name, before)
            if self.latency_s:
                time.sleep(self.latency_s / 2)
            return 200, extra, {"RequestId": request_id, **answer}
        except BusinessError as err:
            return 200, extra, {"RequestId": request_id, "Success": False, "Code": err.status,
                                "HttpStatusCode": err.status, "Message": err.message, "ErrorCode": err.code}
        except ApiError as err:
            host = headers.get("host", "")
            recommend = (f"https://api.aliyun.com/troubleshoot?q={err.code}&product={PRODUCT_NAMES.get(product, '')}"
                         f"&requestId={request_id}")
            return err.status, err.headers, {"RequestId": request_id, "HostId": host, "Code": err.code,
                                             "Message": err.message, "Recommend": recommend}


def _make_handler(emulator: Emulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms delayed-ACK stalls

        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            if emulator.latency_s:
                time.sleep(emulator.latency_s / 2)
            status, extra, payload = emulator.handle(self.command, self.path, headers, body)
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("content-type", "application/json;charset=utf-8")
                self.send_header("content-length", str(len(data)))
                for k, v in extra.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (read timeout); the cloud would have done the work anyway

        do_POST = do_GET = _serve

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18080)
    parser.add_argument("--seed", help="seed YAML (default: the simulated world's seed)")
    parser.add_argument("--region", default="cn-hangzhou")
    parser.add_argument("--access-key-id", default=TEST_ACCESS_KEY_ID)
    parser.add_argument("--access-key-secret", default=TEST_ACCESS_KEY_SECRET)
    args = parser.parse_args(argv)
    emu = Emulator(args.seed, access_key_id=args.access_key_id, access_key_secret=args.access_key_secret,
                   region=args.region, host=args.host, port=args.port)
    print(f"Alibaba Cloud OpenAPI emulator on {emu.url} (region {args.region}, AccessKey ID {args.access_key_id});"
          f" point alibaba.endpoints.mse/slb/dns at {emu.endpoint} with protocol http", flush=True)
    try:
        emu.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        emu.server.server_close()


if __name__ == "__main__":
    main()
