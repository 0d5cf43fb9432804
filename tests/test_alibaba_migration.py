"""Whole migrations through the real SDK clients against the emulator, with faults injected
everywhere, ending in the cloud state the procedure describes. The SLB steps are driven through
the ports directly (the engine's own tests cover its phases); the DNS method runs through the
engine. The point is that every cloud call survives throttling and 5xx and leaves the right state."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from commands.ccm import CCM_TAGS
from commands.phases import Phase
from commands.ports import GatewayJoin
from commands.traffic import spread
from providers.alibaba import AlibabaCloud
from providers.factory import CloudWorld
from tests.engine_helpers import make_harness
from tests.openapi_emulator import Emulator, PublicResolver, _record_view

GW, SLB, CLUSTER = "gw-demo", "lb-demo", "demo-cluster"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(retry_after_ms=5, rng_seed=11) as running:
        running.throttle("*", times=None, probability=0.2)
        running.fail("*", times=None, status=503, probability=0.1)
        yield running


@pytest.fixture
def cloud(emu: Emulator) -> AlibabaCloud:
    return AlibabaCloud.from_config(emu.config(max_attempts=10, backoff_ms=2, max_backoff_ms=10))


def _preflight(cloud: AlibabaCloud) -> None:
    gw = cloud.gateway.get_gateway(gateway_id=GW)
    assert gw is not None and gw.status == "running"
    assert tuple(int(p) for p in gw.version.split(".")) >= (1, 2, 22)
    lb = cloud.slb.describe(slb_id=SLB)
    assert lb is not None and gw.vpc_id == lb.vpc_id
    assert all(s.ingress_class == "nginx" for s in cloud.gateway.ingress_sources(gateway_id=GW)
               if s.cluster == CLUSTER)


def test_a_whole_slb_reuse_migration(emu: Emulator, cloud: AlibabaCloud) -> None:
    _preflight(cloud)
    source = cloud.gateway.listen(gateway_id=GW, cluster=CLUSTER, ingress_class="nginx")
    assert (source.enable_ingress, source.enable_status) == (True, False)
    assert {r.host for r in cloud.gateway.routes(gateway_id=GW)} == {
        "shop.example.com", "api.example.com", "example.com", "www.example.com", "app.example.org"}

    lb = cloud.slb.describe(slb_id=SLB)
    assert lb is not None and not any(li.acl_on for li in lb.listeners)
    groups = {li.port: li.vgroup_id for li in lb.listeners}
    names = {vg: cloud.slb.vgroup(vgroup_id=vg).name for vg in groups.values()}
    cloud.slb.set_tags(slb_id=SLB, tags={}, remove=CCM_TAGS)  # 4a: detach from cluster management
    for li in lb.listeners:
        cloud.slb.set_scheduler(slb_id=SLB, port=li.port, protocol=li.protocol, scheduler="wrr")
    for vg in groups.values():  # CCM reuses only groups not named with its own k8s/... key
        cloud.slb.rename_vgroup(vgroup_id=vg, name=f"migrate-bot/{vg}")
    joins = [GatewayJoin(groups[80], 80, "HTTP"), GatewayJoin(groups[443], 443, "HTTPS")]
    cloud.gateway.join_slb(gateway_id=GW, slb_id=SLB, groups=joins)
    cloud.gateway.join_slb(gateway_id=GW, slb_id=SLB, groups=joins)  # a repeated step changes nothing
    nodes = cloud.gateway.get_gateway(gateway_id=GW).node_ips  # type: ignore[union-attr]
    mse = {vg: [b for b in cloud.slb.backends(vgroup_id=vg) if b.ip in nodes] for vg in groups.values()}

    def set_mse_total(total: int) -> list[int]:
        for vg, backends in mse.items():
            cloud.slb.set_weights(vgroup_id=vg, backends=[replace(b, weight=w) for b, w in
                                                          zip(backends, spread(total, len(backends)), strict=True)])
        return [sum(b.weight for b in cloud.slb.backends(vgroup_id=vg) if b.ip in nodes) for vg in mse]

    assert [set_mse_total(w) for w in (5, 25)] == [[5, 5], [25, 25]]
    assert set_mse_total(0) == [0, 0]  # rollback
    assert [set_mse_total(w) for w in (10, 50, 100)] == [[10, 10], [50, 50], [100, 100]]

    final = cloud.slb.describe(slb_id=SLB)
    assert final is not None and not set(CCM_TAGS) & set(final.tags)
    assert [li.scheduler for li in final.listeners] == ["wrr", "wrr"]
    for port, vg in groups.items():
        weights = {b.key: b.weight for b in cloud.slb.backends(vgroup_id=vg)}
        nginx_port = {80: 30080, 443: 30443}[port]
        assert weights == {("i-nginx-1", nginx_port): 50, ("i-nginx-2", nginx_port): 50, ("eni-gw-demo-1", port): 34,
                           ("eni-gw-demo-2", port): 33, ("eni-gw-demo-3", port): 33}
    for vg, name in names.items():  # abort or finish: the CCM names come back
        cloud.slb.rename_vgroup(vgroup_id=vg, name=name)
        assert cloud.slb.vgroup(vgroup_id=vg).name == name
    emu.clear_faults()
    assert emu.violations == []
    assert sum(emu.calls.values()) > len(emu.calls)  # faults did happen and were retried


def _zone_text(emu: Emulator, keep: Callable[[dict[str, Any]], bool]) -> str:
    """The records `keep` selects, as DescribeSubDomainRecords shows them, byte for byte."""
    rows = [_record_view(emu.state, r) for r in emu.state.records.values() if keep(r)]
    return json.dumps(sorted(rows, key=lambda v: v["RecordId"]), sort_keys=True)


def test_a_whole_dns_migration_through_the_engine(redis_url: str, emu: Emulator, cloud: AlibabaCloud) -> None:
    """`method dns ttl=60` to `complete`, every Alidns call through the real SDK with throttling and
    5xx injected: only NGINX's A records and MSE's move; everything else stays byte-identical."""
    world = CloudWorld(gateway=cloud.gateway, slb=cloud.slb, dns=cloud.dns, resolver=PublicResolver(emu),
                       clusters={CLUSTER: {"sim_seed": ""}})
    target = cloud.gateway.get_gateway(gateway_id=GW).slb_address  # type: ignore[union-attr]

    def moves(r: dict[str, Any]) -> bool:
        return r["type"] == "A" and r["value"] in {"47.100.0.10", "47.100.0.11", target}

    untouched = _zone_text(emu, lambda r: not moves(r))
    h = make_harness(redis_url, world=world, dwell_seconds=0)
    h.ok("alice", "/migrate start cluster=demo-cluster gateway=gw-demo")
    h.ok("alice", "/migrate check")
    h.ok("alice", "/migrate method dns ttl=60")
    assert {r["ttl"] for r in emu.state.records.values() if moves(r)} == {60}
    h.clock.advance(600)
    h.ok("alice", "/migrate switch")
    assert emu.state.weighted["www.example.com|A|default"] is True
    h.ok("alice", "/migrate weight 100")
    assert h.migration().observed["hosts"]["www.example.com"]["share"] == 50.0
    resolver = PublicResolver(emu)  # weighted: one record per query, picked by weight; the cutover copes below
    answers = [resolver.addresses(domain="www.example.com") for _ in range(40)]
    assert all(len(a) == 1 for a in answers) and {a[0] for a in answers} == {"47.100.0.10", "47.100.0.11", target}
    h.clock.advance(60)
    emu.state.elsewhere["app.example.org"].append(target)  # made by hand at the other provider
    for line in ("/migrate verify", "/migrate cutover", "/migrate complete"):
        if line == "/migrate complete":  # and NGINX's disabled there after the cutover
            emu.state.elsewhere["app.example.org"] = [target]
        h.ok("alice", line)
        h.ok("bob", "/migrate approve")
    emu.clear_faults()
    assert h.migration().phase is Phase.COMPLETED
    for host in ("example.com", "www.example.com", "shop.example.com", "api.example.com"):
        assert PublicResolver(emu).addresses(domain=host) == [target]
    assert {r["ttl"] for r in emu.state.records.values()} == {600}  # the lowered TTLs are back
    assert _zone_text(emu, lambda r: not moves(r)) == untouched
    assert sum(emu.calls.values()) > len(emu.calls)  # faults did happen and were retried


def test_a_dns_abort_through_the_engine_gives_the_zone_back_byte_for_byte(redis_url: str, emu: Emulator,
                                                                         cloud: AlibabaCloud) -> None:
    """Flags as found (the apex weighted already, www not), weights, states, TTLs: all as before."""
    emu.state.weighted["example.com|A|default"] = True
    world = CloudWorld(gateway=cloud.gateway, slb=cloud.slb, dns=cloud.dns, resolver=PublicResolver(emu),
                       clusters={CLUSTER: {"sim_seed": ""}})
    before = _zone_text(emu, lambda r: True)
    h = make_harness(redis_url, world=world, dwell_seconds=0)
    h.ok("alice", "/migrate start cluster=demo-cluster gateway=gw-demo")
    h.ok("alice", "/migrate check")
    h.ok("alice", "/migrate method dns ttl=60")
    h.clock.advance(600)
    h.ok("alice", "/migrate switch")
    h.ok("alice", "/migrate weight 75%")
    h.ok("bob", "/migrate rollback")  # abort waits until no resolver holds MSE's address: one TTL (60 s)
    h.clock.advance(60)
    h.ok("alice", "/migrate abort")
    h.ok("bob", "/migrate approve")
    emu.clear_faults()
    assert _zone_text(emu, lambda r: True) == before
    assert emu.state.weighted["example.com|A|default"] is True
    assert emu.state.weighted["www.example.com|A|default"] is False
