"""`auto`, `pause`, `resume`, and the plan's tick: planned progression under the gates.

The verbs only record the plan; the housekeeper (one replica, under its lease) calls `tick`
for every migration, which reads the gates when due and either steps up, waits, or rolls
back by itself through the same path as `/migrate rollback`.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from commands import health, plan
from commands.errors import Conflict, MigrateError, NotAllowed
from commands.gates import format_window
from commands.grammar import Command
from commands.model import Migration
from commands.outcome import Outcome, Request
from commands.phases import WEIGHTS_UNLOCKED, transition_for
from commands.render import dwell_for, held
from commands.traffic import weights_for_share

if TYPE_CHECKING:
    from commands.engine import Engine

AUTO_USER = "migrate-bot (plan)"


def auto(eng: Engine, m: Migration, request: Request, cmd: Command) -> Outcome:
    transition_for("weight", m.phase)
    if m.plan.get("state") in ("running", "paused"):
        raise NotAllowed(f"A plan is already {m.plan['state']}: {plan.Plan.from_dict(m.plan).describe()}. "
                         "`/migrate pause`, `/migrate resume`, or `/migrate rollback` (which ends it).")
    if m.pending_approval:
        raise NotAllowed(f"Request {m.pending_approval} is waiting for an approver; decide it first, then start the "
                         "plan.")
    p = plan.parse(cmd.positional, cmd.args["every"], current=held(m)[0], dwell=dwell_for(m, eng.policy),
                   analysis=eng.policy.gates.analysis, by=request.user, now=eng.now())
    a = eng.policy.gates.analysis
    new = eng.touched(m, request.user, f"started a plan: {p.describe()}", plan=p.to_dict())
    m2 = eng.commit(m, new, user=request.user, verb="auto", args=dict(cmd.args) | {"shares": cmd.positional},
                    result=f"plan {p.describe()}")
    return eng.reply(m2, f"Plan by {request.user}: {p.describe()}. The gates are read every "
                         f"{format_window(a.interval)}; each step waits for them to pass, and "
                         f"{a.failures_before_rollback} failed checks in a row roll back by themselves. "
                         "`/migrate pause` holds it; `/migrate rollback` ends it.", verb="auto")


def pause(eng: Engine, m: Migration, request: Request, cmd: Command) -> Outcome:
    return _set_state(eng, m, request.user, "pause", state="paused", from_state="running")


def resume(eng: Engine, m: Migration, request: Request, cmd: Command) -> Outcome:
    return _set_state(eng, m, request.user, "resume", state="running", from_state="paused")


def _set_state(eng: Engine, m: Migration, user: str, verb: str, *, state: str, from_state: str) -> Outcome:
    action = f"{verb}d the plan"
    if m.plan.get("state") != from_state:
        now = m.plan.get("state") or "none"
        raise NotAllowed(f"Can't {verb} the plan: it is {now}. "
                         "Start one with `/migrate auto 1,5,10,25,50% every 5m`.")
    p = dataclasses.replace(plan.Plan.from_dict(m.plan), state=state, next_check_at=eng.now(),
                            next_step_at=max(eng.now(), float(m.plan.get("next_step_at", 0))))
    m2 = eng.commit(m, eng.touched(m, user, action, plan=p.to_dict()), user=user, verb=verb,
                    args={}, result=action)
    return eng.reply(m2, f"{user} {action}: {p.describe()}.", verb="auto")


def tick(eng: Engine, m: Migration) -> Outcome | None:
    """The plan's part of a housekeeping round for one migration; None when nothing was due."""
    if m.plan.get("state") not in plan.WATCHED or m.intent is not None or m.phase not in WEIGHTS_UNLOCKED:
        return None
    p = plan.Plan.from_dict(m.plan)
    now = eng.now()
    if now < p.next_check_at:
        return None
    verdicts = health.verdicts(eng.world, m, eng.policy.gates)
    decision = plan.tick(p, verdicts, now=now, analysis=eng.policy.gates.analysis, share=held(m)[0],
                         ready_at=m.last_weight_change_at + dwell_for(m, eng.policy))
    try:
        m2 = eng.commit(m, dataclasses.replace(m, plan=decision.plan.to_dict()), user=AUTO_USER, verb="auto",
                        args={}, result=decision.rollback or decision.note or f"gates: {decision.plan.last}")
    except Conflict:
        return None  # the record moved (a person acted): the next round looks again
    if decision.rollback:
        return _roll_back(eng, m2, decision.rollback)
    if decision.step is not None:
        return _step(eng, m2, decision.step)
    return Outcome(decision.note, migration=m2, verb="auto") if decision.note else None


