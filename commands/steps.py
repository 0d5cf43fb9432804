"""Provider steps: the only code that changes the outside world.

Each step takes the migration and its recorded intent and drives the world to the state the
intent names, checking before each write, so running a step again after a crash finishes
what was left and repeats nothing that was done. Each returns the record fields it changes
and a line for the audit trail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from commands import ccm, faq
from commands.errors import ProviderError
from commands.model import Migration, StepIntent
from commands.ports import Backend, DnsRecord, World
from commands.traffic import mse_share, spread


@dataclass(frozen=True)
class StepResult:
    summary: str
    changes: dict[str, Any] = field(default_factory=dict)


StepFn = Callable[[World, Migration, StepIntent], StepResult]


def listen(world: World, m: Migration, intent: StepIntent) -> StepResult:
    """Step 1: the gateway watches the cluster's Ingresses of one class, without writing their status."""
    world.gateway.listen(gateway_id=m.gateway, cluster=m.cluster, ingress_class=m.ingress_class)
    saved = {**m.saved, "listen_created": bool(intent.args.get("created", True))}
    return StepResult(f"gateway {m.gateway} listens to Ingress class {m.ingress_class} of {m.cluster}",
                      {"saved": saved})


def gateway_ips(world: World, m: Migration) -> set[str]:
    """The gateway's node addresses, as recorded at the switch (one call fewer on the rollback path)."""
    if m.saved.get("mse_ips"):
        return set(m.saved["mse_ips"])
    gw = world.gateway.get_gateway(gateway_id=m.gateway)
    return set(gw.node_ips) if gw else set()


def mse_backends(world: World, m: Migration) -> list[Backend]:
    """The gateway's nodes in the vServer group (by address: they are not the controller's)."""
    ips = gateway_ips(world, m)
    assert m.slb is not None
    return [b for b in world.slb.backends(vgroup_id=m.slb.vgroup_id) if b.ip in ips]


def read_slb_weights(world: World, m: Migration) -> dict[str, Any]:
    """What the SLB really holds: the totals on each side and the share they give MSE."""
    assert m.slb is not None
    ips = gateway_ips(world, m)
    backends = world.slb.backends(vgroup_id=m.slb.vgroup_id)
    mse = sum(b.weight for b in backends if b.ip in ips)
    nginx = sum(b.weight for b in backends if b.ip not in ips)
    return {"mse": mse, "nginx": nginx, "share": round(mse_share(mse, nginx), 2)}


def _set_mse_total(world: World, m: Migration, total: int) -> None:
    backends = sorted(mse_backends(world, m), key=lambda b: b.server_id)
    if not backends and total:
        raise ProviderError("the gateway has no nodes in the SLB's vServer group", code="MSE_BACKENDS_MISSING",
                            next_step="run `/migrate switch` again to put them back")
    targets = dict(zip((b.server_id for b in backends), spread(total, len(backends)), strict=True))
    changed = {b.server_id: targets[b.server_id] for b in backends if b.weight != targets[b.server_id]}
    if changed:
        assert m.slb is not None
        world.slb.set_weights(vgroup_id=m.slb.vgroup_id, weights=changed)


