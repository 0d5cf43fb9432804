"""Scenario tests over real HTTP: `serve` as a process, signed requests in, the Web API stand-in recording.

Every assertion is about what a person in Slack would see: the status card, the thread, the
approval messages and their buttons, and private replies.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.actions import ActionId
from tests.bot_server import get, running_bot
from tests.slack_standin import SlackSender, SlackStandIn, buttons

ALICE, BOB, CAROL, DAVE, MALLORY = "U0ALICE01", "U0BOB0001", "U0CAROL01", "U0DAVE001", "U0MALLORY"
CHANNEL = "C0MIGRATE1"


@dataclass
class Bot:
    url: str
    slack: SlackStandIn
    send: SlackSender

    def cards(self) -> list[dict[str, Any]]:
        return [m for m in self.slack.messages.values() if not m.get("thread_ts") and is_card(m)]

    def card(self) -> dict[str, Any]:
        return self.slack.wait_for(lambda: self.cards()[-1] if self.cards() else None, "the status card")

    def card_says(self, text: str) -> dict[str, Any]:
        return self.slack.wait_for(lambda: self.cards() and text in shown(self.cards()[-1]) and self.cards()[-1],
                                   f"the card to say {text!r}")

    def thread(self) -> list[dict[str, Any]]:
        return self.slack.posts_in_thread(self.card()["ts"])

    def thread_says(self, text: str) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            return next((m for m in self.thread() if text in shown(m)), None)

        return self.slack.wait_for(find, f"a thread message saying {text!r}")

    def told(self, user: str, text: str) -> str:
        return self.slack.wait_for(lambda: next((t for t in self.slack.private_to(user) if text in t), None),
                                   f"{user} to be told {text!r}")

    def command(self, user: str, text: str) -> None:
        assert self.send.command(user, text).status == 200

    def tap(self, user: str, message: dict[str, Any], action_id: str) -> None:
        assert self.send.tap(user, message, action_id).status == 200

    def approval_message(self, verb: str) -> dict[str, Any]:
        return self.thread_says(f"Approval needed: {verb}")


def is_card(message: dict[str, Any]) -> bool:
    """The status card (its first block is the header), not a line said to the whole channel."""
    return bool(message.get("blocks")) and message["blocks"][0].get("type") == "header"


def shown(message: dict[str, Any]) -> str:
    return message.get("text", "") + json.dumps(message.get("blocks", []), ensure_ascii=False)


def action_ids(message: dict[str, Any]) -> list[str]:
    return [b["action_id"] for b in buttons(message)]


def step(message: dict[str, Any], share: int) -> str:
    return next(a for a in action_ids(message) if a == f"{ActionId.WEIGHT_STEP}:{share}")


@pytest.fixture
def bot(slack: SlackStandIn, redis_url: str, tmp_path: Path) -> Iterator[Bot]:
    with running_bot(slack, redis_url, tmp_path) as url:
        yield Bot(url, slack, SlackSender(url, slack))


def start_switched(bot: Bot) -> dict[str, Any]:
    """A migration taken by Alice up to the switch (step 4b), through slash commands."""
    bot.command(ALICE, "start cluster=demo-cluster gateway=gw-demo")
    bot.card_says("*Phase:* listening")
    bot.command(ALICE, "check")
    bot.card_says("*Phase:* checked")
    bot.command(ALICE, "method slb service=ingress-nginx/nginx-ingress-lb")
    bot.card_says("*Phase:* method chosen")
    bot.command(ALICE, "switch")
    return bot.card_says("*Phase:* switched")


def verify_asked(bot: Bot) -> dict[str, Any]:
    """Switched, 1% on MSE by the card's button, and a verify request posted: its message."""
    card = start_switched(bot)
    bot.tap(ALICE, card, step(card, 1))
    bot.card_says("MSE weight 1 ·")
    bot.command(ALICE, "verify")
    return bot.approval_message("verify")


