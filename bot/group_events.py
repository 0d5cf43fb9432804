"""Slack's user-group events re-read the roles' groups at once, on every replica.

`subteam_members_changed` and `subteam_updated` (and `subteam_created`) arrive at whichever web
worker Slack reached; it only bumps a counter in Redis. Every process that runs the engine looks
at that counter on each turn of its timed loop (about a second) and re-reads the groups when it
moved, so someone removed from the operators' group loses the role within seconds, not only at
the next minute's re-read (bot/housekeeper.py).
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from slack_bolt import App

from bot.keys import BotKeys

log = logging.getLogger("migrate.bot.roles")
EVENTS = ("subteam_members_changed", "subteam_updated", "subteam_created")


def register(app: App, client: redis.Redis, keys: BotKeys) -> None:
    def changed(event: dict[str, Any]) -> None:
        try:
            client.incr(keys.groups_changed())
        except redis.RedisError:
            log.warning("a user-group event could not be passed on: Redis did not answer; "
                        "the minute's re-read still comes")

    for name in EVENTS:
        app.event(name)(changed)


class GroupsWatch:
    """Says, once per change, that a user-group event came in since this process last looked."""

    def __init__(self, client: redis.Redis, keys: BotKeys) -> None:
        self.r, self.key = client, keys.groups_changed()
        self.seen: str | None = None

    def changed(self) -> bool:
        try:
            now = str(self.r.get(self.key) or "0")
        except redis.RedisError:
            return False
        first, self.seen, before = self.seen is None, now, self.seen
        return not first and now != before
