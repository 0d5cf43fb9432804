"""What one request asks of the engine, and what it answers: plain data for any front end.

The Slack adapter turns an Outcome into an ephemeral line, a thread reply, an edited status
card and approval messages; the console prints it as text. Neither needs to know how it
was reached.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from commands.model import Approval, Migration


@dataclass(frozen=True)
class Request:
    """One `/migrate ...` line (or a button that stands for one), from `user` in `channel`.

    `idempotency_key` identifies the delivery (Slack trigger id, action id + message ts, ...):
    the same key twice acts once and returns the first answer. `attempt` names who is carrying
    it out; the same attempt coming back (its process died mid-request) is let through, since
    every step is safe to repeat, where any other repeat is told it is already handled.
    """

    text: str
    user: str
    channel: str
    idempotency_key: str = ""
    attempt: str = ""  # who carries this delivery out (a job id): the same attempt, run again after a crash, goes on


@dataclass(frozen=True)
class Outcome:
    """The engine's answer.

    `ephemeral` answers go to the asker alone (errors, refusals, help); the others belong in
    the migration's thread. `migration` is the record after the request (to redraw the status
    card); `approval` is an approval the request created or decided (to post or edit its message).
    `files` are attachments (the full route-check report); `replayed` marks a repeated delivery;
    `broadcast` puts it in the channel as well as the thread.
    """

    text: str
    ok: bool = True
    ephemeral: bool = False
    migration: Migration | None = None
    approval: Approval | None = None
    files: dict[str, str] = field(default_factory=dict)
    replayed: bool = False
    verb: str = ""
    broadcast: bool = False  # said to the whole channel too, not only the thread (an automatic rollback)

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text, "ok": self.ok, "ephemeral": self.ephemeral, "verb": self.verb,
            "migration": self.migration.to_dict() if self.migration else None,
            "approval": self.approval.to_dict() if self.approval else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Outcome:
        return cls(
            text=d["text"], ok=d.get("ok", True), ephemeral=d.get("ephemeral", False), verb=d.get("verb", ""),
            migration=Migration.from_dict(d["migration"]) if d.get("migration") else None,
            approval=Approval.from_dict(d["approval"]) if d.get("approval") else None,
            replayed=True,
        )
