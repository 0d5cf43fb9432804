"""Two replicas on one Redis and one simulated world: any replica serves any request, timed work happens once.

The first test runs two real `serve` processes and drives one migration through both,
alternating, then SIGKILLs one and finishes on the other. The second runs two housekeepers
in one process against a controllable clock, for the timed work that waits minutes in real life
(the end of a dwell, a detached SLB, a step a dead replica left half done).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient

from bot.actions import ActionId
from bot.config import Settings
from bot.deps import Deps
from bot.housekeeper import Housekeeper
from bot.keys import BotKeys
from bot.timed import STALE_INTENT_S, TimedWork
from commands.engine import Engine
from commands.model import StepIntent
from commands.outcome import Request
from commands.policy import Policy
from providers.sim.world import SimWorld
from providers.store import RedisStore
from tests.bot_server import get
from tests.serve_process import launch, serving, write_config
from tests.slack_standin import BOT_TOKEN, SlackSender, SlackStandIn
from tests.test_bot_http import ALICE, BOB, CHANNEL, Bot, action_ids, shown, step

SLB, VGROUP, GATEWAY = "lb-demo", "rsp-demo-80", "gw-demo"


def open_request(bot: Bot, verb: str) -> dict[str, Any]:
    """The approval request for `verb` that still has its buttons (an expired one has none)."""
    def find() -> dict[str, Any] | None:
        return next((m for m in reversed(bot.thread())
                     if f"Approval needed: {verb}" in shown(m) and ActionId.APPROVE in action_ids(m)), None)

    return bot.slack.wait_for(find, f"an open approval request for {verb}")


def thread_lines(bot: Bot, text: str) -> int:
    return len([m for m in bot.thread() if text in m["text"]])


def test_one_migration_through_two_replicas_and_one_killed(slack: SlackStandIn, redis_url: str,
                                                           tmp_path: Path) -> None:
    state = tmp_path / "world.json"
    SimWorld.from_seed(path=state)  # the shared world exists before either replica reads it
    a = launch(slack, redis_url, tmp_path, "a", write_config(tmp_path, "a", state=state, ttl_minutes=0.1))
    b = launch(slack, redis_url, tmp_path, "b", write_config(tmp_path, "b", state=state))
    with serving(a, b):
        on_a, on_b = (Bot(s.url, slack, SlackSender(s.url, slack)) for s in (a, b))
        on_a.command(ALICE, "start cluster=demo-cluster gateway=gw-demo")
        on_b.card_says("*Phase:* listening")
        on_b.command(ALICE, "check")
        on_a.card_says("*Phase:* checked")
        on_a.command(ALICE, "method slb service=ingress-nginx/nginx-ingress-lb")
        on_b.card_says("*Phase:* method chosen")
        on_b.command(ALICE, "switch")
        card = on_a.card_says("*Phase:* switched")
        on_a.tap(ALICE, card, step(card, 1))
        on_b.card_says("MSE weight 1 ·")
        on_b.command(ALICE, "weight 10")
        card = on_a.card_says("MSE weight 10 ·")

        on_a.command(ALICE, "verify")  # A's requests live six seconds: this one expires with both running
        expiring = open_request(on_a, "verify")
        slack.wait_for(lambda: "Expired" in shown(slack.messages[expiring["ts"]]), "the request to expire", timeout=60)
        on_b.thread_says("expired without a decision")

        on_b.tap(BOB, card, step(card, 25))
        on_a.card_says("MSE ██░░░░░░░░ 25%")
        a.kill()  # right after a weight change; B finishes alone

        on_b.command(ALICE, "weight 50")
        on_b.card_says("MSE weight 50 ·")
        for verb, phase in (("verify", "verified"), ("cutover", "cut over"), ("complete", "completed")):
            on_b.command(ALICE, verb)
            on_b.tap(BOB, open_request(on_b, verb), ActionId.APPROVE)
            on_b.card_says(f"*Phase:* {phase}")
        on_b.card_says("MSE ██████████ 100%")
        _, metrics = get(b.url + "/metrics")

    assert len([c for c in slack.of("chat.postMessage") if not c.args.get("thread_ts")]) == 1, "one card"
    assert len(on_b.cards()) == 1 and len(slack.of("chat.update")) >= 10, "edited in place"
    assert thread_lines(on_b, "expired without a decision") == 1
    assert thread_lines(on_b, "weights are locked") == 1
    for verb, phase in (("verify", "verified"), ("cutover", "cut over"), ("complete", "completed")):
        assert f'migrate_transitions_total{{verb="{verb}",phase_to="{phase}"}} 1' in metrics
    assert 'migrate_approval_decision_seconds_count{verb="verify",state="expired"} 1' in metrics
    assert SimWorld.from_seed(path=state).slb_split(SLB, VGROUP, GATEWAY) == 100.0


# ---- timed work, two housekeepers in one process -----------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class Killed(BaseException):
    """Stands for SIGKILL: no `except Exception` catches it, so the step's intent stays as a crash leaves it."""


