"""Step 2, `check`: the route check on the migration's cluster, and accepting its blocking findings.

Findings keep their short ids (F3) across checks: the record holds each finding's fingerprint and
id (blocking first, up to MAX_IDS) and the first number never handed out, and the next check passes
them back. An acceptance names fingerprints, not
ids, so a blocking finding that appears in a later check is never covered by an earlier one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from commands import controllerconf, routecheck, routefindings, routereport
from commands.errors import UserError
from commands.grammar import Command
from commands.model import Approval, Migration
from commands.outcome import Outcome, Request
from commands.phases import Phase, transition_for
from commands.ports import ClusterPort, Ingress, Route

if TYPE_CHECKING:
    from commands.engine import Engine

MAX_KEPT = 500  # blocking findings (and missing routes) remembered in the record, to keep it small
MAX_IDS = 1000  # fingerprint -> id pairs remembered (about 25 KB): past that, the least relevant get new ids
_IDS = re.compile(r"^[Ff][0-9]{1,5}(,[Ff][0-9]{1,5})*$")
ALL = frozenset({"all", "yes", "true"})


def check(eng: Engine, m: Migration, request: Request, cmd: Command,
          probe: Callable[[list[Ingress], str], list[str]]) -> Outcome:
    """Run the check, keep its summary and ids in the record, answer in ten lines plus a file."""
    gw = eng.world.gateway.get_gateway(gateway_id=m.gateway)
    cluster = eng.world.cluster(m.cluster)
    ingresses = list(cluster.list_ingresses(ingress_class=m.ingress_class))
    controller = controllerconf.locate(cluster, named=getattr(eng.world, "controller_configmap", "") or "",
                                       ingress_class=m.ingress_class)
    report = routecheck.check_routes(ingresses, gateway_version=gw.version if gw else None, controller=controller,
                                     service_exists=_service_exists(cluster), known_ids=m.check.get("ids") or {},
                                     next_id=int(m.check.get("next_id") or 0))
    missing = routecheck.missing_routes(ingresses, eng.world.gateway.routes(gateway_id=m.gateway))
    curls = routecheck.curl_lines(ingresses, mse_ip=gw.slb_address if gw else "MSE_IP")
    accepted: dict[str, str] = dict(m.check.get("accepted") or {})
    accepted_missing = set(m.check.get("accepted_missing") or [])
    extras = routereport.Extras(missing=missing, curls=curls, probe=probe(ingresses, gw.slb_address if gw else ""),
                                accepted=accepted,
                                accepted_by=list(m.check.get("accepted_by") or []),
                                gateway_version=gw.version if gw else "")
    fresh = routereport.new_blocking(report, extras)
    missing_left = [r for r in missing if _route(r) not in accepted_missing]
    blocked = bool(fresh) or bool(missing_left)
    now_blocking = {f.fingerprint for f in report.blocking}
    summary: dict[str, Any] = {
        "blocking": len(report.blocking), **report.summary, "missing_routes": len(missing),
        "ingresses": report.ingresses, "at": eng.now(),
        "ids": kept_ids(report, m.check.get("ids") or {}),
        "next_id": max([int(m.check.get("next_id") or 0),
                        *(routefindings.id_number(f.id) + 1 for f in report.findings)]),
        "open": [{"id": f.id, "fp": f.fingerprint, "what": f"{f.resource} {routereport.short_key(f.annotation)}"}
                 for f in report.blocking][:MAX_KEPT],
        "missing": [_route(r) for r in missing][:MAX_KEPT],
        "accepted": {fp: i for fp, i in accepted.items() if fp in now_blocking},
        "accepted_missing": sorted(accepted_missing & {_route(r) for r in missing}),
        "accepted_by": list(m.check.get("accepted_by") or []),
        "controller_configmap": controller.ref, "controller_read": controller.data is not None,
    }
    target = Phase.LISTENING if blocked else Phase.CHECKED
    if blocked:
        first = [f.id for f in routereport.ranked_blocking(report) if f.fingerprint not in accepted][:2]
        example = ",".join(first) if first else "all"
        next_step = ("Blocking findings keep the migration here: fix them and `/migrate check` again, or ask an "
                     f"approver with `/migrate check accept={example}` (or `accept=all`).")
    else:
        next_step = "No blocking findings left. Next: choose a method, e.g. " \
                    "`/migrate method slb service=ingress-nginx/nginx-ingress-lb`."
    new = eng.touched(m, request.user, f"checked routes ({report.summary_line()})", check=summary, phase=target)
    m2 = eng.commit(m, new, user=request.user, verb="check", args=dict(cmd.args), result=report.summary_line())
    files = {routereport.FILE_NAME: routereport.markdown(report, extras)}
    return eng.reply(m2, routereport.thread_reply(report, extras, next_step=next_step), verb="check", files=files)


def kept_ids(report: routecheck.Report, earlier: dict[str, str]) -> dict[str, str]:
    """The ids to remember: this check's blocking findings, then its others, then earlier ones that
    may come back (a warning fixed and reintroduced keeps its number), MAX_IDS in all."""
    kept: dict[str, str] = {}
    for f in (*report.blocking, *(f for f in report.findings if f.severity != "blocking")):
        if len(kept) >= MAX_IDS:
            return kept
        kept.setdefault(f.fingerprint, f.id)
    for fp, fid in earlier.items():  # stored in this same order, the most relevant first
        if len(kept) >= MAX_IDS:
            break
        kept.setdefault(fp, fid)
    return kept


def _service_exists(cluster: ClusterPort) -> Callable[[str, str], bool]:
    seen: dict[tuple[str, str], bool] = {}

    def exists(namespace: str, name: str) -> bool:
        if (namespace, name) not in seen:
            seen[(namespace, name)] = cluster.get_service(namespace=namespace, name=name) is not None
        return seen[(namespace, name)]
    return exists


def _route(r: Route) -> str:
    return f"{r.host}{r.path}"


# ---- accepting ------------------------------------------------------------------------------

def accept_request(eng: Engine, m: Migration, request: Request, value: str) -> Outcome:
    """`check accept=F3,F7` or `accept=all`: an approval request naming exactly what it waives."""
    from commands.verbs import gated

    retried = gated.queued(eng, m, "accept")
    if retried is not None:
        return retried
    open_ = [o for o in m.check.get("open") or [] if o["fp"] not in (m.check.get("accepted") or {})]
    missing = [r for r in m.check.get("missing") or [] if r not in set(m.check.get("accepted_missing") or [])]
    if not open_ and not missing:
        raise UserError("Nothing to accept: the last `/migrate check` left no blocking findings open; run "
                        "`/migrate check` first if the cluster changed.")
    transition_for("accept", m.phase)
    gated.refuse_while_planning(m, "accept")
    if value.lower() in ALL:
        chosen = open_
        args: dict[str, Any] = {"all": True, "missing": missing}
    else:
        if not _IDS.match(value):
            raise UserError(f"`accept={value[:40]}` names no findings: give ids from the report, e.g. "
                            "`accept=F3,F7`, or `accept=all`.")
        wanted = list(dict.fromkeys(v.upper() for v in value.split(",")))
        by_id = {o["id"]: o for o in open_}
        unknown = [i for i in wanted if i not in by_id]
        if unknown:
            have = ", ".join(o["id"] for o in open_[:10]) or "none"
            raise UserError(f"{', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not an open blocking "
                            f"finding of the last check (open: {have}); `/migrate check` shows the ids.")
        chosen = [by_id[i] for i in wanted]
        args = {"all": False, "missing": []}
    args.update(findings=[o["id"] for o in chosen], fingerprints=[o["fp"] for o in chosen],
                what=[o["what"] for o in chosen][:20], open=len(open_))
    return gated.ask(eng, m, request.user, "accept", args)


def accept_summary(args: dict[str, Any]) -> str:
    """What the approver waives, by id; `accept=all` says how many."""
    ids = list(args.get("findings") or [])
    named = [f"{i} ({w})" for i, w in zip(ids, args.get("what") or [], strict=False)]
    shown = ", ".join(named[:10] + ids[len(named[:10]):][:30]) + (", …" if len(ids) > 40 else "")
    missing = len(args.get("missing") or [])
    routes = f" and {missing} route{'s' if missing != 1 else ''} the gateway lacks" if missing else ""
    if args.get("all"):
        return (f"accept ALL {len(ids)} open blocking route-check finding{'s' if len(ids) != 1 else ''}{routes}, "
                f"and move on to step 3: {shown or 'none'}")
    left = int(args.get("open", len(ids))) - len(ids)
    rest = f"; {left} other blocking finding{'s stay' if left != 1 else ' stays'} open" if left > 0 else ""
    return f"accept {len(ids)} blocking route-check finding{'s' if len(ids) != 1 else ''}: {shown}{rest}"


def accept_execute(eng: Engine, m: Migration, args: dict[str, Any], *, user: str, who: str,
                   approval: Approval | None) -> Outcome:
    """Record what was accepted; step 2 is done once nothing blocking is left uncovered."""
    accepted = {**(m.check.get("accepted") or {}),
                **dict(zip(args.get("fingerprints") or [], args.get("findings") or [], strict=False))}
    accepted_missing = sorted(set(m.check.get("accepted_missing") or []) | set(args.get("missing") or []))
    open_left = [o["id"] for o in m.check.get("open") or [] if o["fp"] not in accepted]
    missing_left = [r for r in m.check.get("missing") or [] if r not in set(accepted_missing)]
    approvers = list(approval.approvals) if approval else [user]
    by = list(dict.fromkeys([*(m.check.get("accepted_by") or []), *approvers]))
    done = not open_left and not missing_left
    check = {**m.check, "accepted": accepted, "accepted_missing": accepted_missing, "accepted_by": by}
    ids = ", ".join(args.get("findings") or []) or "none"
    new = eng.touched(m, who, f"accepted route-check findings {ids}"[:200], check=check, pending_approval="",
                      phase=Phase.CHECKED if done and m.phase is Phase.LISTENING else m.phase)
    m2 = eng.commit(m, new, user=user, verb="accept", args=args, result=f"accepted {ids}"[:200], approval=approval)
    if done:
        text = f"Blocking findings accepted ({who}): {ids}. Next: `/migrate method ...`."
    else:
        left = ", ".join(open_left[:10]) + (", …" if len(open_left) > 10 else "")
        routes = f" and {len(missing_left)} missing route(s)" if missing_left else ""
        text = (f"Accepted {ids} ({who}). Still blocking: {left or 'none'}{routes}: fix them and "
                "`/migrate check` again, or accept them too.")
    return eng.reply(m2, text, verb="accept", approval=approval)
