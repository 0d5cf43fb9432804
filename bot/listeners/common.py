"""What every listener shares: the delivery claim, private replies, counting.

Exactly once at the edge: each delivery has a key (the trigger id of a command; message ts +
action id + button value + user for a tap). The first delivery claims it in Redis; a Slack
retry (X-Slack-Retry-Num), a double tap or a replay of the same key acts no more. The claim
holds the id of the job that made it, so that job, run again after its worker died, still
goes on. The engine gets the same key and dedupes again behind us.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import redis
from slack_bolt import Respond
from slack_sdk import WebClient

from bot.deps import Deps
from bot.keys import digest
from bot.publish import Reply
from commands.errors import StoreUnavailable
from commands.outcome import Outcome

log = logging.getLogger("migrate.bot")
DELIVERY_TTL = 24 * 3600


def engine_key(delivery: str) -> str:
    """The engine's idempotency key for a delivery; none for a delivery that names nothing."""
    return f"slack:{digest(delivery)}" if delivery else ""


def first_delivery(deps: Deps, delivery: str, *, job: str = "") -> bool:
    """True once per delivery key (and again for the same `job` run a second time); False for
    retries, double taps and replays.

    A request without a key (no trigger id) cannot be matched to a repeat, so it is not
    deduplicated rather than all such requests sharing one key."""
    if not delivery:
        return True
    key = deps.keys.delivery(delivery)
    try:
        first = bool(deps.redis.set(key, job or "1", nx=True, ex=DELIVERY_TTL))
        if not first and job:
            first = deps.redis.get(key) == job
    except redis.RedisError:
        raise StoreUnavailable("The state store (Redis) did not answer; nothing was changed. Try again shortly.") \
            from None
    if not first:
        log.info("ignored a repeated delivery")
    return first


def count(deps: Deps, outcome: Outcome, verb: str) -> None:
    """Metrics by verb and result (refusals carry no verb: the asked one is used); rollbacks on their own too."""
    result = "duplicate" if outcome.replayed else ("ok" if outcome.ok else "refused")
    verb = outcome.verb or verb
    deps.metrics.command(verb, result)
    if verb == "rollback" and outcome.ok and not outcome.ephemeral and not outcome.replayed:
        deps.metrics.rollback()


def respond_reply(respond: Respond) -> Reply:
    """Private answers to a slash command go through its response_url: it works in any channel."""

    def reply(text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        respond(text=text[:3000] if blocks else text, blocks=blocks, response_type="ephemeral", replace_original=False)

    return reply


@dataclass(frozen=True)
class Tap:
    """One button click, from a `block_actions` payload."""

    user: str
    channel: str
    message_ts: str
    thread_ts: str
    action_id: str
    value: str

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Tap:
        action = body["actions"][0]
        container = body.get("container") or {}
        message = body.get("message") or {}
        return cls(user=body["user"]["id"], channel=(body.get("channel") or {}).get("id", container.get("channel_id")),
                   message_ts=container.get("message_ts") or message.get("ts", ""),
                   thread_ts=message.get("thread_ts", ""), action_id=action["action_id"],
                   value=action.get("value", ""))

    @property
    def delivery(self) -> str:
        """Not action_ts: it differs per click, and a double tap must count once."""
        return f"tap:{self.channel}:{self.message_ts}:{self.action_id}:{self.value}:{self.user}"

    def reply(self, client: WebClient) -> Reply:
        def reply(text: str, blocks: list[dict[str, Any]] | None = None) -> None:
            client.chat_postEphemeral(channel=self.channel, user=self.user, text=text, blocks=blocks,
                                      thread_ts=self.thread_ts or None)

        return reply
