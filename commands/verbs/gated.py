"""Irreversible steps: asked for by one person, carried out once enough others approve.

`request` posts the approval; `execute` runs the step when the last approval arrives, in the
same compare-and-set that marks the approval approved, so a crash cannot lose or repeat it.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from commands import dns_caches, slb
from commands.engine import is_queued
from commands.errors import NotAllowed
from commands.grammar import Command
from commands.model import Approval, Migration
from commands.outcome import Outcome, Request
from commands.phases import BEFORE_SWITCH, NEXT_STEP, WEIGHTS_UNLOCKED, Phase, transition_for
from commands.policy import format_duration
from commands.render import clock_time, weights_line
from commands.verbs.info import gate_line

if TYPE_CHECKING:
    from commands.engine import Engine

WHAT_HAPPENS = {
    "accept": "accept the blocking route-check findings and move on to step 3",
    "verify": "Complete Traffic Verification: lock the weights at {weights}; after this the weight cannot be "
              "raised or lowered, but `/migrate rollback` still brings all traffic back to NGINX until `complete`",
    "cutover": "step 4d: send ALL traffic{moved} to MSE (NGINX's weight to 0){kept}",
    "complete": "step 5: mark the migration complete{delete}",
    "abort": "abort: take MSE out of the traffic path and restore {restored} as they were",
    "weight": "step 4c past its guards: set {target}, although {why}",
}


def summary_for(verb: str, m: Migration, args: dict[str, Any]) -> str:
    if verb == "accept":
        from commands.verbs.checkroutes import accept_summary

        return accept_summary(args)
    delete = ""
    if args.get("delete_service") and m.slb:
        delete = f" and DELETE Service {m.slb.namespace}/{m.slb.service}"
    kept = m.slb.kept if m.slb else ()
    restored = {"slb": "the Service and the SLB", "dns": "the DNS records"}.get(m.method or "", "what the bot changed")
    text = WHAT_HAPPENS[verb].format(weights=weights_line(m), delete=delete, target=args.get("target", ""),
                                     restored=restored,
                                     why=args.get("why", ""), moved=" of the moved listeners" if kept else "",
                                     kept=f"; {', '.join(kept)} stays on NGINX as chosen" if kept else "")
    if args.get("on_nginx"):
        text += (f", ALTHOUGH {', '.join(args['on_nginx'])} still resolve to NGINX's address (asked with `force=yes`): "
                 "NGINX must keep serving them")
    if args.get("unseen"):
        text += (f", ALTHOUGH MSE's record is not yet seen through the resolver for {', '.join(args['unseen'])} "
                 "(asked with `force=yes`): clients there keep going to NGINX's address until it is")
    return text + (f". Gates over the last window: {args['gates']}" if args.get("gates") else "")


def queued(eng: Engine, m: Migration, verb: str) -> Outcome | None:
    """Retry a step whose provider call failed earlier (an approved one needs no second approval)."""
    if m.intent is None or m.intent.verb != verb or not is_queued(m.intent):
        return None
    m2, summary = eng.resume(m)
    return eng.reply(m2, f"Retried {verb}: {summary}.", verb=verb)


def request(eng: Engine, m: Migration, req: Request, cmd: Command) -> Outcome:
    verb = cmd.verb
    retried = queued(eng, m, verb)
    if retried is not None:
        return retried
    transition_for(verb, m.phase)
    refuse_while_planning(m, verb)
    if verb == "verify" and m.weights.share <= 0:
        raise NotAllowed("Nothing to verify: MSE takes no traffic yet. "
                         "Raise the weight first, e.g. `/migrate weight 1`.")
    soak = eng.policy.gates.analysis.min_soak_before_verify
    soaked = eng.now() - m.last_weight_change_at
    if verb == "verify" and soak and soaked < soak:
        raise NotAllowed(f"Too soon to verify: the share has held for {format_duration(soaked)}, and verification "
                         f"needs {format_duration(soak)} at the final share (`analysis.min_soak_before_verify`). "
                         f"Ask again at {clock_time(m.last_weight_change_at + soak)}.")
    args: dict[str, Any] = {"weights": [m.mse_weight, m.nginx_weight]}
    if verb in ("verify", "cutover"):
        args["gates"] = gate_line(eng, m)  # what the approver decides on
    if verb == "cutover" and m.method == "dns":
        missing = dns_caches.unseen(eng.world, m)
        if missing and not cmd.flag("force"):
            raise NotAllowed(unseen_refusal(missing))
        if missing:
            args["unseen"] = missing
    if verb == "complete" and m.method == "dns":
        still = dns_caches.still_on_nginx(eng.world, m)
        if still and not cmd.flag("force"):
            raise NotAllowed(dns_caches.complete_refusal(still))
        if still:
            args["on_nginx"] = still
    if verb == "complete" and m.method != "dns" and cmd.flag("force"):
        raise NotAllowed("`force=yes` is for the DNS method (a name that still resolves to NGINX); run "
                         "`/migrate complete`.")
    if verb == "complete" and m.method == "dns" and cmd.flag("delete-service"):
        raise NotAllowed("`delete-service=yes` is an option of the SLB method: the DNS method never touches the NGINX "
                         "Service. Run `/migrate complete`.")
    if verb == "complete" and cmd.flag("delete-service"):
        if m.method == "slb":
            empty = slb.left_empty_by_delete(eng.world, m)
            if empty:
                raise NotAllowed(f"Can't delete the Service: {', '.join(empty)} would be left with no backend taking "
                                 "traffic. `/migrate complete` without `delete-service=yes` finishes the migration.")
        args["delete_service"] = True
    return ask(eng, m, req.user, verb, args)


def abort(eng: Engine, m: Migration, req: Request, cmd: Command) -> Outcome:
    """Before the switch nothing carries traffic, so abort is immediate; after it, an approval."""
    retried = queued(eng, m, "abort")
    if retried is not None:
        return retried
    t = transition_for("abort", m.phase)
    refuse_while_planning(m, "abort")
    if m.phase in BEFORE_SWITCH:
        half_done = m.intent is not None and is_queued(m.intent)
        if half_done:  # a failed start or switch: restore from the originals its intent recorded
            assert m.intent is not None
            m = dataclasses.replace(m, saved={**m.saved, **m.intent.args.get("saved", {})})
        return execute(eng, m, "abort", {}, user=req.user, approval=None, then=t.target, supersede=half_done)
    refusal = dns_caches.abort_refusal(eng.world, m, eng.now())
    if refusal:
        raise NotAllowed(refusal)
    return ask(eng, m, req.user, "abort", {})


def _nginx_free(m: Migration) -> str:
    when = dns_caches.nginx_free_from(m) if m.method == "dns" else ""
    return f"; {when}" if when else ""


def unseen_refusal(hosts: list[str]) -> str:
    return (f"Can't cut over yet: MSE's record is not seen for {', '.join(hosts)} ({dns_caches.unseen_rule()}), "
            "so NGINX's records "
            "are all those clients would have, and disabling them drops the name. Wait for the record to show (names "
            "hosted elsewhere: create it by hand), or `/migrate cutover force=yes` to ask an approver to approve "
            "it anyway.")


def refuse_while_planning(m: Migration, verb: str) -> None:
    """A running plan still moves the weights: nothing may lock them or take MSE out under it."""
    if m.plan.get("state") == "running":
        raise NotAllowed(f"Can't {verb} while a plan is moving the weights: `/migrate pause` it (or let it finish), "
                         f"then `/migrate {verb}`.")


def ask(eng: Engine, m: Migration, user: str, verb: str, args: dict[str, Any]) -> Outcome:
    from commands.engine import new_id
    from commands.verbs.decide import expire_if_due

    m = expire_if_due(eng, m)
    if m.pending_approval:
        waiting = eng.store.approval(m.id, m.pending_approval)
        if waiting and waiting.pending:
            raise NotAllowed(f"Request {waiting.id} ({waiting.verb}, asked by {waiting.requested_by}) is still "
                             f"waiting; approve or deny it first (`/migrate deny {waiting.id}`).")
    now = eng.now()
    approval = Approval(id=new_id("r", 2), migration_id=m.id, verb=verb, args=args, requested_by=user,
                        requested_at=now, expires_at=now + eng.policy.approval_ttl_seconds,
                        summary=summary_for(verb, m, args), required=eng.policy.required_approvals)
    new = eng.touched(m, user, f"asked to {verb} (request {approval.id})", pending_approval=approval.id)
    m2 = eng.commit(m, new, user=user, verb=verb, args={**args, "request": approval.id},
                    result=f"approval requested ({approval.id})", approval=approval)
    need = approval.required
    text = (f"Approval needed ({approval.id}): {approval.summary}.\nAsked by {user}; needs {need} approval"
            f"{'s' if need > 1 else ''} from someone else; expires at {clock_time(approval.expires_at)}.\n"
            f"Approve with `/migrate approve {approval.id}` or the button; deny with `/migrate deny {approval.id}`.")
    return eng.reply(m2, text, verb=verb, approval=approval)


def execute(eng: Engine, m: Migration, verb: str, args: dict[str, Any], *, user: str, approval: Approval | None,
            then: Phase | None = None, supersede: bool = False) -> Outcome:
    """Carry out an approved (or approval-free) irreversible step."""
    target = then or transition_for(verb, m.phase).target
    who = user if approval is None else f"{approval.requested_by}, approved by {', '.join(approval.approvals)}"
    if verb == "verify":
        if approval and list(approval.args.get("weights", [])) != [m.mse_weight, m.nginx_weight]:
            raise NotAllowed("The weights changed since verification was asked for; ask again with `/migrate verify`.")
        new = eng.touched(m, who, f"verified traffic at {weights_line(m)}; weights locked", phase=target,
                          pending_approval="")
        m2 = eng.commit(m, new, user=user, verb="verify", args=args, result="weights locked", approval=approval)
        return eng.reply(m2, f"Traffic verified by {who}: weights are locked. Next: `/migrate cutover`.",
                         verb="verify", approval=approval)
    if verb == "weight":
        return _approved_weight(eng, m, args, user=user, approval=approval, who=who)
    if verb == "accept":
        from commands.verbs.checkroutes import accept_execute

        return accept_execute(eng, m, args, user=user, who=who, approval=approval)
    if verb == "cutover" and m.method == "dns" and not args.get("unseen"):
        missing = dns_caches.unseen(eng.world, m)  # seen when asked; looked at again, since a record can go
        if missing:
            raise NotAllowed(unseen_refusal(missing))
    if verb == "abort" and m.phase not in BEFORE_SWITCH:
        refusal = dns_caches.abort_refusal(eng.world, m, eng.now())  # looked at again: MSE may answer since
        if refusal:
            raise NotAllowed(refusal)
    if verb == "complete" and m.method == "dns" and not args.get("on_nginx"):
        still = dns_caches.still_on_nginx(eng.world, m)
        if still:
            raise NotAllowed(dns_caches.complete_refusal(still))
    op = {"cutover": "cutover", "complete": "complete", "abort": "restore"}[verb]
    actions = {"cutover": "cut over: all traffic to MSE", "complete": "completed the migration",
               "abort": "aborted the migration"}
    m2, summary = eng.run_step(m, op=op, verb=verb, user=user, then=target, approval=approval,
                               args={**args, "action": actions[verb]}, supersede=supersede)
    after = f"Next: {NEXT_STEP[m2.phase]}."  # an overtaken cutover leaves the phase where the rollback put it
    texts = {
        "cutover": f"Cutover by {who}: {summary}. {after}",
        "complete": f"Migration {m2.id} completed ({who}): {summary}{_nginx_free(m2)}.",
        "abort": f"Migration {m2.id} aborted by {who}: {summary}.",
    }
    return eng.reply(m2, texts[verb], verb=verb, approval=approval)


def _approved_weight(eng: Engine, m: Migration, args: dict[str, Any], *, user: str, approval: Approval | None,
                     who: str) -> Outcome:
    """An increase an approver let past the gates or the step limit, if the weights are still
    where it was asked from (a rollback since then means the question is no longer the same)."""
    if m.phase not in WEIGHTS_UNLOCKED or list(args.get("from", [])) != [m.mse_weight, m.nginx_weight] \
            or m.plan.get("state") == "running":
        text = ("The weights changed, or a plan is moving them, since this increase was asked for: the request is "
                "cancelled; ask again with `/migrate weight`.")
        if approval is None:
            raise NotAllowed(text)
        cancelled = dataclasses.replace(approval, state="cancelled", reason="the weights changed")
        m2 = eng.commit(m, dataclasses.replace(m, pending_approval=""), user=user, verb="cancel",
                        args={"request": approval.id}, result="weight request cancelled: the weights changed",
                        approval=cancelled)
        return eng.reply(m2, text, verb="weight", approval=cancelled)
    action = f"set {args['target']} (approved past: {args['why']})"
    m2, summary = eng.run_step(m, op="weights", verb="weight", user=user, then=Phase.SHIFTING, approval=approval,
                               args={"mse": int(args["mse"]), "nginx": int(args["nginx"]), "action": action})
    return eng.reply(m2, f"{who} {action}. {summary}.", verb="weight", approval=approval)


def decided(approval: Approval, **changes: Any) -> Approval:
    return dataclasses.replace(approval, **changes)
