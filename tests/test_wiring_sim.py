"""Under `serve` the simulated world lives in a file, so a restarted job worker finds it as it was."""

from __future__ import annotations

import dataclasses
import os

from bot.wiring import sim_on_disk
from providers.factory import build_world


def test_a_sim_world_without_a_state_file_gets_one_that_processes_share() -> None:
    config = sim_on_disk({"sim": {}}, "sim")
    path = config["sim"]["state_file"]
    try:
        first = build_world("sim", config)
        nginx = first.slb.backends(vgroup_id="rsp-demo-80")[0]
        first.slb.set_weights(vgroup_id="rsp-demo-80", backends=[dataclasses.replace(nginx, weight=7)])
        again = build_world("sim", config)  # what a job worker forked again would build
        assert {b.server_id: b.weight for b in again.slb.backends(vgroup_id="rsp-demo-80")}["i-nginx-1"] == 7
    finally:
        for leftover in (path, path + ".lock"):
            if os.path.exists(leftover):
                os.unlink(leftover)


def test_a_given_state_file_and_the_cloud_are_left_alone() -> None:
    assert sim_on_disk({"sim": {"state_file": "/x.json"}}, "sim")["sim"]["state_file"] == "/x.json"
    assert sim_on_disk({"alibaba": {}}, "alibaba") == {"alibaba": {}}