class CrashBefore4b:
    """A world whose Service write dies like a killed process would (the intent stays, not failed)."""

    def __init__(self, inner: SimWorld) -> None:
        self.inner, self.gateway, self.slb, self.dns = inner, inner.gateway, inner.slb, inner.dns
        self.crash = True

    def cluster(self, cluster_id: str) -> Any:
        world, cluster = self, self.inner.cluster(cluster_id)

        class Cluster:
            def __getattr__(self, name: str) -> Any:
                if name == "patch_service_annotations" and world.crash:
                    raise Killed()
                return getattr(cluster, name)

        return Cluster()


def two_housekeepers(slack: SlackStandIn, redis_url: str, world: Any, clock: Clock,
                     dwell: float, policy: Policy | None = None) -> tuple[Engine, list[Housekeeper]]:
    store = RedisStore.from_url(redis_url)
    policy = policy or Policy(dwell_seconds=dwell)
    engine = Engine(store=store, world=world, policy=policy, clock=clock)
    keepers = []
    for _ in range(2):  # two replicas: their own deps and client, one Redis
        deps = Deps(engine=engine, redis=store.r, policy=policy, clock=clock)
        work = TimedWork(engine=engine, store=store, client=store.r, keys=BotKeys(), dwell_seconds=dwell, clock=clock)
        keepers.append(Housekeeper(deps, WebClient(token=BOT_TOKEN, base_url=slack.api_url), work, interval_s=1))
    return engine, keepers


def rounds(keepers: list[Housekeeper], redis_url: str, *, handovers: int = 3) -> None:
    """Both replicas run rounds; the lease is dropped in between, so each gets to be the holder."""
    store = RedisStore.from_url(redis_url)
    for _ in range(handovers):
        for keeper in keepers:
            keeper.round()
            store.r.delete(BotKeys().lease())


def said(slack: SlackStandIn, text: str) -> int:
    return len([c for c in slack.of("chat.postMessage") if text in c.args.get("text", "")])


def test_timed_work_happens_once_with_two_replicas(slack: SlackStandIn, redis_url: str) -> None:
    clock, sim = Clock(), SimWorld.from_seed()
    world = CrashBefore4b(sim)
    engine, keepers = two_housekeepers(slack, redis_url, world, clock, dwell=180)

    def run(text: str) -> Any:
        return engine.handle(Request(text=text, user=ALICE, channel=CHANNEL))

    run("start cluster=demo-cluster gateway=gw-demo")
    run("check")
    run("method slb service=ingress-nginx/nginx-ingress-lb")
    with contextlib.suppress(Killed):  # the process "dies" between 4a and 4b
        run("switch")
    clock.now += STALE_INTENT_S + 1
    world.crash = False
    rounds(keepers, redis_url)
    assert said(slack, "was detached from cluster management") == 1
    assert said(slack, "Finished `switch`, which a stopped replica left half done") == 1
    m = engine.store.active_in_channel(CHANNEL)
    assert m is not None and m.phase.value == "switched" and m.intent is None

    assert run("weight 10").ok
    clock.now += 179
    rounds(keepers, redis_url)
    assert said(slack, "Dwell over") == 0
    clock.now += 2
    rounds(keepers, redis_url)
    assert said(slack, "Dwell over: the next weight increase is allowed now") == 1

    m = engine.store.active_in_channel(CHANNEL)
    assert m is not None
    intent = StepIntent(id="s-crashed", op="weights", verb="weight", user=ALICE, then="shifting",
                        args={"mse": 20, "nginx": 100, "action": "set MSE weight 20"}, started_at=clock.now)
    crashed = dataclasses.replace(m, intent=intent)  # recorded, then the process died before the SLB call
    engine.store.commit(expected_version=m.version, migration=crashed,
                        event=engine.event(ALICE, "weight", {}, m, m.phase, "started weights"))
    clock.now += STALE_INTENT_S + 1
    rounds(keepers, redis_url)
    assert said(slack, "Finished `weight`") == 1
    assert round(sim.slb_split(SLB, VGROUP, GATEWAY)) == 17  # MSE 20 against NGINX 100, written once
    cards = [c for c in slack.of("chat.postMessage") if not c.args.get("thread_ts")]
    assert len(cards) == 1, json.dumps([c.args.get("text") for c in cards])



