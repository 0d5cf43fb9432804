"""The real SDK clients against the emulator: signatures, unknown actions and parameters,
credentials, the standalone emulator process, and the SLB/MSE rules the emulator enforces."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from alibabacloud_mse20190531 import models as mse_models
from alibabacloud_slb20140515 import models as slb_models

from commands.errors import ProviderError
from commands.ports import Backend, GatewayJoin
from providers.alibaba import AlibabaCloud
from providers.alibaba.errors import call
from providers.alibaba.mse import _joins
from providers.sim.state import load_seed
from tests.conftest import free_port
from tests.openapi_emulator import TEST_ACCESS_KEY_SECRET, Emulator

ROOT = Path(__file__).resolve().parents[1]
FAST = {"max_attempts": 2, "backoff_ms": 5, "max_backoff_ms": 20, "read_timeout_ms": 3000}


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as running:
        yield running


def test_a_wrong_secret_is_refused_as_the_cloud_does(emu: Emulator) -> None:
    cloud = AlibabaCloud.from_config(emu.config(access_key_secret="not-the-secret", **FAST))
    with pytest.raises(ProviderError) as caught:
        cloud.gateway.get_gateway(gateway_id="gw-demo")
    err = caught.value
    assert err.code == "SignatureDoesNotMatch"
    assert not err.temporary
    assert err.request_id
    assert "secret" in err.meaning and err.next_step
    assert emu.calls["ListGateway"] == 0


def test_an_unknown_access_key_is_refused(emu: Emulator) -> None:
    cloud = AlibabaCloud.from_config(emu.config(access_key_id="nobody", **FAST))
    with pytest.raises(ProviderError) as caught:
        cloud.slb.describe(slb_id="lb-demo")
    assert caught.value.code == "InvalidAccessKeyId.NotFound"


def test_an_action_the_cloud_does_not_have_is_refused(emu: Emulator) -> None:
    cloud = AlibabaCloud.from_config(emu.config(**FAST))
    req = mse_models.GetGatewayConfigRequest(gateway_unique_id="gw-demo")
    with pytest.raises(ProviderError) as caught:
        call("mse.GetGatewayConfig", lambda: cloud.gateway.client.get_gateway_config(req))
    assert caught.value.code == "InvalidAction.NotFound"
    assert caught.value.request_id


def test_a_parameter_the_cloud_does_not_know_is_refused(emu: Emulator) -> None:
    cloud = AlibabaCloud.from_config(emu.config(**FAST))
    req = slb_models.DescribeLoadBalancerListenersRequest(region_id="cn-hangzhou", load_balancer_id=["lb-demo"],
                                                          description="not modelled")
    with pytest.raises(ProviderError) as caught:
        call("slb.DescribeLoadBalancerListeners", lambda: cloud.slb.client.describe_load_balancer_listeners(req))
    assert caught.value.code == "InvalidParameter"
    assert "Description" in str(caught.value) or caught.value.meaning


CHAIN_PROBE = """
import json, sys
from commands.errors import ProviderError
from providers.alibaba import AlibabaCloud
try:
    gateway = AlibabaCloud.from_config(json.loads(sys.argv[1])).gateway.get_gateway(gateway_id="gw-demo")
    print("status", gateway.status)
except ProviderError as err:
    print("error", err.code, err.next_step)
