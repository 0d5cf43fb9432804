"""Counters and histograms for `/metrics`, kept in Redis so every replica and every restart adds to the same numbers.

In Redis rather than in-process: the bot runs one worker per replica and may run several
replicas; Prometheus scraping any of them should see the team's totals, not one process's.
Recording never raises: a Redis hiccup costs a sample, never a migration step.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import redis

from bot.keys import BotKeys
from bot.logging import context
from commands.grammar import VERBS
from commands.model import Migration
from commands.render import held

log = logging.getLogger("migrate.bot.requests")
#: The `verb` label's values: the grammar's verbs and the bot's own work. Anything else a user
#: typed counts as `unknown`, so a stream of made-up words cannot grow the series without bound.
LABELLED_VERBS = frozenset(VERBS) | {"expire", "notice", "reconcile", "cancel", "card", "unknown"}


def verb_label(verb: str) -> str:
    return verb if verb in LABELLED_VERBS else "unknown"
RESULTS = ("ok", "refused", "error", "duplicate")
SEP = "\x1f"  # joins label values in hash fields; never typed into Slack


@dataclass(frozen=True)
class Histogram:
    """A Prometheus histogram whose buckets are counted in one Redis hash (non-cumulative; summed at render)."""

    name: str
    help: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...]


APPROVAL_DECISION = Histogram("migrate_approval_decision_seconds",
                              "Time from an approval request to its decision (approved, denied, expired).",
                              ("verb", "state"), (30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400))
PROVIDER_CALL = Histogram("migrate_provider_call_seconds", "Latency of calls to the cluster, MSE, SLB and DNS.",
                          ("operation",), (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
ROLLBACK = Histogram("migrate_rollback_seconds",
                     "Time from the engine taking a rollback request to its outcome (weights written and recorded).",
                     (), (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
HISTOGRAMS = (APPROVAL_DECISION, PROVIDER_CALL, ROLLBACK)


class Metrics:
    def __init__(self, client: redis.Redis, keys: BotKeys) -> None:
        self.r, self.keys = client, keys

    # ---- recording ------------------------------------------------------------------------------

    def command(self, verb: str, result: str) -> None:
        """Count one handled command or button by verb and result (ok, refused, error, duplicate).

        Every handled request passes here exactly once, whichever way it ended, so this is also
        where its one log line is written: the verb asked, user, channel and migration come from
        the bound context, the outcome from here.
        """
        extra = {"outcome": result, "verb": context().get("verb") or verb or "unknown"}
        if verb and verb != extra["verb"]:
            extra["counted_as"] = verb  # an approve tap that carried the approved step out counts as that step
        log.info("request handled", extra=extra)
        with contextlib.suppress(redis.RedisError):  # metrics never stand in the way of a migration
            self.r.hincrby(self.keys.commands(), f"{verb_label(verb)}|{result}", 1)

    def rollback(self) -> None:
        with contextlib.suppress(redis.RedisError):
            self.r.incr(self.keys.rollbacks())

    def transition(self, verb: str, phase_to: str) -> None:
        with contextlib.suppress(redis.RedisError):
            self.r.hincrby(self.keys.transitions(), f"{verb}{SEP}{phase_to}", 1)

    def provider_call(self, operation: str, outcome: str, seconds: float) -> None:
        with contextlib.suppress(redis.RedisError):
            pipe = self.r.pipeline(transaction=False)
            pipe.hincrby(self.keys.provider_calls(), f"{operation}{SEP}{outcome}", 1)
            self._observe(pipe, PROVIDER_CALL, (operation,), seconds)
            pipe.execute()

    def observe(self, histogram: Histogram, labels: tuple[str, ...], seconds: float) -> None:
        with contextlib.suppress(redis.RedisError):
            pipe = self.r.pipeline(transaction=False)
            self._observe(pipe, histogram, labels, seconds)
            pipe.execute()

    def first_time(self, event: str, *, ttl_s: int = 7 * 24 * 3600) -> bool:
        """True once per `event` across replicas (so a decision is timed once however often it is redrawn)."""
        try:
            return bool(self.r.set(self.keys.once(f"metric:{event}"), "1", nx=True, ex=ttl_s))
        except redis.RedisError:
            return False

    def _observe(self, pipe: redis.client.Pipeline, h: Histogram, labels: tuple[str, ...], seconds: float) -> None:
        key, base = self.keys.histogram(h.name), SEP.join(labels)
        index = next((i for i, le in enumerate(h.buckets) if seconds <= le), len(h.buckets))
        pipe.hincrby(key, f"{base}|{index}", 1)
        pipe.hincrbyfloat(key, f"{base}|sum", max(0.0, seconds))
        pipe.hincrby(key, f"{base}|count", 1)

    # ---- exposition -----------------------------------------------------------------------------

    def render(self, pending_approvals: Callable[[], int],
               migrations: Callable[[], Iterable[Migration]] = lambda: ()) -> str:
        """Prometheus text exposition format (version 0.0.4)."""
        out: list[str] = []
        self._counters(out, "migrate_commands_total", "Slash commands and buttons handled, by verb and result.",
                       self.keys.commands(), ("verb", "result"), sep="|")
        self._counters(out, "migrate_transitions_total", "Phase changes, by the verb that made them and the phase "
                       "reached.", self.keys.transitions(), ("verb", "phase_to"))
        _family(out, "migrate_approvals_pending", "gauge", "Approval requests waiting for a decision.")
        out.append(f"migrate_approvals_pending {pending_approvals()}")
        self._counters(out, "migrate_provider_calls_total", "Calls to the cluster, MSE, SLB and DNS, by operation "
                       "and outcome (ok, temporary_error, error).", self.keys.provider_calls(),
                       ("operation", "outcome"))
        _family(out, "migrate_rollbacks_total", "counter", "Rollbacks carried out.")
        out.append(f"migrate_rollbacks_total {int(self.r.get(self.keys.rollbacks()) or 0)}")
        for h in HISTOGRAMS:
            self._render_histogram(out, h)
        self._render_weights(out, list(migrations()))
        return "\n".join(out) + "\n"

    def _render_histogram(self, out: list[str], h: Histogram) -> None:
        _family(out, h.name, "histogram", h.help)
        raw = self._hash(self.keys.histogram(h.name), cast=float)
        series = sorted({f.rpartition("|")[0] for f in raw})
        for base in series:
            labels = dict(zip(h.labels, base.split(SEP) if h.labels else (), strict=False))
            running = 0.0
            for i, le in enumerate((*h.buckets, float("inf"))):
                running += raw.get(f"{base}|{i}", 0)
                out.append(_sample(f"{h.name}_bucket", {**labels, "le": _le(le)}, int(running)))
            out.append(_sample(f"{h.name}_sum", labels, round(raw.get(f"{base}|sum", 0.0), 6)))
            out.append(_sample(f"{h.name}_count", labels, int(raw.get(f"{base}|count", 0))))

    def _render_weights(self, out: list[str], migrations: list[Migration]) -> None:
        """Read from the store at scrape time: the gauges always show the record, never a stale copy."""
        gauges = (("migrate_mse_weight", "MSE weight of each active migration (0..100), as last read back."),
                  ("migrate_nginx_weight", "NGINX weight of each active migration (0..100), as last read back."),
                  ("migrate_mse_share_ratio", "Share of traffic on MSE for each active migration (0..1), "
                                              "the lowest moved group's as last read back."))
        for i, (name, help_text) in enumerate(gauges):
            _family(out, name, "gauge", help_text)
            for m in migrations:
                share, mse, nginx = held(m)
                value = (mse, nginx, round(share / 100, 6))[i]
                out.append(_sample(name, {"migration": m.id, "cluster": m.cluster}, value))

    def _counters(self, out: list[str], name: str, help_text: str, key: str, labels: tuple[str, str], *,
                  sep: str = SEP) -> None:
        """One counter family kept as a Redis hash whose fields are two label values joined by `sep`."""
        counts = self._hash(key)
        _family(out, name, "counter", help_text)
        for field in sorted(counts):
            first, _, second = field.rpartition(sep) if sep == "|" else field.partition(sep)
            out.append(_sample(name, dict(zip(labels, (first, second), strict=True)), counts[field]))

    def _hash(self, key: str, cast: Callable[[str], float] = int) -> dict[str, float]:
        return {_s(k): cast(_s(v)) for k, v in self.r.hgetall(key).items()}


def _family(out: list[str], name: str, kind: str, help_text: str) -> None:
    out += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]


def _sample(name: str, labels: dict[str, str], value: float) -> str:
    inner = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
    return f"{name}{{{inner}}} {value}" if inner else f"{name} {value}"


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else f"{bound:g}"


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
