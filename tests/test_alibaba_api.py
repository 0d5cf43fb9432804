"""The real SDK clients against the emulator: signatures, unknown actions and parameters,
credentials, and the standalone emulator process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alibabacloud_mse20190531 import models as mse_models
from alibabacloud_slb20140515 import models as slb_models

from commands.errors import ProviderError
from providers.alibaba import AlibabaCloud
from providers.alibaba.errors import call
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
