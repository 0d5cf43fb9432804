"""Counters for `/metrics`, kept in Redis so every replica and every restart adds to the same numbers.

In Redis rather than in-process: the bot runs one worker per replica and may run several
replicas; Prometheus scraping any of them should see the team's totals, not one process's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import redis

from bot.keys import BotKeys

RESULTS = ("ok", "refused", "error", "duplicate")


class Metrics:
    def __init__(self, client: redis.Redis, keys: BotKeys) -> None:
        self.r, self.keys = client, keys

    def command(self, verb: str, result: str) -> None:
        """Count one handled command or button by verb and result (ok, refused, error, duplicate)."""
        with contextlib.suppress(redis.RedisError):  # metrics never stand in the way of a migration
            self.r.hincrby(self.keys.commands(), f"{verb or 'unknown'}|{result}", 1)

    def rollback(self) -> None:
        with contextlib.suppress(redis.RedisError):
            self.r.incr(self.keys.rollbacks())

    def render(self, pending_approvals: Callable[[], int]) -> str:
        """Prometheus text exposition format (version 0.0.4)."""
        counts = {_s(k): int(v) for k, v in self.r.hgetall(self.keys.commands()).items()}
        lines = ["# HELP migrate_commands_total Slash commands and buttons handled, by verb and result.",
                 "# TYPE migrate_commands_total counter"]
        for key in sorted(counts):
            verb, _, result = key.partition("|")
            lines.append(f'migrate_commands_total{{verb="{_label(verb)}",result="{_label(result)}"}} {counts[key]}')
        lines += ["# HELP migrate_approvals_pending Approval requests waiting for a decision.",
                  "# TYPE migrate_approvals_pending gauge", f"migrate_approvals_pending {pending_approvals()}",
                  "# HELP migrate_rollbacks_total Rollbacks carried out.", "# TYPE migrate_rollbacks_total counter",
                  f"migrate_rollbacks_total {int(self.r.get(self.keys.rollbacks()) or 0)}"]
        return "\n".join(lines) + "\n"


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
