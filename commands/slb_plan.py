"""Step 3 for the SLB method: which vServer groups move, on which ports, and what would be refused.

Pure: it looks at the Service, the SLB's listeners and their groups as read, and says what
moves. Every listener whose group carries the Service's NGINX backends moves, since a listener
left behind keeps its group on NGINX (and empties it when NGINX leaves). Whatever the cloud
controller would refuse once the SLB is detached is found here, before anything changes.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from commands import ccm
from commands.model import GATEWAY_HTTP_PORT, GATEWAY_HTTPS_PORT, MovedGroup
from commands.ports import Backend, LoadBalancer, Service, VServerGroup

#: Listener protocols whose backends receive plain HTTP: the SLB speaks HTTP to them (an HTTPS
#: listener terminates TLS itself), so MSE takes them on its HTTP port.
L7_PROTOCOLS = frozenset({"HTTP", "HTTPS"})
TLS_TARGETS = frozenset({"https", "443"})


@dataclass(frozen=True)
class SlbPlan:
    """What `method slb` found: the groups that move, the listeners left on NGINX, and refusals."""

    groups: tuple[MovedGroup, ...] = ()
    kept: tuple[str, ...] = ()
    problems: list[str] = field(default_factory=list)

    def table(self) -> list[str]:
        """`80/TCP → rsp-a (k8s/30080/…) → NGINX :30080, MSE :80`, one line a group."""
        return [f"`{', '.join(g.listeners)}` → `{g.vgroup_id}` ({g.name}) → NGINX :{g.backend_port}, "
                f"MSE :{g.gateway_port}" for g in self.groups]


def listener_name(port: int, protocol: str) -> str:
    return f"{port}/{protocol.upper()}"


def carries(group: VServerGroup, *, namespace: str, service: str) -> bool:
    """Whether a group holds this Service's NGINX backends (or bears its controller key)."""
    key = ccm.parse_ccm_key(group.name)
    named = key is not None and key[2] == service and key[3] == namespace
    return named or any(ccm.serves(b.description, namespace=namespace, service=service) for b in group.backends)


def gateway_port(svc: Service, listener_port: int, protocol: str) -> int:
    """Where MSE must receive a listener's traffic: on 443 when clients speak TLS to the backends.

    A TCP listener passes bytes through, so it is TLS exactly when the Service port it feeds
    targets NGINX's TLS port (`targetPort: https` or 443; a bare port 443 when none is given).
    HTTP and HTTPS listeners send plain HTTP to their backends.
    """
    if protocol.upper() in L7_PROTOCOLS:
        return GATEWAY_HTTP_PORT
    port = next((p for p in svc.ports if p.port == listener_port), None)
    target = (port.target_port if port else "").lower()
    if target in TLS_TARGETS or (not target and listener_port == GATEWAY_HTTPS_PORT):
        return GATEWAY_HTTPS_PORT
    return GATEWAY_HTTP_PORT


