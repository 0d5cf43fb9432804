"""The simulated world's state: one JSON-able dict, seeded from YAML, optionally shared by file.

Every port method runs inside `SimState.op(name)`, which injects the faults and latency
the tests ask for, and, when a path is given, holds an exclusive file lock and reloads and
saves the state, so several processes (two `serve` replicas, a crashed and a restarted one)
see one world.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import random
import threading
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from commands.errors import ProviderError

DEFAULT_SEED = "seed.yaml"


def load_seed(path: str | Path | None = None) -> dict[str, Any]:
    """The seed as a dict: a YAML file, or the default seed shipped in the package."""
    text = Path(path).read_text() if path else resources.files("providers.sim").joinpath(DEFAULT_SEED).read_text()
    data = yaml.safe_load(text) or {}
    return normalise(data)


def normalise(data: dict[str, Any]) -> dict[str, Any]:
    """Fill the defaults a hand-written seed leaves out."""
    data = copy.deepcopy(data)
    data.setdefault("clusters", {})
    data.setdefault("gateways", {})
    data.setdefault("slbs", {})
    dns = data.setdefault("dns", {})
    dns.setdefault("zones", [])
    records = dns.get("records") or []
    if isinstance(records, list):
        dns["records"] = {}
        for i, r in enumerate(records, start=1):
            rec = {"id": f"rec-{i}", "type": "A", "weight": 1, "enabled": True, "ttl": 600, "line": "default", **r}
            dns["records"][rec["id"]] = rec
    dns.setdefault("weighted", {})
    dns.setdefault("next_id", len(dns["records"]) + 1)
    for cluster in data["clusters"].values():
        cluster.setdefault("ingresses", [])
        cluster.setdefault("services", {})
        for svc in cluster["services"].values():
            svc.setdefault("annotations", {})
            svc.setdefault("labels", {})
            svc.setdefault("resource_version", 1)
    for gw in data["gateways"].values():
        gw.setdefault("sources", {})
        gw.setdefault("slbs", {})
        gw.setdefault("node_ips", [])
    for slb in data["slbs"].values():
        slb.setdefault("tags", {})
        slb.setdefault("vgroups", {})
        names = slb.setdefault("vgroup_names", {})
        for vgroup_id in slb["vgroups"]:
            names.setdefault(vgroup_id, vgroup_id)
    data.setdefault("violations", [])
    data.setdefault("faults", {})
    data.setdefault("latency", {})
    data.setdefault("calls", {})
    return data


def weighted_groups(data: dict[str, Any]) -> set[tuple[str, str]]:
    """(SLB, group) pairs that send traffic somewhere: a listener uses them and a backend has weight > 0."""
    out = set()
    for slb_id, slb in data["slbs"].items():
        used = {li.get("vgroup_id") for li in slb.get("listeners", [])}
        for vgroup_id, backends in slb["vgroups"].items():
            if vgroup_id in used and any(int(b["weight"]) > 0 for b in backends):
                out.add((slb_id, vgroup_id))
    return out


def _check_no_group_emptied(data: dict[str, Any], alive: set[tuple[str, str]], op: str) -> None:
    """The invariant a migration must keep: a listener's group never goes from serving to empty.

    An SLB listener whose vServer group holds no backend above weight 0 drops every connection
    (cloud-api.md §2: weight 0 = no traffic); issue 10 makes it a rule for every write.
    """
    for slb_id, vgroup_id in sorted(alive - weighted_groups(data)):
        if vgroup_id in data["slbs"].get(slb_id, {}).get("vgroups", {}):
            data["violations"].append({"op": op, "slb": slb_id, "vgroup": vgroup_id})


#: While a test runs, every world made in this process, so the suite can check each one's
#: invariant afterwards (None outside tests: nothing is kept).
TRACKED: list[SimState] | None = None


class SimState:
    """Holds the world dict; `op()` is the one door every simulated call goes through."""

    def __init__(self, data: dict[str, Any], *, path: str | Path | None = None) -> None:
        if TRACKED is not None:
            TRACKED.append(self)
        self.data = data
        self.path = Path(path) if path else None
        self._lock = threading.RLock()
        self._rng = random.Random(0)
        self._holds: dict[str, list[tuple[threading.Event, threading.Event]]] = {}
        if self.path and not self.path.exists():
            self._save()

    @classmethod
    def from_seed(cls, seed: str | Path | None = None, *, path: str | Path | None = None) -> SimState:
        if path and Path(path).exists() and Path(path).stat().st_size:
            return cls(json.loads(Path(path).read_text()), path=path)
        return cls(load_seed(seed), path=path)

    @contextlib.contextmanager
    def op(self, name: str) -> Iterator[dict[str, Any]]:
        """Run one simulated call: latency, injected failures, then the state to act on."""
        delay = float(self._peek("latency").get(name, 0) or self._peek("latency").get("*", 0) or 0)
        if delay:
            with self._mutate() as data:  # so another process can tell the call is being held
                data.setdefault("arrived", {})[name] = data.get("arrived", {}).get(name, 0) + 1
            time.sleep(delay)
        held = self._holds.get(name)
        if held:
            arrived, release = held.pop(0)
            arrived.set()
            release.wait(30)
        with self._lock, self._file_lock():
            if self.path:
                self.data = json.loads(self.path.read_text())
            calls = self.data["calls"]
            calls[name] = calls.get(name, 0) + 1
            fault = self.data["faults"].get(name) or self.data["faults"].get("*")
            if fault and (fault.get("remaining", 0) > 0 or self._rng.random() < fault.get("rate", 0.0)):
                fault["remaining"] = max(0, fault.get("remaining", 0) - 1)
                self._save()
                raise ProviderError(
                    fault.get("message", "the simulated provider failed this call on purpose"),
                    code=fault.get("code", "ServiceUnavailable"),
                    temporary=bool(fault.get("temporary", True)),
                    operation=name,
                    request_id=f"sim-{calls[name]}",
                    next_step="try again" if fault.get("temporary", True) else "check the simulated world",
                )
            alive = weighted_groups(self.data)
            yield self.data
            _check_no_group_emptied(self.data, alive, name)
            self._save()

    # ---- test and demo controls ----------------------------------------------------------

    def fail_next(self, op: str, times: int = 1, *, code: str = "Throttling.User", temporary: bool = True,
                  message: str = "request was denied due to user flow control") -> None:
        """Make the next `times` calls of `op` ("*" for any) fail with `code`."""
        with self._mutate() as data:
            data["faults"][op] = {"remaining": times, "code": code, "temporary": temporary, "message": message}

    def fail_rate(self, op: str, rate: float, *, seed: int = 0, code: str = "ServiceUnavailable",
                  message: str = "the service is temporarily unavailable") -> None:
        """Make each call of `op` ("*" for any) fail with probability `rate`, reproducibly."""
        self._rng = random.Random(seed)
        with self._mutate() as data:
            data["faults"][op] = {"remaining": 0, "rate": rate, "code": code, "temporary": True, "message": message}

    def clear_faults(self) -> None:
        with self._mutate() as data:
            data["faults"] = {}
            data["latency"] = {}

    def hold(self, op: str) -> tuple[threading.Event, threading.Event]:
        """Stop the next call of `op` before it acts (in this process): (arrived, release) events."""
        pair = (threading.Event(), threading.Event())
        self._holds.setdefault(op, []).append(pair)
        return pair

    def add_latency(self, op: str, seconds: float) -> None:
        with self._mutate() as data:
            data["latency"][op] = seconds

    def arrived(self, op: str) -> int:
        """Calls of `op` that reached an injected latency (they may still be sleeping in it)."""
        return int(self._peek("arrived").get(op, 0))

    def calls(self, op: str) -> int:
        return int(self._peek("calls").get(op, 0))

    def violations(self) -> list[dict[str, Any]]:
        """Writes that left a vServer group which carried traffic with no backend above weight 0."""
        return list(self.snapshot().get("violations", []))

    def take_violations(self) -> list[dict[str, Any]]:
        """The violations so far, forgetting them (a test that causes one on purpose)."""
        with self._mutate() as data:
            found, data["violations"] = list(data["violations"]), []
        return found

    def snapshot(self) -> dict[str, Any]:
        with self._lock, self._file_lock():
            if self.path:
                self.data = json.loads(self.path.read_text())
            return copy.deepcopy(self.data)

    @contextlib.contextmanager
    def _mutate(self) -> Iterator[dict[str, Any]]:
        with self._lock, self._file_lock():
            if self.path:
                self.data = json.loads(self.path.read_text())
            yield self.data
            self._save()

    def _peek(self, key: str) -> dict[str, Any]:
        if self.path and self.path.exists():
            try:
                return dict(json.loads(self.path.read_text()).get(key, {}))
            except ValueError:
                return {}
        return dict(self.data.get(key, {}))

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        if not self.path:
            yield
            return
        with open(str(self.path) + ".lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _save(self) -> None:
        if self.path:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.data))
            tmp.replace(self.path)
