"""`approve` and `deny` (typed or tapped), and approvals that run out of time.

Four eyes: the requester's own approval is refused. Each approver counts once. Two approvers
tapping at the same instant race on the record's version: one compare-and-set wins, the other
re-reads and is told the request was already decided.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from commands.errors import Conflict, NotAllowed, UserError
from commands.grammar import Command
from commands.model import Approval, Migration
from commands.outcome import Outcome, Request
from commands.render import clock_time
from commands.verbs import gated

if TYPE_CHECKING:
    from commands.engine import Engine

RETRIES = 5


def approve_text(eng: Engine, m: Migration, req: Request, cmd: Command) -> Outcome:
    return decide(eng, migration_id=m.id, approval_id=cmd.positional or m.pending_approval, user=req.user,
                  approve=True)


def deny_text(eng: Engine, m: Migration, req: Request, cmd: Command) -> Outcome:
    return decide(eng, migration_id=m.id, approval_id=cmd.positional or m.pending_approval, user=req.user,
                  approve=False, reason=cmd.args.get("reason", ""))


def decide(eng: Engine, *, migration_id: str, approval_id: str, user: str, approve: bool, reason: str = "") -> Outcome:
    verb = "approve" if approve else "deny"
    eng.policy.require(user, verb)
    if not approval_id:
        raise UserError(f"Nothing is waiting for approval; `/migrate {verb} REQUEST` names a request.")
    for _ in range(RETRIES):
        m = eng.store.load(migration_id)
        a = eng.store.approval(migration_id, approval_id)
        if m is None or a is None:
            raise UserError(f"No request {approval_id[:20]} in this migration; `/migrate status` shows what waits.")
        try:
            return _decide_once(eng, m, a, user=user, approve=approve, reason=reason)
        except Conflict:
            continue  # someone else decided or changed the migration first: look again
    raise Conflict("The migration is changing too fast to decide now; try again in a moment.")


def _decide_once(eng: Engine, m: Migration, a: Approval, *, user: str, approve: bool, reason: str) -> Outcome:
    if not a.pending:
        by = a.denied_by or ", ".join(a.approvals) or "nobody"
        return Outcome(f"Request {a.id} was already {a.state}" + ("" if a.state == "expired" else f" by {by}") + ".",
                       ephemeral=True, verb="approve" if approve else "deny")
    if eng.now() >= a.expires_at:
        expired = _expire(eng, m, a)
        return Outcome(f"Request {a.id} expired at {clock_time(a.expires_at)}; ask again.", ephemeral=True,
                       migration=expired.migration, approval=expired.approval, verb="expire")
    if not approve:
        done = dataclasses.replace(a, state="denied", denied_by=user, reason=reason, decided_at=eng.now())
        new = eng.touched(m, user, f"denied {a.verb} ({a.id})", pending_approval="")
        m2 = eng.commit(m, new, user=user, verb="deny", args={"request": a.id, "reason": reason},
                        result=f"{a.verb} denied", approval=done)
        why = f": {reason}" if reason else ""
        return eng.reply(m2, f"{user} denied {a.verb} ({a.id}){why}. Nothing was changed.", verb="deny", approval=done)
    if user == a.requested_by:
        raise NotAllowed(f"You asked for {a.verb} yourself; someone else must approve request {a.id} (four eyes).")
    if user in a.approvals:
        left = a.required - len(a.approvals)
        return Outcome(f"You already approved {a.id}; {left} more approval{'s' if left != 1 else ''} needed.",
                       ephemeral=True, verb="approve")
    counted = dataclasses.replace(a, approvals=(*a.approvals, user))
    if len(counted.approvals) < a.required:
        new = eng.touched(m, user, f"approved {a.verb} ({a.id}), {len(counted.approvals)} of {a.required}")
        m2 = eng.commit(m, new, user=user, verb="approve", args={"request": a.id},
                        result=f"{len(counted.approvals)} of {a.required} approvals", approval=counted)
        return eng.reply(m2, f"{user} approved {a.verb} ({a.id}): {len(counted.approvals)} of {a.required}.",
                         verb="approve", approval=counted)
    final = dataclasses.replace(counted, state="approved", decided_at=eng.now())
    return gated.execute(eng, m, a.verb, dict(a.args), user=user, approval=final)


def _expire(eng: Engine, m: Migration, a: Approval) -> Outcome:
    done = dataclasses.replace(a, state="expired", decided_at=eng.now())
    new = dataclasses.replace(m, pending_approval="" if m.pending_approval == a.id else m.pending_approval)
    m2 = eng.commit(m, new, user="bot", verb="expire", args={"request": a.id}, result=f"{a.verb} request expired",
                    approval=done)
    return eng.reply(m2, f"Request {a.id} ({a.verb}, asked by {a.requested_by}) expired without a decision.",
                     verb="expire", approval=done)


def expire_if_due(eng: Engine, m: Migration) -> Migration:
    if not m.pending_approval:
        return m
    a = eng.store.approval(m.id, m.pending_approval)
    if a is None or not a.pending:
        return dataclasses.replace(m, pending_approval="")
    if eng.now() < a.expires_at:
        return m
    out = _expire(eng, m, a)
    assert out.migration is not None
    return out.migration


def expire_due(eng: Engine) -> list[Outcome]:
    """Mark every approval past its expiry as expired, once, however many replicas call this."""
    outcomes = []
    for a in eng.store.pending_approvals():
        if eng.now() < a.expires_at:
            continue
        m = eng.store.load(a.migration_id)
        if m is None:
            continue
        try:
            outcomes.append(_expire(eng, m, a))
        except Conflict:
            continue  # another replica expired it, or the migration moved; the next sweep looks again
    return outcomes
