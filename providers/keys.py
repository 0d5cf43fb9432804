"""Every Redis key migrate-bot uses, in one place.

    {p}:{id}                      hash: version, data (the Migration as JSON)
    {p}:{id}:events               stream: the audit trail, one entry per change
    {p}:{id}:approval:{req}       string: an Approval as JSON
    {p}:lock:cluster:{cluster}    string: id of the one active migration of that cluster
    {p}:channel:{channel}         string: id of the active migration coordinated in that channel
    {p}:channel:{channel}:latest  string: id of the last migration of that channel (for status/history)
    {p}:active                    set: ids of active migrations (reconciled at start-up)
    {p}:finished                  sorted set: ids of finished migrations scored by when they finished (App Home)
    {p}:approvals:pending         sorted set: "{id}/{req}" scored by expiry time
    {p}:idem:{key}                string: a delivery already handled, and its answer


The Slack edge keeps its own keys (replay guard, deliveries, card locks, metrics, the
housekeeping lease) under `migrate:bot:` in `bot/keys.py`: they are about Slack requests, not
migrations, and `commands/` never sees them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    prefix: str = "migrate"

    def record(self, mid: str) -> str:
        return f"{self.prefix}:{mid}"

    def events(self, mid: str) -> str:
        return f"{self.prefix}:{mid}:events"

    def approval(self, mid: str, req: str) -> str:
        return f"{self.prefix}:{mid}:approval:{req}"

    def cluster_lock(self, cluster: str) -> str:
        return f"{self.prefix}:lock:cluster:{cluster}"

    def channel(self, channel: str) -> str:
        return f"{self.prefix}:channel:{channel}"

    def channel_latest(self, channel: str) -> str:
        return f"{self.prefix}:channel:{channel}:latest"

    def active(self) -> str:
        return f"{self.prefix}:active"

    def finished(self) -> str:
        return f"{self.prefix}:finished"

    def pending_approvals(self) -> str:
        return f"{self.prefix}:approvals:pending"

    def idem(self, key: str) -> str:
        return f"{self.prefix}:idem:{key}"
