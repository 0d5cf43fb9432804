"""What the Slack edge is given to work with: the engine, Redis, the policy and a clock.

The engine is reached through `EnginePort`, the slice of `commands.engine.Engine` the edge
calls, so tests and the console can hand in the real engine and nothing else is needed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import redis

from bot.keys import BotKeys
from bot.metrics import Metrics
from commands.model import Approval, Migration
from commands.outcome import Outcome, Request
from commands.policy import Policy

SLASH_COMMAND = "/migrate"


class EnginePort(Protocol):
    """Promises one Outcome per request (never an exception for user or provider errors)."""

    def handle(self, request: Request) -> Outcome: ...

    def decide(self, *, migration_id: str, approval_id: str, user: str, channel: str, approve: bool,
               idempotency_key: str = "", reason: str = "", attempt: str = "") -> Outcome: ...

    def approval(self, migration_id: str, approval_id: str) -> Approval | None: ...

    def attach_card(self, migration_id: str, *, card_ts: str) -> Migration: ...

    def attach_approval_message(self, migration_id: str, approval_id: str, *, message_ts: str) -> None: ...

    def expire_due(self) -> list[Outcome]: ...

    def reconcile(self) -> list[Outcome]: ...

    def load(self, migration_id: str) -> Migration | None: ...


@dataclass
class Deps:
    engine: EnginePort
    redis: redis.Redis
    policy: Policy
    pending_approvals: Callable[[], int] = lambda: 0
    clock: Callable[[], float] = time.time
    keys: BotKeys = field(default_factory=BotKeys)
    command: str = SLASH_COMMAND

    @property
    def metrics(self) -> Metrics:
        return Metrics(self.redis, self.keys)
