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


def verdicts(world: World, m: Migration, config: GateConfig) -> list[Verdict]:
    """Every gate that applies to the migration's method, read now and judged."""
    return evaluate(applicable(config.gates, m.method), reader(world, m))


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


def backend_health(world: World, m: Migration) -> Reading:
    """The share of MSE's and NGINX's backends in the moved groups whose health check passes.

    MSE counts as 0% while the gateway itself is not running (`GetGateway` status), whatever
    the SLB says: its nodes may still answer the health check while it is being changed.
    """
    if m.method != "slb" or m.slb is None:
        return Reading(None, None, "backend health is read from the SLB method's groups")
    s = m.slb
    gw = world.gateway.get_gateway(gateway_id=m.gateway)
    statuses: dict[tuple[str, int], str] = {}
    for port, protocol in {pair for g in s.groups for pair in g.listener_pairs()}:
        statuses.update({h.key: h.status for h in world.slb.health(slb_id=s.slb_id, port=port, protocol=protocol)})
    mse_ok = mse_all = nginx_ok = nginx_all = 0
    for g in s.groups:
        for b in world.slb.backends(vgroup_id=g.vgroup_id):
            normal = statuses.get(b.key, "unavailable") == "normal"
            if slb.is_nginx(b, s):
                nginx_all, nginx_ok = nginx_all + 1, nginx_ok + normal
            else:
                mse_all, mse_ok = mse_all + 1, mse_ok + normal
    if gw is None or gw.status != "running":
        return Reading(0.0, _percent(nginx_ok, nginx_all), f"gateway {m.gateway} is {gw.status if gw else 'gone'}")
    if not mse_all:
        return Reading(None, _percent(nginx_ok, nginx_all), "the gateway has no nodes in the moved groups")
    return Reading(_percent(mse_ok, mse_all), _percent(nginx_ok, nginx_all))


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