def plan(svc: Service, lb: LoadBalancer, groups: Mapping[str, VServerGroup], *, cluster: str,
         narrow: Sequence[tuple[int, str]] = (), gateway_ips: Collection[str] = ()) -> SlbPlan:
    """The groups to move (all that carry the Service, or those of the `narrow` listeners).

    `gateway_ips` are the MSE nodes' addresses: a node already in a group on its gateway port
    (an earlier join) is fine; any other backend that is not NGINX's is refused by name.
    """
    ns, name = svc.namespace, svc.name
    problems: list[str] = []
    owner = lb.tags.get("ack.aliyun.com", "")
    if owner and owner != cluster:
        problems.append(f"SLB {lb.id} is managed by cluster {owner}, not {cluster}: its controller would fight "
                        "over it; migrate from that cluster")
    by_group: dict[str, list[str]] = {}
    for li in lb.listeners:
        group = groups.get(li.vgroup_id) if li.vgroup_id else None
        if group is not None and carries(group, namespace=ns, service=name):
            by_group.setdefault(li.vgroup_id, []).append(listener_name(li.port, li.protocol))
        elif not li.vgroup_id and any(p.port == li.port for p in svc.ports):
            problems.append(f"listener {listener_name(li.port, li.protocol)} sends to the SLB's default server "
                            "group, which MSE cannot join; give it a vServer group first")
    chosen = {listener_name(p, proto) for p, proto in narrow}
    carrying = {li for names in by_group.values() for li in names}
    unknown = sorted(chosen - carrying)
    if unknown:
        problems.append(f"listener {', '.join(unknown)} does not carry {ns}/{name}'s traffic on {lb.id}: a wrong "
                        f"listener loses traffic. The right choice: {', '.join(sorted(carrying)) or 'none'}")
    moved: list[MovedGroup] = []
    kept: list[str] = []
    for vgroup_id, names in by_group.items():
        if chosen and not chosen & set(names):
            kept += [f"{li} ({vgroup_id})" for li in names]
            continue
        group = groups[vgroup_id]
        port, protocol = int(names[0].split("/")[0]), names[0].split("/")[1]
        problems += _refusals(svc, group, names, gateway_port(svc, port, protocol), set(gateway_ips))
        nginx = [b for b in group.backends if ccm.serves(b.description, namespace=ns, service=name)]
        moved.append(MovedGroup(vgroup_id, group.name, tuple(names), port, _backend_port(nginx),
                                gateway_port(svc, port, protocol)))
    if not by_group and not problems:
        problems.append(f"no listener of {lb.id} sends to a vServer group holding {ns}/{name}'s NGINX backends "
                        f"(backends described `k8s/<port>/{name}/{ns}/<cluster>`): check `slb=` and the Service")
    return SlbPlan(tuple(moved), tuple(kept), problems)


def _refusals(svc: Service, group: VServerGroup, listeners: list[str], mse_port: int,
              gateway_ips: set[str]) -> list[str]:
    """What the controller would refuse for this group once it names it in `-vgroup-port`, and
    backends the bot would otherwise count as MSE's (everything in a moved group that is not
    NGINX's is weighted and rolled back as MSE's)."""
    out = []
    key = ccm.parse_ccm_key(group.name)
    if key is not None and (key[2], key[3]) != (svc.name, svc.namespace):
        out.append(f"group {group.id} is named for Service {key[3]}/{key[2]}; renaming it would take it from "
                   "that Service")
    others = sorted({b.description for b in group.backends if ccm.parse_ccm_key(b.description)
                     and not ccm.serves(b.description, namespace=svc.namespace, service=svc.name)})
    if others:
        out.append(f"group {group.id} also holds backends of {others[0]}: it is shared with another Service")
    strangers = [f"{b.server_id}:{b.port}" for b in group.backends
                 if not ccm.parse_ccm_key(b.description) and not (b.ip in gateway_ips and b.port == mse_port)]
    if strangers:
        out.append(f"group {group.id} holds {', '.join(strangers)}, neither NGINX's backend nor the gateway's on "
                   f"port {mse_port}: remove it from the group in the SLB console (or say why it belongs there), "
                   "since the bot would weight and roll it back as MSE's")
    ports = {p.port for p in svc.ports}
    for li in listeners:
        port, protocol = int(li.split("/")[0]), li.split("/")[1]
        if port not in ports:  # `-vgroup-port` maps a group to a Service port (cloud-api.md §4)
            out.append(f"listener {li} has no matching port on Service {svc.namespace}/{svc.name} (ports "
                       f"{', '.join(str(p) for p in sorted(ports))}): `-vgroup-port` could not name group {group.id}")
        if protocol == "UDP":
            out.append(f"listener {li} is UDP: the MSE gateway takes HTTP and HTTPS only")
    return out


def _backend_port(nginx: list[Backend]) -> int:
    return nginx[0].port if nginx else 0
