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

from commands import ccm, dns, slb
from commands.errors import ProviderError
from commands.model import Migration, StepIntent
from commands.ports import World


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
    """DNS method: a disabled MSE record next to NGINX's under each hosted name, weighted round robin on."""
    m = dataclasses.replace(m, saved={**m.saved, **intent.args["saved"]})
    added, ttl = dns.switch(world, m)
    observed = dns.observe(world, m, ttl=ttl)
    c = dns.choice(m)
    text = f"MSE records added (disabled) for {', '.join(added) or 'no hosted name'}; weighted round robin on"
    manual = dns.by_hand(world, m, mse=0, nginx=100)
    if manual:
        text += f"; at your DNS provider, create by hand (disabled, or not yet): {'; '.join(manual)}"
    if c.left_out:
        text += f"; left on NGINX as chosen: {', '.join(c.left_out)}"
    return StepResult(text, {"saved": {**m.saved, "dns_added": added}, "mse_weight": 0, "nginx_weight": 100,
                             "observed": observed})


def lower_ttls(world: World, m: Migration, intent: StepIntent, /, *, guard: Guard = unguarded) -> StepResult:
    """`method dns ttl=N`: NGINX's records lowered to N seconds before anything else changes. The
    TTLs as found were read before the intent, so an abort after a failure halfway gives them back."""
    ttl = int(intent.args["ttl"])
    found = {**intent.args["saved"]["dns_ttls"], **m.saved.get("dns_ttls", {})}  # a first lowering's originals win
    m = dataclasses.replace(m, saved={**m.saved, "dns_ttls": found})
    lowered = dns.lower_ttls(world, m, ttl)
    longest = max(lowered.values(), default=0)
    text = (f"TTL of {len(lowered)} NGINX record(s) lowered to {ttl}s (was up to {longest}s)" if lowered
            else f"every NGINX record already has a TTL of {ttl}s or less")
    return StepResult(text, {"saved": {**m.saved, "dns_ttls": lowered, "dns_ttl_hosts": dns.ttl_hosts(m)}})


def weights(world: World, m: Migration, intent: StepIntent, /, *, guard: Guard = unguarded) -> StepResult:
    """4c (and rollback): reach the MSE and NGINX totals the intent names, then read them back."""
    mse, nginx = int(intent.args["mse"]), int(intent.args["nginx"])
    if m.method == "slb":
        observed = slb.shift(world, m, mse=mse, nginx=nginx, nginx_first=bool(intent.args.get("nginx_first")))
        text = f"SLB holds {slb.describe(observed)}"
    else:
        observed = dns.shift(world, m, mse=mse, nginx=nginx, nginx_first=bool(intent.args.get("nginx_first")))
        text = f"DNS serves {dns.describe(observed)}" + _by_hand(world, m, mse=mse, nginx=nginx)
    if intent.args.get("gates"):
        observed = {**observed, "gates": intent.args["gates"]}  # the gate values the increase was decided on
    return StepResult(text, {"mse_weight": mse, "nginx_weight": nginx, "observed": observed})


def _by_hand(world: World, m: Migration, *, mse: int, nginx: int) -> str:
    """Names not hosted in Alibaba Cloud DNS: the bot cannot change them, so it says each time what
    to set there by hand, and what a resolver returns for them now."""
    manual = dns.by_hand(world, m, mse=mse, nginx=nginx)
    return f"; at your DNS provider, set by hand: {'; '.join(manual)}" if manual else ""


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
        observed = dns.cutover(world, m, mse=mse, guard=guard)
        text = f"NGINX's DNS records disabled; DNS serves {dns.describe(observed)}"
        text += _by_hand(world, m, mse=mse, nginx=0)
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
    elif m.method == "dns":
        if dns.restore_ttls(world, m):
            text += "; the TTLs lowered at `method` are restored"
        text += "; NGINX's records stay, disabled, for a rollback by hand"
        keep = [*intent.args.get("on_nginx", []), *dns.choice(m).left_out]
        if keep:  # approved with `force=yes`, or left out at `method`
            text += f"; {', '.join(keep)} still resolve to NGINX: keep the NGINX Ingress Controller until they move"
        else:
            text += "; delete them when you choose, then the NGINX Ingress Controller can go"
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
    if m.method == "dns":
        done += dns.restore(world, m)
    if saved.get("listen_created"):
        world.gateway.unlisten(gateway_id=m.gateway, cluster=m.cluster)
        done.append("gateway stopped listening")
    return StepResult("restored: " + (", ".join(done) or "nothing had changed"), {"mse_weight": 0, "observed": {}})


def read_back(world: World, m: Migration, op: str) -> tuple[dict[str, Any], str]:
    """After a weight or cutover step failed: what the world holds now, since some writes may have
    landed ({} and "" for other steps, or when the read fails too)."""
    if op not in ("weights", "cutover"):
        return {}, ""
    try:
        if m.method == "dns":
            observed = dns.observe(world, m)
            return observed, f"DNS now serves {dns.describe(observed)}"
        if m.method == "slb":
            observed = slb.read(world, m, mse=m.mse_weight, nginx=m.nginx_weight)
            return observed, f"the SLB now holds {slb.describe(observed)}"
    except ProviderError:
        pass
    return {}, ""


STEPS: dict[str, StepFn] = {
    "listen": listen,
    "switch_slb": switch_slb,
    "switch_dns": switch_dns,
    "lower_ttls": lower_ttls,
    "weights": weights,
    "cutover": cutover,
    "complete": complete,
    "restore": restore,
}
