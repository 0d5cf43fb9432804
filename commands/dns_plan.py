"""Step 3 for the DNS method: which names move, which of their records are NGINX's, what is refused.

Pure: it looks at the Ingresses of the migrated class, the records each name holds (read by the
verb) and the zones hosted in Alibaba Cloud DNS, and says what moves. Only address records whose
value is one of NGINX's addresses (the Ingress status, or `nginx=`) on the chosen line are ever
NGINX's; every other record of a name (TXT, MX, CAA, an AAAA elsewhere, other lines) stays as found.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from commands.ports import DnsRecord, Ingress

#: The record type MSE's record takes: the gateway's SLB has an IPv4 address.
MSE_TYPE = "A"
#: Record types that send clients somewhere: the only ones that can be NGINX's.
ADDRESS_TYPES = frozenset({"A", "AAAA", "CNAME"})
DEFAULT_LINE = "default"


def same_value(a: str, b: str) -> bool:
    """Record values compare without case or the trailing dot of a fully qualified name."""
    return a.lower().rstrip(".") == b.lower().rstrip(".")


@dataclass(frozen=True)
class DnsChoice:
    """What `method dns` chose: the names, their zones ("" for a name hosted elsewhere), NGINX's
    addresses, the line the records are on, the TTL to lower to first (0: leave TTLs), and the
    Ingress hosts knowingly left out (`partial=yes`)."""

    hosts: tuple[str, ...] = ()
    zones: Mapping[str, str] = field(default_factory=dict)
    nginx: tuple[str, ...] = ()
    line: str = DEFAULT_LINE
    ttl: int = 0
    left_out: tuple[str, ...] = ()
    ttl_ready_at: float = 0.0  # when the lowered TTLs have replaced the old ones in every cache

    def hosted(self) -> list[str]:
        return [h for h in self.hosts if self.zones.get(h)]

    def elsewhere(self) -> list[str]:
        return [h for h in self.hosts if not self.zones.get(h)]

    def is_nginx(self, rec: DnsRecord) -> bool:
        return rec.line == self.line and rec.type in ADDRESS_TYPES and any(same_value(rec.value, v)
                                                                           for v in self.nginx)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["zones"] = dict(self.zones)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DnsChoice:
        return cls(tuple(d.get("hosts") or ()), dict(d.get("zones") or {}), tuple(d.get("nginx") or ()),
                   str(d.get("line") or DEFAULT_LINE), int(d.get("ttl") or 0), tuple(d.get("left_out") or ()),
                   float(d.get("ttl_ready_at") or 0.0))


@dataclass(frozen=True)
class DnsPlan:
    choice: DnsChoice
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def ingress_hosts(ingresses: Sequence[Ingress]) -> tuple[list[str], dict[str, str]]:
    """(exact hosts, wildcard host -> the Ingress that has it), each host once, in order."""
    exact: list[str] = []
    wild: dict[str, str] = {}
    for ing in ingresses:
        for host in ing.hosts:
            if not host:
                continue
            if host.startswith("*."):
                wild.setdefault(host, f"{ing.namespace}/{ing.name}")
            elif host not in exact:
                exact.append(host)
    return exact, wild


def nginx_addresses(ingresses: Sequence[Ingress], hosts: Sequence[str]) -> tuple[str, ...]:
    """Where NGINX serves these hosts: the addresses in their Ingresses' status, in order (a name
    served by a wildcard Ingress: every Ingress's, since one controller publishes them all)."""
    out: list[str] = []
    for ing in ingresses:
        if set(ing.hosts) & set(hosts):
            out += [a for a in ing.addresses if a not in out]
    if not out:
        for ing in ingresses:
            out += [a for a in ing.addresses if a not in out]
    return tuple(out)


def wildcard_note(wild: Mapping[str, str]) -> str:
    names = ", ".join(f"`{h}` ({src})" for h, src in wild.items())
    return (f"Wildcard host {names}: not moved. Alibaba Cloud DNS does not weight wildcard records, and the bot "
            "cannot tell which names clients use under it; list those names in `domains=` (they must be served "
            "by the wildcard Ingress), or move the wildcard with the SLB method.")