def test_a_full_migration_by_two_people_over_http(bot: Bot) -> None:
    card = start_switched(bot)
    assert bot.slack.of("auth.test") and bot.slack.of("usergroups.users.list")
    bot.thread_says("started by <@U0ALICE01>")
    bot.thread_says("Route check")

    bot.tap(ALICE, card, step(card, 1))  # the quick step button on the card
    card = bot.card_says("MSE █░░░░░░░░░ 1.0%")
    assert ActionId.ROLLBACK in action_ids(card)
    bot.command(ALICE, "weight 10")
    card = bot.card_says("MSE weight 10 ·")
    bot.tap(BOB, card, step(card, 25))
    card = bot.card_says("MSE ██░░░░░░░░ 25%")

    bot.command(ALICE, "verify")
    request = bot.approval_message("verify")
    assert set(action_ids(request)) == {ActionId.APPROVE, ActionId.DENY}
    bot.tap(ALICE, request, ActionId.APPROVE)  # her own request
    bot.told(ALICE, "someone else must approve")
    assert set(action_ids(bot.slack.messages[request["ts"]])) == {ActionId.APPROVE, ActionId.DENY}
    bot.tap(BOB, request, ActionId.APPROVE)
    card = bot.card_says("*Phase:* verified")
    decided = bot.slack.wait_for(lambda: not action_ids(bot.slack.messages[request["ts"]])
                                 and bot.slack.messages[request["ts"]], "the request to lose its buttons")
    assert "Approved" in shown(decided) and "<@U0BOB0001>" in shown(decided)
    assert action_ids(card) == [ActionId.ROLLBACK, f"{ActionId.NEXT_STEP}:cutover"]  # weights locked: no steps

    for verb, phase in (("cutover", "cut over"), ("complete", "completed")):
        bot.command(ALICE, verb)
        request = bot.approval_message(verb)
        bot.tap(BOB, request, ActionId.APPROVE)
        bot.card_says(f"*Phase:* {phase}")
    card = bot.card_says("MSE ██████████ 100%")
    assert len(bot.cards()) == 1, "the card is edited in place, never re-posted"
    assert len(bot.slack.of("chat.update")) >= 10


@pytest.mark.parametrize("how", ["forged", "stale", "unsigned", "replayed"])
def test_bad_signatures_get_401_and_change_nothing(bot: Bot, how: str) -> None:
    body = bot.send.command_body(ALICE, "start cluster=demo-cluster gateway=gw-demo")
    kind = "application/x-www-form-urlencoded"
    if how == "forged":
        reply = bot.send.post(body, kind, secret="not-the-secret")
    elif how == "stale":
        reply = bot.send.post(body, kind, timestamp=int(time.time()) - 6 * 60)
    elif how == "unsigned":
        reply = bot.send.post(body, kind, signed=False)
    else:
        first = bot.send.post(body, kind)
        assert first.status == 200
        bot.card()
        reply = bot.send.send(body, first.sent)  # the same signature and timestamp again
    assert reply.status == 401
    bot.command(ALICE, "status")
    if how == "replayed":
        assert len(bot.cards()) == 1
    else:
        bot.told(ALICE, "No migration is running in this channel")
        assert bot.cards() == [] and not bot.slack.of("chat.postMessage")


def test_a_retried_delivery_acts_once(bot: Bot) -> None:
    body = bot.send.command_body(ALICE, "start cluster=demo-cluster gateway=gw-demo")
    kind = "application/x-www-form-urlencoded"
    assert bot.send.post(body, kind).status == 200
    bot.card_says("*Phase:* listening")
    for n in (1, 2):  # Slack re-signs a retry with the time it is sent
        retry = bot.send.post(body, kind, timestamp=int(time.time()) + n,
                              headers={"X-Slack-Retry-Num": str(n), "X-Slack-Retry-Reason": "http_timeout"})
        assert retry.status == 200
    bot.command(ALICE, "status")  # a later request is answered, so the retries were handled before it
    bot.told(ALICE, "listening")
    assert len(bot.cards()) == 1
    assert len([m for m in bot.thread() if "started by" in m["text"]]) == 1


