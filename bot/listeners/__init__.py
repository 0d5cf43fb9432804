"""The listeners: which Slack request makes which kind of job, and the function each kind runs.

A listener only acks; its work is handed off (bot/handoff.py) and later runs `RUNNERS[kind]`
with the request body, in the worker process (HTTP) or in a thread of this one (Socket Mode).
"""

from __future__ import annotations

from slack_bolt import App

from bot.actions import ActionId
from bot.handoff import Handoff, Runner
from bot.jobs import Kind
from bot.listeners import approvals, card, commands, home

RUNNERS: dict[Kind, Runner] = {
    Kind.COMMAND: commands.handle_command,
    Kind.APPROVE: approvals.approve,
    Kind.DENY: approvals.deny,
    Kind.ROLLBACK: card.rollback,
    Kind.WEIGHT_STEP: card.weight_step,
    Kind.NEXT_STEP: card.next_step,
    Kind.HOME: home.publish_home,
}


def register(app: App, command: str, handoff: Handoff) -> None:
    handoff.listen(app.command(command), Kind.COMMAND)
    handoff.listen(app.action(ActionId.APPROVE), Kind.APPROVE)
    handoff.listen(app.action(ActionId.DENY), Kind.DENY)
    handoff.listen(app.action(ActionId.ROLLBACK), Kind.ROLLBACK)
    handoff.listen(app.action(card.WEIGHT_STEP), Kind.WEIGHT_STEP)
    handoff.listen(app.action(card.NEXT_STEP), Kind.NEXT_STEP)
    handoff.listen(app.event("app_home_opened"), Kind.HOME)