"""


def _probe_without_keys(emu: Emulator, tmp_path: Path, env: dict[str, str]) -> str:
    """Run a fresh process: the credentials SDK reads the environment once, at import."""
    cfg = emu.config(**FAST)
    del cfg["access_key_id"], cfg["access_key_secret"]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_")}
    clean.update({"HOME": str(tmp_path), "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true", **env})
    done = subprocess.run([sys.executable, "-c", CHAIN_PROBE, json.dumps(cfg)], cwd=ROOT, env=clean,
                          capture_output=True, text=True, timeout=60)
    return done.stdout.strip()


def test_the_default_credential_chain_is_used_when_no_keys_are_configured(emu: Emulator, tmp_path: Path) -> None:
    out = _probe_without_keys(emu, tmp_path, {"ALIBABA_CLOUD_ACCESS_KEY_ID": "emulator-ak",
                                              "ALIBABA_CLOUD_ACCESS_KEY_SECRET": TEST_ACCESS_KEY_SECRET})
    assert out == "status running"


def test_no_credentials_anywhere_says_how_to_give_some(emu: Emulator, tmp_path: Path) -> None:
    out = _probe_without_keys(emu, tmp_path, {})
    assert out.startswith("error InvalidCredentials")
    assert "RRSA" in out
    assert emu.calls["ListGateway"] == 0


def test_settings_never_show_the_secret(emu: Emulator) -> None:
    cloud = AlibabaCloud.from_config(emu.config(**FAST))
    assert TEST_ACCESS_KEY_SECRET not in repr(cloud.settings)


def test_the_emulator_runs_standalone_and_prints_its_url() -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tests.openapi_emulator", "--port", str(port)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in line
        assert TEST_ACCESS_KEY_SECRET not in line
        cloud = AlibabaCloud.from_config({"region": "cn-hangzhou", "protocol": "http", **FAST,
                                          "endpoints": {p: f"127.0.0.1:{port}" for p in ("mse", "slb", "dns")},
                                          "access_key_id": "emulator-ak",
                                          "access_key_secret": TEST_ACCESS_KEY_SECRET})
        lb = cloud.slb.describe(slb_id="lb-demo")
        assert lb is not None and lb.address == "47.100.0.10"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# ---- the SLB and MSE rules the emulator enforces, met through the adapters ---------------------

GW, SLB, HTTP_GROUP, TLS_GROUP = "gw-demo", "lb-demo", "rsp-demo-80", "rsp-demo-443"
JOINS = [GatewayJoin(HTTP_GROUP, 80, "HTTP"), GatewayJoin(TLS_GROUP, 443, "HTTPS")]
NODES = ["10.0.1.21", "10.0.1.22", "10.0.1.23"]


@pytest.fixture
def cloud(emu: Emulator) -> AlibabaCloud:
    return AlibabaCloud.from_config(emu.config(**FAST))


def _mse(cloud: AlibabaCloud, vgroup_id: str) -> list[Backend]:
    return [b for b in cloud.slb.backends(vgroup_id=vgroup_id) if b.type == "eni"]


def _raw_set(cloud: AlibabaCloud, vgroup_id: str, servers: list[dict[str, str]]) -> None:
    req = slb_models.SetVServerGroupAttributeRequest(region_id="cn-hangzhou", vserver_group_id=vgroup_id,
                                                     backend_servers=json.dumps(servers))
    call("slb.SetVServerGroupAttribute", lambda: cloud.slb.client.set_vserver_group_attribute(req))


def test_http_and_https_groups_join_in_one_add_gateway_slb(emu: Emulator, cloud: AlibabaCloud) -> None:
    cloud.gateway.join_slb(gateway_id=GW, slb_id=SLB, groups=JOINS)
    assert emu.calls["AddGatewaySlb"] == 1
    [entry] = [e for e in cloud.gateway._slb_entries(GW) if e.slb_id == SLB]
    assert (entry.vserver_group_id, entry.http_port, entry.https_vserver_group_id, entry.https_port) == (
        HTTP_GROUP, 80, TLS_GROUP, 443)
    assert sorted((v.vserver_group_id, v.port, v.protocol) for v in entry.vservice_list) == [
        (TLS_GROUP, "443", "HTTPS"), (HTTP_GROUP, "80", "HTTP")]
    names = {vg: cloud.slb.vgroup(vgroup_id=vg).name for vg in (HTTP_GROUP, TLS_GROUP)}
    assert sorted(cloud.gateway.joined(gateway_id=GW, slb_id=SLB), key=lambda j: j.port) == [
        GatewayJoin(HTTP_GROUP, 80, "HTTP", names[HTTP_GROUP]), GatewayJoin(TLS_GROUP, 443, "HTTPS", names[TLS_GROUP])]
    assert [(b.ip, b.port, b.weight) for b in _mse(cloud, HTTP_GROUP)] == [(ip, 80, 0) for ip in NODES]
    assert [(b.ip, b.port, b.weight) for b in _mse(cloud, TLS_GROUP)] == [(ip, 443, 0) for ip in NODES]


def test_joining_again_makes_no_call_that_writes(emu: Emulator, cloud: AlibabaCloud) -> None:
    cloud.gateway.join_slb(gateway_id=GW, slb_id=SLB, groups=JOINS)
    cloud.gateway.join_slb(gateway_id=GW, slb_id=SLB, groups=JOINS)
    assert emu.calls["AddGatewaySlb"] == 1
    assert len(emu.state.gateways[GW]["links"]) == 1


def test_a_second_association_with_the_same_slb_is_refused(emu: Emulator, cloud: AlibabaCloud) -> None:
    cloud.gateway.join_slb(gateway_id=GW, slb_id=SLB, groups=JOINS[:1])
    with pytest.raises(ProviderError) as caught:
        cloud.gateway.join_slb(gateway_id=GW, slb_id=SLB, groups=JOINS[1:])
    assert "SlbAlreadyBound" in str(caught.value)
    assert _mse(cloud, TLS_GROUP) == []


def test_a_join_protocol_other_than_http_or_https_is_refused(emu: Emulator, cloud: AlibabaCloud) -> None:
    with pytest.raises(ProviderError) as caught:
        cloud.gateway.join_slb(gateway_id=GW, slb_id=SLB, groups=[GatewayJoin(HTTP_GROUP, 80, "TCP")])
    assert caught.value.code == "InvalidParameter"
    assert _mse(cloud, HTTP_GROUP) == []


def test_joined_reads_groups_named_outside_the_service_list_with_default_ports() -> None:
    entry = mse_models.ListGatewaySlbResponseBodyData().from_map({
        "SlbId": SLB, "VServerGroupId": HTTP_GROUP, "HttpsVServerGroupId": TLS_GROUP,
        "VServiceList": [{"VServerGroupId": HTTP_GROUP, "VServerGroupName": "n", "Port": "80", "Protocol": "HTTP"}]})
    assert _joins(entry) == [GatewayJoin(HTTP_GROUP, 80, "HTTP", "n"), GatewayJoin(TLS_GROUP, 443, "HTTPS")]


def test_set_weights_writes_without_reading_first(emu: Emulator, cloud: AlibabaCloud) -> None:
    cloud.gateway.join_slb(gateway_id=GW, slb_id=SLB, groups=JOINS)
    mse = _mse(cloud, HTTP_GROUP)
    reads = emu.calls["DescribeVServerGroupAttribute"]
    cloud.slb.set_weights(vgroup_id=HTTP_GROUP, backends=[replace(b, weight=5) for b in mse])
    cloud.slb.set_weights(vgroup_id=HTTP_GROUP, backends=[replace(b, weight=0) for b in mse])
    assert emu.calls["DescribeVServerGroupAttribute"] == reads
    assert emu.calls["SetVServerGroupAttribute"] == 2
    assert [b.weight for b in _mse(cloud, HTTP_GROUP)] == [0, 0, 0]


def test_an_entry_without_port_for_a_server_on_two_ports_is_ambiguous(emu: Emulator, cloud: AlibabaCloud) -> None:
    cloud.gateway.join_slb(gateway_id=GW, slb_id=SLB, groups=[JOINS[0], GatewayJoin(HTTP_GROUP, 443, "HTTPS")])
    with pytest.raises(ProviderError) as caught:
        _raw_set(cloud, HTTP_GROUP, [{"ServerId": "eni-gw-demo-1", "Weight": "5", "Type": "eni",
                                      "ServerIp": "10.0.1.21"}])
    assert caught.value.code == "InvalidParameter" and "ambiguous" in str(caught.value.__cause__)
    _raw_set(cloud, HTTP_GROUP, [{"ServerId": "i-nginx-1", "Weight": "60"}])  # one port only: no doubt
    _raw_set(cloud, HTTP_GROUP, [{"ServerId": "eni-gw-demo-1", "Port": "443", "Weight": "5", "Type": "eni",
                                  "ServerIp": "10.0.1.21"}])
    weights = {b.key: b.weight for b in cloud.slb.backends(vgroup_id=HTTP_GROUP)}
    assert (weights[("i-nginx-1", 30080)], weights[("eni-gw-demo-1", 80)], weights[("eni-gw-demo-1", 443)]) == (
        60, 0, 5)


def test_an_eni_entry_without_its_type_is_refused(emu: Emulator, cloud: AlibabaCloud) -> None:
    cloud.gateway.join_slb(gateway_id=GW, slb_id=SLB, groups=JOINS[:1])
    with pytest.raises(ProviderError) as caught:
        _raw_set(cloud, HTTP_GROUP, [{"ServerId": "eni-gw-demo-1", "Port": "80", "Weight": "5"}])
    assert caught.value.code == "InvalidParameter"


def test_vserver_groups_are_listed_with_names_and_listeners(emu: Emulator, cloud: AlibabaCloud) -> None:
    tls_name = cloud.slb.vgroup(vgroup_id=TLS_GROUP).name
    cloud.slb.rename_vgroup(vgroup_id=HTTP_GROUP, name="migrate-bot/http")
    assert emu.calls["SetVServerGroupAttribute"] == 1
    assert cloud.slb.vgroup(vgroup_id=HTTP_GROUP).name == "migrate-bot/http"
    assert [b.weight for b in cloud.slb.backends(vgroup_id=HTTP_GROUP)] == [50, 50]
    req = slb_models.DescribeVServerGroupsRequest(region_id="cn-hangzhou", load_balancer_id=SLB,
                                                  include_listener=True)
    body = call("slb.DescribeVServerGroups", lambda: cloud.slb.client.describe_vserver_groups(req)).body
    rows = {g.vserver_group_id: g for g in body.vserver_groups.vserver_group}
    assert {k: (g.vserver_group_name, g.server_count) for k, g in rows.items()} == {
        HTTP_GROUP: ("migrate-bot/http", 2), TLS_GROUP: (tls_name, 2)}
    assert [(li.port, li.protocol) for li in rows[TLS_GROUP].associated_objects.listeners.listener] == [(443, "tcp")]
    named = slb_models.DescribeVServerGroupsRequest(region_id="cn-hangzhou", load_balancer_id=SLB,
                                                    description="migrate-bot")
    body = call("slb.DescribeVServerGroups", lambda: cloud.slb.client.describe_vserver_groups(named)).body
    assert [g.vserver_group_id for g in body.vserver_groups.vserver_group] == [HTTP_GROUP]
    assert body.vserver_groups.vserver_group[0].associated_objects is None


def test_a_node_added_later_joins_every_group_at_its_peers_weight(emu: Emulator, cloud: AlibabaCloud) -> None:
    cloud.gateway.join_slb(gateway_id=GW, slb_id=SLB, groups=JOINS)
    cloud.slb.set_weights(vgroup_id=HTTP_GROUP, backends=[replace(b, weight=w) for b, w in
                                                          zip(_mse(cloud, HTTP_GROUP), (4, 3, 3), strict=True)])
    assert emu.add_gateway_node(GW, "10.0.1.24") == "eni-gw-demo-4"
    assert [(b.server_id, b.ip, b.port, b.weight) for b in _mse(cloud, HTTP_GROUP)][-1] == (
        "eni-gw-demo-4", "10.0.1.24", 80, 4)
    assert [(b.server_id, b.port, b.weight) for b in _mse(cloud, TLS_GROUP)][-1] == ("eni-gw-demo-4", 443, 0)
    assert cloud.gateway.get_gateway(gateway_id=GW).node_ips == (*NODES, "10.0.1.24")  # type: ignore[union-attr]
    cloud.gateway.leave_slb(gateway_id=GW, slb_id=SLB)  # the newcomer leaves with the rest
    assert _mse(cloud, HTTP_GROUP) == [] and _mse(cloud, TLS_GROUP) == []


def test_a_write_that_empties_a_weighted_group_is_recorded(emu: Emulator, cloud: AlibabaCloud) -> None:
    nginx = cloud.slb.backends(vgroup_id=HTTP_GROUP)
    cloud.slb.set_weights(vgroup_id=HTTP_GROUP, backends=[replace(nginx[0], weight=0)])
    assert emu.violations == []  # the other NGINX node still carries traffic
    cloud.slb.set_weights(vgroup_id=HTTP_GROUP, backends=[replace(nginx[1], weight=0)])
    assert emu.violations == [{"action": "SetVServerGroupAttribute", "vgroup_id": HTTP_GROUP}]
    assert [b.weight for b in cloud.slb.backends(vgroup_id=HTTP_GROUP)] == [0, 0]  # recorded, not refused


def test_leaving_while_the_gateway_carries_all_traffic_is_recorded(emu: Emulator, cloud: AlibabaCloud) -> None:
    cloud.gateway.join_slb(gateway_id=GW, slb_id=SLB, groups=JOINS[:1])
    cloud.slb.set_weights(vgroup_id=HTTP_GROUP, backends=[replace(b, weight=10) for b in _mse(cloud, HTTP_GROUP)])
    nginx = [b for b in cloud.slb.backends(vgroup_id=HTTP_GROUP) if b.type == "ecs"]
    cloud.slb.set_weights(vgroup_id=HTTP_GROUP, backends=[replace(b, weight=0) for b in nginx])
    assert emu.violations == []
    cloud.gateway.leave_slb(gateway_id=GW, slb_id=SLB)
    assert emu.violations == [{"action": "DeleteGatewaySlb", "vgroup_id": HTTP_GROUP}]


def test_a_seeded_group_without_a_name_is_named_by_its_id() -> None:
    seed = load_seed()
    seed["slbs"][SLB]["vgroup_names"] = {HTTP_GROUP: "k8s/30080/nginx-ingress-lb/ingress-nginx/demo-cluster"}
    with Emulator(seed) as emu:
        cloud = AlibabaCloud.from_config(emu.config(**FAST))
        assert cloud.slb.vgroup(vgroup_id=HTTP_GROUP).name == "k8s/30080/nginx-ingress-lb/ingress-nginx/demo-cluster"
        assert cloud.slb.vgroup(vgroup_id=TLS_GROUP).name == TLS_GROUP
