"""Approval race: hundreds of distinct approvers tap Approve on one request at the same instant.

Counted from Redis, not from the answers: the audit stream must hold exactly one
shifting -> verified transition, and the migration must end `verified`. Timed from the
release of the burst to that transition's audit event (its `at` is the serve process's
wall clock; this process notes its own at the release, same machine, same clock), and to
the moment every tap has been handled (the bot's counters).
"""

from __future__ import annotations

import time
from typing import Any

from bench import wire
from bench.botdrive import ALICE, BotDriver, approvers
from bench.common import summary_ms
from bench.load import drain
from bot.actions import ActionId


def run(drv: BotDriver, *, racers: int) -> dict[str, Any]:
    m = drv.set_weight(10)
    seen = len(drv.slack.messages)
    assert drv.command(ALICE, "verify") == 200
    request = drv.approval_request("verify", seen)
    reqs = [wire.prepare(drv.send.bot_url, drv.send.tap_body(user, request, ActionId.APPROVE))
            for user in approvers(racers)]
    counts_before = drv.handled()
    before = sum(counts_before.values())
    released, results = wire.burst(reqs)
    wall_released = time.time() - (time.perf_counter() - released)  # the release on the wall clock
    ok = sum(1 for _, status in results if status == 200)
    drain(drv, before, ok, timeout=120)
    all_handled = time.perf_counter() - released
    events = list(drv.events(m.id))
    into = [e for e in events if e["phase_before"] == "shifting" and e["phase_after"] == "verified"]
    after = drv.migration() or drv.store.load(m.id)
    counts = {k: v - counts_before.get(k, 0) for k, v in drv.handled().items() if v != counts_before.get(k, 0)}
    return {
        "racers": racers,
        "acks": summary_ms([s for s, status in results if status == 200]),
        "http_statuses": {str(s): sum(1 for _, x in results if x == s) for s in {x for _, x in results}},
        "transitions": len(into),
        "phase_after": after.phase.value if after else "",
        "to_transition_ms": (into[0]["at"] - wall_released) * 1000 if into else None,
        "all_handled_ms": all_handled * 1000,
        "handled": counts,
        "met": len(into) == 1 and after is not None and after.phase.value == "verified",
    }
