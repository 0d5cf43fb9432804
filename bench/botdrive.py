"""Drive a running `serve` the way Slack would, and read back what it did from Redis and the stand-in.

Reuses the tests' signed sender and Web API stand-in; adds the waits a benchmark needs
between samples (a step finished, the card redrawn) so every sample starts from a known state.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bench.common import wait_until
from bot.actions import ActionId, ButtonValue
from bot.keys import BotKeys
from commands.model import Migration
from providers.store import RedisStore
from tests.slack_standin import SlackSender, SlackStandIn, buttons

FORM = "application/x-www-form-urlencoded"
ALICE, BOB = "U0ALICE01", "U0BOB0001"
CHANNEL = "C0MIGRATE1"
CLUSTER, GATEWAY, SERVICE = "demo-cluster", "gw-demo", "ingress-nginx/nginx-ingress-lb"


def approvers(n: int) -> list[str]:
    """`n` distinct approver ids for the approval race (listed in the config's approvers)."""
    return [f"U0APPR{i:04d}" for i in range(n)]


def serve_config(alibaba: dict[str, Any], *, racers: int) -> dict[str, Any]:
    """The bot's YAML config: two operators, racers + BOB as approvers, no dwell, steps of any size (the
    rollback samples jump between shares), the demo cluster simulated."""
    return {"operators": [ALICE, BOB], "approvers": [BOB, *approvers(racers)], "channels": [CHANNEL],
            "required_approvals": 1, "dwell_seconds": 0, "approval_ttl_minutes": 30,
            "analysis": {"max_step_percent": 100},
            "alibaba": alibaba, "clusters": {CLUSTER: {"sim_seed": ""}}}


@dataclass
class BotDriver:
    slack: SlackStandIn
    send: SlackSender
    store: RedisStore

    @classmethod
    def connect(cls, url: str, slack: SlackStandIn, redis_url: str) -> BotDriver:
        return cls(slack, SlackSender(url, slack, channel=CHANNEL), RedisStore.from_url(redis_url))

    def command(self, user: str, text: str) -> int:
        return self.send.command(user, text).status

    def migration(self) -> Migration | None:
        return self.store.active_in_channel(CHANNEL)

    def settled(self, phase: str, **want: int) -> Migration:
        """Wait for the migration to reach `phase` with no step running and the given weights."""
        def ok() -> Migration | None:
            m = self.migration()
            if m is None or m.phase.value != phase or m.intent is not None:
                return None
            return m if all(getattr(m, k) == v for k, v in want.items()) else None

        return wait_until(ok, f"phase {phase} {want}", timeout=30)

    def to_shifting(self) -> Migration:
        """start -> check -> method -> switch over signed HTTP, each step awaited."""
        for text, phase in ((f"start cluster={CLUSTER} gateway={GATEWAY}", "listening"), ("check", "checked"),
                            (f"method slb service={SERVICE}", "method chosen"), ("switch", "switched")):
            assert self.command(ALICE, text) == 200
            try:
                # The card must be attached too: attaching it is a commit, and a command racing it is
                # refused with "The migration changed while this request was handled" (see README).
                wait_until(lambda p=phase: (m := self.migration()) and m.phase.value == p and m.intent is None  # type: ignore[misc]
                           and m.card_ts, f"phase {phase}", timeout=30)
            except TimeoutError as err:
                m = self.migration()
                said = [c.args.get("text", "")[:300] for c in self.slack.calls][-3:]
                raise TimeoutError(f"`/migrate {text}` did not reach {phase} (phase {m.phase.value if m else None});"
                                   f" the bot said: {said}") from err
        return self.migration()  # type: ignore[return-value]

    def set_weight(self, weight: int) -> Migration:
        assert self.command(ALICE, f"weight {weight}") == 200
        return self.settled("shifting", mse_weight=weight)

    def card(self, m: Migration) -> dict[str, Any]:
        """The status card once it is redrawn for record version `m.version` (so its buttons are fresh)."""
        def drawn() -> dict[str, Any] | None:
            msg = self.slack.messages.get(m.card_ts)
            if not msg:
                return None
            for b in buttons(msg):
                if b["action_id"] == ActionId.ROLLBACK and ButtonValue.decode(b["value"]).version == m.version:
                    return msg
            return None

        return wait_until(drawn, f"the card drawn at version {m.version}", timeout=30)

    def approval_request(self, verb: str, after: int) -> dict[str, Any]:
        """The newest thread message asking to approve `verb`, posted after message number `after`."""
        def find() -> dict[str, Any] | None:
            msgs = list(self.slack.messages.values())[after:]
            return next((msg for msg in reversed(msgs)
                         if f"Approval needed: {verb}" in msg.get("text", "") + json.dumps(msg.get("blocks", []))
                         and any(b["action_id"] == ActionId.APPROVE for b in buttons(msg))), None)

        return wait_until(find, f"the approval request for {verb}", timeout=30)

    def handled(self) -> dict[str, int]:
        """The bot's own counters of handled commands and taps, "verb|result" -> count."""
        return {k: int(v) for k, v in self.store.r.hgetall(BotKeys().commands()).items()}

    def events(self, migration_id: str) -> Iterator[dict[str, Any]]:
        for _, fields in self.store.r.xrange(self.store.k.events(migration_id)):
            yield json.loads(fields["event"])
