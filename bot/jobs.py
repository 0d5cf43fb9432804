"""A job: the work a Slack request asks for, acked at once and carried out later, maybe in another process.

It holds what the listener would have been handed (the request body), so it is not harmless:
the body keeps the `response_url`, a capability to post into the channel for 30 minutes. Only
Slack's deprecated verification `token` field is dropped before the body is stored. The lane decides
who takes it first: a rollback never queues behind anything but another rollback, approvals
come next, everything else after (see bot/worker.py for who serves which lane).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from commands import grammar
from commands.errors import UserError


class Kind(StrEnum):
    """What the job runs: one kind per listener (bot/listeners/__init__.py maps each to its function)."""

    COMMAND = "command"
    APPROVE = "approve"
    DENY = "deny"
    ROLLBACK = "rollback"
    WEIGHT_STEP = "weight_step"
    NEXT_STEP = "next_step"
    HOME = "home"  # an App Home tab to publish


class Lane(StrEnum):
    """Queues in the order they are served."""

    ROLLBACK = "rollback"
    URGENT = "urgent"
    NORMAL = "normal"


LANES = tuple(Lane)
DROPPED = ("token",)  # Slack's deprecated verification token: never stored


@dataclass(frozen=True)
class Job:
    id: str
    kind: Kind
    body: dict[str, Any]
    queued_at: float = 0.0  # wall clock (epoch seconds) when acked; 0 for jobs queued before it was kept

    @classmethod
    def new(cls, kind: Kind, body: dict[str, Any]) -> Job:
        return cls(secrets.token_hex(8), kind, {k: v for k, v in body.items() if k not in DROPPED}, time.time())

    def age_s(self) -> float:
        """Seconds since the ack (0 when unknown: such a job is run, not dropped)."""
        return max(0.0, time.time() - self.queued_at) if self.queued_at else 0.0

    @property
    def lane(self) -> Lane:
        if self.kind is Kind.ROLLBACK or self.verb == "rollback":
            return Lane.ROLLBACK
        if self.kind in (Kind.APPROVE, Kind.DENY) or self.verb in ("approve", "deny"):
            return Lane.URGENT
        return Lane.NORMAL

    @property
    def verb(self) -> str:
        """A slash command's verb as the grammar reads it (quotes, full-width letters), so the lane
        and the engine agree; text the grammar refuses falls back to its first word ('' for a button)."""
        text = self.body.get("text") if self.kind is Kind.COMMAND else None
        if not isinstance(text, str):
            return ""
        try:
            return grammar.parse(text).verb
        except UserError:
            words = text.split()
            return words[0].lower() if words else ""

    def encode(self) -> str:
        return json.dumps({"id": self.id, "kind": self.kind.value, "body": self.body, "queued_at": self.queued_at},
                          separators=(",", ":"))

    @classmethod
    def decode(cls, raw: str) -> Job:
        data = json.loads(raw)
        return cls(str(data["id"]), Kind(data["kind"]), dict(data["body"]), float(data.get("queued_at") or 0.0))