def test_an_automatic_rollback_is_posted_once_to_the_channel_and_the_thread(slack: SlackStandIn,
                                                                              redis_url: str) -> None:
    from commands.gates import parse

    clock, sim = Clock(), SimWorld.from_seed()
    gates = parse([{"name": "success", "source": "prometheus", "query": "success_rate", "min": "nginx - 0.5"}],
                  {"interval": "1s", "failures_before_rollback": 1})
    engine, keepers = two_housekeepers(slack, redis_url, sim, clock, dwell=0,
                                       policy=Policy(dwell_seconds=0, gates=gates, rollback=frozenset({"U0ONCALL1"})))
    for text in ("start cluster=demo-cluster gateway=gw-demo", "check",
                 "method slb service=ingress-nginx/nginx-ingress-lb", "switch", "auto 1,5% every 1s"):
        assert engine.handle(Request(text=text, user=ALICE, channel=CHANNEL)).ok, text
    rounds(keepers, redis_url, handovers=1)  # the first step, on both replicas' rounds: once
    assert said(slack, "plan step to 1%") == 1
    sim.set_metrics("mse", success_rate=90.0)
    clock.now += 2
    rounds(keepers, redis_url)
    posts = [c.args for c in slack.of("chat.postMessage") if "Automatic rollback" in c.args.get("text", "")]
    assert len(posts) == 2 and sorted(bool(a.get("thread_ts")) for a in posts) == [False, True]
    assert "<@U0ONCALL1>" in posts[0]["text"]
    assert sim.slb_split("lb-demo", "rsp-demo-443", "gw-demo") == 0


def test_someone_removed_from_the_operators_group_loses_the_role_without_a_restart(slack: SlackStandIn,
                                                                                     redis_url: str) -> None:
    from bot.config import parse_config
    from bot.roles import build_policy, refresher, slack_group_lookup
    from commands.errors import NotAllowed

    slack.groups["S0OPS0001"] = [ALICE, "U0EVE0001"]
    settings = Settings(bot_token=BOT_TOKEN, signing_secret="s", redis_url=redis_url, config_path="-",
                        **parse_config({"operators": ["S0OPS0001"], "approvers": ["U0BOB0001"]}))
    lookup = slack_group_lookup(WebClient(token=BOT_TOKEN, base_url=slack.api_url))
    engine = Engine(store=RedisStore.from_url(redis_url), world=SimWorld.from_seed(),
                    policy=build_policy(settings, lookup))
    engine.policy.require("U0EVE0001", "weight")
    slack.groups["S0OPS0001"] = [ALICE]  # Eve leaves the on-call group in Slack
    refresher(settings, lookup, engine)()
    with pytest.raises(NotAllowed):
        engine.policy.require("U0EVE0001", "weight")
    engine.policy.require(ALICE, "weight")
    slack.groups.pop("S0OPS0001")  # Slack cannot say any more: the last good lists stay in force
    refresher(settings, lookup, engine)()
    engine.policy.require(ALICE, "weight")