def _step(eng: Engine, m: Migration, share: int) -> Outcome:
    """Take the plan's step; the plan moves on only once the step has landed."""
    target = weights_for_share(share, nginx_floor=1)
    action = f"plan step to {share}%: set {target.describe()}"
    gate_line = str(m.plan.get("last", ""))
    try:
        m2, summary = eng.run_step(m, op="weights", verb="weight", user=AUTO_USER, then=transition_for(
            "weight", m.phase).target, args={"mse": target.mse, "nginx": target.nginx, "action": action,
                                             "gates": gate_line})
    except MigrateError as exc:
        return Outcome(f"The plan could not take its step to {share}% (it tries again at the next check): {exc}",
                       ok=False, migration=eng.load(m.id), verb="auto")
    m2 = _moved_on(eng, m2)
    p = plan.Plan.from_dict(m2.plan)
    after = f" Next: {p.next_share}% at the earliest in {format_window(p.every)}." if p.next_share else (
        " That was the last step: the plan watches it until `/migrate verify`.")
    return Outcome(f"{action}. {summary}. Gates: {gate_line}.{after}", migration=m2, verb="auto")


def _moved_on(eng: Engine, m: Migration) -> Migration:
    """Record that the step landed, on the freshest record (a pause meanwhile stays a pause)."""
    for _ in range(5):
        if not m.plan:
            return m
        p = plan.stepped(plan.Plan.from_dict(m.plan), now=eng.now())
        try:
            return eng.commit(m, dataclasses.replace(m, plan=p.to_dict()), user=AUTO_USER, verb="auto", args={},
                              result=f"plan moved on to step {p.index + 1} of {len(p.steps)}")
        except Conflict:
            m = eng.load(m.id) or m
    return m


def _roll_back(eng: Engine, m: Migration, why: str) -> Outcome:
    """By the same path as `/migrate rollback` (which ends the plan in its first write), said to
    the whole channel with who may act. If it fails, the channel hears that too, and the plan,
    still watched, tries again at the next round."""
    from commands.verbs.shifting import rollback

    people = sorted((eng.policy.rollback or (eng.policy.operators | eng.policy.approvers)) - {"*"})
    who = f" Rollback group: {' '.join(people[:10])}." if people else ""
    try:
        done = rollback(eng, m, Request(text="rollback", user=AUTO_USER, channel=m.channel), Command("rollback"))
    except MigrateError as exc:
        fresh = eng.load(m.id) or m  # the rollback's first write stopped the plan: watch it again, at once
        try:
            eng.commit(fresh, dataclasses.replace(fresh, plan={**m.plan, "next_check_at": eng.now()}), user=AUTO_USER,
                       verb="auto", args={}, result=f"automatic rollback failed: {exc}")
        except MigrateError:
            pass
        return Outcome(f"Automatic rollback of {m.id} FAILED: {why}. The bot tries again at the next round; roll back "
                       f"by hand now: `/migrate rollback`. Error: {exc}{who}", ok=False, migration=eng.load(m.id),
                       verb="rollback", broadcast=True)
    return dataclasses.replace(done, text=f"Automatic rollback of {m.id}: {why}. {done.text}{who}", broadcast=True,
                               verb="rollback")
