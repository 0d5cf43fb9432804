"""The SLB method's provider work, over every moved vServer group at once.

A backend is NGINX's when its description is this Service's controller key; everything else
in a moved group is MSE's side (the gateway's nodes, including any added since the switch).
Every write is ordered so that no moved group is ever left without a backend above weight 0:
NGINX comes back before MSE leaves, MSE holds weight before NGINX leaves.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from commands import ccm, faq
from commands.errors import Overtaken, ProviderError
from commands.model import Migration, MovedGroup, SlbChoice
from commands.ports import Backend, GatewayJoin, World
from commands.traffic import mse_share, spread

MAX_DRIFT_LINES = 5


def choice(m: Migration) -> SlbChoice:
    if m.slb is None:
        raise ProviderError("this migration has no SLB chosen", code="NoSlbChosen",
                            next_step="choose it with `/migrate method slb service=NS/NAME`")
    return m.slb


def is_nginx(b: Backend, s: SlbChoice) -> bool:
    return ccm.serves(b.description, namespace=s.namespace, service=s.service)


def our_name(m: Migration, g: MovedGroup) -> str:
    """A group name the controller will not take for its own (not `k8s/...`), and says whose it is."""
    return f"mse-migration-{m.id}-{g.service_port}"


# ---- reading back ---------------------------------------------------------------------------


def read(world: World, m: Migration, *, mse: int, nginx: int) -> dict[str, Any]:
    """What the SLB holds in every moved group, and where it differs from the targets."""
    s = choice(m)
    return observe(m, {g.vgroup_id: world.slb.backends(vgroup_id=g.vgroup_id) for g in s.groups}, mse=mse, nginx=nginx)


def observe(m: Migration, held: dict[str, list[Backend]], *, mse: int, nginx: int) -> dict[str, Any]:
    """The record's view of what each moved group holds (`held`, as read back).

    The migration's share is the lowest group's, so nobody reads 50% while a listener is at 33%.
    `mse_backends` are kept so a rollback can write to them before reading anything.
    """
    s = choice(m)
    groups: dict[str, dict[str, Any]] = {}
    drift: list[str] = []
    for g in s.groups:
        backends = held.get(g.vgroup_id, [])
        ours = sorted((b for b in backends if not is_nginx(b, s)), key=lambda b: b.key)
        theirs = [b for b in backends if is_nginx(b, s)]
        held_mse, held_nginx = sum(b.weight for b in ours), sum(b.weight for b in theirs)
        groups[g.vgroup_id] = {"listeners": ", ".join(g.listeners), "mse": held_mse, "nginx": held_nginx,
                               "share": round(mse_share(held_mse, held_nginx), 2),
                               "mse_backends": [[b.server_id, b.ip, b.port, b.type] for b in ours]}
        drift += _drift(g, ours, theirs, mse=mse, nginx=nginx)
    lowest = min(groups.values(), key=lambda v: v["share"]) if groups else {"mse": 0, "nginx": 0, "share": 0.0}
    return {"groups": groups, "mse": lowest["mse"], "nginx": lowest["nginx"], "share": lowest["share"],
            "drift": drift[:MAX_DRIFT_LINES], "drift_count": len(drift)}


def _drift(g: MovedGroup, ours: list[Backend], theirs: list[Backend], *, mse: int, nginx: int) -> list[str]:
    """Backends that do not hold what the bot set (MSE's) or what the controller should (NGINX's)."""
    out = [f"{g.vgroup_id}: {b.server_id}:{b.port} at {b.weight}, expected {want}"
           for b, want in zip(ours, spread(mse, len(ours)), strict=True) if b.weight != want]
    expected = 0 if nginx == 0 else sum(max(1, w) for w in spread(nginx, len(theirs)))
    held = sum(b.weight for b in theirs)
    if theirs and held != expected:
        out.append(f"{g.vgroup_id}: NGINX backends hold {held} in all, expected {expected}")
    if not ours and mse:
        out.append(f"{g.vgroup_id}: no MSE node in the group")
    return out


def describe(observed: dict[str, Any]) -> str:
    """`rsp-a (80/TCP) MSE 10 / NGINX 100; rsp-b (443/TCP) MSE 10 / NGINX 100`."""
    return "; ".join(f"{vg} ({v['listeners']}) MSE {v['mse']} / NGINX {v['nginx']}"
                     for vg, v in observed.get("groups", {}).items())


# ---- writing -----------------------------------------------------------------------------------


def zero_known(world: World, m: Migration) -> None:
    """Rollback's first write: every MSE backend known at the last step to 0, with no read first."""
    s = choice(m)
    for g in s.groups:
        known = [Backend(sid, ip, int(port), 0, typ)
                 for sid, ip, port, typ in m.observed.get("groups", {}).get(g.vgroup_id, {}).get("mse_backends", [])]
        if not known:
            continue
        try:
            world.slb.set_weights(vgroup_id=g.vgroup_id, backends=known)
        except ProviderError as exc:
            if exc.code != "BackendServer.NotExist":  # one left the group: the read-back pass handles the rest
                raise


