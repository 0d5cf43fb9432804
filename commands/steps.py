"""Provider steps: the only code that changes the outside world.

Each step takes the migration and its recorded intent and drives the world to the state the
intent names, checking before each write, so running a step again after a crash finishes
what was left and repeats nothing that was done. Each returns the record fields it changes
and a line for the audit trail.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from commands import ccm, slb
from commands.errors import ProviderError
from commands.model import Migration, StepIntent
from commands.ports import DnsRecord, World
from commands.traffic import mse_share


@dataclass(frozen=True)
class StepResult:
    summary: str
    changes: dict[str, Any] = field(default_factory=dict)


Guard = Callable[[], None]


def unguarded() -> None:
    """A guard that never objects (a step run outside the engine, e.g. a re-apply)."""


class StepFn(Protocol):
    """A step: the world, the record, its intent; `guard()` raises Overtaken once another intent
    (a rollback) took the record over, and is called right before a write that must not land late."""

    def __call__(self, world: World, m: Migration, intent: StepIntent, /, *, guard: Guard = ...) -> StepResult: ...


def listen(world: World, m: Migration, intent: StepIntent, /, *, guard: Guard = unguarded) -> StepResult:
    """Step 1: the gateway watches the cluster's Ingresses of one class, without writing their status."""
    world.gateway.listen(gateway_id=m.gateway, cluster=m.cluster, ingress_class=m.ingress_class)
    saved = {**m.saved, "listen_created": bool(intent.args.get("created", True))}
    return StepResult(f"gateway {m.gateway} listens to Ingress class {m.ingress_class} of {m.cluster}",
                      {"saved": saved})


def switch_slb(world: World, m: Migration, intent: StepIntent, /, *, guard: Guard = unguarded) -> StepResult:
    """4a + 4b back to back, over every moved group (see `commands/slb.py`)."""
    m = dataclasses.replace(m, saved={**m.saved, **intent.args["saved"]})
    observed, done = slb.switch(world, m, intent.args["annotations"])
    s = slb.choice(m)
    text = (f"SLB {s.slb_id}: {'; '.join(done) + '; ' if done else ''}wrr on {', '.join(s.listeners())}; "
            f"MSE nodes joined {', '.join(f'{g.vgroup_id} on :{g.gateway_port}' for g in s.groups)} at weight 0; "
            f"Service {s.namespace}/{s.service} load-balancer annotations replaced (others kept)")
    return StepResult(text, {"saved": m.saved, "mse_weight": 0, "observed": observed,
                             "nginx_weight": int(intent.args["annotations"].get(ccm.WEIGHT, "100"))})


def switch_dns(world: World, m: Migration, intent: StepIntent, /, *, guard: Guard = unguarded) -> StepResult:
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


def weights(world: World, m: Migration, intent: StepIntent, /, *, guard: Guard = unguarded) -> StepResult:
    """4c (and rollback): reach the MSE and NGINX totals the intent names, then read them back."""
    mse, nginx = int(intent.args["mse"]), int(intent.args["nginx"])
    if m.method == "slb":
        observed = slb.shift(world, m, mse=mse, nginx=nginx, nginx_first=bool(intent.args.get("nginx_first")))
        text = f"SLB holds {slb.describe(observed)}"
    else:
        _dns_weights(world, m, mse=mse, nginx=nginx)
        observed = read_dns_weights(world, m)
        text = f"DNS records set: MSE {mse} / NGINX {nginx}" + _by_hand(world, m, "set the same weights for")
    if intent.args.get("gates"):
        observed = {**observed, "gates": intent.args["gates"]}  # the gate values the increase was decided on
    return StepResult(text, {"mse_weight": mse, "nginx_weight": nginx, "observed": observed})


def _dns_weights(world: World, m: Migration, *, mse: int, nginx: int) -> None:
    """The MSE record of each domain gets `mse`, the others `nginx`; a 0 disables (DNS weights start at 1)."""
    added: dict[str, str] = m.saved.get("dns_added", {})
    for domain, record_id in added.items():
        # The side that leaves goes last, so a name never has no enabled address record.
        records = sorted(world.dns.records(domain=domain), key=lambda r: (r.id == record_id) != (mse > 0))
        for rec in records:
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


def cutover(world: World, m: Migration, intent: StepIntent, /, *, guard: Guard = unguarded) -> StepResult:
    """4d: NGINX's side goes to 0 (Service weight annotation, or NGINX DNS records disabled).

    MSE takes its full weight (100) first: a share verified at 1 would otherwise put every
    connection on one gateway node (weight 1 spread over three is 1, 0, 0).
    """
    mse = 100
    if m.method == "slb":
        observed = slb.cutover(world, m, mse=mse, guard=guard)
        text = f"Service weight annotation set to 0; SLB holds {slb.describe(observed)}"
        kept = slb.choice(m).kept
        if kept:
            text += f"; still on NGINX as chosen: {', '.join(kept)}"
    else:
        _dns_weights(world, m, mse=mse, nginx=0)
        observed = read_dns_weights(world, m)
        text = "NGINX DNS records disabled; the names the bot manages resolve to the MSE gateway only"
        text += _by_hand(world, m, "disable the NGINX records of")
    return StepResult(text, {"mse_weight": mse, "nginx_weight": 0, "observed": observed})


def complete(world: World, m: Migration, intent: StepIntent, /, *, guard: Guard = unguarded) -> StepResult:
    """Step 5: optionally delete the NGINX Service (an approved step); the bot's part ends."""
    text = "migration complete"
    if intent.args.get("delete_service") and m.slb is not None:
        empty = slb.left_empty_by_delete(world, m)
        if empty:
            raise ProviderError(f"deleting Service {m.slb.namespace}/{m.slb.service} would leave "
                                f"{', '.join(empty)} with no backend taking traffic", code="GroupWouldBeEmpty",
                                temporary=False, next_step="`/migrate complete` without `delete-service=yes`")
        deleted = world.cluster(m.cluster).delete_service(namespace=m.slb.namespace, name=m.slb.service)
        text += f"; Service {m.slb.namespace}/{m.slb.service} {'deleted' if deleted else 'was already gone'}"
    elif m.slb is not None and m.slb.kept:
        text += (f"; {', '.join(m.slb.kept)} still send to NGINX: keep the NGINX Ingress Controller and its "
                 "Service until they move too")
    else:
        text += "; the NGINX Ingress Controller and its Service can now be uninstalled when you choose"
    return StepResult(text, {})


def restore(world: World, m: Migration, intent: StepIntent, /, *, guard: Guard = unguarded) -> StepResult:
    """Abort: undo what the bot changed, in the order that keeps traffic on NGINX throughout."""
    done: list[str] = []
    saved = m.saved
    if m.method == "slb" and m.slb is not None and "annotations" in saved:
        done += slb.restore(world, m)
    if m.method == "dns" and "dns_nginx" in saved:
        _restore_dns(world, m, saved["dns_nginx"])
        done.append("MSE DNS records removed, NGINX records restored")
    if saved.get("listen_created"):
        world.gateway.unlisten(gateway_id=m.gateway, cluster=m.cluster)
        done.append("gateway stopped listening")
    return StepResult("restored: " + (", ".join(done) or "nothing had changed"), {"mse_weight": 0, "observed": {}})


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
