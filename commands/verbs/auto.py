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
from commands.render import held
from commands.traffic import weights_for_share

if TYPE_CHECKING:
    from commands.engine import Engine

AUTO_USER = "migrate-bot (plan)"


def auto(eng: Engine, m: Migration, request: Request, cmd: Command) -> Outcome:
    transition_for("weight", m.phase)
    if m.plan.get("state") in ("running", "paused"):
        raise NotAllowed(f"A plan is already {m.plan['state']}: {plan.Plan.from_dict(m.plan).describe()}. "
                         "`/migrate pause`, `/migrate resume`, or `/migrate rollback` (which ends it).")
    p = plan.parse(cmd.positional, cmd.args["every"], current=held(m)[0], dwell=eng.policy.dwell_seconds,
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
    return _set_state(eng, m, request.user, "paused", "running", "paused the plan")


def resume(eng: Engine, m: Migration, request: Request, cmd: Command) -> Outcome:
    return _set_state(eng, m, request.user, "running", "paused", "resumed the plan")


def _set_state(eng: Engine, m: Migration, user: str, state: str, from_state: str, action: str) -> Outcome:
    if m.plan.get("state") != from_state:
        now = m.plan.get("state") or "none"
        raise NotAllowed(f"Can't {action.split()[0][:-1]} the plan: it is {now}. "
                         "Start one with `/migrate auto 1,5,10,25,50% every 5m`.")
    p = dataclasses.replace(plan.Plan.from_dict(m.plan), state=state, next_check_at=eng.now(),
                            next_step_at=max(eng.now(), float(m.plan.get("next_step_at", 0))))
    m2 = eng.commit(m, eng.touched(m, user, action, plan=p.to_dict()), user=user, verb=action.split()[0][:-1],
                    args={}, result=action)
    return eng.reply(m2, f"{user} {action}: {p.describe()}.", verb="auto")


def tick(eng: Engine, m: Migration) -> Outcome | None:
    """The plan's part of a housekeeping round for one migration; None when nothing was due."""
    if m.plan.get("state") != "running" or m.intent is not None or m.phase not in WEIGHTS_UNLOCKED:
        return None
    p = plan.Plan.from_dict(m.plan)
    now = eng.now()
    if now < p.next_check_at:
        return None
    verdicts = health.verdicts(eng.world, m, eng.policy.gates)
    decision = plan.tick(p, verdicts, now=now, analysis=eng.policy.gates.analysis)
    try:
        m2 = eng.commit(m, dataclasses.replace(m, plan=decision.plan.to_dict()), user=AUTO_USER, verb="auto",
                        args={}, result=decision.rollback or decision.note or f"gates: {decision.plan.last}")
    except Conflict:
        return None  # the record moved (a person acted): the next round looks again
    if decision.rollback:
        return _roll_back(eng, m2, decision.rollback)
    if decision.step is not None:
        return _step(eng, m2, decision.step, decision.plan)
    return Outcome(decision.note, migration=m2, verb="auto") if decision.note else None


def _step(eng: Engine, m: Migration, share: int, p: plan.Plan) -> Outcome:
    target = weights_for_share(share, nginx_floor=1)
    action = f"plan step to {share}%: set {target.describe()}"
    try:
        m2, summary = eng.run_step(m, op="weights", verb="weight", user=AUTO_USER, then=transition_for(
            "weight", m.phase).target, args={"mse": target.mse, "nginx": target.nginx, "action": action,
                                             "gates": p.last})
    except MigrateError as exc:
        return Outcome(f"The plan could not take its step to {share}%: {exc}", ok=False,
                       migration=eng.load(m.id), verb="auto")
    done = " The plan is done: watch it, then `/migrate verify`." if p.state == "done" else (
        f" Next: {p.next_share}% at the earliest in {format_window(p.every)}.")
    return Outcome(f"{action}. {summary}. Gates: {p.last}.{done}", migration=m2, verb="auto")


def _roll_back(eng: Engine, m: Migration, why: str) -> Outcome:
    """By the same path as `/migrate rollback`; said to the whole channel, naming who may act."""
    from commands.verbs.shifting import rollback

    done = rollback(eng, m, Request(text="rollback", user=AUTO_USER, channel=m.channel), Command("rollback"))
    people = sorted(eng.policy.rollback or (eng.policy.operators | eng.policy.approvers) - {"*"})
    who = f" Rollback group: {' '.join(people[:10])}." if people else ""
    text = f"Automatic rollback of {m.id}: {why}. {done.text}{who}"
    return dataclasses.replace(done, text=text, broadcast=True, verb="rollback")
