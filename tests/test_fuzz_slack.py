"""Hostile Slack payloads against a running `serve`: never a 5xx, never a change from invalid input.

One bot process serves every example (module scope); the migration sits in `shifting` with a
Rollback button on its card, so a payload that slipped through would show as a new version.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.blocks import SLACK_ID
from bot.keys import BotKeys
from commands.errors import UserError
from commands.grammar import parse
from providers.store import RedisStore
from tests.bot_server import GROUPS, jobs_drained, running_bot
from tests.slack_standin import SlackSender, SlackStandIn, buttons
from tests.test_bot_http import ALICE, MALLORY, Bot, start_switched

CHANNEL = "C0MIGRATE1"
ODD = st.one_of(st.none(), st.integers(), st.floats(allow_nan=True), st.booleans(), st.lists(st.integers(), max_size=3),
                st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3), st.text(max_size=50),
                st.just("x" * 20_000), st.just("\u202e\u0000\ud7ff"))


@pytest.fixture(scope="module")
def live(redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Bot, RedisStore, dict]]:
    standin = SlackStandIn(groups=GROUPS).start()
    url_redis = f"{redis_server}/63"
    store = RedisStore.from_url(url_redis)
    store.r.flushdb()
    with running_bot(standin, url_redis, tmp_path_factory.mktemp("fuzz")) as url:
        bot = Bot(url, standin, SlackSender(url, standin))
        start_switched(bot)
        bot.command(ALICE, "weight 10")
        card = standin.wait_for(lambda: _with_rollback(bot), "a card with a Rollback button")
        yield bot, store, card
    standin.stop()
    store.r.flushdb()


def _with_rollback(bot: Bot) -> dict[str, Any] | None:
    """The status card (the first root message the bot posted), if it offers Rollback."""
    cards = bot.cards()
    if cards and any(b["action_id"] == "migrate_rollback" for b in buttons(cards[0])):
        return cards[0]
    return None


def _back_to_shifting(bot: Bot, store: RedisStore) -> None:
    """A locator-mangled tap that still rolled back: put MSE's weight back for the next example."""
    bot.command(ALICE, "weight 10")
    bot.slack.wait_for(lambda: (m := store.active_in_channel(CHANNEL)) and m.mse_weight == 10 and m.intent is None,
                       "MSE weight 10 again")
    bot.slack.wait_for(lambda: _with_rollback(bot), "the Rollback button again")


def _handled(store: RedisStore) -> int:
    """How many requests the bot has finished (its own counters), to wait for lazy work."""
    return sum(int(v) for v in store.r.hgetall(BotKeys().commands()).values())


def _settle(store: RedisStore, handled_before: int) -> None:
    """Wait until the bot finished this request's work (briefly when it never started any), and
    every job it queued is handled, so a wrong change made late is still seen by this example."""
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline and _handled(store) <= handled_before:
        time.sleep(0.01)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not jobs_drained(store.r):
        time.sleep(0.01)


def _version(store: RedisStore) -> int:
    m = store.active_in_channel(CHANNEL)
    assert m is not None
    return m.version


def _mutate(payload: dict[str, Any], path: list[str], value: Any, drop: bool) -> dict[str, Any]:
    node = payload
    for key in path[:-1]:
        nxt = node.get(key)
        if isinstance(nxt, list) and nxt:
            nxt = nxt[0]
        if not isinstance(nxt, dict):
            return payload
        node = nxt
    if drop:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    return payload


#: Fields without which a tap cannot be understood: mangled, nothing may change.
ESSENTIAL = [["type"], ["user"], ["user", "id"], ["actions"], ["actions", "action_id"], ["actions", "value"]]
#: Fields that say where the tap came from more than once (container, channel, message): the bot
#: may still act on a signed tap when one of them is odd, but never with a 5xx.
LOCATORS = [["container"], ["container", "message_ts"], ["channel"], ["channel", "id"], ["message"],
            ["message", "ts"], ["trigger_id"]]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(ESSENTIAL + LOCATORS), value=ODD, drop=st.booleans())
def test_mangled_button_payloads_never_5xx_and_change_nothing(live: tuple[Bot, RedisStore, dict], path: list[str],
                                                              value: Any, drop: bool) -> None:
    bot, store, _ = live
    before, handled = _version(store), _handled(store)
    card = _with_rollback(bot)
    assert card is not None, "the Rollback button is gone from the card although nothing changed"
    body = bot.send.tap_body(ALICE, card, "migrate_rollback")
    payload = json.loads(urllib.parse.parse_qs(body)["payload"][0])
    mangled = _mutate(payload, path, value, drop)
    try:
        encoded = urllib.parse.urlencode({"payload": json.dumps(mangled)})
    except (TypeError, ValueError):
        return
    reply = bot.send.post(encoded, "application/x-www-form-urlencoded")
    assert reply.status < 500, reply.body
    _settle(store, handled)
    if path in ESSENTIAL:
        assert _version(store) == before, f"{path} -> {value!r} (drop={drop}) changed the migration"
    elif _version(store) != before:
        _back_to_shifting(bot, store)