def switch_slb(world: World, m: Migration, intent: StepIntent) -> StepResult:
    """4a + 4b back to back: detach the SLB, weighted round robin, MSE in at 0, new Service annotations."""
    assert m.slb is not None
    s = m.slb
    lb = world.slb.describe(slb_id=s.slb_id)
    if lb is None:
        raise ProviderError(f"SLB {s.slb_id} no longer exists", code="InvalidLoadBalancerId.NotFound")
    present = [t for t in ccm.CCM_TAGS if t in lb.tags]
    if present:
        world.slb.set_tags(slb_id=s.slb_id, tags={}, remove=present)
    listener = next((li for li in lb.listeners if li.port == s.port and li.protocol == s.protocol), None)
    if listener is None:
        raise ProviderError(f"SLB {s.slb_id} has no listener {s.port}/{s.protocol}", code="ListenerNotFound",
                            next_step="abort, or choose the listener again")
    if listener.scheduler != "wrr":
        world.slb.set_scheduler(slb_id=s.slb_id, port=s.port, protocol=s.protocol, scheduler="wrr")
    world.gateway.join_slb(gateway_id=m.gateway, slb_id=s.slb_id, vgroup_id=s.vgroup_id, port=s.port,
                           protocol=s.protocol)
    _set_mse_total(world, m, 0)
    target = intent.args["annotations"]
    svc = world.cluster(m.cluster).get_service(namespace=s.namespace, name=s.service)
    if svc is None:
        raise ProviderError(f"Service {s.namespace}/{s.service} is gone", code="NotFound")
    if dict(svc.annotations) != target:
        svc = world.cluster(m.cluster).replace_service_annotations(namespace=s.namespace, name=s.service,
                                                                   annotations=target)
    wrong = faq.annotation_mismatches(dict(svc.annotations), target)
    if wrong:  # the pre-check the console would run after 4b
        raise ProviderError(faq.sentence(faq.SERVICE_ANNOTATION_NOT_MATCH, detail=f"wrong: {', '.join(wrong)}"),
                            code=faq.SERVICE_ANNOTATION_NOT_MATCH, temporary=True,
                            next_step="`/migrate switch` writes them again")
    gw = world.gateway.get_gateway(gateway_id=m.gateway)
    saved = {**m.saved, **intent.args["saved"], "mse_ips": sorted(gw.node_ips) if gw else []}
    return StepResult(
        f"SLB {s.slb_id} detached from cluster management, listener {s.port}/{s.protocol} on wrr, "
        f"MSE nodes in {s.vgroup_id} at weight 0, Service {s.namespace}/{s.service} annotations replaced",
        {"saved": saved, "mse_weight": 0, "nginx_weight": int(target.get(ccm.WEIGHT, "100"))},
    )


def switch_dns(world: World, m: Migration, intent: StepIntent) -> StepResult:
    """DNS method: a disabled MSE record next to each domain's records, with weighted round robin on."""
    gw = world.gateway.get_gateway(gateway_id=m.gateway)
    if gw is None:
        raise ProviderError(f"gateway {m.gateway} no longer exists", code="GatewayNotFound")
    added: dict[str, str] = {}
    manual: list[str] = []
    for domain in m.domains:
        if not world.dns.zone_for(domain=domain):
            manual.append(f"{domain} A {gw.slb_address}")
            continue
        world.dns.set_weighted(domain=domain, on=True)
        rec = world.dns.add_record(domain=domain, type="A", value=gw.slb_address, enabled=False)
        added[domain] = rec.id
    saved = {**m.saved, **intent.args["saved"], "dns_added": added, "dns_manual": manual}
    text = f"MSE records added (disabled) for {', '.join(added) or 'no hosted domain'}"
    if manual:
        names = [line.split(" ")[0] for line in manual]
        text += (f"; create by hand at your DNS provider: {'; '.join(manual)} "
                 f"(now: {manual_state(world, m, names)})")
    return StepResult(text, {"saved": saved, "mse_weight": 0, "nginx_weight": 100})


def weights(world: World, m: Migration, intent: StepIntent) -> StepResult:
    """4c (and rollback): reach the MSE and NGINX totals the intent names, then read them back."""
    mse, nginx = int(intent.args["mse"]), int(intent.args["nginx"])
    if m.method == "slb":
        _set_mse_total(world, m, mse)  # the urgent half of a rollback goes first
        assert m.slb is not None
        svc = world.cluster(m.cluster).get_service(namespace=m.slb.namespace, name=m.slb.service)
        if svc is not None and svc.annotations.get(ccm.WEIGHT) != str(nginx):
            world.cluster(m.cluster).patch_service_annotations(
                namespace=m.slb.namespace, name=m.slb.service, changes={ccm.WEIGHT: str(nginx)})
        observed = read_slb_weights(world, m)
        text = f"SLB holds MSE {observed['mse']} / NGINX {observed['nginx']}"
    else:
        _dns_weights(world, m, mse=mse, nginx=nginx)
        observed = read_dns_weights(world, m)
        text = f"DNS records set: MSE {mse} / NGINX {nginx}" + _by_hand(world, m, "set the same weights for")
    return StepResult(text, {"mse_weight": mse, "nginx_weight": nginx, "observed": observed})


