"""Approve and Deny buttons on an approval request in the thread."""

from __future__ import annotations

from typing import Any

from slack_sdk import WebClient

from bot.actions import ButtonValue
from bot.boundary import guarded
from bot.deps import Deps
from bot.listeners.common import Tap, count, engine_key, first_delivery
from bot.logging import bound
from bot.publish import Publisher
from commands.errors import UserError


def approve(deps: Deps, body: dict[str, Any], client: WebClient, *, job: str = "") -> None:
    decide(deps, body, client, approve=True, job=job)


def deny(deps: Deps, body: dict[str, Any], client: WebClient, *, job: str = "") -> None:
    decide(deps, body, client, approve=False, job=job)


def decide(deps: Deps, body: dict[str, Any], client: WebClient, *, approve: bool, job: str = "") -> None:
    tap = Tap.from_body(body)
    verb = "approve" if approve else "deny"
    reply = tap.reply(client)

    def work() -> None:
        value = ButtonValue.decode(tap.value)
        m = deps.engine.load(value.migration)
        a = deps.engine.approval(value.migration, value.approval) if m is not None else None
        if m is None or a is None or tap.channel != m.channel or (a.message_ts and tap.message_ts != a.message_ts):
            # A tap reported from another channel or another message is not a decision on this request.
            raise UserError("That button does not belong to this request's message; use the buttons on the "
                            "request in the migration's thread, or `/migrate approve REQUEST`.")
        if not first_delivery(deps, tap.delivery, job=job):
            deps.metrics.command(verb, "duplicate")
            return
        with bound(migration=value.migration, approval=value.approval):
            outcome = deps.engine.decide(migration_id=value.migration, approval_id=value.approval, user=tap.user,
                                         channel=tap.channel, approve=approve,
                                         idempotency_key=engine_key(tap.delivery), attempt=job)
            count(deps, outcome, verb)
            Publisher(client, deps).publish(outcome, reply=reply, approval_ts=tap.message_ts)

    with bound(user=tap.user, channel=tap.channel, verb=verb):
        guarded(deps, reply, work, verb=verb)
