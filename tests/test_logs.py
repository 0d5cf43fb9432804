"""What `serve` writes while a whole migration runs: JSON lines only, one per request, and never a secret.

The bot token and signing secret are unique to this test, so finding them anywhere in the
process's stdout and stderr (gunicorn's lines included) means a leak, not a coincidence.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.actions import ActionId
from providers.sim.world import SimWorld
from tests.serve_process import launch, serving, write_config
from tests.slack_standin import BOT_TOKEN, SlackSender, SlackStandIn
from tests.test_bot_http import ALICE, BOB, MALLORY, Bot, start_switched, step

TOKEN = f"xoxb-{secrets.token_hex(6)}-{secrets.token_hex(12)}"
SECRET = secrets.token_hex(16)


class StandIn(SlackStandIn):
    """The Slack stand-in, accepting this test's bot token instead of the shared one."""

    def answer(self, method: str, args: dict[str, Any], token: str) -> dict[str, Any]:
        return super().answer(method, args, BOT_TOKEN if token == TOKEN else token)


class Sender(SlackSender):
    """Signs with this test's signing secret."""

    def post(self, body: str, content_type: str, **kw: Any) -> Any:
        kw.setdefault("secret", SECRET)
        return super().post(body, content_type, **kw)


@pytest.fixture
def slack() -> Iterator[StandIn]:
    standin = StandIn()
    standin.start()
    yield standin
    standin.stop()


def test_a_full_migration_logs_json_lines_and_no_secret(slack: StandIn, redis_url: str, tmp_path: Path) -> None:
    state = tmp_path / "world.json"
    SimWorld.from_seed(path=state)
    proc = launch(slack, redis_url, tmp_path, "serve", write_config(tmp_path, "serve", state=state),
                  env={"SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET})
    with serving(proc):
        bot = Bot(proc.url, slack, Sender(proc.url, slack))
        bot.command(ALICE, "help")
        bot.told(ALICE, "/migrate start")
        card = start_switched(bot)
        bot.tap(ALICE, card, step(card, 1))
        card = bot.card_says("MSE weight 1 ·")
        bot.tap(MALLORY, card, ActionId.ROLLBACK)
        bot.told(MALLORY, "not allowed to roll back")
        bot.command(ALICE, "weight 10")
        bot.card_says("MSE weight 10 ·")
        for verb, phase in (("verify", "verified"), ("cutover", "cut over"), ("complete", "completed")):
            bot.command(ALICE, verb)
            bot.tap(BOB, bot.approval_message(verb), ActionId.APPROVE)
            bot.card_says(f"*Phase:* {phase}")
    output = proc.output()  # stopped: everything is flushed

    assert TOKEN not in output and TOKEN.removeprefix("xoxb-") not in output
    assert SECRET not in output
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines, "serve wrote nothing"
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not a JSON line: {line[:300]!r}") from None
    handled = [r for r in records if r.get("msg") == "request handled" and r.get("user") != "bot"]
    asked = {(r["user"], r["verb"], r["outcome"]) for r in handled}
    assert {(ALICE, "help", "ok"), (ALICE, "start", "ok"), (ALICE, "weight", "ok"), (MALLORY, "rollback", "refused"),
            (BOB, "approve", "ok"), (ALICE, "complete", "ok")} <= asked, sorted(asked)
    migrations = {r.get("migration") for r in handled if r["verb"] not in ("help", "rollback")}
    assert len(migrations) == 1 and None not in migrations, "every step names the one migration"
    assert len(handled) == 14, [(r["user"], r["verb"]) for r in handled]  # one line per command or tap
