"""Reading the gates from the world: SLB health checks and the gateway's status, and Prometheus.

Both gateways sit behind the same SLB and take the same traffic, so every reading is taken for
MSE and for NGINX at once and the gates can compare them. A source that cannot answer gives a
reading with no value and the reason, never an exception: the gate then fails safe.
"""

from __future__ import annotations

from commands import slb
from commands.errors import ProviderError
from commands.gates import Gate, GateConfig, Reader, Reading, Verdict, applicable, evaluate
from commands.model import Migration
from commands.ports import World
from commands.render import held


def verdicts(world: World, m: Migration, config: GateConfig) -> list[Verdict]:
    """Every gate that applies, read now and judged. Request metrics say nothing while MSE takes
    no traffic (its rates have no samples), so they are left out until it takes some."""
    gates = applicable(config.gates, m.method)
    if held(m)[0] <= 0:
        gates = [g for g in gates if g.source != "prometheus"]
    return evaluate(gates, reader(world, m))


def reader(world: World, m: Migration) -> Reader:
    """A function reading any gate of migration `m` from `world`."""

    def read(gate: Gate) -> Reading:
        try:
            if gate.source == "slb_health":
                return backend_health(world, m)
            return _prometheus(world, gate)
        except ProviderError as exc:
            return Reading(None, None, f"[{exc.code}] {exc.meaning}" if exc.code else exc.meaning)

    return read


#: Gateway states that pass (the gateway is being changed or scaled); they hold a plan but never
#: count towards a rollback. Any other state but running counts as MSE down.
PASSING_STATES = frozenset({"changing", "scaling in", "scaling out", "updating", "restarting"})
#: DescribeHealthStatus: `unavailable` means the health check is off or has not run; it says nothing.
JUDGED = frozenset({"normal", "abnormal"})


def backend_health(world: World, m: Migration) -> Reading:
    """The share of MSE's and NGINX's backends in the moved groups whose health check passes.

    Backends the SLB does not judge (`unavailable`, or not listed) are left out; with none left
    on a side, that side is unknown. MSE counts as down while the gateway itself is in a failed
    state (`GetGateway`), and as unknown while it is only being changed or scaled.
    """
    if m.method != "slb" or m.slb is None:
        return Reading(None, None, "backend health is read from the SLB method's groups")
    s = m.slb
    gw = world.gateway.get_gateway(gateway_id=m.gateway)
    statuses: dict[tuple[str, int], str] = {}
    for port, protocol in {pair for g in s.groups for pair in g.listener_pairs()}:
        statuses.update({h.key: h.status for h in world.slb.health(slb_id=s.slb_id, port=port, protocol=protocol)})
    counts = {"mse": [0, 0], "nginx": [0, 0]}  # side -> [normal, judged]
    for g in s.groups:
        for b in world.slb.backends(vgroup_id=g.vgroup_id):
            status = statuses.get(b.key, "unavailable")
            if status in JUDGED:
                side = counts["nginx" if slb.is_nginx(b, s) else "mse"]
                side[0], side[1] = side[0] + (status == "normal"), side[1] + 1
    nginx = _percent(*counts["nginx"])
    if gw is None or (gw.status != "running" and gw.status not in PASSING_STATES):
        return Reading(0.0, nginx, f"gateway {m.gateway} is {gw.status if gw else 'gone'}")
    if gw.status != "running":
        return Reading(None, nginx, f"gateway {m.gateway} is {gw.status}")
    if not counts["mse"][1]:
        return Reading(None, nginx, "the SLB reports no health check result for the gateway's backends")
    return Reading(_percent(*counts["mse"]), nginx)


def _prometheus(world: World, gate: Gate) -> Reading:
    metrics = getattr(world, "metrics", None)
    if metrics is None:
        return Reading(None, None, "no Prometheus is configured (`prometheus.url`)")
    mse = metrics.value(promql=gate.promql("mse"))
    nginx = metrics.value(promql=gate.promql("nginx")) if gate.nginx_query else None
    if mse is None:
        return Reading(None, nginx, "MSE's query matched no series")
    return Reading(mse, nginx)


def _percent(ok: int, total: int) -> float | None:
    return None if total == 0 else 100.0 * ok / total
