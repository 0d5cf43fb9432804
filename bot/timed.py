"""The timed work itself: approvals that ran out, the end of a dwell, a detached SLB, steps a dead replica left.

Only the lease holder runs it (bot/housekeeper.py), and on top of that every event is claimed
once in Redis (SET NX on `once:{event}`) before anything is posted or done: a lease that
changes hands mid-round, or a Redis failover that briefly lets two replicas hold it, still
posts each notice and resumes each step exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

from bot.keys import BotKeys
from commands.engine import is_queued
from commands.errors import MigrateError
from commands.model import Migration, StepIntent
from commands.outcome import Outcome
from commands.phases import WEIGHTS_UNLOCKED
from commands.render import clock_time, weights_line

#: A step names the job worker life that runs it, and is taken over as soon as that worker's
#: heartbeat is gone (bot/queue.py owner_alive). Only a step that names no owner (Socket Mode,
#: the console) is judged by its age: one this old belongs to a process that died, as a live step
#: writes its result (or its failure) well within it, retries included (a rollback's 10 attempts
#: at a 10 s read timeout would still finish first).
STALE_INTENT_S = 180.0
#: How long the SLB may sit detached from cluster management (4a done, 4b not) before people are told.
SLB_REMINDER_S = 60.0
#: How long the timed work leaves an orphaned step to the re-run of its own request (the dead
#: worker's jobs are queued again at once, and the re-run takes the step over) before it takes
#: the step over itself: a step started by the timed work (a plan) has no request to re-run.
ORPHAN_GRACE_S = 15.0
ONCE_TTL_S = 7 * 24 * 3600


@dataclass(frozen=True)
class Notice:
    """A line for a migration's thread that is not an engine outcome (the card is redrawn with it)."""

    migration: Migration
    text: str


class TimedWork:
    def __init__(self, *, engine: Any, store: Any, client: redis.Redis, keys: BotKeys, dwell_seconds: float,
                 clock: Any) -> None:
        """`engine` is the real Engine (expire_due, resume); `store` the Store it writes to."""
        self.engine, self.store, self.r, self.keys = engine, store, client, keys
        self.dwell_seconds, self.clock = dwell_seconds, clock
        self._orphans: dict[str, float] = {}  # intent id -> when first seen orphaned

    def once(self, event: str) -> bool:
        """True for the first caller across all replicas; a Redis error counts as "not now" (retried next round)."""
        try:
            return bool(self.r.set(self.keys.once(event), "1", nx=True, ex=ONCE_TTL_S))
        except redis.RedisError:
            return False

    def expire(self) -> list[Outcome]:
        """Approval requests past their expiry; each is expired by one compare-and-set, so once."""
        return list(self.engine.expire_due())

    def notices(self) -> list[Notice]:
        now, out = self.clock(), []
        for m in self.store.active_migrations():
            if self._dwell_over(m, now) and self.once(f"dwell:{m.id}:{m.last_weight_change_at:.3f}"):
                out.append(Notice(m, f"Dwell over: the next weight increase is allowed now ({weights_line(m)})."))
            intent = m.intent
            if intent is not None and intent.op == "switch_slb" and now - intent.started_at >= SLB_REMINDER_S \
                    and self.once(f"slb-detached:{m.id}:{intent.id}"):
                out.append(Notice(m, _slb_reminder(m, intent)))
        return out

    def plans(self) -> list[Outcome]:
        """Planned progression: gates read, steps taken, automatic rollbacks (engine.tick_plans)."""
        return list(self.engine.tick_plans())

    def catch_up(self) -> list[Outcome]:
        """This process's steps whose cloud call landed while Redis was away, recorded once it answers."""
        return list(self.engine.catch_up()) if self.engine.unrecorded else []

    def orphaned(self, intent: StepIntent, now: float) -> bool:
        if is_queued(intent):
            return False
        if intent.owner:
            if not self.engine.abandoned(intent):
                return False
            first = self._orphans.setdefault(intent.id, now)
            return now - first >= ORPHAN_GRACE_S
        return now - intent.started_at >= STALE_INTENT_S

    def resume_stale(self) -> list[Outcome]:
        """Finish provider steps whose process died: the step reads the world first, so it repeats nothing done."""
        now, out = self.clock(), []
        active = self.store.active_migrations()
        open_steps = {m.intent.id for m in active if m.intent is not None}
        self._orphans = {k: v for k, v in self._orphans.items() if k in open_steps}
        for m in active:
            intent = m.intent
            if intent is None or not self.orphaned(intent, now):
                continue
            if not self.once(f"resume:{m.id}:{intent.id}"):
                continue
            try:
                m2, result = self.engine.take_over(m)
                out.append(Outcome(f"Finished `{intent.verb}`, which a stopped replica left half done: {result}.",
                                   migration=m2, verb=intent.verb))
            except MigrateError as exc:
                out.append(Outcome(f"Could not finish `{intent.verb}`, which a stopped replica left half done: {exc}",
                                   ok=False, migration=self.store.load(m.id), verb=intent.verb))
        return out

    def _dwell_over(self, m: Migration, now: float) -> bool:
        return (self.dwell_seconds > 0 and m.phase in WEIGHTS_UNLOCKED and m.intent is None
                and m.plan.get("state") not in ("running", "paused")
                and m.last_weight_change_at > 0
                and now >= m.last_weight_change_at + max(self.dwell_seconds, _dns_ttl(m)))


def _dns_ttl(m: Migration) -> float:
    """By DNS the dwell is at least the TTL of the records the last step changed (commands.render.dwell_for)."""
    return float(m.observed.get("ttl", 0)) if m.method == "dns" else 0.0


def _slb_reminder(m: Migration, intent: StepIntent) -> str:
    slb = m.slb.slb_id if m.slb else "the SLB"
    return (f"Reminder: {slb} was detached from cluster management at {clock_time(intent.started_at)} (step 4a), "
            "but step 4b (the NGINX Service's annotations) is not recorded as done. Until it is, the cloud "
            "controller and the bot disagree about the SLB; `/migrate status` shows where things stand.")
