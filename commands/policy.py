"""Who may do what, and how long to wait: roles, approvals and the dwell between increases."""

from __future__ import annotations

from dataclasses import dataclass, field

from commands.errors import NotAllowed
from commands.gates import GateConfig

OPERATOR_VERBS = frozenset({"start", "check", "method", "switch", "weight", "verify", "cutover", "complete", "abort"})
APPROVER_VERBS = frozenset({"approve", "deny"})
ANYONE_VERBS = frozenset({"status", "history", "help"})
DEFAULT_DWELL_SECONDS = 180
DEFAULT_APPROVAL_TTL = 30 * 60


@dataclass(frozen=True)
class Policy:
    """Roles are sets of user ids; `"*"` stands for everyone.

    `rollback` empty means operators and approvers may roll back, the default the issue asks for.
    `channels` empty means any channel.
    """

    operators: frozenset[str] = frozenset({"*"})
    approvers: frozenset[str] = frozenset({"*"})
    rollback: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()
    required_approvals: int = 1
    dwell_seconds: float = DEFAULT_DWELL_SECONDS
    approval_ttl_seconds: float = DEFAULT_APPROVAL_TTL
    gates: GateConfig = field(default_factory=GateConfig)

    def role_for(self, verb: str) -> tuple[str, frozenset[str]]:
        if verb == "rollback":
            return "roll back", self.rollback or (self.operators | self.approvers)
        if verb in APPROVER_VERBS:
            return "approve or deny", self.approvers
        return "operate migrations", self.operators

    def may(self, user: str, verb: str) -> bool:
        if verb in ANYONE_VERBS:
            return True
        _, people = self.role_for(verb)
        return "*" in people or user in people

    def require(self, user: str, verb: str) -> None:
        if not self.may(user, verb):
            what, _ = self.role_for(verb)
            raise NotAllowed(f"You are not allowed to {what} (`{verb}`); ask someone listed in the bot's config.")

    def require_channel(self, channel: str) -> None:
        if self.channels and channel not in self.channels:
            raise NotAllowed("This channel is not one migrate-bot runs in; use one of the channels in its config.")


def dwell_left(*, last_change_at: float, now: float, dwell_seconds: float) -> float:
    """Seconds still to wait before the next weight increase (0 when it may go ahead)."""
    if last_change_at <= 0:
        return 0.0
    return max(0.0, last_change_at + dwell_seconds - now)


def format_duration(seconds: float) -> str:
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m {s:02d}s" if s else f"{m}m"
    h, m = divmod(m, 60)
    return f"{h}h {m:02d}m"
