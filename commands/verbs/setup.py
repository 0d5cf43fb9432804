"""`start`, `check`, `method`, `switch`: steps 1 to 4b, everything before traffic moves."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from commands import ccm, dns, dns_plan, grammar, slb_plan
from commands.engine import busy
from commands.errors import NotAllowed, UserError
from commands.grammar import Command
from commands.model import Migration, SlbChoice, StepIntent
from commands.outcome import Outcome, Request
from commands.phases import Phase, transition_for
from commands.ports import Ingress, Route
from commands.preflight import preflight
from commands.render import clock_time
from commands.verbs import gated

if TYPE_CHECKING:
    from commands.engine import Engine


def start(eng: Engine, request: Request, cmd: Command) -> Outcome:
    """Pre-flight, record the migration, then step 1: the gateway listens to the Ingress class."""
    from commands.engine import new_id

    cluster, gateway = cmd.args["cluster"], cmd.args["gateway"]
    ingress_class = cmd.args.get("class", "nginx")
    retried = _retry_step1(eng, request, cluster)
    if retried is not None:
        return retried
    found = preflight(eng.world, cluster=cluster, gateway=gateway, ingress_class=ingress_class)
    transition_for("start", None)
    then = transition_for("attach", Phase.DRAFT).target
    # The record and its step-1 intent are written together: a crash right after leaves an
    # intent to finish, never a draft nobody will move on.
    intent = StepIntent(id=new_id("s"), op="listen", verb="start", user=request.user, then=then.value,
                        args={"created": not found.source_existed, "action": "started the migration"},
                        started_at=eng.now())
    draft = Migration(id=new_id("m"), cluster=cluster, gateway=gateway, ingress_class=ingress_class,
                      channel=request.channel, created_by=request.user, created_at=eng.now(), intent=intent)
    m = eng.store.create(draft, eng.event(request.user, "start", dict(cmd.args), None, Phase.DRAFT,
                                          "pre-flight passed: " + "; ".join(found.notes) + "; started listen"))
    m2, summary = eng.resume(m)
    text = (f"Migration {m2.id} started by {request.user}: {cluster} → {gateway}.\n"
            f"Pre-flight: {'; '.join(found.notes)}.\nStep 1: {summary}. Next: `/migrate check`.")
    return eng.reply(m2, text, verb="start")


def _retry_step1(eng: Engine, request: Request, cluster: str) -> Outcome | None:
    """`start` again where step 1 failed: retry it rather than refuse a second migration."""
    m = eng.store.active_in_channel(request.channel)
    if m is None or m.cluster != cluster or m.phase is not Phase.DRAFT or m.intent is None:
        return None
    return gated.queued(eng, m, "start")


def check(eng: Engine, m: Migration, request: Request, cmd: Command) -> Outcome:
    """Step 2: every annotation against MSE, the controller's settings, the gateway's routes."""
    from commands.verbs import checkroutes

    transition_for("check", m.phase)
    accept = cmd.args.get("accept", "")
    if accept and accept.lower() not in ("no", "false"):
        return checkroutes.accept_request(eng, m, request, accept)
    return checkroutes.check(eng, m, request, cmd,
                             probe=lambda ingresses, mse_ip: _probe(eng, m, ingresses, mse_ip, cmd))


def _probe(eng: Engine, m: Migration, ingresses: list[Ingress], mse_ip: str, cmd: Command) -> list[str]:
    """`probe=yes`: the same requests through both gateways; list the paths that answer differently."""
    if not cmd.flag("probe"):
        return []
    if eng.prober is None:
        return ["Probing is not available with the simulated world; use the curl lines in the report file."]
    nginx_ip = cmd.args.get("nginx", "")
    if not nginx_ip:
        return ["Probe skipped: say where NGINX answers, e.g. `/migrate check probe=yes nginx=47.100.0.10`."]
    routes = [Route(host, path) for ing in ingresses for host, path, _ in ing.paths]
    diffs = eng.prober(routes, mse_ip=mse_ip, nginx_ip=nginx_ip)
    if not diffs:
        return [f"Probe: all {len(routes)} paths answered the same through MSE and NGINX."]
    first = "; ".join(d.line() for d in diffs[:2]) + ("; … (all in the report file)" if len(diffs) > 2 else "")
    return [f"Probe: {len(diffs)} of {len(routes)} paths answer differently through MSE and NGINX: {first}",
            *(d.line() for d in diffs)]


def method(eng: Engine, m: Migration, request: Request, cmd: Command) -> Outcome:
    """Step 3: SLB reuse (the Service, its SLB and every group that carries it) or DNS."""
    retried = gated.queued(eng, m, "method")  # TTLs whose lowering failed halfway
    if retried is not None:
        return retried
    t = transition_for("method", m.phase)
    if m.intent is not None:  # a queued switch would finish with the choice it was started with
        raise NotAllowed(busy(m.intent) + " Or `/migrate abort`, then choose again.")
    if cmd.positional.lower() == "dns":
        return method_dns(eng, m, request, cmd, t.target)
    choice, notes = choose_slb(eng, m, cmd)
    moved = ", ".join(choice.listeners())
    new = eng.touched(m, request.user, f"chose SLB reuse ({choice.slb_id}: {moved})",
                      method="slb", slb=choice, domains=(), phase=t.target)
    m2 = eng.commit(m, new, user=request.user, verb="method", args=dict(cmd.args),
                    result=f"slb {choice.slb_id} {moved}")
    return eng.reply(m2, "Method: SLB reuse.\n" + "\n".join(notes) + "\nNext: `/migrate switch` (steps 4a and 4b).",
                     verb="method")


def method_dns(eng: Engine, m: Migration, request: Request, cmd: Command, target: Phase) -> Outcome:
    """Step 3 for DNS: the Ingress hosts (or `domains=`), their zones and NGINX's records; refusals
    first; with `ttl=` NGINX's TTLs are lowered now, so `switch` can wait one old TTL."""
    ingresses = list(eng.world.cluster(m.cluster).list_ingresses(ingress_class=m.ingress_class))
    domains = grammar.parse_domains(cmd.args["domains"]) if "domains" in cmd.args else ()
    exact, _ = dns_plan.ingress_hosts(ingresses)
    candidates = list(dict.fromkeys([*domains, *exact]))
    zones = {h: eng.world.dns.zone_for(domain=h) for h in candidates}
    records = {h: eng.world.dns.records(domain=h) for h in (domains or exact) if zones.get(h)}
    ttl = grammar.parse_ttl(cmd.args["ttl"]) if "ttl" in cmd.args else 0
    found = dns_plan.plan(ingresses, domains=domains, partial=cmd.flag("partial"),
                          nginx=grammar.parse_addresses(cmd.args["nginx"]) if "nginx" in cmd.args else (),
                          line=cmd.args.get("line", dns_plan.DEFAULT_LINE), ttl=ttl, ingress_class=m.ingress_class,
                          zones=zones, records=records)
    if found.problems:
        raise UserError("The DNS method cannot go ahead: " + "; ".join(found.problems) + ".")
    c = found.choice
    new = eng.touched(m, request.user, f"chose the DNS method ({len(c.hosts)} names)", method="dns",
                      domains=c.hosts, dns=c.to_dict(), slb=None, phase=target)
    m2 = eng.commit(m, new, user=request.user, verb="method", args=dict(cmd.args), result="dns " + ",".join(c.hosts))
    head = f"Method: DNS, {len(c.hosts)} name(s); NGINX's records are A records for {', '.join(c.nginx)}."
    if not ttl:
        return eng.reply(m2, "\n".join([head, *found.notes, "Next: `/migrate switch`."]), verb="method")
    found_ttls = dns.ttls_found(m2, records, ttl)
    m3, summary = eng.run_step(m2, op="lower_ttls", verb="method", user=request.user, then=target,
                               args={"ttl": ttl, "saved": {"dns_ttls": found_ttls},
                                     "action": f"lowered NGINX's DNS TTLs to {ttl}s"})
    old = max(m3.saved.get("dns_ttls", {}).values(), default=0)
    ready = eng.now() + old
    m4 = eng.commit(m3, dataclasses.replace(m3, dns={**m3.dns, "ttl_ready_at": ready}), user=request.user,
                    verb="method", args={"ttl": ttl}, result=f"switch from {clock_time(ready)}")
    wait = f" `/migrate switch` from {clock_time(ready)}, one old TTL ({old}s) from now." if old else ""
    return eng.reply(m4, "\n".join([head, *found.notes, f"{summary}.{wait}"]), verb="method")