def reach_mse(world: World, m: Migration, total: int) -> dict[str, list[Backend]]:
    """Every moved group's MSE side at `total`, spread over its backends; only differences are written.

    Returns what each group holds afterwards (the read, with the writes applied), so the
    answer needs no second read.
    """
    s = choice(m)
    held: dict[str, list[Backend]] = {}
    for g in s.groups:
        backends = world.slb.backends(vgroup_id=g.vgroup_id)
        ours = sorted((b for b in backends if not is_nginx(b, s)), key=lambda b: b.key)
        if total and not ours:
            raise ProviderError(f"the gateway has no nodes in vServer group {g.vgroup_id} ({', '.join(g.listeners)})",
                                code="MSE_BACKENDS_MISSING", next_step="`/migrate switch` puts them back")
        changed = {b.key: dataclasses.replace(b, weight=w)
                   for b, w in zip(ours, spread(total, len(ours)), strict=True) if b.weight != w}
        if changed:
            world.slb.set_weights(vgroup_id=g.vgroup_id, backends=list(changed.values()))
        held[g.vgroup_id] = [changed.get(b.key, b) for b in backends]
    return held


def set_nginx(world: World, m: Migration, total: int) -> bool:
    """NGINX's side is the Service's `-weight`: the controller spreads it over NGINX's backends.

    True when the annotation had to change (the groups then need reading again to show it).
    """
    s = choice(m)
    cluster = world.cluster(m.cluster)
    svc = cluster.get_service(namespace=s.namespace, name=s.service)
    if svc is None or svc.annotations.get(ccm.WEIGHT) == str(total):
        return False
    cluster.patch_service_annotations(namespace=s.namespace, name=s.service, changes={ccm.WEIGHT: str(total)})
    return True


def require_nginx_serving(world: World, m: Migration) -> None:
    """NGINX must hold traffic again in every group before MSE lets go of it (after a cutover).

    The controller applies `-weight` on its own time; a temporary error makes the engine look
    again shortly, and the rollback's retries give it about ten seconds.
    """
    s = choice(m)
    for g in s.groups:
        if not any(b.weight > 0 for b in world.slb.backends(vgroup_id=g.vgroup_id) if is_nginx(b, s)):
            raise ProviderError(f"NGINX's backends in {g.vgroup_id} have no weight yet; MSE keeps the traffic "
                                "until they do", code="NginxNotBackYet", temporary=True,
                                next_step="`/migrate rollback` again in a few seconds; check the Service's events")


def shift(world: World, m: Migration, *, mse: int, nginx: int, nginx_first: bool = False) -> dict[str, Any]:
    """4c and rollback: both sides to their targets, in an order that never empties a group.

    Back from a cutover (NGINX at 0, or a cutover still in flight) NGINX returns before MSE leaves.
    """
    nginx_first = (nginx_first or m.nginx_weight == 0) and nginx > 0
    if nginx_first:
        set_nginx(world, m, nginx)
        require_nginx_serving(world, m)
    if mse == 0:
        zero_known(world, m)  # the urgent write, from what the last step saw
    held = reach_mse(world, m, mse)  # read back: nodes added since then are set too (and NGINX, if it came first)
    if not nginx_first and set_nginx(world, m, nginx):
        return read(world, m, mse=mse, nginx=nginx)  # the controller moved NGINX's weights since: show them
    return observe(m, held, mse=mse, nginx=nginx)