def plan(ingresses: Sequence[Ingress], *, domains: Sequence[str] = (), partial: bool = False,
         nginx: Sequence[str] = (), line: str = DEFAULT_LINE, ttl: int = 0, ingress_class: str = "nginx",
         zones: Mapping[str, str | None], records: Mapping[str, list[DnsRecord]]) -> DnsPlan:
    """The names to move (the Ingress hosts, or `domains=`), with the refusals found before any write.

    `zones` maps every candidate name to its hosted zone (None: hosted elsewhere); `records`
    holds the records of each hosted name as read.
    """
    exact, wild = ingress_hosts(ingresses)
    problems: list[str] = []
    notes: list[str] = []
    covered = [d for d in domains if d not in exact and any(d.endswith(w[1:]) for w in wild)]
    unknown = [d for d in domains if d not in exact and d not in covered]
    if unknown:
        problems.append(f"{', '.join(unknown)} is not a host of any Ingress of class {ingress_class}: MSE has no "
                        "route for it and would answer 404 there")
    if any(d.startswith("*.") for d in domains):
        problems.append("a wildcard name cannot be moved by DNS weights (Alibaba Cloud DNS does not weight wildcard "
                        "records); list the names clients use instead")
    hosts = list(domains) if domains else list(exact)
    left_out = [h for h in exact if h not in hosts]
    if left_out and not partial:
        problems.append(f"the Ingresses of class {ingress_class} also serve {', '.join(left_out)}, left out of "
                        f"`domains=`: once NGINX goes those names lose it. Add them, or say `partial=yes` to move "
                        "only the names listed")
    elif left_out:
        notes.append(f"Left on NGINX as asked (`partial=yes`): {', '.join(left_out)}.")
    if wild:
        notes.append(wildcard_note(wild))
    addresses = tuple(nginx) or nginx_addresses(ingresses, hosts)
    if not addresses:
        problems.append(f"the Ingresses of class {ingress_class} show no load-balancer address in their status, so "
                        "NGINX's records cannot be told from others: give NGINX's address with `nginx=IP`")
    choice = DnsChoice(tuple(hosts), {h: zones.get(h) or "" for h in hosts}, addresses, line, ttl, tuple(left_out))
    for zone in sorted({z for z in choice.zones.values() if z}):
        names = [h for h in hosts if choice.zones[h] == zone]
        notes.append(f"Zone `{zone}` (Alibaba Cloud DNS): {', '.join(names)}")
        for host in names:
            line_text, trouble = _host_line(choice, host, records.get(host, []))
            notes.append(f"• {line_text}")
            problems += trouble
    for host in choice.elsewhere():
        notes.append(f"• {host}: NOT hosted in Alibaba Cloud DNS: its records are made by hand at your DNS provider "
                     "(the bot gives the exact records at each step)")
    if ttl:
        notes.append(f"TTLs of NGINX's records above {ttl}s are lowered to {ttl}s now; `switch` waits one old TTL "
                     "so no cache holds the old value; `complete` and `abort` restore them.")
    return DnsPlan(choice, notes, problems)


def _host_line(choice: DnsChoice, host: str, recs: list[DnsRecord]) -> tuple[str, list[str]]:
    """`www.example.com: NGINX A 47.100.0.10, 47.100.0.11 (TTL 600); left alone: TXT, AAAA ...`."""
    ours = [r for r in recs if choice.is_nginx(r)]
    others = [r for r in recs if not choice.is_nginx(r)]
    trouble: list[str] = []
    wrong = sorted({r.type for r in ours if r.type != MSE_TYPE})
    if wrong:
        trouble.append(f"{host} points at NGINX with {'/'.join(wrong)} records, and MSE's record is an A record: "
                       "Alibaba Cloud DNS weighs only records of one type against each other (and keeps a CNAME "
                       "alone on its name); make NGINX's records A records first, or leave the name out "
                       "(`domains=`, `partial=yes`)")
    if not ours:
        trouble.append(f"{host} has no A record for NGINX ({', '.join(choice.nginx)}) on line `{choice.line}`: "
                       "there is nothing to shift from; check `nginx=` and `line=`")
    ttls = sorted({r.ttl for r in ours})
    kept = ", ".join(f"{r.type} {r.value}" + (f" (line {r.line})" if r.line != choice.line else "") for r in others)
    text = (f"{host}: NGINX {', '.join(f'{r.type} {r.value}' for r in ours) or 'none'}"
            f"{' (TTL ' + '/'.join(str(t) for t in ttls) + 's)' if ttls else ''}"
            f"{'; left alone: ' + kept if kept else ''}")
    return text, trouble