def choose_slb(eng: Engine, m: Migration, cmd: Command) -> tuple[SlbChoice, list[str]]:
    """Find the Service's SLB and every group carrying it; refuse what the controller would refuse."""
    ns, name = grammar.parse_service(cmd.args["service"])
    svc = eng.world.cluster(m.cluster).get_service(namespace=ns, name=name)
    if svc is None:
        raise UserError(f"Service {ns}/{name} does not exist in {m.cluster}; name the NGINX Ingress Service, "
                        "e.g. `service=ingress-nginx/nginx-ingress-lb`.")
    notes = []
    slb_id = cmd.args.get("slb") or ccm.slb_of_service(dict(svc.annotations), dict(svc.labels))
    if not slb_id:
        raise UserError(f"No SLB found behind {ns}/{name}; give it with `slb=lb-...`.")
    if "slb" not in cmd.args:
        notes.append(f"Found SLB {slb_id} behind Service {ns}/{name}.")
    lb = eng.world.slb.describe(slb_id=slb_id)
    if lb is None:
        raise UserError(f"SLB {slb_id} does not exist in this region; check `slb=`.")
    groups = {li.vgroup_id: eng.world.slb.vgroup(vgroup_id=li.vgroup_id) for li in lb.listeners if li.vgroup_id}
    narrow = grammar.parse_listeners(cmd.args["listener"]) if "listener" in cmd.args else []
    gw = eng.world.gateway.get_gateway(gateway_id=m.gateway)
    found = slb_plan.plan(svc, lb, groups, cluster=m.cluster, narrow=narrow, gateway_ips=gw.node_ips if gw else ())
    if found.problems:
        raise UserError(f"The SLB method cannot go ahead on {slb_id}: " + "; ".join(found.problems) + ".")
    notes.append(f"Moving {len(found.groups)} listener group(s) to MSE (listener → group → backend port):")
    notes += [f"• {line}" for line in found.table()]
    renamed = [g.vgroup_id for g in found.groups if ccm.is_ccm_name(g.name)]
    if renamed:
        gets = "gets" if len(renamed) == 1 else "get"
        notes.append(f"At switch, {', '.join(renamed)} {gets} a name of ours: the cloud controller refuses to reuse a "
                     "group named with its own `k8s/...` key; `abort` gives the names back.")
    if found.kept:
        notes.append(f"Stays on NGINX as asked: {', '.join(found.kept)}. The controller stops following NGINX's "
                     "pods in those groups while the Service reuses the SLB, cutover leaves them on NGINX, and "
                     "`complete delete-service=yes` is refused while they carry it.")
    acl = [f"{li.port}/{li.protocol}" for li in lb.listeners if li.acl_on]
    if acl:
        notes.append(f"Listener(s) {', '.join(acl)} have IP access control on: `switch in-cluster=yes` will be "
                     "refused.")
    return SlbChoice(ns, name, slb_id, found.groups, found.kept), notes


