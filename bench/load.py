"""Ack under load: bursts of concurrent signed slash commands; time to each HTTP response.

Slack waits 3 s for the ack; the bot acks with nothing and works lazily, so the ack should
not depend on what the command does. The mix is mostly `status`, plus help, history, an
unknown verb and a refused `weight` (someone not listed): nothing that changes the migration.
Between bursts the lazy work is allowed to drain (the bot's own counters reach the total).
"""

from __future__ import annotations

import time
from typing import Any

from bench import wire
from bench.botdrive import ALICE, BOB, BotDriver
from bench.common import summary_ms, wait_until

MIX = [(ALICE, "status"), (BOB, "status"), (ALICE, "status"), (BOB, "help"), (ALICE, "history"),
       (BOB, "status"), (ALICE, "status"), (BOB, "help weight"), (ALICE, "frobnicate"), ("U0NOBODY1", "weight 50")]


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
                           "statuses": {str(k): v for k, v in statuses.items()},
                           "lazy_drain_s": [round(d, 3) for d in drains]}
    out["target_p99_ms"] = 300.0
    out["met"] = out["loaded"]["p99_ms"] < 300.0 and set(statuses) == {200}
    return out
