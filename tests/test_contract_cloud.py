"""The same scenarios against the simulated world and the real adapters + emulator.

If these ever disagree, the simulation the demo and the engine tests rely on has drifted from
what the real SDK calls do. Ids differ by nature (the cloud numbers things), so they are not
compared; everything a user would see is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from commands.errors import ProviderError
from commands.faq import INGRESS_CLASS_CONFLICT
from commands.ports import Backend, DnsRecord
from commands.traffic import spread
from providers.alibaba import AlibabaCloud
from providers.sim.state import load_seed
from providers.sim.world import SimWorld
from tests.openapi_emulator import Emulator

GW, SLB, VGROUP, CLUSTER = "gw-demo", "lb-demo", "rsp-demo-80", "demo-cluster"
MSE_IP = "47.100.0.20"


@pytest.fixture(params=["sim", "alibaba"])
def world(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "sim":
        yield SimWorld.from_seed()
        return
    with Emulator() as emu:
        yield AlibabaCloud.from_config(emu.config(max_attempts=2, backoff_ms=5, max_backoff_ms=20))


def _backends(items: list[Backend]) -> list[tuple[str, str, int, int, str]]:
    return sorted((b.server_id, b.ip, b.port, b.weight, b.type) for b in items)


def _records(items: list[DnsRecord]) -> list[tuple[str, str, str, int, bool]]:
    return sorted((r.domain, r.type, r.value, r.weight, r.enabled) for r in items)


def test_gateway_facts(world: Any) -> None:
    gw = world.gateway.get_gateway(gateway_id=GW)
    assert (gw.id, gw.name, gw.status, gw.version, gw.vpc_id, gw.slb_address) == (
        GW, "demo-gateway", "running", "1.2.25", "vpc-demo", MSE_IP)
    assert world.gateway.get_gateway(gateway_id="gw-missing") is None


def test_listen_is_idempotent_and_refuses_another_class(world: Any) -> None:
    assert world.gateway.ingress_sources(gateway_id=GW) == []
    first = world.gateway.listen(gateway_id=GW, cluster=CLUSTER, ingress_class="nginx")
    again = world.gateway.listen(gateway_id=GW, cluster=CLUSTER, ingress_class="nginx")
    assert first == again
    assert (first.cluster, first.ingress_class, first.enable_ingress, first.enable_status) == (
        CLUSTER, "nginx", True, False)
    with pytest.raises(ProviderError) as caught:
        world.gateway.listen(gateway_id=GW, cluster=CLUSTER, ingress_class="internal")
    assert caught.value.code == INGRESS_CLASS_CONFLICT
    assert [s.ingress_class for s in world.gateway.ingress_sources(gateway_id=GW)] == ["nginx"]


def test_routes_follow_the_class_listened_to(world: Any) -> None:
    assert world.gateway.routes(gateway_id=GW) == []
    world.gateway.listen(gateway_id=GW, cluster=CLUSTER, ingress_class="nginx")
    routes = sorted((r.host, r.path) for r in world.gateway.routes(gateway_id=GW))
    assert routes == [("api.example.com", "/v1"), ("api.example.com", "/v2"), ("shop.example.com", "/")]


def test_unlisten_is_idempotent(world: Any) -> None:
    world.gateway.listen(gateway_id=GW, cluster=CLUSTER, ingress_class="nginx")
    assert world.gateway.unlisten(gateway_id=GW, cluster=CLUSTER) is True
    assert world.gateway.unlisten(gateway_id=GW, cluster=CLUSTER) is False
    assert world.gateway.ingress_sources(gateway_id=GW) == []
    world.gateway.listen(gateway_id=GW, cluster=CLUSTER, ingress_class="internal")  # no conflict left behind


def test_slb_facts(world: Any) -> None:
    lb = world.slb.describe(slb_id=SLB)
    assert (lb.address, lb.vpc_id) == ("47.100.0.10", "vpc-demo")
    assert [(li.port, li.protocol, li.scheduler, li.acl_on, li.vgroup_id) for li in lb.listeners] == [
        (80, "TCP", "rr", False, "rsp-demo-80"), (443, "TCP", "rr", False, "rsp-demo-443")]
    assert set(lb.tags) == {"kubernetes.do.not.delete", "ack.aliyun.com"}
    assert world.slb.describe(slb_id="lb-missing") is None


def test_detach_from_cluster_management_and_weighted_round_robin(world: Any) -> None:
    world.slb.set_tags(slb_id=SLB, tags={"migrate-bot": "m-1"}, remove=["kubernetes.do.not.delete", "ack.aliyun.com"])
    world.slb.set_scheduler(slb_id=SLB, port=80, protocol="TCP", scheduler="wrr")
    lb = world.slb.describe(slb_id=SLB)
    assert dict(lb.tags) == {"migrate-bot": "m-1"}
    assert [li.scheduler for li in lb.listeners] == ["wrr", "rr"]
    with pytest.raises(ProviderError) as caught:
        world.slb.set_scheduler(slb_id=SLB, port=8080, protocol="TCP", scheduler="wrr")
    assert caught.value.code == "InvalidParameter"


def test_join_then_weights_then_read_back(world: Any) -> None:
    for _ in range(2):  # joining twice is a no-op
        world.gateway.join_slb(gateway_id=GW, slb_id=SLB, vgroup_id=VGROUP, port=80, protocol="TCP")
    gw = world.gateway.get_gateway(gateway_id=GW)
    assert gw.node_ips == ("10.0.1.21", "10.0.1.22", "10.0.1.23")
    mse = [b for b in world.slb.backends(vgroup_id=VGROUP) if b.ip in gw.node_ips]
    assert [b.weight for b in mse] == [0, 0, 0]
    world.slb.set_weights(vgroup_id=VGROUP, weights=dict(zip([b.server_id for b in mse], spread(10, 3), strict=True)))
    after = world.slb.backends(vgroup_id=VGROUP)
    assert sorted(b.weight for b in after if b.ip in gw.node_ips) == [3, 3, 4]
    assert _backends(after) == [
        ("eni-gw-demo-1", "10.0.1.21", 80, 4, "eni"), ("eni-gw-demo-2", "10.0.1.22", 80, 3, "eni"),
        ("eni-gw-demo-3", "10.0.1.23", 80, 3, "eni"),
        ("i-nginx-1", "10.0.0.11", 30080, 50, "ecs"), ("i-nginx-2", "10.0.0.12", 30080, 50, "ecs")]
    with pytest.raises(ProviderError) as caught:
        world.slb.set_weights(vgroup_id=VGROUP, weights={"eni-unknown": 5})
    assert caught.value.code == "BackendServer.NotExist"


def test_leave_takes_the_gateway_out_of_the_group(world: Any) -> None:
    world.gateway.join_slb(gateway_id=GW, slb_id=SLB, vgroup_id=VGROUP, port=80, protocol="TCP")
    world.gateway.leave_slb(gateway_id=GW, slb_id=SLB)
    world.gateway.leave_slb(gateway_id=GW, slb_id=SLB)
    assert [b.server_id for b in world.slb.backends(vgroup_id=VGROUP)] == ["i-nginx-1", "i-nginx-2"]


@pytest.fixture(params=["sim", "alibaba"])
def big_world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, Callable[[], int]]]:
    """The default world with a 25-node gateway, and a count of weight-setting calls."""
    seed = load_seed()
    seed["gateways"][GW]["node_ips"] = [f"10.0.2.{i}" for i in range(1, 26)]
    for rec in seed["dns"]["records"].values():
        rec.pop("id")
    seed["dns"]["records"] = list(seed["dns"]["records"].values())
    path = tmp_path / "seed.yaml"
    path.write_text(yaml.safe_dump(seed))
    if request.param == "sim":
        sim = SimWorld.from_seed(path)
        yield sim, lambda: sim.state.calls("slb.set_weights")
        return
    with Emulator(path) as emu:
        yield (AlibabaCloud.from_config(emu.config(max_attempts=2, backoff_ms=5)),
               lambda: emu.calls["SetVServerGroupAttribute"])


def test_more_than_20_weights_go_in_several_calls(big_world: tuple[Any, Callable[[], int]]) -> None:
    world, weight_calls = big_world
    world.gateway.join_slb(gateway_id=GW, slb_id=SLB, vgroup_id=VGROUP, port=80, protocol="TCP")
    everyone = {b.server_id: 7 for b in world.slb.backends(vgroup_id=VGROUP)}
    assert len(everyone) == 27
    world.slb.set_weights(vgroup_id=VGROUP, weights=everyone)
    assert {b.weight for b in world.slb.backends(vgroup_id=VGROUP)} == {7}
    assert weight_calls() == 2


def test_dns_add_weight_disable_delete(world: Any) -> None:
    assert world.dns.zone_for(domain="shop.example.com") == "example.com"
    assert world.dns.zone_for(domain="shop.example.org") is None
    added = world.dns.add_record(domain="shop.example.com", type="A", value=MSE_IP, enabled=False)
    assert world.dns.add_record(domain="shop.example.com", type="A", value=MSE_IP, enabled=False) == added
    assert (added.domain, added.value, added.weight, added.enabled) == ("shop.example.com", MSE_IP, 1, False)
    world.dns.set_weighted(domain="shop.example.com", on=True)
    world.dns.set_enabled(record_id=added.id, enabled=True)
    world.dns.set_weight(record_id=added.id, weight=25)
    assert _records(world.dns.records(domain="shop.example.com")) == [
        ("shop.example.com", "A", "47.100.0.10", 1, True), ("shop.example.com", "A", MSE_IP, 25, True)]
    nginx = next(r for r in world.dns.records(domain="shop.example.com") if r.value != MSE_IP)
    world.dns.set_enabled(record_id=nginx.id, enabled=False)
    assert [r.enabled for r in world.dns.records(domain="shop.example.com") if r.value != MSE_IP] == [False]
    with pytest.raises(ProviderError) as caught:
        world.dns.set_weight(record_id=added.id, weight=0)
    assert caught.value.code == "InvalidParameter.Weight"
    world.dns.delete_record(record_id=added.id)
    world.dns.delete_record(record_id=added.id)
    assert [r.value for r in world.dns.records(domain="shop.example.com")] == ["47.100.0.10"]


def test_dns_refuses_a_domain_it_does_not_host(world: Any) -> None:
    with pytest.raises(ProviderError) as caught:
        world.dns.add_record(domain="shop.example.org", type="A", value=MSE_IP, enabled=True)
    assert caught.value.code == "InvalidDomainName.NoExist"
    assert "by hand" in caught.value.next_step
