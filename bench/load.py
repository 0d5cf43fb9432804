"""Ack under load: bursts of concurrent signed slash commands; time to each HTTP response.

Slack waits 3 s for the ack; the bot acks with nothing and works lazily, so the ack should
not depend on what the command does. The mix is mostly `status`, plus help, history, an
unknown verb and a refused `weight` (someone not listed): nothing that changes the migration.
Between bursts the lazy work is allowed to drain (the bot's own counters reach the total).
"""

from __future__ import annotations

import json
import time
import urllib.parse
from typing import Any

from bench import wire
from bench.botdrive import ALICE, BOB, CHANNEL, BotDriver
from bench.common import summary_ms, wait_until
from tests.slack_standin import TEAM

MIX = [(ALICE, "status"), (BOB, "status"), (ALICE, "status"), (BOB, "help"), (ALICE, "history"),
       (BOB, "status"), (ALICE, "status"), (BOB, "help weight"), (ALICE, "frobnicate"), ("U0NOBODY1", "weight 50")]


def unheard_tap(drv: BotDriver, n: int) -> str:
    """A signed block_actions payload for an action_id no listener has: verified, replay-guarded,
    dispatched by Bolt and answered 404, with no ack listener and no lazy work behind it."""
    payload = {"type": "block_actions", "user": {"id": ALICE}, "team": {"id": TEAM}, "api_app_id": "A0APP0001",
               "channel": {"id": CHANNEL}, "container": {"type": "message", "message_ts": f"1.{n}",
                                                         "channel_id": CHANNEL},
               "actions": [{"action_id": "bench_nobody_listens", "block_id": "b", "value": str(n), "type": "button",
                            "action_ts": f"{time.time():.6f}"}],
               "trigger_id": f"bench.{n}", "response_url": f"{drv.slack.url}/response/{ALICE}/{n}"}
    return urllib.parse.urlencode({"payload": json.dumps(payload)})


def drain(drv: BotDriver, before: int, count: int, timeout: float = 90.0) -> float:
    """Wait until the bot has handled `count` more commands than `before`; seconds it took."""
    t0 = time.perf_counter()
    wait_until(lambda: sum(drv.handled().values()) >= before + count, f"{count} commands to be handled",
               timeout=timeout, interval=0.02)
    return time.perf_counter() - t0


def run(drv: BotDriver, *, concurrent: int, bursts: int, sequential: int) -> dict[str, Any]:
    url = drv.send.bot_url
    alone: list[float] = []
    for i in range(sequential):  # one at a time first: what an ack costs with nothing else going on
        before = sum(drv.handled().values())
        user, text = MIX[i % len(MIX)]
        _, seconds, status = wire.timed(wire.prepare(url, drv.send.command_body(user, text)))
        assert status == 200, status
        alone.append(seconds)
        drain(drv, before, 1)
    # The floor: as many concurrent GET /healthz (no signature, no Redis, no Bolt) on the same server.
    _, floor = wire.burst([wire.prepare_get(url, "/healthz") for _ in range(concurrent)])
    # The door alone: the same commands wrongly signed, refused (401) before any listener or lazy work.
    _, forged = wire.burst([wire.prepare(url, drv.send.command_body(*MIX[i % len(MIX)]), secret="forged")
                            for i in range(concurrent)])
    # Signed and dispatched, but nothing listens: the door and Bolt without our listeners (404).
    stamp = int(time.time() * 1000)
    _, unheard = wire.burst([wire.prepare(url, unheard_tap(drv, stamp + i)) for i in range(concurrent)])
    loaded: list[float] = []
    statuses: dict[int, int] = {}
    drains: list[float] = []
    for _ in range(bursts):
        before = sum(drv.handled().values())
        reqs = [wire.prepare(url, drv.send.command_body(*MIX[i % len(MIX)])) for i in range(concurrent)]
        released, results = wire.burst(reqs)
        for seconds, status in results:
            statuses[status] = statuses.get(status, 0) + 1
            if status == 200:
                loaded.append(seconds)
        drain(drv, before, sum(1 for _, status in results if status == 200))
        drains.append(time.perf_counter() - released)  # from the burst to the last lazy answer
    out: dict[str, Any] = {"concurrent": concurrent, "bursts": bursts, "alone": summary_ms(alone),
                           "loaded": summary_ms(loaded),
                           "healthz_floor": summary_ms([x for x, status in floor if status == 200]),
                           "forged_401": summary_ms([x for x, status in forged if status == 401]),
                           "no_listener_404": summary_ms([x for x, status in unheard if status == 404]),
                           "statuses": {str(k): v for k, v in statuses.items()},
                           "lazy_drain_s": [round(d, 3) for d in drains]}
    out["target_p99_ms"] = 300.0
    out["met"] = out["loaded"]["p99_ms"] < 300.0 and set(statuses) == {200}
    return out
