"""Buttons on the status card: Rollback, the quick weight steps and the Next step.

Each stands for a `/migrate` line (`rollback`, `weight 25%`, `cutover`) and goes through the
engine's normal checks (role, phase, dwell, approvals). The card's migration must still be the
one running in the channel: a tap on an old card never acts on a newer migration, and a step
drawn before the record moved on changes nothing (Rollback always acts).
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
from commands.model import Migration
from commands.outcome import Request
from commands.render import NEXT_VERB, next_verb

WEIGHT_STEP = re.compile(rf"^{ActionId.WEIGHT_STEP}(:\d+)?$")
NEXT_STEP = re.compile(rf"^{ActionId.NEXT_STEP}:[a-z]+$")
OUT_OF_DATE = "This card was out of date: {why} since it was drawn. Nothing was changed; the card now shows where " \
              "things stand."


def rollback(deps: Deps, body: dict[str, Any], client: WebClient, *, job: str = "") -> None:
    tap_to_command(deps, body, client, "rollback", lambda value: "rollback", job=job)


def weight_step(deps: Deps, body: dict[str, Any], client: WebClient, *, job: str = "") -> None:
    """`→ 25%`: the share comes from the action id the card drew, never from the button's value."""
    step = WEIGHT_STEP.match(str(Tap.from_body(body).action_id))
    share = step.group(1)[1:] if step and step.group(1) else ""
    tap_to_command(deps, body, client, "weight", lambda value: f"weight {share}%" if share else "weight", job=job)


def next_step(deps: Deps, body: dict[str, Any], client: WebClient, *, job: str = "") -> None:
    """`Next: Cut over`: the verb comes from the action id, and only a verb the card can offer runs."""
    action = str(Tap.from_body(body).action_id)
    verb = action.partition(":")[2] if NEXT_STEP.match(action) else ""
    if verb not in NEXT_VERB.values():
        guarded(deps, Tap.from_body(body).reply(client), _not_ours, verb="unknown")
        return
    tap_to_command(deps, body, client, verb, lambda value: verb, job=job)


def _not_ours() -> None:
    raise UserError("That button is not one the card draws; nothing was changed. `/migrate status` shows the card.")


def stale(verb: str, value: ButtonValue, current: Migration) -> str:
    """Why a button drawn at `value` no longer applies to `current`; "" when it still does."""
    if verb == "weight" and value.changed != current.last_weight_change_at:
        return "the weights changed (a rollback, a step)"
    if verb not in ("weight", "rollback") and (next_verb(current) != verb or value.changed != current.last_action_at):
        return "the migration moved on"
    return ""  # a rollback always acts


def tap_to_command(deps: Deps, body: dict[str, Any], client: WebClient, verb: str,
                   line: Callable[[ButtonValue], str], *, job: str = "") -> None:
    tap = Tap.from_body(body)
    reply = tap.reply(client)

    def work() -> None:
        value = ButtonValue.decode(tap.value)
        current = deps.engine.load(value.migration)
        if current is None or not current.active or current.channel != tap.channel:
            raise UserError("That card belongs to a migration that is no longer running; `/migrate status`.")
        why = stale(verb, value, current)
        if why:
            Publisher(client, deps).refresh_card(current.id)
            raise UserError(OUT_OF_DATE.format(why=why))
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