def switch(eng: Engine, m: Migration, request: Request, cmd: Command) -> Outcome:
    """4a + 4b back to back (SLB), or disabled MSE records next to each domain (DNS).

    The originals are read before anything changes and kept in the intent, so an abort, or a
    restart halfway, restores what was there and not what the bot half-wrote.
    """
    retried = gated.queued(eng, m, "switch")
    if retried is not None:
        return retried
    t = transition_for("switch", m.phase)
    if m.method == "slb":
        assert m.slb is not None
        s = m.slb
        svc = eng.world.cluster(m.cluster).get_service(namespace=s.namespace, name=s.service)
        lb = eng.world.slb.describe(slb_id=s.slb_id)
        if svc is None or lb is None:
            raise UserError("The Service or SLB chosen in step 3 is gone; choose again with `/migrate method slb`.")
        if s.legacy:
            raise UserError("This SLB choice was made by an older version that moved one listener only; choose "
                            f"again so every listener moves: `/migrate method slb service={s.namespace}/{s.service}`.")
        in_cluster = cmd.flag("in-cluster")
        acl = [f"{li.port}/{li.protocol}" for li in lb.listeners if li.acl_on]
        if in_cluster and acl:
            raise UserError(f"`in-cluster=yes` is refused: listener {', '.join(acl)} on {s.slb_id} has IP access "
                            "control on, and pods calling through the SLB would come from addresses it may refuse. "
                            "Run `/migrate switch` without it, or turn the access control off first.")
        target = ccm.generated_annotations(slb_id=s.slb_id, vgroup_ports=[(g.vgroup_id, g.service_port)
                                                                          for g in s.groups],
                                           nginx_weight=100, in_cluster=in_cluster)
        names = {g.vgroup_id: eng.world.slb.vgroup(vgroup_id=g.vgroup_id).name for g in s.groups}
        saved = {"annotations": ccm.lb_annotations(svc.annotations),
                 "tags": {k: lb.tags[k] for k in ccm.CCM_TAGS if k in lb.tags},
                 "schedulers": {f"{li.port}/{li.protocol}": li.scheduler for li in lb.listeners},
                 "vgroup_names": names}
        m2, summary = eng.run_step(m, op="switch_slb", verb="switch", user=request.user, then=t.target,
                                   args={"saved": saved, "annotations": target, "action": "switched (4a+4b)"})
        note = " `-hostname` was added: pods in the cluster now reach NGINX through the SLB too." if in_cluster else ""
        return eng.reply(m2, f"Switched by {request.user}: {summary}.{note} Next: `/migrate weight 1`.",
                         verb="switch")
    if m.method == "dns":
        c = dns.choice(m)
        old = max(m.saved.get("dns_ttls", {}).values(), default=0)
        ready = c.ttl_ready_at or (m.last_action_at + old if old else 0.0)  # a lowering retried: from its end
        if ready and eng.now() < ready:
            raise NotAllowed(f"Too soon to switch: resolvers may still cache NGINX's records with their old TTL "
                             f"until {clock_time(ready)}; switch then, so the lowered TTL is what they hold.")
        found = {"dns_found": dns.found_now(eng.world, m)}
        m2, summary = eng.run_step(m, op="switch_dns", verb="switch", user=request.user, then=t.target,
                                   args={"saved": found, "action": "switched (DNS records)"})
        return eng.reply(m2, f"Switched by {request.user}: {summary}. Next: `/migrate weight 1`.", verb="switch")
    raise NotAllowed("Choose a method first with `/migrate method slb ...` or `/migrate method dns ...`.")

