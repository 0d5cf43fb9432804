"""Recording proxies around what the engine is given, so `/metrics` sees provider calls, transitions and decisions.

The engine and the providers know nothing of metrics (and must not: `commands/` imports no
Redis). Wrapping the World, the Store and the Engine at the edge, in `bot/wiring.py`, gives
the numbers without touching either side. Each proxy passes every call through unchanged and
records after it; recording never raises.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from bot.metrics import APPROVAL_DECISION, ROLLBACK, Metrics
from commands.errors import ProviderError
from commands.model import Approval, Event, Migration
from commands.outcome import Outcome, Request

PORTS = ("gateway", "slb", "dns", "resolver")


def outcome_of(exc: BaseException | None) -> str:
    if exc is None:
        return "ok"
    return "temporary_error" if isinstance(exc, ProviderError) and exc.temporary else "error"


class _TimedPort:
    """One port (gateway, slb, dns, a cluster): every public method is timed under `{port}.{method}`."""

    def __init__(self, inner: Any, port: str, metrics: Metrics) -> None:
        self._inner, self._port, self._metrics = inner, port, metrics

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name.startswith("_") or not callable(attr):
            return attr
        operation = f"{self._port}.{name}"

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                result = attr(*args, **kwargs)
            except BaseException as exc:
                self._metrics.provider_call(operation, outcome_of(exc), time.perf_counter() - started)
                raise
            if isinstance(result, Iterator):  # a paged listing: its calls happen as it is read
                return self._timed_iter(result, operation, started)
            self._metrics.provider_call(operation, "ok", time.perf_counter() - started)
            return result

        return timed

    def _timed_iter(self, it: Iterator[Any], operation: str, started: float) -> Iterator[Any]:
        error: BaseException | None = None
        try:
            yield from it
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._metrics.provider_call(operation, outcome_of(error), time.perf_counter() - started)


class InstrumentedWorld:
    """The World the engine sees: the same ports, each call counted and timed."""

    def __init__(self, inner: Any, metrics: Metrics) -> None:
        self.inner = inner
        for port in PORTS:
            setattr(self, port, _TimedPort(getattr(inner, port), port, metrics))
        self._metrics = metrics

    def cluster(self, cluster_id: str) -> Any:
        return _TimedPort(self.inner.cluster(cluster_id), "cluster", self._metrics)

    def __getattr__(self, name: str) -> Any:  # observers such as SimWorld.slb_split pass through
        return getattr(self.inner, name)


class InstrumentedStore:
    """The Store the engine sees: phase changes and approval decisions are counted after each write lands."""

    def __init__(self, inner: Any, metrics: Metrics) -> None:
        self.inner, self._metrics = inner, metrics

    def create(self, migration: Migration, event: Event) -> Migration:
        created: Migration = self.inner.create(migration, event)
        self._metrics.transition(event.verb, created.phase.value)
        return created

    def commit(self, *, expected_version: int, migration: Migration, event: Event,
               approval: Approval | None = None) -> Migration:
        new: Migration = self.inner.commit(expected_version=expected_version, migration=migration, event=event,
                                           approval=approval)
        if event.phase_after != event.phase_before:
            self._metrics.transition(event.verb, event.phase_after)
        if approval is not None and not approval.pending and approval.decided_at > 0 \
                and self._metrics.first_time(f"decided:{approval.migration_id}/{approval.id}"):
            self._metrics.observe(APPROVAL_DECISION, (approval.verb, approval.state),
                                  approval.decided_at - approval.requested_at)
        return new

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class InstrumentedEngine:
    """The engine the listeners call: a rollback is timed from the engine taking it to its outcome."""

    def __init__(self, inner: Any, metrics: Metrics, clock: Callable[[], float] = time.perf_counter) -> None:
        self.inner, self._metrics, self._clock = inner, metrics, clock

    def handle(self, request: Request) -> Outcome:
        started = self._clock()
        outcome: Outcome = self.inner.handle(request)
        if outcome.verb == "rollback" and outcome.ok and not outcome.ephemeral and not outcome.replayed:
            self._metrics.observe(ROLLBACK, (), self._clock() - started)
        return outcome

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
