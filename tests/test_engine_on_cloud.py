"""The engine on the real SDK adapters (emulator), with a simulated cluster playing the controller."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from commands.phases import Phase
from providers.factory import build_world
from tests.engine_helpers import make_harness, read_slb_weights
from tests.openapi_emulator import Emulator


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as running:
        yield running


def test_rollback_writes_every_group_before_reading_anything(redis_url: str, emu: Emulator) -> None:
    config = {"alibaba": emu.config(), "clusters": {"demo-cluster": {"sim_seed": ""}}}
    world = build_world("alibaba", config)
    h = make_harness(redis_url, world=world, dwell_seconds=0)
    h.to_shifting()
    start = len(emu.log)
    out = h.ok("bob", "/migrate rollback")
    calls = emu.log[start:]
    # The urgent writes come first, one per moved group, from the backends the last step saw;
    # then each group is read back once (nodes added since would be zeroed there; the answer is that read).
    assert calls == ["SetVServerGroupAttribute"] * 2 + ["DescribeVServerGroupAttribute"] * 2
    m = h.migration()
    assert m.phase is Phase.SHIFTING and read_slb_weights(world, m)["mse"] == 0
    assert "rsp-demo-80 (80/TCP) MSE 0 / NGINX 100; rsp-demo-443 (443/TCP) MSE 0 / NGINX 100" in out.text
