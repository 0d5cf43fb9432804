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

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StepIntent:
        return _build(cls, d)


@dataclass(frozen=True)
class SlbChoice:
    """Step 3 for the SLB method: which Service, SLB, listener and vServer group."""

    namespace: str
    service: str
    slb_id: str
    port: int
    protocol: str
    vgroup_id: str


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
    mse_weight: int = 0
    nginx_weight: int = DEFAULT_NGINX_WEIGHT
    last_weight_change_at: float = 0.0
    intent: StepIntent | None = None
    pending_approval: str = ""
    saved: dict[str, Any] = field(default_factory=dict)  # what the bot changed, to restore on abort
    check: dict[str, Any] = field(default_factory=dict)  # last route-check summary
    observed: dict[str, Any] = field(default_factory=dict)  # what the providers really hold (drift)
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
        d["slb"] = SlbChoice(**d["slb"]) if d.get("slb") else None
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
