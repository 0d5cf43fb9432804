"""The App Home tab over real HTTP: a signed `app_home_opened` event in, `views.publish` at the Web API stand-in.

What a person opening the bot's Home tab sees: the migrations running in every channel, the last
ones finished, and how to roll back; read from Redis, with no button that acts, whoever they are.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import redis

from commands.model import Event, Migration
from commands.phases import Phase
from providers.store import RedisStore
from tests.bot_server import jobs_drained
from tests.slack_standin import TEAM
from tests.test_bot_http import ALICE, BOB, MALLORY, Bot, bot, start_switched, step

__all__ = ["bot"]  # the fixture, shared with test_bot_http


def home_opened(user: str, *, tab: str = "home") -> str:
    """The Events API body Slack sends when `user` opens the app's Home tab."""
    now = time.time()
    return json.dumps({
        "token": "verification-token-unused", "team_id": TEAM, "api_app_id": "A0APP0001", "type": "event_callback",
        "event": {"type": "app_home_opened", "user": user, "channel": "D0HOME0001", "tab": tab,
                  "event_ts": f"{now:.6f}"},
        "event_id": f"Ev{int(now * 1000)}{user}", "event_time": int(now),
    })


def open_home(bot: Bot, user: str, *, after: int = 0) -> dict[str, Any]:
    """`user` opens the Home tab: the view published for them (a newer one than the `after`-th call)."""
    assert bot.send.post(home_opened(user), "application/json").status == 200
    return bot.slack.wait_for(lambda: len(bot.slack.of("views.publish")) > after and bot.slack.homes.get(user),
                              f"a Home tab for {user}")


def shown(view: dict[str, Any]) -> str:
    return json.dumps(view, ensure_ascii=False)


def acting(view: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for b in view["blocks"] if b["type"] == "actions" or "accessory" in b]


def test_home_lists_running_and_finished_migrations_with_links_and_how_to_roll_back(bot: Bot) -> None:
    bot.command(ALICE, "start cluster=demo-cluster gateway=gw-demo")
    bot.card_says("*Phase:* listening")
    bot.command(ALICE, "abort")
    bot.card_says("*Phase:* aborted")
    card = start_switched(bot)
    bot.tap(ALICE, card, step(card, 5))
    card = bot.card_says("MSE weight 5 ·")

    home = open_home(bot, BOB)
    text = shown(home)
    assert "*Running now* (1)" in text and "*demo-cluster* → `gw-demo`" in text and "*Phase:* shifting" in text
    assert "5%` read back" in text  # what the SLB was read to hold after the step
    link = f"https://test.slack.com/archives/C0MIGRATE1/p{card['ts'].replace('.', '')}|open the thread"
    assert link in text
    assert "*Finished* (the last 1)" in text and "🛑 aborted *demo-cluster*" in text and " after " in text
    assert "To roll back" in text and "You may roll back" in text
    assert acting(home) == []


def test_someone_with_no_role_sees_it_read_only(bot: Bot) -> None:
    card = start_switched(bot)
    bot.tap(ALICE, card, step(card, 1))
    bot.card_says("MSE weight 1 ·")
    home = open_home(bot, MALLORY)
    assert "*Phase:* shifting" in shown(home)
    assert "not on the rollback list" in shown(home) and "You may roll back" not in shown(home)
    assert acting(home) == []
    bot.command(ALICE, "status")  # nothing changed: the migration is where it was
    bot.told(ALICE, "MSE weight 1 ")


def test_the_messages_tab_publishes_nothing(bot: Bot, redis_url: str) -> None:
    assert bot.send.post(home_opened(ALICE, tab="messages"), "application/json").status == 200
    open_home(bot, BOB)
    queue = redis.Redis.from_url(redis_url)
    bot.slack.wait_for(lambda: jobs_drained(queue), "every queued job to be handled")  # ALICE's too, in any order
    assert ALICE not in bot.slack.homes



@pytest.fixture
def crowded(redis_url: str) -> str:
    """60 migrations running in 60 channels and 30 finished, written straight into the store."""
    store = RedisStore.from_url(redis_url)
    now = time.time()
    for n in range(90):
        m = store.create(Migration(id=f"m-{n:03d}", cluster=f"cluster-{n:03d}", gateway="gw-demo",
                                   ingress_class="nginx", channel=f"C0CROWD{n:03d}", created_by=ALICE,
                                   created_at=now - 3600, last_action="x" * 2000),
                         Event(now, ALICE, "start", {}, "", "draft", "started"))
        if n >= 60:
            store.commit(expected_version=m.version, migration=Migration.from_dict(
                {**m.to_dict(), "phase": Phase.ABORTED.value}),
                event=Event(now - 90 + n, ALICE, "abort", {}, "draft", "aborted", "aborted"))
    return redis_url


def test_many_migrations_fit_slacks_limits(slack: Any, crowded: str, tmp_path: Any) -> None:
    from tests.bot_server import running_bot
    from tests.slack_standin import SlackSender

    with running_bot(slack, crowded, tmp_path) as url:
        b = Bot(url, slack, SlackSender(url, slack))
        home = open_home(b, ALICE)
    assert len(home["blocks"]) <= 100  # the stand-in refuses a view past Slack's limits, as Slack does
    text = shown(home)
    assert "*Running now* (60)" in text and "and 20 more" in text
    assert "*Finished* (the last 20)" in text and "cluster-089" in text and "cluster-069" not in text


def test_with_redis_down_the_home_tab_says_so_in_one_line(slack: Any) -> None:
    import redis
    from slack_sdk import WebClient

    from bot.deps import Deps
    from bot.listeners.home import publish_home
    from commands.policy import Policy
    from tests.bot_server import free_port
    from tests.slack_standin import BOT_TOKEN

    dead = redis.Redis(port=free_port(), socket_connect_timeout=0.5, decode_responses=True)  # nothing listens
    deps = Deps(engine=None, redis=dead, policy=Policy())  # type: ignore[arg-type]
    publish_home(deps, json.loads(home_opened(BOB)), WebClient(token=BOT_TOKEN, base_url=slack.api_url))
    text = shown(slack.homes[BOB])
    assert "did not answer" in text and "Traceback" not in text and len(slack.homes[BOB]["blocks"]) == 1
