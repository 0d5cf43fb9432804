"""Buttons on the status card: Rollback and the quick weight steps.

Each stands for a `/migrate` line (`rollback`, `weight 25%`) and goes through the engine's
normal checks (role, phase, dwell). The card's migration must still be the one running in
the channel: a tap on an old card never acts on a newer migration.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient

from bot.actions import ActionId, ButtonValue
from bot.boundary import guarded
from bot.deps import Deps
from bot.listeners.common import Tap, count, engine_key, first_delivery
from bot.logging import bound
from bot.publish import Publisher
from commands.errors import UserError
from commands.outcome import Request

WEIGHT_STEP = re.compile(rf"^{ActionId.WEIGHT_STEP}(:\d+)?$")


def rollback(deps: Deps, body: dict[str, Any], client: WebClient, *, job: str = "") -> None:
    tap_to_command(deps, body, client, lambda value: "rollback", job=job)


def weight_step(deps: Deps, body: dict[str, Any], client: WebClient, *, job: str = "") -> None:
    """`→ 25%`: the share comes from the action id the card drew, never from the button's value."""
    step = WEIGHT_STEP.match(str(Tap.from_body(body).action_id))
    share = step.group(1)[1:] if step and step.group(1) else ""
    tap_to_command(deps, body, client, lambda value: f"weight {share}%" if share else "weight", job=job)


def tap_to_command(deps: Deps, body: dict[str, Any], client: WebClient, line: Callable[[ButtonValue], str], *,
                   job: str = "") -> None:
    tap = Tap.from_body(body)
    reply = tap.reply(client)
    verb = "rollback" if tap.action_id == ActionId.ROLLBACK else "weight"

    def work() -> None:
        value = ButtonValue.decode(tap.value)
        current = deps.engine.load(value.migration)
        if current is None or not current.active or current.channel != tap.channel:
            raise UserError("That card belongs to a migration that is no longer running; `/migrate status`.")
        if verb == "weight" and value.changed != current.last_weight_change_at:  # rollback always acts
            Publisher(client, deps).refresh_card(current.id)
            raise UserError("This card was out of date: the weights changed since it was drawn (a rollback, a "
                            "step). Nothing was changed; the card now shows where things stand.")
        if not first_delivery(deps, tap.delivery, job=job):
            deps.metrics.command(verb, "duplicate")
            return
        with bound(migration=value.migration):
            outcome = deps.engine.handle(Request(text=line(value), user=tap.user, channel=tap.channel,
                                                 idempotency_key=engine_key(tap.delivery), attempt=job))
            count(deps, outcome, verb)
            Publisher(client, deps).publish(outcome, reply=reply)

    with bound(user=tap.user, channel=tap.channel, verb=verb):
        guarded(deps, reply, work, verb=verb)
