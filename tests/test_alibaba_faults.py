"""Throttling, 5xx and slow answers: the SDK retries a bounded number of times, then the
user sees a provider error carrying the cloud's code and request id."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from commands.errors import ProviderError
from commands.ports import Backend, GatewayJoin
from providers.alibaba import AlibabaCloud
from tests.openapi_emulator import Emulator

ATTEMPTS = 3
FAST = {"max_attempts": ATTEMPTS, "backoff_ms": 5, "max_backoff_ms": 20, "read_timeout_ms": 3000}
JOINS = [GatewayJoin("rsp-demo-80", 80, "HTTP"), GatewayJoin("rsp-demo-443", 443, "HTTPS")]
NODES = ["10.0.1.21", "10.0.1.22", "10.0.1.23"]


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(retry_after_ms=10) as running:
        yield running


@pytest.fixture
def cloud(emu: Emulator) -> AlibabaCloud:
    return AlibabaCloud.from_config(emu.config(**FAST))


def test_throttling_is_retried_then_succeeds(emu: Emulator, cloud: AlibabaCloud) -> None:
    emu.throttle("DescribeVServerGroupAttribute", times=ATTEMPTS - 1)
    backends = cloud.slb.backends(vgroup_id="rsp-demo-80")
    assert [b.server_id for b in backends] == ["i-nginx-1", "i-nginx-2"]
    assert emu.calls["DescribeVServerGroupAttribute"] == ATTEMPTS


def test_throttling_that_does_not_stop_ends_in_a_temporary_error(emu: Emulator, cloud: AlibabaCloud) -> None:
    emu.throttle("SetVServerGroupAttribute", times=None)
    with pytest.raises(ProviderError) as caught:
        cloud.slb.set_weights(vgroup_id="rsp-demo-80", backends=[Backend("i-nginx-1", "10.0.0.11", 30080, 40)])
    err = caught.value
    assert err.code == "Throttling.User"
    assert err.temporary and err.request_id and err.next_step
    assert err.operation == "slb.SetVServerGroupAttribute"
    assert emu.calls["SetVServerGroupAttribute"] == ATTEMPTS
    assert [b.weight for b in cloud.slb.backends(vgroup_id="rsp-demo-80")] == [50, 50]


def test_a_5xx_is_retried_then_succeeds(emu: Emulator, cloud: AlibabaCloud) -> None:
    emu.fail("AddDomainRecord", times=1, status=503)
    record = cloud.dns.add_record(domain="shop.example.com", type="A", value="47.100.0.20", enabled=False)
    assert (record.value, record.enabled) == ("47.100.0.20", False)
    assert emu.calls["AddDomainRecord"] == 2
    assert len(cloud.dns.records(domain="shop.example.com")) == 2


def test_lasting_5xx_gives_the_code_and_request_id(emu: Emulator, cloud: AlibabaCloud) -> None:
    emu.fail("ListGateway", times=None, status=500, code="InternalError", message="The request processing has failed.")
    with pytest.raises(ProviderError) as caught:
        cloud.gateway.get_gateway(gateway_id="gw-demo")
    err = caught.value
    assert (err.code, err.temporary) == ("InternalError", True)
    assert err.request_id in str(err)
    assert emu.calls["ListGateway"] == ATTEMPTS


def test_a_client_error_is_not_retried(emu: Emulator, cloud: AlibabaCloud) -> None:
    with pytest.raises(ProviderError) as caught:
        cloud.slb.set_scheduler(slb_id="lb-demo", port=8080, protocol="TCP", scheduler="wrr")
    assert (caught.value.code, caught.value.temporary) == ("InvalidParameter", False)
    assert emu.calls["SetLoadBalancerTCPListenerAttribute"] == 1


def test_a_slow_answer_times_out_and_the_retry_succeeds(emu: Emulator) -> None:
    cloud = AlibabaCloud.from_config(emu.config(**{**FAST, "read_timeout_ms": 300}))
    emu.slow("DescribeLoadBalancerAttribute", seconds=1.0, times=1)
    lb = cloud.slb.describe(slb_id="lb-demo")
    assert lb is not None and lb.address == "47.100.0.10"
    assert emu.calls["DescribeLoadBalancerAttribute"] == 2


def test_an_api_that_never_answers_in_time_is_a_temporary_network_error(emu: Emulator) -> None:
    cloud = AlibabaCloud.from_config(emu.config(**{**FAST, "read_timeout_ms": 200, "max_attempts": 2}))
    emu.slow("DescribeSubDomainRecords", seconds=0.6, times=None)
    with pytest.raises(ProviderError) as caught:
        cloud.dns.records(domain="shop.example.com")
    assert (caught.value.code, caught.value.temporary) == ("NetworkError", True)
    assert emu.calls["DescribeSubDomainRecords"] == 2


def test_random_throttling_on_every_action_still_completes_a_join(emu: Emulator) -> None:
    cloud = AlibabaCloud.from_config(emu.config(**{**FAST, "max_attempts": 8}))
    emu.throttle("*", times=None, probability=0.3)
    cloud.gateway.join_slb(gateway_id="gw-demo", slb_id="lb-demo", groups=JOINS)
    emu.clear_faults()
    for vgroup_id, port in (("rsp-demo-80", 80), ("rsp-demo-443", 443)):
        mse = [b for b in cloud.slb.backends(vgroup_id=vgroup_id) if b.type == "eni"]
        assert [(b.ip, b.port, b.weight) for b in mse] == [(ip, port, 0) for ip in NODES]


def test_an_add_gateway_slb_whose_answer_was_lost_is_not_an_error(emu: Emulator) -> None:
    # The first answer is lost after the association was made; the retry meets SlbAlreadyBound,
    # and the adapter sees in ListGatewaySlb that what it wanted is there.
    cloud = AlibabaCloud.from_config(emu.config(**{**FAST, "read_timeout_ms": 300}))
    emu.slow("AddGatewaySlb", seconds=0.8, times=1)
    cloud.gateway.join_slb(gateway_id="gw-demo", slb_id="lb-demo", groups=JOINS)
    assert emu.calls["AddGatewaySlb"] == 2
    assert len(cloud.gateway.joined(gateway_id="gw-demo", slb_id="lb-demo")) == 2
    assert len(emu.state.gateways["gw-demo"]["links"]) == 1


def test_a_refused_add_gateway_slb_is_reported(emu: Emulator, cloud: AlibabaCloud) -> None:
    emu.business_error("AddGatewaySlb", "SlbAlreadyBound", times=None)
    with pytest.raises(ProviderError) as caught:
        cloud.gateway.join_slb(gateway_id="gw-demo", slb_id="lb-demo", groups=JOINS)
    assert "SlbAlreadyBound" in str(caught.value) and not caught.value.temporary
    assert emu.calls["AddGatewaySlb"] == 1 and emu.calls["ListGatewaySlb"] == 2  # looked again before giving up


def test_a_retried_add_that_had_landed_is_not_added_twice(emu: Emulator, cloud: AlibabaCloud) -> None:
    # The first answer is lost after the record was created; the retry meets a duplicate.
    cloud_short = AlibabaCloud.from_config(emu.config(**{**FAST, "read_timeout_ms": 300}))
    emu.slow("AddDomainRecord", seconds=0.8, times=1)
    record = cloud_short.dns.add_record(domain="api.example.com", type="A", value="47.100.0.20", enabled=True)
    values = sorted(r.value for r in cloud.dns.records(domain="api.example.com"))
    assert values == ["47.100.0.10", "47.100.0.20"]
    assert record.value == "47.100.0.20"