def _dns_weights(world: World, m: Migration, *, mse: int, nginx: int) -> None:
    """The MSE record of each domain gets `mse`, the others `nginx`; a 0 disables (DNS weights start at 1)."""
    added: dict[str, str] = m.saved.get("dns_added", {})
    for domain, record_id in added.items():
        for rec in world.dns.records(domain=domain):
            _reach_record(world, rec, mse if rec.id == record_id else nginx)


def _reach_record(world: World, rec: DnsRecord, weight: int) -> None:
    if weight == 0:
        if rec.enabled:
            world.dns.set_enabled(record_id=rec.id, enabled=False)
        return
    if rec.weight != weight:
        world.dns.set_weight(record_id=rec.id, weight=weight)
    if not rec.enabled:
        world.dns.set_enabled(record_id=rec.id, enabled=True)


def _by_hand(world: World, m: Migration, what: str) -> str:
    """Domains not hosted in Alibaba Cloud DNS: the bot cannot change them, so it says so each
    time, with what those names resolve to now (read where it can: public resolution)."""
    manual = [line.split(" ")[0] for line in m.saved.get("dns_manual", [])]
    if not manual:
        return ""
    return f"; at your DNS provider, {what} {', '.join(manual)} by hand ({manual_state(world, m, manual)})"


def manual_state(world: World, m: Migration, domains: list[str]) -> str:
    """`www.x.org: MSE record seen (47.1.2.3, 10.0.0.1)` or `...: MSE record not seen yet`, per domain."""
    gw = world.gateway.get_gateway(gateway_id=m.gateway)
    parts = []
    for domain in domains:
        seen = world.resolver.addresses(domain=domain)
        state = "MSE record seen" if gw is not None and gw.slb_address in seen else "MSE record not seen yet"
        parts.append(f"{domain}: {state}, resolves to {', '.join(seen) or 'nothing'}")
    return "; ".join(parts)


def read_dns_weights(world: World, m: Migration) -> dict[str, Any]:
    added: dict[str, str] = m.saved.get("dns_added", {})
    per_domain = {}
    for domain, record_id in added.items():
        live = [r for r in world.dns.records(domain=domain) if r.enabled]
        mse = sum(r.weight for r in live if r.id == record_id)
        other = sum(r.weight for r in live if r.id != record_id)
        per_domain[domain] = round(mse_share(mse, other), 2)
    return {"domains": per_domain}


def cutover(world: World, m: Migration, intent: StepIntent) -> StepResult:
    """4d: NGINX's side goes to 0 (Service weight annotation, or NGINX DNS records disabled)."""
    mse = m.mse_weight or 100
    if m.method == "slb":
        assert m.slb is not None
        _set_mse_total(world, m, mse)
        svc = world.cluster(m.cluster).patch_service_annotations(
            namespace=m.slb.namespace, name=m.slb.service, changes={ccm.WEIGHT: "0"})
        if faq.nginx_still_weighted(dict(svc.annotations)):
            raise ProviderError(faq.sentence(faq.SERVICE_NOT_MATCH), code=faq.SERVICE_NOT_MATCH, temporary=True)
        observed = read_slb_weights(world, m)
        text = f"Service weight annotation set to 0; SLB holds MSE {observed['mse']} / NGINX {observed['nginx']}"
    else:
        _dns_weights(world, m, mse=mse, nginx=0)
        observed = read_dns_weights(world, m)
        text = "NGINX DNS records disabled; the names the bot manages resolve to the MSE gateway only"
        text += _by_hand(world, m, "disable the NGINX records of")
    return StepResult(text, {"mse_weight": mse, "nginx_weight": 0, "observed": observed})


