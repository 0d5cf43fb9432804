"""Pre-flight at `start`: everything that would block the migration, caught before anything changes."""

from __future__ import annotations

from dataclasses import dataclass, field

from commands import faq
from commands.errors import NotAllowed
from commands.ports import World

MIN_GATEWAY_VERSION = (1, 2, 22)


@dataclass(frozen=True)
class Preflight:
    notes: list[str] = field(default_factory=list)
    already_listening: bool = False
    source_existed: bool = False  # a source for the cluster was there (maybe with listening off): abort keeps it


def version_tuple(text: str) -> tuple[int, ...]:
    """`1.2.25` -> (1, 2, 25); anything unparsable sorts lowest."""
    parts = []
    for piece in text.strip().lstrip("vV").split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts) or (0,)


def preflight(world: World, *, cluster: str, gateway: str, ingress_class: str) -> Preflight:
    """Each failed check raises with what to fix; success returns what was found."""
    info = world.cluster(cluster).describe()
    gw = world.gateway.get_gateway(gateway_id=gateway)
    if gw is None:
        raise NotAllowed(f"Gateway {gateway} does not exist in this region: check the id (gw-...) in the MSE console.")
    if gw.status != "running":
        raise NotAllowed(f"Gateway {gateway} is {gw.status}, not running: wait until the MSE console shows it "
                         "running, then start again.")
    if version_tuple(gw.version) < MIN_GATEWAY_VERSION:
        raise NotAllowed(f"Gateway {gateway} runs version {gw.version}; migration needs 1.2.22 or later: upgrade "
                         "the gateway in the MSE console first.")
    if info.vpc_id and gw.vpc_id and info.vpc_id != gw.vpc_id:
        raise NotAllowed(f"Gateway {gateway} is in {gw.vpc_id} but cluster {cluster} is in {info.vpc_id}; they must "
                         "share a VPC: use a gateway in the cluster's VPC.")
    already = False
    notes_off = ""
    for src in world.gateway.ingress_sources(gateway_id=gateway):
        if src.cluster != cluster:
            continue
        if not src.enable_ingress:  # the FAQ's conflict needs "Ingress listening enabled"; step 1 turns it on
            notes_off = f"the gateway knows {cluster} with Ingress listening off: step 1 switches it on"
            continue
        if src.ingress_class != ingress_class:
            raise NotAllowed(faq.sentence(faq.INGRESS_CLASS_CONFLICT, detail=(
                f"gateway {gateway} listens to {cluster} with class `{src.ingress_class}`, not `{ingress_class}`; "
                f"`class={src.ingress_class}` would match")))
        already = True
    if next(iter(world.cluster(cluster).list_ingresses(ingress_class=ingress_class)), None) is None:
        # A mistyped class would otherwise pass every check (0 Ingresses, nothing blocking) and the
        # method would move the whole SLB to a gateway that serves none of the cluster's routes.
        raise NotAllowed(f"No Ingress of class `{ingress_class}` in {cluster}: nothing would move to the gateway. "
                         "Check `class=`: the IngressClass your NGINX controller serves (usually `nginx`).")
    notes = [f"gateway {gateway} running version {gw.version}", f"same VPC {gw.vpc_id or info.vpc_id}"]
    if already:
        notes.append(f"already listening to class {ingress_class}")
    if notes_off:
        notes.append(notes_off)
    return Preflight(notes, already, already or bool(notes_off))
