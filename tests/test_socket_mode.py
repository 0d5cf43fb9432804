"""Socket Mode, end to end: `serve` with an app token connects to the Socket Mode stand-in
(tests/socket_standin.py) through `apps.connections.open` on the Web API stand-in, and a whole
migration, its approvals and a rollback run over the socket. The connection is cut mid-run right
after an envelope: the bot connects again, the envelope it could not acknowledge is sent again,
and it is carried out once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.actions import ActionId
from providers.sim.world import SimWorld
from tests.serve_process import launch, serving, write_config
from tests.slack_standin import APP_TOKEN, SlackStandIn
from tests.socket_standin import SocketSender, SocketStandIn
from tests.test_bot_http import ALICE, BOB, Bot, shown, step


@pytest.fixture
def over_socket(slack: SlackStandIn, redis_url: str, tmp_path: Path) -> Iterator[tuple[Bot, SocketStandIn]]:
    ws = SocketStandIn().start()
    slack.socket_url = ws.url
    state = tmp_path / "world.json"
    SimWorld.from_seed(path=state)
    serve = launch(slack, redis_url, tmp_path, "bot", write_config(tmp_path, "bot", state=state),
                   env={"SLACK_APP_TOKEN": APP_TOKEN, "WEB_CONCURRENCY": "1"})
    try:
        with serving(serve):
            slack.wait_for(lambda: ws.live, "the bot to open its socket")
            yield Bot(serve.url, slack, SocketSender(ws, slack)), ws
    finally:
        ws.stop()


def test_a_whole_migration_with_approvals_and_a_rollback_over_socket_mode(
        over_socket: tuple[Bot, SocketStandIn]) -> None:
    bot, ws = over_socket
    assert bot.slack.of("apps.connections.open")
    bot.command(ALICE, "start cluster=demo-cluster gateway=gw-demo")
    bot.card_says("*Phase:* listening")

    ws.drop_after_next()  # the network drops right after `check` is sent: its ack never arrives
    check = bot.send.command(ALICE, "check").body
    bot.card_says("*Phase:* checked")
    bot.slack.wait_for(lambda: ws.connections >= 2, "the bot to connect again")
    bot.slack.wait_for(lambda: check in ws.acked, "the envelope sent again to be acknowledged")
    assert ws.sent.count(check) == 2  # delivered twice...
    assert len([m for m in bot.thread() if "Route check" in shown(m)]) == 1  # ...carried out once
    assert len(bot.slack.of("apps.connections.open")) >= 2

    bot.command(ALICE, "method slb service=ingress-nginx/nginx-ingress-lb")
    bot.card_says("*Phase:* method chosen")
    bot.command(ALICE, "switch")
    card = bot.card_says("*Phase:* switched")
    bot.tap(ALICE, card, step(card, 5))
    card = bot.card_says("MSE weight 5 ·")
    bot.tap(BOB, card, ActionId.ROLLBACK)
    bot.card_says("MSE weight 0 ·")
    bot.command(ALICE, "weight 10")
    bot.card_says("MSE weight 10 ·")

    bot.command(ALICE, "verify")
    bot.tap(BOB, bot.approval_message("verify"), ActionId.APPROVE)
    bot.card_says("*Phase:* verified")
    for verb, phase in (("cutover", "cut over"), ("complete", "completed")):
        bot.command(ALICE, verb)
        bot.tap(BOB, bot.approval_message(verb), ActionId.APPROVE)
        bot.card_says(f"*Phase:* {phase}")
    assert len(bot.cards()) == 1
    assert not ws.unacked, "every envelope was acknowledged in the end"
    # Counted again at the end: work runs after the ack, so a second `check` would show by now.
    assert len([m for m in bot.thread() if "Route check" in shown(m)]) == 1
