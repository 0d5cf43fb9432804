"""The procedure's three FAQ codes, as a user of the bot meets them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from commands.ccm import HOSTNAME, WEIGHT, generated_annotations
from commands.errors import ProviderError
from commands.faq import (
    INGRESS_CLASS_CONFLICT,
    SERVICE_ANNOTATION_NOT_MATCH,
    SERVICE_NOT_MATCH,
    annotation_mismatches,
    explain,
    nginx_still_weighted,
)
from commands.ports import GatewayJoin
from providers.alibaba import AlibabaCloud
from tests.openapi_emulator import Emulator

FAST = {"max_attempts": 2, "backoff_ms": 5, "max_backoff_ms": 20}
JOIN = GatewayJoin("rsp-demo-80", 80, "HTTP")


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as running:
        yield running


@pytest.fixture
def cloud(emu: Emulator) -> AlibabaCloud:
    return AlibabaCloud.from_config(emu.config(**FAST))


def test_class_conflict_is_caught_before_anything_changes(emu: Emulator, cloud: AlibabaCloud) -> None:
    cloud.gateway.listen(gateway_id="gw-demo", cluster="demo-cluster", ingress_class="internal")
    with pytest.raises(ProviderError) as caught:
        cloud.gateway.listen(gateway_id="gw-demo", cluster="demo-cluster", ingress_class="nginx")
    err = caught.value
    assert err.code == INGRESS_CLASS_CONFLICT
    assert "different Ingress class" in err.meaning and "internal" in err.meaning
    assert "Ingress listening settings" in err.next_step
    assert emu.calls["AddServiceSource"] == 1 and emu.calls["UpdateServiceSource"] == 0
    [source] = cloud.gateway.ingress_sources(gateway_id="gw-demo")
    assert source.ingress_class == "internal"


def test_class_conflict_answered_by_mse_itself_is_explained(emu: Emulator, cloud: AlibabaCloud) -> None:
    emu.business_error("AddServiceSource", INGRESS_CLASS_CONFLICT,
                       message=f"{INGRESS_CLASS_CONFLICT}: the cluster is associated with another ingress class")
    with pytest.raises(ProviderError) as caught:
        cloud.gateway.listen(gateway_id="gw-demo", cluster="demo-cluster", ingress_class="nginx")
    assert caught.value.code == INGRESS_CLASS_CONFLICT
    assert caught.value.request_id
    assert "step 1" in caught.value.meaning


def test_annotation_mismatch_sends_the_user_back_to_step_4b(emu: Emulator, cloud: AlibabaCloud) -> None:
    emu.business_error("AddGatewaySlb", SERVICE_ANNOTATION_NOT_MATCH)
    with pytest.raises(ProviderError) as caught:
        cloud.gateway.join_slb(gateway_id="gw-demo", slb_id="lb-demo", groups=[JOIN])
    err = caught.value
    assert err.code == SERVICE_ANNOTATION_NOT_MATCH and not err.temporary
    assert "step 4b" in err.meaning and "generated" in err.next_step


def test_service_still_weighted_says_set_weight_0_or_delete(emu: Emulator, cloud: AlibabaCloud) -> None:
    emu.business_error("DeleteGatewaySlb", "MIGRATE_SERVICE_NOT_MATCH",
                       message=f"{SERVICE_NOT_MATCH}: the service still carries weight")
    cloud.gateway.join_slb(gateway_id="gw-demo", slb_id="lb-demo", groups=[JOIN])
    with pytest.raises(ProviderError) as caught:
        cloud.gateway.leave_slb(gateway_id="gw-demo", slb_id="lb-demo")
    assert caught.value.code == SERVICE_NOT_MATCH
    assert WEIGHT in caught.value.next_step and "delete the Service" in caught.value.next_step


def test_the_table_answers_with_or_without_the_prefix() -> None:
    assert explain("MIGRATE_SERVICE_NOT_MATCH") is explain(SERVICE_NOT_MATCH)
    assert explain("Throttling.User") is None


def test_the_4b_check_names_the_wrong_annotations_and_allows_leaving_out_hostname() -> None:
    generated = generated_annotations(slb_id="lb-demo", vgroup_ports=[("rsp-demo-80", 80), ("rsp-demo-443", 443)],
                                      nginx_weight=100, in_cluster=True)
    assert annotation_mismatches(generated, generated) == []
    without_hostname = {k: v for k, v in generated.items() if k != HOSTNAME}
    assert annotation_mismatches(without_hostname, generated) == []
    assert annotation_mismatches({**generated, WEIGHT: "60"}, generated) == [WEIGHT]


def test_the_4d_check_passes_only_at_weight_0_or_when_deleted() -> None:
    assert nginx_still_weighted({WEIGHT: "10"})
    assert nginx_still_weighted({})
    assert not nginx_still_weighted({WEIGHT: "0"})
    assert not nginx_still_weighted(None)
