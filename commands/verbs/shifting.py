"""`weight` and `rollback`: step 4c. Increases wait for the dwell; decreases and rollback never wait."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from commands import gates, grammar, health, plan, slb
from commands.engine import is_queued
from commands.errors import Conflict, NotAllowed, ProviderError, UserError
from commands.grammar import Command
from commands.model import Approval, Migration
from commands.outcome import Outcome, Request
from commands.phases import Phase, transition_for
from commands.policy import dwell_left, format_duration
from commands.render import clock_time, dwell_for, held, weights_line
from commands.traffic import Weights, format_share, is_increase, weights_for_share

if TYPE_CHECKING:
    from commands.engine import Engine

NGINX_FLOOR = 1  # below this the NGINX side is gone: that is the cutover, not a weight step


def target_weights(m: Migration, cmd: Command) -> Weights:
    value, is_share = grammar.parse_weight(cmd.positional)
    if is_share:
        if value >= 100:
            raise UserError("100% is the cutover, not a weight step: `/migrate verify`, then `/migrate cutover`.")
        return weights_for_share(value, nginx_floor=NGINX_FLOOR)
    return Weights(mse=value, nginx=m.nginx_weight if m.nginx_weight >= NGINX_FLOOR else 100)


def weight(eng: Engine, m: Migration, request: Request, cmd: Command) -> Outcome:
    from commands.verbs.gated import queued

    retried = queued(eng, m, "weight")  # an approved increase whose cloud call failed: retried as approved
    if retried is not None:
        return retried
    t = transition_for("weight", m.phase)
    if m.plan.get("state") == "running":
        raise NotAllowed("A plan is moving the weights (`/migrate status` shows it): `/migrate pause` it first, "
                         "or `/migrate rollback`.")
    target = target_weights(m, cmd)
    if target == m.weights and m.intent is None:
        return eng.reply(m, f"Nothing to change: {weights_line(m)}.", verb="weight")
    gate_line = ""
    if is_increase(m.weights, target):
        left = dwell_left(last_change_at=m.last_weight_change_at, now=eng.now(), dwell_seconds=dwell_for(m, eng.policy))
        if left > 0:
            raise NotAllowed(
                f"Too soon to increase: wait {format_duration(left)} (until {clock_time(eng.now() + left)}) so the "
                "last change can take effect and be watched. Decreases and `/migrate rollback` are never delayed.")
        verdicts = health.verdicts(eng.world, m, eng.policy.gates)
        gate_line = gates.summary(verdicts)
        guarded = past_guards(eng, m, target, verdicts)
        if guarded:
            from commands.verbs.gated import ask

            return ask(eng, m, request.user, "weight", {"mse": target.mse, "nginx": target.nginx,
                                                         "from": [m.mse_weight, m.nginx_weight],
                                                         "target": target.describe(), "why": guarded})
    action = f"set {target.describe()}"
    m2, summary = eng.run_step(m, op="weights", verb="weight", user=request.user, then=t.target,
                               args={"mse": target.mse, "nginx": target.nginx, "action": action, "gates": gate_line})
    m2, cancelled = cancel_pending(eng, m2, request.user)
    shown = f" Gates: {gate_line}." if gate_line else ""
    return eng.reply(m2, f"{request.user} {action}. {summary}.{shown}{ttl_note(eng, m2)}{_note(cancelled)}",
                     verb="weight",
                     approval=cancelled)


def ttl_note(eng: Engine, m: Migration) -> str:
    """For DNS, when the records changed live longer in caches than the dwell: when the next increase may go."""
    ttl = int(m.observed.get("ttl", 0)) if m.method == "dns" else 0
    if ttl <= eng.policy.dwell_seconds:
        return ""
    return (f" The records changed have a TTL of {ttl}s, longer than the {format_duration(eng.policy.dwell_seconds)} "
            f"dwell: the next increase waits {format_duration(ttl)} (until {clock_time(eng.now() + ttl)}).")


def past_guards(eng: Engine, m: Migration, target: Weights, verdicts: list[gates.Verdict]) -> str:
    """Why an increase needs an approver: failing gates, or a step past `max_step_percent`."""
    reasons = []
    failing = [v for v in verdicts if not v.ok]
    if failing:
        reasons.append("gates fail: " + gates.summary(failing))
    limit = eng.policy.gates.analysis.max_step_percent
    step = target.share - held(m)[0]
    if step > limit + 1e-9:
        reasons.append(f"a step of {step:.0f} points of share is more than the {limit:g} allowed without approval")
    return "; ".join(reasons)


def rollback(eng: Engine, m: Migration, request: Request, cmd: Command) -> Outcome:
    """MSE weight 0 at once, NGINX's weight back to 100; it takes over from a weight step or a
    cutover still running. After `verify` or `cutover` it undoes them too (until `complete`)."""
    t = transition_for("rollback", m.phase)
    already = _already_rolled_back(eng, m)
    if already:  # nothing to write; a request to go up again is still withdrawn
        m2, cancelled = cancel_pending(eng, m, request.user)
        return eng.reply(m2, already + _note(cancelled), verb="rollback", approval=cancelled)
    undone = m.phase if m.phase in (Phase.VERIFIED, Phase.CUT_OVER) else None
    before = held(m)[0]
    superseding = m.intent is not None and (m.intent.op in ("weights", "cutover") or is_queued(m.intent))
    # A cutover still running may take NGINX away under us: NGINX then comes back before MSE leaves.
    nginx_first = m.nginx_weight == 0 or (m.intent is not None and m.intent.op == "cutover")
    action = "rolled back: MSE weight 0" + (f", {undone.value} undone" if undone else "")
    if m.plan.get("state") in plan.WATCHED:  # the plan ends in the rollback's own first write: no step after it
        m = dataclasses.replace(m, plan={**m.plan, "state": "stopped"})
    m2, summary = eng.run_step(m, op="weights", verb="rollback", user=request.user, then=t.target,
                               args={"mse": 0, "nginx": 100, "nginx_first": nginx_first, "action": action},
                               supersede=superseding)
    m2, cancelled = cancel_pending(eng, m2, request.user)
    lock = (f" Traffic verification is undone{' and so is the cutover' if undone is Phase.CUT_OVER else ''}: "
            "verify again before cutover." if undone else "")
    share = held(m2)[0]
    where = "all traffic on NGINX" if share <= 0 else f"MSE still holds {format_share(share)} (see the drift line)"
    ttl = int(m2.observed.get("mse_cached_ttl", 0)) if m2.method == "dns" else 0
    answered = max(before, float(m.observed.get("highest", 0)))  # a step failed halfway: one name on MSE
    if share <= 0 and ttl and answered > 0:  # a resolver keeps an answer for its TTL
        where = (f"DNS answers with NGINX only; resolvers that cached MSE's address may still send clients there "
                 f"until {clock_time(eng.now() + ttl)} (TTL {ttl}s): keep the gateway serving until then")
    out = eng.reply(m2, f"Rolled back by {request.user} at {clock_time(eng.now())} (MSE {format_share(before)} → "
                        f"{format_share(share)}): {where}. {summary}.{lock} "
                        f"Shifting may resume with `/migrate weight N`.{_note(cancelled)}", verb="rollback",
                    approval=cancelled)
    return dataclasses.replace(out, broadcast=True)  # the whole channel hears a rollback, not only the thread


def _already_rolled_back(eng: Engine, m: Migration) -> str:
    """A second rollback where the SLB already holds MSE at 0 and NGINX at 100 writes nothing.

    Judged on what the SLB holds, read now (one read), never on the record alone: anything that
    still gives MSE traffic gets the full rollback.
    """
    if (m.intent is not None or m.phase not in (Phase.SWITCHED, Phase.SHIFTING) or m.weights.mse != 0
            or m.nginx_weight != 100 or m.method != "slb" or m.plan.get("state") in plan.WATCHED):
        return ""
    try:
        seen = slb.read(eng.world, m, mse=0, nginx=100)
    except ProviderError:
        return ""  # cannot tell: roll back again
    if seen["share"] > 0 or seen["drift"]:
        return ""
    return f"Already rolled back: the SLB holds {slb.describe(seen)}. Nothing was written."


def _note(cancelled: Approval | None) -> str:
    return (f" Request {cancelled.id} ({cancelled.verb}) is cancelled: the weights it was asked at changed."
            if cancelled else "")


def cancel_pending(eng: Engine, m: Migration, user: str) -> tuple[Migration, Approval | None]:
    """A verify, cutover or complete asked for at other weights no longer describes the traffic: cancel it.

    Done after the weight write, so a rollback never waits for this bookkeeping.
    """
    if not m.pending_approval:
        return m, None
    a = eng.store.approval(m.id, m.pending_approval)
    if a is None or not a.pending or a.verb not in ("verify", "cutover", "complete", "weight"):
        return m, None
    done = dataclasses.replace(a, state="cancelled", decided_at=eng.now(), reason="the weights changed")
    try:
        m2 = eng.commit(m, dataclasses.replace(m, pending_approval=""), user=user, verb="cancel",
                        args={"request": a.id}, result=f"{a.verb} cancelled: the weights changed", approval=done)
    except Conflict:
        return m, None
    return m2, done
