"""A step whose process went away mid-way is finished promptly and told truthfully, over `serve`.

Both hold a weight step inside its cloud work (the simulated world's injected latency, after
the SLB write) and then take something away: the job worker process (SIGKILL: gunicorn's master
forks it again, a new life of the same worker id, and the step is taken over from the heartbeat,
not after a fixed lease), or Redis (a real redis-server with AOF, killed and started again: the
answer says the change was made, and the record catches up within seconds of Redis' return).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from providers.sim.state import SimState
from providers.store import RedisStore
from tests.aof_redis import AofRedis
from tests.serve_process import launch, serving, write_config
from tests.slack_standin import SlackSender, SlackStandIn
from tests.test_bot_http import ALICE, CHANNEL, Bot, start_switched, step
from tests.test_job_worker_crash import job_worker_pid

HELD_IN = "k8s.get_service"  # the weight step reads the Service after its SLB write


def held_step(world: SimState, bot: Bot, seconds: float) -> None:
    """Switched, 1% on MSE, then `weight 25` held `seconds` inside its cloud work."""
    card = start_switched(bot)
    bot.tap(ALICE, card, step(card, 1))
    bot.card_says("MSE weight 1 ·")
    world.add_latency(HELD_IN, seconds)
    bot.command(ALICE, "weight 25")
    bot.slack.wait_for(lambda: world.arrived(HELD_IN) > 0, "the step to reach its cloud work")


def test_a_step_whose_job_worker_was_killed_is_resumed_not_reported_running(
        slack: SlackStandIn, redis_url: str, tmp_path: Path) -> None:
    state = tmp_path / "world.json"
    world = SimState.from_seed(path=state)
    serve = launch(slack, redis_url, tmp_path, "bot", write_config(tmp_path, "bot", state=state))
    with serving(serve):
        bot = Bot(serve.url, slack, SlackSender(serve.url, slack))
        held_step(world, bot, 60)
        os.kill(job_worker_pid(slack, serve), signal.SIGKILL)
        world.clear_faults()
        # The master forks the job worker again (a new life): the step is orphaned from then on, and
        # the first to see it (the taken job running again, or the timed work's first round) takes it over.
        said = bot.thread_says("left half done")
        assert "Finished `weight`" in said["text"]
        bot.card_says("MSE weight 25 ·")
        assert not any("still running" in t for t in slack.private_to(ALICE))
    m = RedisStore.from_url(redis_url).active_in_channel(CHANNEL)
    assert m is not None and m.intent is None and m.mse_weight == 25


def test_redis_lost_after_the_cloud_call_says_the_change_was_made_and_the_record_catches_up(
        slack: SlackStandIn, aof_redis: AofRedis, tmp_path: Path) -> None:
    state = tmp_path / "world.json"
    world = SimState.from_seed(path=state)
    serve = launch(slack, aof_redis.url, tmp_path, "bot", write_config(tmp_path, "bot", state=state))
    with serving(serve):
        bot = Bot(serve.url, slack, SlackSender(serve.url, slack))
        held_step(world, bot, 3)
        aof_redis.kill()  # while the step is inside its cloud work: the SLB has moved, nothing recorded yet
        told = bot.told(ALICE, "The change was made")
        assert "nothing was changed" not in told and "the record will catch up" in told
        aof_redis.start()
        bot.thread_says("The record caught up after Redis came back")
        bot.card_says("MSE weight 25 ·")
    m = RedisStore.from_url(aof_redis.url).active_in_channel(CHANNEL)
    assert m is not None and m.intent is None and m.mse_weight == 25


def test_redis_lost_between_two_writes_of_a_step_says_so_and_the_step_is_finished_when_it_returns(
        aof_redis: AofRedis, tmp_path: Path) -> None:
    """Cutover's guard reads the record between its writes; Redis gone there leaves the step half made."""
    import threading

    from providers.sim.world import SimWorld
    from tests.engine_helpers import make_harness

    state = tmp_path / "world.json"
    h = make_harness(aof_redis.url, world=SimWorld.from_seed(path=state), dwell_seconds=0)
    h.to_shifting()
    h.ok("alice", "/migrate verify")
    h.ok("bob", "/migrate approve")
    h.ok("alice", "/migrate cutover")
    world = SimState.from_seed(path=state)
    world.add_latency("k8s.patch_service_annotations", 2)  # NGINX's weight 0: the write between two guards

    def lose_redis_once_held() -> None:
        while world.arrived("k8s.patch_service_annotations") == 0:
            time.sleep(0.02)
        aof_redis.kill()

    killer = threading.Thread(target=lose_redis_once_held)
    killer.start()
    out = h.say("bob", "/migrate approve")
    killer.join()
    assert not out.ok and "became unavailable in the middle of `cutover`" in out.text, out.text
    assert "nothing was changed" not in out.text
    world.clear_faults()
    aof_redis.start()
    [caught] = h.engine.catch_up()
    assert caught.ok, caught.text
    m = h.migration()
    assert m.intent is None and m.phase.value == "cut over" and m.nginx_weight == 0


def test_a_step_taken_over_from_a_live_process_is_recorded_by_the_taker_only(redis_url: str) -> None:
    """Worker A's heartbeat lapsed (Redis away a while) while it was inside `weight 25`; worker B took
    the step over. Both are inside the SLB write when A wakes first: A must learn that the step is
    B's now (its answer says it was overtaken), and the result is recorded once, by B."""
    import threading

    from commands.engine import Engine
    from commands.outcome import Request
    from commands.policy import Policy
    from providers.sim.world import SimWorld
    from providers.store import RedisStore
    from tests.engine_helpers import make_harness

    world = SimWorld.from_seed()
    h = make_harness(redis_url, world=world, dwell_seconds=0)
    h.to_shifting()
    policy = Policy(operators=frozenset({"alice"}), approvers=frozenset({"bob"}), dwell_seconds=0,
                    gates=h.engine.policy.gates)
    a = Engine(store=RedisStore.from_url(redis_url), world=world, policy=policy, clock=h.clock, owner="worker-a")
    b = Engine(store=RedisStore.from_url(redis_url), world=world, policy=policy, clock=h.clock, owner="worker-b",
               owner_alive=lambda owner: False)  # B sees A's heartbeat gone
    a_in, a_go = world.state.hold("slb.set_weights")
    answers: dict[str, object] = {}
    run_a = threading.Thread(target=lambda: answers.setdefault("a", a.handle(
        Request(text="/migrate weight 25", user="alice", channel=h.channel))), daemon=True)
    run_a.start()
    assert a_in.wait(10), "A never reached its SLB write"
    m = h.migration()
    assert m.intent is not None and m.intent.owner == "worker-a"
    b_in, b_go = world.state.hold("slb.set_weights")
    run_b = threading.Thread(target=lambda: answers.setdefault("b", b.take_over(m)), daemon=True)
    run_b.start()
    assert b_in.wait(10), "B never reached its SLB write"
    a_go.set()
    run_a.join(10)
    b_go.set()
    run_b.join(10)
    assert "overtaken" in answers["a"].text  # type: ignore[attr-defined]
    taken, _ = answers["b"]  # type: ignore[misc]
    assert taken.intent is None and taken.mse_weight == 25
    results = [e for e in h.store.events(m.id) if e.version > m.version and e.result.startswith("SLB holds")]
    assert len(results) == 1 and results[0].version == taken.version
