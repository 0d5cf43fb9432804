"""One `register(app, deps)` per listener kind: slash command, approval buttons, card buttons."""

from __future__ import annotations

from slack_bolt import App

from bot.deps import Deps
from bot.listeners import approvals, card, commands


def register(app: App, deps: Deps) -> None:
    commands.register(app, deps)
    approvals.register(app, deps)
    card.register(app, deps)