FIELDS = ["command", "text", "user_id", "channel_id", "trigger_id", "response_url", "team_id"]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(FIELDS), value=st.one_of(st.text(max_size=300), st.just("x" * 20_000)),
       drop=st.booleans(), text=st.text(max_size=200))
def test_mangled_slash_commands_never_5xx_and_invalid_ones_change_nothing(
        live: tuple[Bot, RedisStore, dict], field: str, value: str, drop: bool, text: str) -> None:
    bot, store, _ = live
    try:
        verb = parse(text).verb
    except UserError:
        verb = ""
    if verb not in {"", "status", "history", "help"}:
        return  # a valid state-changing command is not hostile input
    before, handled = _version(store), _handled(store)
    sender = bot.send
    form = dict(urllib.parse.parse_qsl(sender.command_body(ALICE, text)))
    if drop:
        form.pop(field, None)
    else:
        form[field] = value
    reply = sender.post(urllib.parse.urlencode(form), "application/x-www-form-urlencoded")
    assert reply.status < 500, reply.body
    _settle(store, handled)
    assert _version(store) == before


HOME_FIELDS = [["type"], ["event"], ["event", "type"], ["event", "user"], ["event", "tab"], ["team_id"],
               ["event_id"]]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(HOME_FIELDS), value=ODD, drop=st.booleans())
def test_mangled_app_home_events_never_5xx_change_nothing_and_publish_only_to_real_users(
        live: tuple[Bot, RedisStore, dict], path: list[str], value: Any, drop: bool) -> None:
    from tests.test_bot_home import home_opened

    bot, store, _ = live
    before = _version(store)
    mangled = _mutate(json.loads(home_opened(ALICE)), path, value, drop)
    try:
        body = json.dumps(mangled)
    except (TypeError, ValueError):
        return
    reply = bot.send.post(body, "application/json")
    assert reply.status < 500, reply.body
    assert _version(store) == before
    published = [c.args.get("user_id") for c in bot.slack.of("views.publish")]
    assert all(isinstance(u, str) and SLACK_ID.match(u) for u in published), published


def test_non_form_bodies_never_5xx(live: tuple[Bot, RedisStore, dict]) -> None:
    bot, store, _ = live
    before = _version(store)
    sender = bot.send
    for body, kind in [("{not json", "application/json"), ("payload=%7B", "application/x-www-form-urlencoded"),
                       ("\x00" * 1000, "text/plain"), ("payload=" + "A" * 200_000, "application/x-www-form-urlencoded"),
                       ("", "application/x-www-form-urlencoded")]:
        assert sender.post(body, kind).status < 500
    assert _version(store) == before


EVENT_FIELDS = [["type"], ["event"], ["event", "type"], ["event", "subteam_id"], ["event", "removed_users"],
                ["event", "subteam"], ["team_id"], ["event_id"]]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(EVENT_FIELDS), value=ODD, drop=st.booleans())
def test_mangled_user_group_events_never_5xx_and_change_nothing(live: tuple[Bot, RedisStore, dict],
                                                                path: list[str], value: Any, drop: bool) -> None:
    from tests.test_group_events import group_event

    bot, store, _ = live
    before = _version(store)
    for kind in ("subteam_members_changed", "subteam_updated"):
        event = json.loads(group_event(kind, "S0ONCALL1", ["U0CAROL01"]))
        # Every event claims Mallory joined the operators' group: the bot must ask Slack, not believe it.
        if kind == "subteam_members_changed":
            event["event"]["added_users"] = [MALLORY]
        else:
            event["event"]["subteam"]["users"] = [MALLORY]
        mangled = _mutate(event, path, value, drop)
        try:
            body = json.dumps(mangled)
        except (TypeError, ValueError):
            return
        assert bot.send.post(body, "application/json").status < 500
    told = len(bot.slack.private_to(MALLORY))
    bot.command(MALLORY, "weight 50")
    bot.slack.wait_for(lambda: len(bot.slack.private_to(MALLORY)) > told, "Mallory's answer")
    assert "not allowed" in bot.slack.private_to(MALLORY)[-1]
    assert _version(store) == before