def test_a_double_tap_acts_once(bot: Bot) -> None:
    card = start_switched(bot)
    bodies = [bot.send.tap_body(ALICE, card, step(card, 5)) for _ in range(2)]
    replies: list[int] = []
    threads = [threading.Thread(target=lambda b=b: replies.append(
        bot.send.post(b, "application/x-www-form-urlencoded").status)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert replies == [200, 200]
    bot.card_says("5%")
    bot.command(ALICE, "history")
    bot.told(ALICE, "weight")
    bot.thread_says("set MSE weight 5 ")  # waits for the reply to be posted
    assert len([m for m in bot.thread() if "set MSE weight 5 " in m["text"]]) == 1


def test_two_approvers_at_once_carry_the_step_out_once(bot: Bot) -> None:
    request = verify_asked(bot)
    bodies = [bot.send.tap_body(user, request, ActionId.APPROVE) for user in (BOB, DAVE)]
    threads = [threading.Thread(target=bot.send.post, args=(b, "application/x-www-form-urlencoded")) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bot.card_says("*Phase:* verified")
    bot.slack.wait_for(lambda: not action_ids(bot.slack.messages[request["ts"]]), "the buttons to go")
    bot.command(ALICE, "history")
    history = bot.told(ALICE, "verify")
    assert history.count("approved") <= 2
    locks = [m for m in bot.thread() if "weights are locked" in m["text"]]
    assert len(locks) == 1, [m["text"] for m in bot.thread()]


def test_someone_not_listed_is_refused_privately_and_nothing_changes(bot: Bot) -> None:
    bot.command(MALLORY, "start cluster=demo-cluster gateway=gw-demo")
    bot.told(MALLORY, "You are not allowed to operate migrations")
    bot.command(ALICE, "status")
    bot.told(ALICE, "No migration is running")
    assert not bot.slack.of("chat.postMessage")


def test_a_member_of_a_listed_user_group_may_operate(bot: Bot) -> None:
    bot.command(CAROL, "start cluster=demo-cluster gateway=gw-demo")
    bot.thread_says("started by <@U0CAROL01>")


def test_a_channel_outside_the_config_is_refused(bot: Bot) -> None:
    assert bot.send.command(ALICE, "start cluster=demo-cluster gateway=gw-demo", channel="C0ELSEWHERE").status == 200
    bot.told(ALICE, "not one migrate-bot runs in")
    assert not bot.slack.of("chat.postMessage")


def test_an_unauthorized_tap_on_rollback_is_refused(bot: Bot) -> None:
    card = start_switched(bot)
    bot.tap(ALICE, card, step(card, 1))
    card = bot.card_says("MSE weight 1 ·")
    bot.tap(MALLORY, card, ActionId.ROLLBACK)
    bot.told(MALLORY, "not allowed to roll back")
    bot.tap(BOB, card, ActionId.ROLLBACK)
    card = bot.card_says("MSE ░░░░░░░░░░ 0%")
    assert ActionId.ROLLBACK not in action_ids(card)
    _, metrics = get(bot.url + "/metrics")
    assert "migrate_rollbacks_total 1" in metrics
    assert 'migrate_commands_total{verb="rollback",result="refused"} 1' in metrics


def test_help_and_status_with_nothing_running(bot: Bot) -> None:
    bot.command(ALICE, "help")
    help_text = bot.told(ALICE, "/migrate start cluster=")
    assert "/migrate rollback" in help_text and "/migrate weight 10" not in help_text
    assert len(help_text.splitlines()) <= 12
    bot.command(ALICE, "help all")
    assert "/migrate rollback" in bot.told(ALICE, "/migrate weight 10")
    bot.command(ALICE, "status")
    bot.told(ALICE, "Start one with `/migrate start")
    bot.command(ALICE, "frobnicate")
    bot.told(ALICE, "Unknown verb `frobnicate`")
    assert not bot.slack.of("chat.postMessage")


def test_probes_and_metrics(bot: Bot) -> None:
    assert get(bot.url + "/healthz") == (200, "ok\n")
    assert get(bot.url + "/readyz") == (200, "ready\n")
    bot.command(ALICE, "help")
    bot.told(ALICE, "migrate-bot")
    status, text = get(bot.url + "/metrics")
    assert status == 200 and 'migrate_commands_total{verb="help",result="ok"} 1' in text
    assert "migrate_approvals_pending 0" in text
    assert get(bot.url + "/nowhere")[0] == 404


def test_a_denied_request_is_edited_and_changes_nothing(bot: Bot) -> None:
    request = verify_asked(bot)
    bot.tap(BOB, request, ActionId.DENY)
    denied = bot.slack.wait_for(lambda: "Denied" in shown(bot.slack.messages[request["ts"]])
                                and bot.slack.messages[request["ts"]], "the request to say Denied")
    assert action_ids(denied) == []
    assert "*Phase:* shifting" in shown(bot.card())


@pytest.mark.parametrize("stamp", ["abc", "1e9", "", "-1700000000"])
def test_a_timestamp_that_is_not_a_number_is_401(bot: Bot, stamp: str) -> None:
    body = bot.send.command_body(ALICE, "status")
    reply = bot.send.send(body, {"Content-Type": "application/x-www-form-urlencoded",
                                 "X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": "v0=" + "0" * 64})
    assert reply.status == 401


def test_a_weight_step_acts_on_its_action_id_not_its_value(bot: Bot) -> None:
    import urllib.parse

    card = start_switched(bot)
    body = bot.send.tap_body(ALICE, card, step(card, 5))
    payload = json.loads(urllib.parse.parse_qs(body)["payload"][0])
    value = json.loads(payload["actions"][0]["value"])
    payload["actions"][0]["value"] = json.dumps({**value, "w": "90%"})  # a doctored value asks for 90%
    assert bot.send.post(urllib.parse.urlencode({"payload": json.dumps(payload)}),
                         "application/x-www-form-urlencoded").status == 200
    bot.card_says("MSE weight 5 ·")  # the action id said 5%


def test_a_step_button_drawn_before_a_rollback_changes_nothing(bot: Bot) -> None:
    card = start_switched(bot)
    bot.tap(ALICE, card, step(card, 5))
    stale = copy.deepcopy(bot.card_says("MSE weight 5 ·"))  # this card, as drawn then, offers → 10%
    bot.command(ALICE, "rollback")
    bot.card_says("MSE weight 0 ·")
    bot.tap(ALICE, stale, step(stale, 10))
    bot.told(ALICE, "This card was out of date")
    bot.card_says("MSE weight 0 ·")


def test_a_rollback_is_said_to_the_whole_channel_with_the_share_before_and_after(bot: Bot) -> None:
    card = start_switched(bot)
    bot.tap(ALICE, card, step(card, 5))
    bot.card_says("MSE weight 5 ·")
    bot.tap(BOB, bot.card(), ActionId.ROLLBACK)
    said = bot.slack.wait_for(lambda: next((m for m in bot.slack.messages.values()
                                            if not m.get("thread_ts") and not is_card(m)), None),
                              "a rollback said to the channel")
    assert said["text"].startswith("Rolled back by <@U0BOB0001> at ") and "(MSE 5% → 0%)" in said["text"]
    assert len(bot.cards()) == 1


def test_a_deny_reason_cannot_ping_the_channel_or_disguise_a_link(bot: Bot) -> None:
    request = verify_asked(bot)
    bot.command(BOB, 'deny reason="<!channel> see <https://evil.example|Click to approve> &co"')
    said = bot.thread_says("denied verify")
    assert "<!channel>" not in said["text"] and "&lt;!channel&gt;" in said["text"]
    assert "<https://evil" not in said["text"] and "&amp;co" in said["text"]
    decided = bot.slack.wait_for(lambda: "denied by" in shown(bot.slack.messages[request["ts"]])
                                 and bot.slack.messages[request["ts"]], "the request to say who denied it")
    assert "<!channel>" not in shown(decided) and "&lt;!channel&gt;" in shown(decided)


@pytest.mark.parametrize("where", ["channel", "message"])
def test_an_approve_tap_from_another_channel_or_message_decides_nothing(bot: Bot, where: str) -> None:
    import urllib.parse

    request = verify_asked(bot)
    payload = json.loads(urllib.parse.parse_qs(bot.send.tap_body(BOB, request, ActionId.APPROVE))["payload"][0])
    if where == "channel":
        payload["channel"]["id"] = payload["container"]["channel_id"] = "C0ELSEWHERE"
    else:
        payload["container"]["message_ts"] = payload["message"]["ts"] = bot.card()["ts"]
    assert bot.send.post(urllib.parse.urlencode({"payload": json.dumps(payload)}),
                         "application/x-www-form-urlencoded").status == 200
    bot.told(BOB, "does not belong to this request's message")
    bot.command(ALICE, "status")
    bot.told(ALICE, "Phase: shifting")


def test_a_body_over_one_megabyte_is_refused_before_it_is_read(bot: Bot) -> None:
    import http.client
    import urllib.parse

    url = urllib.parse.urlsplit(bot.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    conn.putrequest("POST", "/slack/events")
    conn.putheader("Content-Type", "application/x-www-form-urlencoded")
    conn.putheader("Content-Length", str(25 * 1024 * 1024))  # announced, never sent
    conn.endheaders()
    reply = conn.getresponse()
    assert reply.status == 413
    conn.close()
    status, _ = get(bot.url + "/healthz")
    assert status == 200


def test_an_approval_redrawn_after_the_first_of_two_approvals_still_mentions_who_asked(
        slack: SlackStandIn, redis_url: str, tmp_path: Path) -> None:
    """The edited message's notification text is the bot's own template: its mention stays live."""
    with running_bot(slack, redis_url, tmp_path, required=2) as url:
        two = Bot(url, slack, SlackSender(url, slack))
        start_switched(two)
        two.command(ALICE, "weight 10")
        two.card_says("MSE weight 10 ·")
        two.command(ALICE, "verify")
        request = two.approval_message("verify")
        two.tap(BOB, request, ActionId.APPROVE)
        edited = slack.wait_for(lambda: next((c.args for c in slack.of("chat.update")
                                              if c.args.get("ts") == request["ts"]), None), "the request redrawn")
        assert edited["text"] == f"Approval needed: verify (asked by <@{ALICE}>)"
