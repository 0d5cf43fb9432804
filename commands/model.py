"""The records migrate-bot keeps: a migration, its approvals, its audit events.

Frozen dataclasses with `to_dict`/`from_dict`, so the store can keep them as JSON and the
domain can only change them by building new ones (`dataclasses.replace`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

from commands.phases import Phase
from commands.traffic import DEFAULT_NGINX_WEIGHT, Weights

_T = TypeVar("_T")


def _build(cls: type[_T], d: dict[str, Any]) -> _T:
    """`cls` from a stored dict, ignoring fields a newer or older version wrote that this one lacks."""
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in d.items() if k in known})


@dataclass(frozen=True)
class StepIntent:
    """A provider step recorded before it runs, so a crash mid-step can be reconciled.

    `op` names the kind of step (`listen`, `switch`, `weights`, `cutover`, ...); `args` is what
    it was asked to reach (a target, never a delta) and `then` the phase it leads to.
    """

    id: str
    op: str
    verb: str
    user: str
    args: dict[str, Any]
    then: str
    started_at: float
    failed_at: float = 0.0  # set when the step failed and kept its intent to be retried or aborted
    owner: str = ""  # the job worker running it (its heartbeat says whether it still is); "" unknown

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StepIntent:
        return _build(cls, d)


@dataclass(frozen=True)
class MovedGroup:
    """One vServer group that carries the NGINX Service's backends and moves to MSE with it.

    `listeners` are the SLB listeners that send through it (`80/TCP`); `service_port` is the
    Service port it serves (what `-vgroup-port` maps it to); `backend_port` NGINX's port in it;
    `gateway_port` where the MSE nodes receive its traffic: 80, or 443 when clients speak TLS
    to the backends; `name` the group's name when chosen (a controller key is renamed at 4a).
    """

    vgroup_id: str
    name: str
    listeners: tuple[str, ...]
    service_port: int
    backend_port: int
    gateway_port: int

    @property
    def gateway_protocol(self) -> str:
        return "HTTPS" if self.gateway_port == GATEWAY_HTTPS_PORT else "HTTP"

    def listener_pairs(self) -> list[tuple[int, str]]:
        return [(int(text.split("/")[0]), text.split("/")[1]) for text in self.listeners]


#: The MSE gateway's own ports: plain HTTP, and TLS it terminates (AddGatewaySlb HttpPort/HttpsPort).
GATEWAY_HTTP_PORT = 80
GATEWAY_HTTPS_PORT = 443


@dataclass(frozen=True)
class SlbChoice:
    """Step 3 for the SLB method: the Service, its SLB, and every group that moves.

    `kept` names the listeners that carry the Service but stay on NGINX (only when narrowed
    with `listener=`), with their groups: `443/TCP (rsp-b)`.
    """

    namespace: str
    service: str
    slb_id: str
    groups: tuple[MovedGroup, ...] = ()
    kept: tuple[str, ...] = ()
    legacy: bool = False  # chosen by the version that moved one listener: `switch` asks for `method` again

    @property
    def vgroup_ids(self) -> list[str]:
        return [g.vgroup_id for g in self.groups]

    def listeners(self) -> list[str]:
        return [li for g in self.groups for li in g.listeners]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SlbChoice:
        groups = tuple(MovedGroup(**{**g, "listeners": tuple(g["listeners"])}) for g in d.get("groups") or ())
        if not groups and d.get("vgroup_id"):
            # A record from before every listener moved: its one group, where that version put the
            # gateway's nodes (port 80), so a rollback after an upgrade still reaches them.
            port, protocol = int(d.get("port") or 0), str(d.get("protocol") or "TCP")
            groups = (MovedGroup(d["vgroup_id"], d["vgroup_id"], (f"{port}/{protocol}",), port, 0, GATEWAY_HTTP_PORT),)
            return cls(d["namespace"], d["service"], d["slb_id"], groups, legacy=True)
        return cls(d["namespace"], d["service"], d["slb_id"], groups, tuple(d.get("kept") or ()),
                   bool(d.get("legacy")))


@dataclass(frozen=True)
class Migration:
    id: str
    cluster: str
    gateway: str
    ingress_class: str
    channel: str
    created_by: str
    created_at: float
    phase: Phase = Phase.DRAFT
    version: int = 0
    method: str = ""  # "slb" or "dns"
    slb: SlbChoice | None = None
    domains: tuple[str, ...] = ()
    dns: dict[str, Any] = field(default_factory=dict)  # DNS method: commands.dns_plan.DnsChoice as a dict
    mse_weight: int = 0
    nginx_weight: int = DEFAULT_NGINX_WEIGHT
    last_weight_change_at: float = 0.0
    intent: StepIntent | None = None
    pending_approval: str = ""
    saved: dict[str, Any] = field(default_factory=dict)  # what the bot changed, to restore on abort
    check: dict[str, Any] = field(default_factory=dict)  # last route-check summary
    observed: dict[str, Any] = field(default_factory=dict)  # what the providers really hold (drift)
    plan: dict[str, Any] = field(default_factory=dict)  # `/migrate auto`: commands.plan.Plan as a dict
    last_action: str = ""
    last_actor: str = ""
    last_action_at: float = 0.0
    card_ts: str = ""  # Slack timestamp of the status card that roots the thread

    @property
    def weights(self) -> Weights:
        return Weights(self.mse_weight, self.nginx_weight)

    @property
    def active(self) -> bool:
        return self.phase not in (Phase.COMPLETED, Phase.ABORTED)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["phase"] = self.phase.value
        d["domains"] = list(self.domains)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Migration:
        d = dict(d)
        d["phase"] = Phase(d["phase"])
        d["domains"] = tuple(d.get("domains") or ())
        d["slb"] = SlbChoice.from_dict(d["slb"]) if d.get("slb") else None
        d["intent"] = StepIntent.from_dict(d["intent"]) if d.get("intent") else None
        return _build(cls, d)


@dataclass(frozen=True)
class Approval:
    """A request for an irreversible step; carried out once enough others approve."""

    id: str
    migration_id: str
    verb: str
    args: dict[str, Any]
    requested_by: str
    requested_at: float
    expires_at: float
    summary: str
    required: int = 1
    approvals: tuple[str, ...] = ()
    denied_by: str = ""
    reason: str = ""
    state: str = "pending"  # pending | approved | denied | expired | cancelled
    decided_at: float = 0.0
    message_ts: str = ""

    @property
    def pending(self) -> bool:
        return self.state == "pending"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["approvals"] = list(self.approvals)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Approval:
        d = dict(d)
        d["approvals"] = tuple(d.get("approvals") or ())
        return _build(cls, d)


@dataclass(frozen=True)
class Event:
    """One audit entry: who did what, from which phase to which, and what the providers said."""

    at: float
    user: str
    verb: str
    args: dict[str, Any]
    phase_before: str
    phase_after: str
    result: str
    version: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Event:
        return _build(cls, d)
