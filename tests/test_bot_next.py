"""The card's "Next" button over real HTTP: `serve` as a process, signed taps in, the Web API stand-in recording.

A tap on Next is the same as typing the verb: the same roles, the same approvals, and a card drawn
before the migration moved on changes nothing.
"""

from __future__ import annotations

import copy
from typing import Any

from bot.actions import ActionId
from tests.test_bot_http import ALICE, BOB, MALLORY, Bot, action_ids, bot, shown, start_switched, step

__all__ = ["bot"]  # the fixture, shared with test_bot_http


def next_of(card: dict[str, Any]) -> str:
    return next(a for a in action_ids(card) if a.startswith(ActionId.NEXT_STEP))


def verified(bot: Bot) -> dict[str, Any]:
    """Switched, 1% on MSE, verify asked by Alice and approved by Bob: the card."""
    card = start_switched(bot)
    bot.tap(ALICE, card, step(card, 1))
    card = bot.card_says("MSE weight 1 ·")
    bot.tap(ALICE, card, next_of(card))
    bot.tap(BOB, bot.approval_message("verify"), ActionId.APPROVE)
    return bot.card_says("*Phase:* verified")


def test_next_runs_the_step_as_typing_it_would_with_the_same_roles_and_approvals(bot: Bot) -> None:
    bot.command(ALICE, "start cluster=demo-cluster gateway=gw-demo")
    card = bot.card_says("*Phase:* listening")
    assert next_of(card) == f"{ActionId.NEXT_STEP}:check"
    bot.tap(MALLORY, card, next_of(card))
    bot.told(MALLORY, "not allowed")
    assert "*Phase:* listening" in shown(bot.card())
    bot.tap(ALICE, card, next_of(card))
    card = bot.card_says("*Phase:* checked")
    assert not [a for a in action_ids(card) if a.startswith(ActionId.NEXT_STEP)], "`method` needs values: text"
    bot.command(ALICE, "method slb service=ingress-nginx/nginx-ingress-lb")
    card = bot.card_says("*Phase:* method chosen")
    bot.tap(ALICE, card, next_of(card))
    card = bot.card_says("*Phase:* switched")
    bot.tap(ALICE, card, step(card, 1))
    card = bot.card_says("MSE weight 1 ·")
    assert action_ids(card)[0] == ActionId.ROLLBACK and next_of(card) == f"{ActionId.NEXT_STEP}:verify"
    bot.tap(ALICE, card, next_of(card))
    request = bot.approval_message("verify")  # an approval request, as `/migrate verify` makes
    card = bot.card_says("Waiting for approval")
    assert not [a for a in action_ids(card) if a.startswith(ActionId.NEXT_STEP)]
    bot.tap(BOB, request, ActionId.APPROVE)
    card = bot.card_says("*Phase:* verified")
    assert action_ids(card) == [ActionId.ROLLBACK, f"{ActionId.NEXT_STEP}:cutover"]


def test_a_next_button_drawn_before_a_rollback_changes_nothing(bot: Bot) -> None:
    stale = copy.deepcopy(verified(bot))  # offers Next: Cut over
    bot.tap(BOB, stale, ActionId.ROLLBACK)
    card = bot.card_says("MSE weight 0 ·")
    bot.tap(ALICE, card, step(card, 1))
    card = bot.card_says("MSE weight 1 ·")
    bot.command(ALICE, "verify")
    bot.tap(BOB, bot.approval_message("verify"), ActionId.APPROVE)  # the first request reads "Approved" now
    bot.card_says("*Phase:* verified")
    bot.tap(ALICE, stale, next_of(stale))  # the same phase again, but drawn before the rollback
    bot.told(ALICE, "This card was out of date")
    assert not [m for m in bot.thread() if "Approval needed: cutover" in m["text"]]
    assert "*Phase:* verified" in shown(bot.card())


def test_a_doctored_next_action_id_runs_no_other_verb(bot: Bot) -> None:
    import json
    import urllib.parse

    card = start_switched(bot)
    bot.tap(ALICE, card, step(card, 5))
    card = bot.card_says("MSE weight 5 ·")
    body = bot.send.tap_body(ALICE, card, next_of(card))  # Next: Verify
    payload = json.loads(urllib.parse.parse_qs(body)["payload"][0])
    payload["actions"][0]["action_id"] = f"{ActionId.NEXT_STEP}:abort"  # a verb the card never offers
    assert bot.send.post(urllib.parse.urlencode({"payload": json.dumps(payload)}),
                         "application/x-www-form-urlencoded").status == 200
    bot.told(ALICE, "That button is not one the card draws")
    assert not [m for m in bot.thread() if "Approval needed" in m["text"]]
    assert "*Phase:* shifting" in shown(bot.card())
