"""The engine on the real SDK adapters (emulator), with a simulated cluster playing the controller."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from commands.phases import Phase
from commands.steps import read_slb_weights
from providers.factory import build_world
from tests.engine_helpers import make_harness
from tests.openapi_emulator import Emulator


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as running:
        yield running


def test_rollback_reads_the_group_once_before_its_write(redis_url: str, emu: Emulator) -> None:
    config = {"alibaba": emu.config(), "clusters": {"demo-cluster": {"sim_seed": ""}}}
    world = build_world("alibaba", config)
    h = make_harness(redis_url, world=world, dwell_seconds=0)
    h.to_shifting()
    describes, writes = emu.calls["DescribeVServerGroupAttribute"], emu.calls["SetVServerGroupAttribute"]
    out = h.ok("bob", "/migrate rollback")
    assert emu.calls["SetVServerGroupAttribute"] - writes == 1
    assert emu.calls["DescribeVServerGroupAttribute"] - describes == 2  # one before the write, one read-back
    m = h.migration()
    assert m.phase is Phase.SHIFTING and read_slb_weights(world, m)["mse"] == 0
    assert "SLB holds MSE 0" in out.text
