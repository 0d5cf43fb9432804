"""Rollback latency: a signed request (slash command or Rollback button) to the SLB's weight-0 write.

The clock stops when the emulated SLB *receives* the write that sets the MSE servers to
weight 0 (`SetVServerGroupAttribute`, every listed server at 0), timestamped inside the
emulator, which runs in this process. The baseline is the same write made directly through
the real SLB SDK client to the same emulator, in the same run, interleaved with the bot's
samples, timed to the same point (the emulator receiving it).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from alibabacloud_slb20140515 import models as slb_models
from alibabacloud_slb20140515.client import Client as SlbClient

from bench import wire
from bench.botdrive import ALICE, BOB, BotDriver
from bench.common import summary_ms
from bot.actions import ActionId
from commands.ccm import serves
from commands.model import Migration
from providers.alibaba.config import AlibabaSettings, sdk_config
from tests.openapi_emulator import Emulator

WRITE = "SetVServerGroupAttribute"


class WatchedEmulator(Emulator):
    """The emulator, plus the arrival time of the first all-zero weight write after `arm()`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._armed = False
        self._hit = threading.Event()
        self._lock = threading.Lock()
        self.hit_at = 0.0

    def arm(self) -> None:
        with self._lock:
            self._armed, self.hit_at = True, 0.0
            self._hit.clear()

    def wait_hit(self, timeout: float = 15.0) -> float:
        if not self._hit.wait(timeout):
            raise TimeoutError(f"no weight-0 {WRITE} reached the emulator within {timeout:.0f}s")
        return self.hit_at

    def handle(self, method: str, target: str, headers: dict[str, str],
               body: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
        at = time.perf_counter()
        answer = super().handle(method, target, headers, body)
        if self._armed and answer[0] == 200 and headers.get("x-acs-action") == WRITE and _all_zero(target):
            with self._lock:
                if self._armed:
                    self._armed, self.hit_at = False, at
                    self._hit.set()
        return answer


def _all_zero(target: str) -> bool:
    query = dict(parse_qsl(urlsplit(target).query, keep_blank_values=True))
    try:
        servers = json.loads(query.get("BackendServers", "[]"))
    except ValueError:
        return False
    return bool(servers) and all(str(s.get("Weight", "")) == "0" for s in servers)


class Baseline:
    """The bare SDK call: one SetVServerGroupAttribute setting the gateway's servers to 0."""

    def __init__(self, emu: Emulator, m: Migration) -> None:
        settings = AlibabaSettings.from_dict(emu.config())
        self.emu, self.client = emu, SlbClient(sdk_config(settings, "slb"))
        assert m.slb is not None
        vgroup_id = m.slb.groups[0].vgroup_id  # one group: the floor the bot's rollback is compared with
        described = self.client.describe_vserver_group_attribute(slb_models.DescribeVServerGroupAttributeRequest(
            region_id=settings.region, vserver_group_id=vgroup_id)).body
        entries = [{"ServerId": b.server_id, "Weight": "0", "Port": str(b.port), "Type": b.type or "ecs",
                    "ServerIp": b.server_ip} for b in described.backend_servers.backend_server
                   if not serves(b.description or "", namespace=m.slb.namespace, service=m.slb.service)]
        if not entries:
            raise RuntimeError("the gateway has no servers in the vServer group; was the switch done?")
        self.request = slb_models.SetVServerGroupAttributeRequest(
            region_id=settings.region, vserver_group_id=vgroup_id, backend_servers=json.dumps(entries))

    def sample(self, emu: WatchedEmulator) -> tuple[float, float]:
        """(seconds to the emulator receiving the write, seconds for the whole SDK call)."""
        emu.arm()
        t0 = time.perf_counter()
        self.client.set_vserver_group_attribute(self.request)
        done = time.perf_counter()
        return emu.wait_hit() - t0, done - t0


def bot_sample(drv: BotDriver, emu: WatchedEmulator, *, via: str, weight: int) -> tuple[float, float]:
    """Shift to `weight`, then roll back `via` "command" or "button": (seconds to the write, seconds to the ack)."""
    m = drv.set_weight(weight)
    if via == "button":
        body = drv.send.tap_body(BOB, drv.card(m), ActionId.ROLLBACK)
    else:
        body = drv.send.command_body(ALICE, "rollback")
    req = wire.prepare(drv.send.bot_url, body)
    emu.arm()
    t0, ack, status = wire.timed(req)
    if status != 200:
        raise RuntimeError(f"rollback {via} answered HTTP {status}")
    hit = emu.wait_hit()
    drv.settled("shifting", mse_weight=0)
    return hit - t0, ack


def run(drv: BotDriver, emu: WatchedEmulator, *, samples: int, warmup: int = 3) -> dict[str, Any]:
    """`samples` rollbacks by command and as many by button, each followed by one baseline call."""
    m = drv.migration()
    assert m is not None and m.slb is not None, "drive the migration past the switch first"
    base = Baseline(emu, m)
    got: dict[str, list[float]] = {"command": [], "button": [], "baseline": [], "baseline_call": [],
                                   "command_ack": [], "button_ack": []}
    weights = [10, 25, 50, 100, 5]
    for i in range(warmup + samples):
        for via in ("command", "button"):
            write, ack = bot_sample(drv, emu, via=via, weight=weights[i % len(weights)])
            to_write, call = base.sample(emu)
            if i >= warmup:
                got[via].append(write)
                got[f"{via}_ack"].append(ack)
                got["baseline"].append(to_write)
                got["baseline_call"].append(call)
    out = {k: summary_ms(v) for k, v in got.items()}
    bot = got["command"] + got["button"]
    out["bot"] = summary_ms(bot)
    for key in ("command", "button", "bot"):
        out[key]["added_p50_ms"] = out[key]["p50_ms"] - out["baseline"]["p50_ms"]
        out[key]["added_p99_ms"] = out[key]["p99_ms"] - out["baseline"]["p99_ms"]
        out[key]["ratio_p50"] = out[key]["p50_ms"] / out["baseline"]["p50_ms"]
        out[key]["ratio_p99"] = out[key]["p99_ms"] / out["baseline"]["p99_ms"]
    out["target_added_p99_ms"] = 50.0
    out["met"] = out["bot"]["added_p99_ms"] < 50.0
    out["raw_ms"] = {k: [round(x * 1000, 3) for x in v] for k, v in got.items()}
    return out