def cutover(world: World, m: Migration, *, mse: int, guard: Callable[[], None]) -> dict[str, Any]:
    """4d: MSE holds weight in every group first; only then does NGINX's weight go to 0.

    `guard` is asked right before that write, and again right after it: a rollback that took
    over meanwhile has brought NGINX back, so a late `-weight: 0` is undone at once (the engine
    then re-applies the rollback's weights, NGINX first).
    """
    s = choice(m)
    before = observe(m, reach_mse(world, m, mse), mse=mse, nginx=m.nginx_weight)
    empty = [vg for vg, v in before["groups"].items() if v["mse"] <= 0]
    if empty:
        raise ProviderError(f"MSE holds no weight in {', '.join(empty)}: NGINX cannot leave", code="GroupWouldBeEmpty",
                            next_step="`/migrate status` shows the groups; put MSE's nodes back with `/migrate switch`")
    guard()
    cluster = world.cluster(m.cluster)
    svc = cluster.patch_service_annotations(namespace=s.namespace, name=s.service, changes={ccm.WEIGHT: "0"})
    try:
        guard()  # a rollback may have taken over between the check and the write: undo ours at once
    except Overtaken:
        cluster.patch_service_annotations(namespace=s.namespace, name=s.service, changes={ccm.WEIGHT: "100"})
        raise
    if faq.nginx_still_weighted(dict(svc.annotations)):
        raise ProviderError(faq.sentence(faq.SERVICE_NOT_MATCH), code=faq.SERVICE_NOT_MATCH, temporary=True)
    return read(world, m, mse=mse, nginx=0)


def left_empty_by_delete(world: World, m: Migration) -> list[str]:
    """Groups the Service feeds that deleting it would leave with no backend above weight 0."""
    s = choice(m)
    out = [f"{g.vgroup_id} ({', '.join(g.listeners)})" for g in s.groups
           if not any(b.weight > 0 for b in world.slb.backends(vgroup_id=g.vgroup_id) if not is_nginx(b, s))]
    return out + [f"{kept} (left on NGINX)" for kept in s.kept]


# ---- 4a + 4b ------------------------------------------------------------------------------------