def complete(world: World, m: Migration, intent: StepIntent) -> StepResult:
    """Step 5: optionally delete the NGINX Service (an approved step); the bot's part ends."""
    text = "migration complete"
    if intent.args.get("delete_service") and m.slb is not None:
        deleted = world.cluster(m.cluster).delete_service(namespace=m.slb.namespace, name=m.slb.service)
        text += f"; Service {m.slb.namespace}/{m.slb.service} {'deleted' if deleted else 'was already gone'}"
    else:
        text += "; the NGINX Ingress Controller and its Service can now be uninstalled when you choose"
    return StepResult(text, {})


def restore(world: World, m: Migration, intent: StepIntent) -> StepResult:
    """Abort: undo what the bot changed, in the order that keeps traffic on NGINX throughout."""
    done: list[str] = []
    saved = m.saved
    if m.method == "slb" and m.slb is not None and "annotations" in saved:
        s = m.slb
        if world.slb.describe(slb_id=s.slb_id) is not None:
            _set_mse_total(world, m, 0)
            world.gateway.leave_slb(gateway_id=m.gateway, slb_id=s.slb_id)
            done.append("MSE nodes out of the SLB")
        svc = world.cluster(m.cluster).get_service(namespace=s.namespace, name=s.service)
        if svc is not None and dict(svc.annotations) != saved["annotations"]:
            world.cluster(m.cluster).replace_service_annotations(
                namespace=s.namespace, name=s.service, annotations=saved["annotations"])
        done.append("Service annotations restored")
        lb = world.slb.describe(slb_id=s.slb_id)
        if lb is not None:
            missing = {k: v for k, v in saved.get("tags", {}).items() if lb.tags.get(k) != v}
            if missing:
                world.slb.set_tags(slb_id=s.slb_id, tags=missing)
            listener = next((li for li in lb.listeners if li.port == s.port and li.protocol == s.protocol), None)
            if listener and saved.get("scheduler") and listener.scheduler != saved["scheduler"]:
                world.slb.set_scheduler(slb_id=s.slb_id, port=s.port, protocol=s.protocol,
                                        scheduler=saved["scheduler"])
            done.append("SLB tags and scheduler restored")
    if m.method == "dns" and "dns_nginx" in saved:
        _restore_dns(world, m, saved["dns_nginx"])
        done.append("MSE DNS records removed, NGINX records restored")
    if saved.get("listen_created"):
        world.gateway.unlisten(gateway_id=m.gateway, cluster=m.cluster)
        done.append("gateway stopped listening")
    return StepResult("restored: " + (", ".join(done) or "nothing had changed"), {"mse_weight": 0})


def _restore_dns(world: World, m: Migration, originals: dict[str, list[dict[str, Any]]]) -> None:
    """Every record that was not there before the switch and points at the gateway goes; the
    originals get back their weight and state. Works from the originals alone, so a switch that
    stopped halfway (its new record ids never recorded) is undone too."""
    gw = world.gateway.get_gateway(gateway_id=m.gateway)
    for domain in m.domains:
        before = {r["id"]: r for r in originals.get(domain, [])}
        for rec in world.dns.records(domain=domain):
            if rec.id not in before:
                if gw is not None and rec.value == gw.slb_address:
                    world.dns.delete_record(record_id=rec.id)
                continue
            want = before[rec.id]
            if rec.weight != want["weight"]:
                world.dns.set_weight(record_id=rec.id, weight=want["weight"])
            if rec.enabled != want["enabled"]:
                world.dns.set_enabled(record_id=rec.id, enabled=want["enabled"])


STEPS: dict[str, StepFn] = {
    "listen": listen,
    "switch_slb": switch_slb,
    "switch_dns": switch_dns,
    "weights": weights,
    "cutover": cutover,
    "complete": complete,
    "restore": restore,
}
