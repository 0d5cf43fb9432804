"""The same scenarios against the simulated world and the real adapters + emulator.

If these ever disagree, the simulation the demo and the engine tests rely on has drifted from
what the real SDK calls do. Ids differ by nature (the cloud numbers things), so they are not
compared; everything a user would see is. The scenarios use only the ports (commands/ports.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from commands.errors import ProviderError
from commands.faq import INGRESS_CLASS_CONFLICT
from commands.ports import Backend, DnsRecord, GatewayJoin
from commands.traffic import spread
from providers.alibaba import AlibabaCloud
from providers.sim.state import load_seed
from providers.sim.world import SimWorld
from tests.openapi_emulator import Emulator

GW, SLB, VGROUP, VGROUP_TLS, CLUSTER = "gw-demo", "lb-demo", "rsp-demo-80", "rsp-demo-443", "demo-cluster"
MSE_IP = "47.100.0.20"
NODES = ("10.0.1.21", "10.0.1.22", "10.0.1.23")
NAMES = {VGROUP: "k8s/30080/nginx-ingress-lb/ingress-nginx/demo-cluster",
         VGROUP_TLS: "k8s/30443/nginx-ingress-lb/ingress-nginx/demo-cluster"}
HTTP, HTTPS = GatewayJoin(VGROUP, 80, "HTTP"), GatewayJoin(VGROUP_TLS, 443, "HTTPS")


def _seed_file(tmp_path: Path, change: Callable[[dict[str, Any]], None] = lambda seed: None) -> Path:
    """The default seed, with the CCM names of the NGINX groups (as the real SLB has them)."""
    seed = load_seed()
    names = seed["slbs"][SLB].setdefault("vgroup_names", {})
    for vg, name in NAMES.items():
        names.setdefault(vg, name)
    change(seed)
    for rec in seed["dns"]["records"].values():
        rec.pop("id")
    seed["dns"]["records"] = list(seed["dns"]["records"].values())
    path = tmp_path / "seed.yaml"
    path.write_text(yaml.safe_dump(seed))
    return path


@pytest.fixture(params=["sim", "alibaba"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    path = _seed_file(tmp_path)
    if request.param == "sim":
        yield SimWorld.from_seed(path)
        return
    with Emulator(path) as emu:
        yield AlibabaCloud.from_config(emu.config(max_attempts=2, backoff_ms=5, max_backoff_ms=20))
        assert emu.violations == []


def _backends(items: list[Backend]) -> list[tuple[str, str, int, int, str]]:
    return sorted((b.server_id, b.ip, b.port, b.weight, b.type) for b in items)


def _mse(world: Any, vgroup_id: str) -> list[Backend]:
    return [b for b in world.slb.backends(vgroup_id=vgroup_id) if b.ip in NODES]


def _joins(items: list[GatewayJoin]) -> list[tuple[str, int, str]]:
    return sorted((j.vgroup_id, j.port, j.protocol) for j in items)


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
    assert routes == [("api.example.com", "/v1"), ("api.example.com", "/v2"), ("app.example.org", "/"),
                      ("example.com", "/"), ("shop.example.com", "/"), ("www.example.com", "/")]


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
        (80, "TCP", "rr", False, VGROUP), (443, "TCP", "rr", False, VGROUP_TLS)]
    assert set(lb.tags) == {"kubernetes.do.not.delete", "ack.aliyun.com"}
    assert world.slb.describe(slb_id="lb-missing") is None


def test_a_vgroup_has_its_ccm_name_and_backends(world: Any) -> None:
    group = world.slb.vgroup(vgroup_id=VGROUP)
    assert (group.id, group.name) == (VGROUP, NAMES[VGROUP])
    assert _backends(list(group.backends)) == [("i-nginx-1", "10.0.0.11", 30080, 50, "ecs"),
                                               ("i-nginx-2", "10.0.0.12", 30080, 50, "ecs")]
    assert world.slb.backends(vgroup_id=VGROUP) == list(group.backends)


def test_rename_vgroup_is_read_back_and_leaves_the_backends(world: Any) -> None:
    before = world.slb.vgroup(vgroup_id=VGROUP)
    world.slb.rename_vgroup(vgroup_id=VGROUP, name="migrate-bot/nginx-80")
    after = world.slb.vgroup(vgroup_id=VGROUP)
    assert after.name == "migrate-bot/nginx-80"
    assert after.backends == before.backends
    assert world.slb.vgroup(vgroup_id=VGROUP_TLS).name == NAMES[VGROUP_TLS]
    world.slb.rename_vgroup(vgroup_id=VGROUP, name=NAMES[VGROUP])  # restoring on abort
    assert world.slb.vgroup(vgroup_id=VGROUP).name == NAMES[VGROUP]


def test_detach_from_cluster_management_and_weighted_round_robin(world: Any) -> None:
    world.slb.set_tags(slb_id=SLB, tags={"migrate-bot": "m-1"}, remove=["kubernetes.do.not.delete", "ack.aliyun.com"])
    world.slb.set_scheduler(slb_id=SLB, port=80, protocol="TCP", scheduler="wrr")
    lb = world.slb.describe(slb_id=SLB)
    assert dict(lb.tags) == {"migrate-bot": "m-1"}
    assert [li.scheduler for li in lb.listeners] == ["wrr", "rr"]
    with pytest.raises(ProviderError) as caught:
        world.slb.set_scheduler(slb_id=SLB, port=8080, protocol="TCP", scheduler="wrr")
    assert caught.value.code == "InvalidParameter"


def test_http_and_https_groups_join_in_one_association(world: Any) -> None:
    assert world.gateway.joined(gateway_id=GW, slb_id=SLB) == []
    world.gateway.join_slb(gateway_id=GW, slb_id=SLB, groups=[HTTP, HTTPS])
    assert _joins(world.gateway.joined(gateway_id=GW, slb_id=SLB)) == [(VGROUP_TLS, 443, "HTTPS"),
                                                                        (VGROUP, 80, "HTTP")]
    assert world.gateway.get_gateway(gateway_id=GW).node_ips == NODES
    assert _backends(_mse(world, VGROUP)) == [(f"eni-gw-demo-{i}", ip, 80, 0, "eni")
                                              for i, ip in enumerate(NODES, start=1)]
    assert _backends(_mse(world, VGROUP_TLS)) == [(f"eni-gw-demo-{i}", ip, 443, 0, "eni")
                                                  for i, ip in enumerate(NODES, start=1)]


def test_joining_again_is_a_no_op(world: Any) -> None:
    world.gateway.join_slb(gateway_id=GW, slb_id=SLB, groups=[HTTP, HTTPS])
    before = (world.slb.backends(vgroup_id=VGROUP), world.slb.backends(vgroup_id=VGROUP_TLS))
    world.gateway.join_slb(gateway_id=GW, slb_id=SLB, groups=[HTTP, HTTPS])
    world.gateway.join_slb(gateway_id=GW, slb_id=SLB, groups=[HTTPS])  # a subset is joined already too
    assert (world.slb.backends(vgroup_id=VGROUP), world.slb.backends(vgroup_id=VGROUP_TLS)) == before
    assert len(world.gateway.joined(gateway_id=GW, slb_id=SLB)) == 2


def test_join_then_weights_then_read_back(world: Any) -> None:
    world.gateway.join_slb(gateway_id=GW, slb_id=SLB, groups=[HTTP])
    mse = _mse(world, VGROUP)
    world.slb.set_weights(vgroup_id=VGROUP, backends=[replace(b, weight=w)
                                                      for b, w in zip(mse, spread(10, 3), strict=True)])
    assert _backends(world.slb.backends(vgroup_id=VGROUP)) == [
        ("eni-gw-demo-1", "10.0.1.21", 80, 4, "eni"), ("eni-gw-demo-2", "10.0.1.22", 80, 3, "eni"),
        ("eni-gw-demo-3", "10.0.1.23", 80, 3, "eni"),
        ("i-nginx-1", "10.0.0.11", 30080, 50, "ecs"), ("i-nginx-2", "10.0.0.12", 30080, 50, "ecs")]
    world.slb.set_weights(vgroup_id=VGROUP, backends=[replace(b, weight=0) for b in mse])  # rollback
    assert [b.weight for b in _mse(world, VGROUP)] == [0, 0, 0]


def test_a_backend_the_group_does_not_hold_is_refused(world: Any) -> None:
    world.gateway.join_slb(gateway_id=GW, slb_id=SLB, groups=[HTTP])
    with pytest.raises(ProviderError) as caught:
        world.slb.set_weights(vgroup_id=VGROUP, backends=[Backend("eni-unknown", "10.9.9.9", 80, 5, "eni")])
    assert caught.value.code == "BackendServer.NotExist"
    node = _mse(world, VGROUP)[0]
    with pytest.raises(ProviderError) as caught:  # the right server on a port it is not on
        world.slb.set_weights(vgroup_id=VGROUP, backends=[replace(node, port=443, weight=5)])
    assert caught.value.code == "BackendServer.NotExist"
    assert [b.weight for b in _mse(world, VGROUP)] == [0, 0, 0]


def test_one_eni_on_two_ports_of_a_group_is_weighted_per_port(world: Any) -> None:
    # The same group as the HTTP side on 80 and the HTTPS side on 443: each ENI sits in it twice.
    world.gateway.join_slb(gateway_id=GW, slb_id=SLB, groups=[HTTP, GatewayJoin(VGROUP, 443, "HTTPS")])
    mse = _mse(world, VGROUP)
    assert sorted(b.key for b in mse) == sorted((f"eni-gw-demo-{i}", p) for i in (1, 2, 3) for p in (80, 443))
    world.slb.set_weights(vgroup_id=VGROUP, backends=[replace(b, weight=7 if b.port == 80 else 3) for b in mse])
    assert sorted((b.server_id, b.port, b.weight) for b in _mse(world, VGROUP)) == sorted(
        (f"eni-gw-demo-{i}", p, 7 if p == 80 else 3) for i in (1, 2, 3) for p in (80, 443))
    first_443 = next(b for b in mse if b.key == ("eni-gw-demo-1", 443))
    world.slb.set_weights(vgroup_id=VGROUP, backends=[replace(first_443, weight=9)])
    weights = {b.key: b.weight for b in _mse(world, VGROUP)}
    assert (weights[("eni-gw-demo-1", 80)], weights[("eni-gw-demo-1", 443)]) == (7, 9)


def test_leave_takes_the_gateway_out_of_every_group(world: Any) -> None:
    world.gateway.join_slb(gateway_id=GW, slb_id=SLB, groups=[HTTP, HTTPS])
    world.gateway.leave_slb(gateway_id=GW, slb_id=SLB)
    world.gateway.leave_slb(gateway_id=GW, slb_id=SLB)
    assert [b.server_id for b in world.slb.backends(vgroup_id=VGROUP)] == ["i-nginx-1", "i-nginx-2"]
    assert [b.server_id for b in world.slb.backends(vgroup_id=VGROUP_TLS)] == ["i-nginx-1", "i-nginx-2"]
    assert world.gateway.joined(gateway_id=GW, slb_id=SLB) == []
    world.gateway.join_slb(gateway_id=GW, slb_id=SLB, groups=[HTTP])  # joining again after leaving works
    assert _joins(world.gateway.joined(gateway_id=GW, slb_id=SLB)) == [(VGROUP, 80, "HTTP")]


@pytest.fixture(params=["sim", "alibaba"])
def big_world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, Callable[[], int]]]:
    """The default world with a 25-node gateway, and a count of weight-setting calls."""
    def many_nodes(seed: dict[str, Any]) -> None:
        seed["gateways"][GW]["node_ips"] = [f"10.0.2.{i}" for i in range(1, 26)]

    path = _seed_file(tmp_path, many_nodes)
    if request.param == "sim":
        sim = SimWorld.from_seed(path)
        yield sim, lambda: sim.state.calls("slb.set_weights")
        return
    with Emulator(path) as emu:
        yield (AlibabaCloud.from_config(emu.config(max_attempts=2, backoff_ms=5)),
               lambda: emu.calls["SetVServerGroupAttribute"])


def test_more_than_20_weights_go_in_several_calls(big_world: tuple[Any, Callable[[], int]]) -> None:
    world, weight_calls = big_world
    world.gateway.join_slb(gateway_id=GW, slb_id=SLB, groups=[HTTP])
    everyone = [replace(b, weight=7) for b in world.slb.backends(vgroup_id=VGROUP)]
    assert len(everyone) == 27
    before = weight_calls()
    world.slb.set_weights(vgroup_id=VGROUP, backends=everyone)
    assert {b.weight for b in world.slb.backends(vgroup_id=VGROUP)} == {7}
    assert weight_calls() - before == 2


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


def test_dns_weighted_flag_is_per_name_type_and_line_and_reads_back(world: Any) -> None:
    assert world.dns.weighted(domain="www.example.com") is False
    world.dns.set_weighted(domain="www.example.com", on=True)
    assert world.dns.weighted(domain="www.example.com") is True
    assert world.dns.weighted(domain="www.example.com", type="AAAA") is False
    assert world.dns.weighted(domain="example.com") is False  # the apex is its own name ("@")
    world.dns.set_weighted(domain="example.com", on=True)
    assert world.dns.weighted(domain="example.com") is True
    world.dns.set_weighted(domain="www.example.com", on=False)
    assert world.dns.weighted(domain="www.example.com") is False
    with pytest.raises(ProviderError) as caught:  # weights are for A, AAAA and CNAME records only
        world.dns.set_weighted(domain="example.com", on=True, type="TXT")
    assert caught.value.code == "InvalidParameter.Type"


def test_dns_ttl_changes_only_the_ttl(world: Any) -> None:
    rec = next(r for r in world.dns.records(domain="www.example.com") if r.value == "47.100.0.11")
    world.dns.set_ttl(record=rec, ttl=60)
    world.dns.set_ttl(record=rec, ttl=60)  # again: nothing to change is no error
    after = {r.id: r for r in world.dns.records(domain="www.example.com")}
    assert replace(after[rec.id], ttl=600) == rec and after[rec.id].ttl == 60
    assert {r.ttl for r in after.values() if r.id != rec.id} == {600}


def test_dns_records_carry_their_line_and_a_cname_stands_alone(world: Any) -> None:
    added = world.dns.add_record(domain="www.example.com", type="A", value=MSE_IP, enabled=False, ttl=60,
                                 line="telecom")
    assert (added.line, added.ttl, added.enabled) == ("telecom", 60, False)
    assert world.dns.add_record(domain="www.example.com", type="A", value=MSE_IP, enabled=False) != added
    with pytest.raises(ProviderError) as caught:  # Alibaba Cloud DNS: a CNAME has its name and line to itself
        world.dns.add_record(domain="status.example.com", type="A", value=MSE_IP, enabled=False)
    assert caught.value.code == "DomainRecordConflict"
    kinds = sorted((r.type, r.line) for r in world.dns.records(domain="example.com"))
    assert kinds == [("A", "default"), ("A", "default"), ("AAAA", "default"), ("CAA", "default"), ("MX", "default"),
                     ("TXT", "default")]


def test_dns_refuses_a_domain_it_does_not_host(world: Any) -> None:
    with pytest.raises(ProviderError) as caught:
        world.dns.add_record(domain="shop.example.org", type="A", value=MSE_IP, enabled=True)
    assert caught.value.code == "InvalidDomainName.NoExist"
    assert "by hand" in caught.value.next_step