def switch(world: World, m: Migration, target: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """MSE in on the right ports at 0, then detach the SLB, wrr on every moved listener, groups
    renamed, then the Service's load-balancer annotations; returns what was read back and done.

    The gateway joins first, while the controller still manages the SLB (it leaves backends that
    are not its own alone, cloud-api.md §2): a join that fails or is slow to show then leaves
    nothing detached, and 4a and 4b follow each other with nothing in between.
    """
    s = choice(m)
    done: list[str] = []
    lb = world.slb.describe(slb_id=s.slb_id)
    if lb is None:
        raise ProviderError(f"SLB {s.slb_id} no longer exists", code="InvalidLoadBalancerId.NotFound")
    _join(world, m)
    _check_joined(m, observe(m, reach_mse(world, m, 0), mse=0, nginx=100))  # one read: at 0, and on the right ports
    present = [t for t in ccm.CCM_TAGS if t in lb.tags]
    if present:  # while these are on, the controller refuses `-id` (cloud-api.md §2)
        world.slb.set_tags(slb_id=s.slb_id, tags={}, remove=present)
        done.append("detached from cluster management")
    for g in s.groups:
        for port, protocol in g.listener_pairs():
            li = next((x for x in lb.listeners if x.port == port and x.protocol == protocol), None)
            if li is None:
                raise ProviderError(f"SLB {s.slb_id} has no listener {port}/{protocol}", code="ListenerNotFound",
                                    next_step="abort, or choose again with `/migrate method slb`")
            if li.scheduler != "wrr":
                world.slb.set_scheduler(slb_id=s.slb_id, port=port, protocol=protocol, scheduler="wrr")
        if ccm.is_ccm_name(world.slb.vgroup(vgroup_id=g.vgroup_id).name):
            world.slb.rename_vgroup(vgroup_id=g.vgroup_id, name=our_name(m, g))
            done.append(f"{g.vgroup_id} renamed {our_name(m, g)}")
    _write_annotations(world, m, target)
    return read(world, m, mse=0, nginx=int(target.get(ccm.WEIGHT, "100"))), done


def _join(world: World, m: Migration) -> None:
    """One association naming every group with its gateway port; redone if an old one differs."""
    s = choice(m)
    wanted = [GatewayJoin(g.vgroup_id, g.gateway_port, g.gateway_protocol, our_name(m, g)) for g in s.groups]
    have = {(j.vgroup_id, j.port) for j in world.gateway.joined(gateway_id=m.gateway, slb_id=s.slb_id)}
    if have and all((w.vgroup_id, w.port) in have for w in wanted):
        return
    if have:  # joined with other groups or ports (an older switch): MSE is at 0 before 4b, so leave and rejoin
        reach_mse(world, m, 0)
        world.gateway.leave_slb(gateway_id=m.gateway, slb_id=s.slb_id)
    world.gateway.join_slb(gateway_id=m.gateway, slb_id=s.slb_id, groups=wanted)


def _check_joined(m: Migration, observed: dict[str, Any]) -> None:
    """Every group holds MSE nodes on its gateway port and none on another: else an error naming them."""
    s = choice(m)
    for g in s.groups:
        ours = observed["groups"][g.vgroup_id]["mse_backends"]
        wrong = [f"{sid}:{port}" for sid, _ip, port, _t in ours if int(port) != g.gateway_port]
        if wrong:
            raise ProviderError(f"MSE backends on the wrong port in {g.vgroup_id} ({', '.join(g.listeners)}): "
                                f"{', '.join(wrong)}; they must take port {g.gateway_port}",
                                code="MSE_BACKEND_WRONG_PORT",
                                next_step="remove them from the group in the SLB console, then `/migrate switch`")
        if not ours:
            raise ProviderError(f"the gateway's nodes did not join {g.vgroup_id} ({', '.join(g.listeners)}) on port "
                                f"{g.gateway_port}", code="MSE_BACKENDS_MISSING", temporary=True,
                                next_step="`/migrate switch` tries again")


def _write_annotations(world: World, m: Migration, target: dict[str, str]) -> None:
    """4b: only the load-balancer annotations are replaced; then the console's pre-check, read back."""
    s = choice(m)
    cluster = world.cluster(m.cluster)
    svc = cluster.get_service(namespace=s.namespace, name=s.service)
    if svc is None:
        raise ProviderError(f"Service {s.namespace}/{s.service} is gone", code="NotFound")
    changes = ccm.annotation_changes(svc.annotations, target)
    if changes:
        svc = cluster.patch_service_annotations(namespace=s.namespace, name=s.service, changes=changes)
    held = ccm.lb_annotations(svc.annotations)
    wrong = faq.annotation_mismatches(held, target) + sorted(k for k in held if k not in target)
    if wrong:
        raise ProviderError(faq.sentence(faq.SERVICE_ANNOTATION_NOT_MATCH, detail=f"wrong: {', '.join(wrong)}"),
                            code=faq.SERVICE_ANNOTATION_NOT_MATCH, temporary=True,
                            next_step="`/migrate switch` writes them again")


# ---- abort ----------------------------------------------------------------------------------------


def restore(world: World, m: Migration) -> list[str]:
    """Undo the switch in an order that keeps NGINX serving: MSE out, names, tags, schedulers, then
    the Service's load-balancer annotations exactly as found (the controller takes the SLB back)."""
    s, saved, done = choice(m), m.saved, []
    lb = world.slb.describe(slb_id=s.slb_id)
    if lb is not None:
        reach_mse(world, m, 0)
        world.gateway.leave_slb(gateway_id=m.gateway, slb_id=s.slb_id)
        done.append("MSE nodes out of the SLB")
        for vgroup_id, name in saved.get("vgroup_names", {}).items():
            if world.slb.vgroup(vgroup_id=vgroup_id).name != name:
                world.slb.rename_vgroup(vgroup_id=vgroup_id, name=name)
        missing = {k: v for k, v in saved.get("tags", {}).items() if lb.tags.get(k) != v}
        if missing:
            world.slb.set_tags(slb_id=s.slb_id, tags=missing)
        schedulers = saved.get("schedulers") or _legacy_scheduler(s, saved)
        for li in lb.listeners:
            before = schedulers.get(f"{li.port}/{li.protocol}")
            if before and li.scheduler != before:
                world.slb.set_scheduler(slb_id=s.slb_id, port=li.port, protocol=li.protocol, scheduler=before)
        done.append("group names, SLB tags and schedulers restored")
    cluster = world.cluster(m.cluster)
    svc = cluster.get_service(namespace=s.namespace, name=s.service)
    if svc is not None:
        changes = ccm.annotation_changes(svc.annotations, ccm.lb_annotations(saved.get("annotations", {})))
        if "schedulers" not in saved:  # switched by the version that deleted every annotation: all come back
            changes.update({k: v for k, v in saved.get("annotations", {}).items()
                            if not ccm.is_lb_annotation(k) and svc.annotations.get(k) != v})
        if changes:
            cluster.patch_service_annotations(namespace=s.namespace, name=s.service, changes=changes)
    done.append("Service load-balancer annotations restored")
    return done


def _legacy_scheduler(s: SlbChoice, saved: dict[str, Any]) -> dict[str, str]:
    """The one listener's scheduler, as the one-listener version kept it (`saved["scheduler"]`)."""
    if not saved.get("scheduler") or not s.groups:
        return {}
    return {s.groups[0].listeners[0]: str(saved["scheduler"])}
