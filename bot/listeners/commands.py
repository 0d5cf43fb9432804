"""`/migrate ...`: acked at once with nothing; the engine runs later, the answer goes to the thread."""

from __future__ import annotations

from typing import Any

from slack_bolt import Respond
from slack_sdk import WebClient

from bot.boundary import guarded
from bot.deps import Deps
from bot.listeners.common import count, engine_key, first_delivery, respond_reply
from bot.logging import bound
from bot.publish import Publisher
from commands.outcome import Request


def handle_command(deps: Deps, body: dict[str, Any], client: WebClient, *, job: str = "") -> None:
    user, channel, text = body.get("user_id", ""), body.get("channel_id", ""), body.get("text", "")
    verb = (text.split() or ["help"])[0].lower()[:20]
    url = body.get("response_url")
    reply = respond_reply(Respond(response_url=url if isinstance(url, str) else None, proxy=client.proxy,
                                  ssl=client.ssl))
    trigger = body.get("trigger_id")
    delivery = f"cmd:{trigger}" if isinstance(trigger, str) and trigger else ""

    def work() -> None:
        if not first_delivery(deps, delivery, job=job):
            deps.metrics.command(verb, "duplicate")
            return
        outcome = deps.engine.handle(Request(text=text, user=user, channel=channel,
                                             idempotency_key=engine_key(delivery), attempt=job))
        with bound(migration=outcome.migration.id if outcome.migration else ""):
            count(deps, outcome, verb)  # inside the binding: its log line names the migration
            Publisher(client, deps).publish(outcome, reply=reply)

    with bound(user=user, channel=channel, verb=verb):
        guarded(deps, reply, work, verb=verb)
