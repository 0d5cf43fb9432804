"""Every Redis key the Slack edge uses, in one place (the store's own keys live in providers/keys.py).

    {p}:seen:{signature}     string: a signature already accepted (replay guard), TTL = signing window
    {p}:delivery:{digest}    string: a Slack delivery already taken in hand (retries, double taps)
    {p}:card:{migration}     string: short lock while a status card is posted or redrawn
    {p}:lease:housekeeper    string: which replica runs the expiry loop, with a TTL
    {p}:metrics:commands     hash: "verb|result" -> count
    {p}:metrics:rollbacks    string: rollbacks carried out
    {p}:metrics:transitions  hash: "verb|phase_to" -> count
    {p}:metrics:calls        hash: "operation|outcome" -> count (provider calls)
    {p}:metrics:hist:{name}  hash: "labels|bucket index" -> count, "labels|sum", "labels|count"
    {p}:once:{event}         string: timed work already done for that event (a notice, a resumed step)
    {p}:jobs:queued:{worker}:{lane}  list: Slack work a replica acked, waiting for its worker (lanes: bot/jobs.py)
    {p}:jobs:taken:{worker}:{lane}  list: jobs a worker took and has not finished (re-queued if it dies)
    {p}:jobs:workers         set: worker ids that may hold taken jobs
    {p}:jobs:alive:{worker}  string: a worker's heartbeat (this life's token), with a TTL
    {p}:roles:changed        string: a counter bumped by each user-group event (bot/group_events.py)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class BotKeys:
    prefix: str = "migrate:bot"

    def seen(self, signature: str) -> str:
        return f"{self.prefix}:seen:{signature}"

    def delivery(self, key: str) -> str:
        return f"{self.prefix}:delivery:{digest(key)}"

    def card(self, migration_id: str) -> str:
        return f"{self.prefix}:card:{migration_id}"

    def lease(self) -> str:
        return f"{self.prefix}:lease:housekeeper"

    def commands(self) -> str:
        return f"{self.prefix}:metrics:commands"

    def rollbacks(self) -> str:
        return f"{self.prefix}:metrics:rollbacks"

    def transitions(self) -> str:
        return f"{self.prefix}:metrics:transitions"

    def provider_calls(self) -> str:
        return f"{self.prefix}:metrics:calls"

    def histogram(self, name: str) -> str:
        return f"{self.prefix}:metrics:hist:{name}"

    def once(self, event: str) -> str:
        return f"{self.prefix}:once:{event}"

    def jobs(self, worker: str, lane: str) -> str:
        return f"{self.prefix}:jobs:queued:{worker}:{lane}"

    def taken(self, worker: str, lane: str) -> str:
        return f"{self.prefix}:jobs:taken:{worker}:{lane}"

    def workers(self) -> str:
        return f"{self.prefix}:jobs:workers"

    def alive(self, worker: str) -> str:
        return f"{self.prefix}:jobs:alive:{worker}"

    def groups_changed(self) -> str:
        return f"{self.prefix}:roles:changed"


def digest(text: str) -> str:
    """A short stable name for a long delivery key (message ts + action + value + user)."""
    return hashlib.sha256(text.encode()).hexdigest()[:32]
