"""The simulated SLB (listeners, tags, vServer group weights) and Alibaba Cloud DNS (weighted records)."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from commands.errors import ProviderError
from commands.ports import Backend, BackendHealth, DnsRecord, Listener, LoadBalancer, VServerGroup
from providers.sim.state import SimState


class SimLoadBalancer:
    def __init__(self, state: SimState) -> None:
        self.state = state

    def _slb(self, data: dict[str, Any], slb_id: str) -> dict[str, Any]:
        slb = data["slbs"].get(slb_id)
        if slb is None:
            raise ProviderError(f"SLB {slb_id} does not exist", code="InvalidLoadBalancerId.NotFound",
                                next_step="check the SLB id (lb-...) behind the NGINX Service")
        return slb  # type: ignore[no-any-return]

    def describe(self, *, slb_id: str) -> LoadBalancer | None:
        with self.state.op("slb.describe") as data:
            slb = data["slbs"].get(slb_id)
            if slb is None:
                return None
            listeners = tuple(Listener(int(li["port"]), li["protocol"].upper(), li.get("scheduler", "wrr"),
                                       bool(li.get("acl_on")), li.get("vgroup_id", "")) for li in slb["listeners"])
            return LoadBalancer(slb_id, slb["address"], slb.get("vpc_id", ""), listeners, dict(slb.get("tags", {})))

    def set_tags(self, *, slb_id: str, tags: Mapping[str, str], remove: Iterable[str] = ()) -> None:
        with self.state.op("slb.set_tags") as data:
            slb = self._slb(data, slb_id)
            current = slb.setdefault("tags", {})
            for key in remove:
                current.pop(key, None)
            current.update(tags)

    def set_scheduler(self, *, slb_id: str, port: int, protocol: str, scheduler: str) -> None:
        with self.state.op("slb.set_scheduler") as data:
            for li in self._slb(data, slb_id)["listeners"]:
                if int(li["port"]) == port and li["protocol"].upper() == protocol.upper():
                    li["scheduler"] = scheduler
                    return
            raise ProviderError(f"SLB {slb_id} has no listener {port}/{protocol}", code="InvalidParameter",
                                next_step="choose the listener again with `/migrate method slb`")

    def vgroup(self, *, vgroup_id: str) -> VServerGroup:
        with self.state.op("slb.vgroup") as data:
            slb_id = _slb_of(data, vgroup_id)
            name = data["slbs"][slb_id]["vgroup_names"].get(vgroup_id, vgroup_id)
            return VServerGroup(vgroup_id, name, tuple(_backend(b) for b in _vgroup(data, vgroup_id)))

    def backends(self, *, vgroup_id: str) -> list[Backend]:
        with self.state.op("slb.backends") as data:
            return [_backend(b) for b in _vgroup(data, vgroup_id)]

    def rename_vgroup(self, *, vgroup_id: str, name: str) -> None:
        with self.state.op("slb.rename_vgroup") as data:
            data["slbs"][_slb_of(data, vgroup_id)]["vgroup_names"][vgroup_id] = name

    def set_weights(self, *, vgroup_id: str, backends: Sequence[Backend]) -> None:
        items = list(backends)
        for start in range(0, len(items), 20):  # the real API takes at most 20 servers a call (cloud-api.md §2)
            with self.state.op("slb.set_weights") as data:
                group = {(b["server_id"], int(b["port"])): b for b in _vgroup(data, vgroup_id)}
                chunk = items[start:start + 20]
                for want in chunk:  # checked before any write: the API refuses the whole call
                    if not 0 <= want.weight <= 100:
                        raise ProviderError("SLB backend weights are 0..100", code="InvalidParameter.Weight")
                    if want.key not in group:  # a server is named by id and port (one ENI may sit on two ports)
                        raise ProviderError(f"backend {want.server_id}:{want.port} is not in vServer group {vgroup_id}",
                                            code="BackendServer.NotExist", next_step="re-read the vServer group")
                for want in chunk:
                    group[want.key]["weight"] = int(want.weight)

    def health(self, *, slb_id: str, port: int, protocol: str) -> list[BackendHealth]:
        with self.state.op("slb.health") as data:
            return _health(data, slb_id, port)


def _health(data: dict[str, Any], slb_id: str, port: int) -> list[BackendHealth]:
    """Every backend of the listener's group, `normal` unless the world says otherwise
    (`health: {"<server id>:<port>": "abnormal"}`), as DescribeHealthStatus lists them."""
    slb = data["slbs"].get(slb_id)
    if slb is None:
        raise ProviderError(f"SLB {slb_id} does not exist", code="InvalidLoadBalancerId.NotFound")
    listener = next((li for li in slb["listeners"] if int(li["port"]) == port), None)
    if listener is None:
        return []
    marks = data.get("health", {})
    return [BackendHealth(b["server_id"], int(b["port"]), marks.get(f"{b['server_id']}:{b['port']}", "normal"))
            for b in slb["vgroups"].get(listener.get("vgroup_id", ""), [])]


def _backend(b: dict[str, Any]) -> Backend:
    return Backend(b["server_id"], b["ip"], int(b["port"]), int(b["weight"]), b.get("type", "ecs"),
                   b.get("description", ""))


def _slb_of(data: dict[str, Any], vgroup_id: str) -> str:
    for slb_id, slb in data["slbs"].items():
        if vgroup_id in slb["vgroups"]:
            return str(slb_id)
    raise ProviderError(f"vServer group {vgroup_id} does not exist", code="VServerGroupId.NotFound")


def _vgroup(data: dict[str, Any], vgroup_id: str) -> list[dict[str, Any]]:
    return data["slbs"][_slb_of(data, vgroup_id)]["vgroups"][vgroup_id]  # type: ignore[no-any-return]


#: Record types Alibaba Cloud DNS weights, and only among records of one type, name and line
#: (Alibaba Cloud DNS "Weight configuration": A, CNAME and AAAA; other types are never weighted).
WEIGHTED_TYPES = frozenset({"A", "AAAA", "CNAME"})
ADDRESS_TYPES = frozenset({"A", "AAAA"})


def weighted_key(domain: str, type: str, line: str) -> str:
    """The weighted-round-robin flag belongs to a name, a record type and a line (SetDNSSLBStatus
    takes SubDomain, Type and Line)."""
    return f"{domain}|{type.upper()}|{line}"


class SimDns:
    def __init__(self, state: SimState) -> None:
        self.state = state

    def zone_for(self, *, domain: str) -> str | None:
        with self.state.op("dns.zone_for") as data:
            return _zone(data, domain)

    def records(self, *, domain: str) -> list[DnsRecord]:
        with self.state.op("dns.records") as data:
            return [_record(r) for r in data["dns"]["records"].values() if r["domain"] == domain]

    def add_record(self, *, domain: str, type: str, value: str, enabled: bool, ttl: int = 600,
                   line: str = "default") -> DnsRecord:
        with self.state.op("dns.add_record") as data:
            if not _zone(data, domain):
                raise ProviderError(f"{domain} is not hosted in this DNS account", code="InvalidDomainName.NoExist",
                                    temporary=False, next_step="create the record at your DNS provider by hand")
            same_line = [r for r in data["dns"]["records"].values()
                         if r["domain"] == domain and r.get("line", "default") == line]
            for r in same_line:
                if r["value"] == value and r["type"] == type:
                    return _record(r)
            _refuse_conflict(same_line, domain, type)
            rid = f"rec-{data['dns']['next_id']}"
            data["dns"]["next_id"] += 1
            rec = {"id": rid, "domain": domain, "type": type, "value": value, "weight": 1, "enabled": enabled,
                   "ttl": ttl, "line": line}
            data["dns"]["records"][rid] = rec
            return _record(rec)

    def weighted(self, *, domain: str, type: str = "A", line: str = "default") -> bool:
        with self.state.op("dns.weighted") as data:
            return is_weighted(data, domain, type, line)

    def set_weighted(self, *, domain: str, on: bool, type: str = "A", line: str = "default") -> None:
        if type.upper() not in WEIGHTED_TYPES:
            raise ProviderError(f"records of type {type} cannot be weighted", code="InvalidParameter.Type")
        with self.state.op("dns.set_weighted") as data:
            data["dns"]["weighted"][weighted_key(domain, type, line)] = on

    def set_ttl(self, *, record: DnsRecord, ttl: int) -> None:
        with self.state.op("dns.set_ttl") as data:
            self._rec(data, record.id)["ttl"] = int(ttl)

    def set_weight(self, *, record_id: str, weight: int) -> None:
        if not 1 <= weight <= 100:
            raise ProviderError("DNS record weights are 1..100", code="InvalidParameter.Weight")
        with self.state.op("dns.set_weight") as data:
            self._rec(data, record_id)["weight"] = weight

    def set_enabled(self, *, record_id: str, enabled: bool) -> None:
        with self.state.op("dns.set_enabled") as data:
            self._rec(data, record_id)["enabled"] = enabled

    def delete_record(self, *, record_id: str) -> None:
        with self.state.op("dns.delete_record") as data:
            data["dns"]["records"].pop(record_id, None)

    def _rec(self, data: dict[str, Any], record_id: str) -> dict[str, Any]:
        rec = data["dns"]["records"].get(record_id)
        if rec is None:
            raise ProviderError(f"DNS record {record_id} does not exist", code="DomainRecordNotBelongToUser")
        return rec  # type: ignore[no-any-return]


def _refuse_conflict(same_line: list[dict[str, Any]], domain: str, type: str) -> None:
    """A CNAME stands alone on its name and line: Alibaba Cloud DNS refuses an A or AAAA next to a
    CNAME, and a CNAME next to an A or AAAA (Alibaba Cloud DNS "DNS record conflict rules")."""
    kinds = {r["type"] for r in same_line}
    if (type in ADDRESS_TYPES and "CNAME" in kinds) or (type == "CNAME" and kinds & ADDRESS_TYPES):
        raise ProviderError(f"{domain} already has a record that conflicts with a {type} record on this line",
                            code="DomainRecordConflict", temporary=False,
                            next_step="a CNAME cannot share its name with A or AAAA records")


def is_weighted(data: dict[str, Any], domain: str, type: str, line: str) -> bool:
    flags = data["dns"]["weighted"]
    key = weighted_key(domain, type, line)
    if key in flags:
        return bool(flags[key])
    return bool(flags.get(domain, False)) and type.upper() == "A" and line == "default"  # a flag an old seed set


def _zone(data: dict[str, Any], domain: str) -> str | None:
    best = [z for z in data["dns"]["zones"] if domain == z or domain.endswith("." + z)]
    return str(max(best, key=len)) if best else None


def _record(r: dict[str, Any]) -> DnsRecord:
    return DnsRecord(r["id"], r["domain"], r["type"], r["value"], int(r["weight"]), bool(r["enabled"]),
                     int(r.get("ttl", 600)), str(r.get("line", "default")))


class SimResolver:
    """Public resolution in the sim: the enabled A records of a hosted name on the default line (an
    IPv4 address query), and `dns.elsewhere` for names hosted at another provider (`{domain:
    [addresses]}` in the seed).

    Alibaba Cloud DNS "Weight configuration": with weighting off, every enabled record of the name
    and line is returned; with it on, ONE record value per query, picked by weight ("returns a record
    value based on a preset weight ratio, distributing responses probabilistically"), and a record
    weighted 0 never. So one query may not show a record at a small weight; the seeded generator
    keeps tests repeatable.
    """

    def __init__(self, state: SimState, *, rng_seed: int = 7) -> None:
        self.state = state
        self._rng = random.Random(rng_seed)

    def addresses(self, *, domain: str) -> list[str]:
        with self.state.op("dns.resolve") as data:
            if not _zone(data, domain):
                return sorted(data["dns"].get("elsewhere", {}).get(domain, []))
            live = [r for r in data["dns"]["records"].values()
                    if r["domain"] == domain and r["enabled"] and r["type"] == "A"
                    and r.get("line", "default") == "default"]
            if not is_weighted(data, domain, "A", "default"):
                return sorted({r["value"] for r in live})
            return pick_by_weight(self._rng, [(r["value"], int(r["weight"])) for r in live])


def pick_by_weight(rng: random.Random, values: Sequence[tuple[str, int]]) -> list[str]:
    """One value drawn by weight, as a weighted name answers one query; none when every weight is 0."""
    weighted = [(v, w) for v, w in values if w > 0]
    if not weighted:
        return []
    return [rng.choices([v for v, _ in weighted], weights=[w for _, w in weighted])[0]]
