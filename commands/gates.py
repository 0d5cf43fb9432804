"""Health gates: what must hold on MSE, compared with NGINX on the same traffic, before traffic moves on.

Pure: gates and the analysis settings are parsed from the config here (bad config is refused
in one line naming the key), and judged over readings a source took. A gate whose reading is
missing fails safe: no increase, and never an automatic rollback on a reading nobody took.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from commands.errors import UserError

SOURCES = frozenset({"slb_health", "prometheus"})
#: Query templates comparing MSE (Higress/Envoy metric names) with ingress-nginx on the same
#: traffic; `{window}` becomes the gate's window. Every one can be replaced in the config.
TEMPLATES: Mapping[str, tuple[str, str, str]] = {
    # name: (MSE query, NGINX query, unit). `or vector(0)`: a gateway that has served no 5xx yet
    # has no 5xx series at all, and that is a success rate of 100%, not "no data".
    "success_rate": (
        '100 * (1 - (sum(rate(envoy_http_downstream_rq_xx{envoy_response_code_class="5"}[{window}])) or vector(0)) '
        '/ sum(rate(envoy_http_downstream_rq_total[{window}])))',
        '100 * (1 - (sum(rate(nginx_ingress_controller_requests{status=~"5.."}[{window}])) or vector(0)) '
        '/ sum(rate(nginx_ingress_controller_requests[{window}])))',
        "%"),
    "p99_latency": (
        "histogram_quantile(0.99, sum by (le) (rate(envoy_http_downstream_rq_time_bucket[{window}])))",
        "1000 * histogram_quantile(0.99, sum by (le) "
        "(rate(nginx_ingress_controller_request_duration_seconds_bucket[{window}])))",
        " ms"),
}
_RELATIVE = re.compile(r"^nginx\s*(?:([+-])\s*([0-9]+(?:\.[0-9]+)?))?$")
_DURATION = re.compile(r"^([0-9]+)(s|m|h)$")
_UNITS = {"s": 1, "m": 60, "h": 3600}


@dataclass(frozen=True)
class Threshold:
    """A bound, absolute (`99.5`) or relative to NGINX's reading (`nginx - 0.5`)."""

    value: float
    relative: bool = False

    def against(self, nginx: float | None) -> float | None:
        if not self.relative:
            return self.value
        return None if nginx is None else nginx + self.value

    def describe(self) -> str:
        if not self.relative:
            return f"{self.value:g}"
        return "NGINX" if self.value == 0 else f"NGINX {'+' if self.value > 0 else '-'} {abs(self.value):g}"


@dataclass(frozen=True)
class Gate:
    name: str
    source: str
    query: str = ""  # MSE's PromQL (prometheus) or empty (slb_health)
    nginx_query: str = ""
    unit: str = ""
    minimum: Threshold | None = None
    maximum: Threshold | None = None
    window: int = 300  # seconds

    def promql(self, side: str) -> str:
        """The query for `mse` or `nginx`, with the window filled in (`5m`)."""
        text = self.query if side == "mse" else self.nginx_query
        return text.replace("{window}", format_window(self.window))


@dataclass(frozen=True)
class Analysis:
    interval: int = 60
    failures_before_rollback: int = 3
    max_step_percent: float = 25.0
    min_soak_before_verify: int = 0  # seconds at the final share before `verify`; 0: no minimum


@dataclass(frozen=True)
class Reading:
    """What a source saw for one gate; `error` says why a side is missing."""

    mse: float | None
    nginx: float | None = None
    error: str = ""


@dataclass(frozen=True)
class Verdict:
    """A gate's judgement. `unknown` when it could not be judged (no reading, or no NGINX reading
    for a bound relative to NGINX): it holds increases but never counts towards a rollback."""

    gate: Gate
    reading: Reading
    ok: bool
    why: str = ""
    unknown: bool = False

    def short(self) -> str:
        """`✓ success 99.96% (NGINX 99.95%)`, or `✗ p99 420 ms (max NGINX + 50)`."""
        mark = "✓" if self.ok else "✗"
        if self.reading.mse is None:
            return f"{mark} {self.gate.name} unknown ({self.reading.error or 'no data'})"
        text = f"{mark} {self.gate.name} {_num(self.reading.mse)}{self.gate.unit}"
        if self.reading.nginx is not None:
            text += f" (NGINX {_num(self.reading.nginx)}{self.gate.unit})"
        if not self.ok and self.why:
            text += f" [{self.why}]"
        return text


DEFAULT_GATES = (Gate("backends", "slb_health", unit="% healthy", minimum=Threshold(100.0), window=0),)
Reader = Callable[[Gate], Reading]


def judge(gate: Gate, reading: Reading) -> Verdict:
    """Whether a reading passes; a missing one fails (safe: no increase), with the reason."""
    if reading.mse is None or not math.isfinite(reading.mse):
        return Verdict(gate, reading, False, reading.error or "no data", unknown=True)
    nginx = reading.nginx if reading.nginx is not None and math.isfinite(reading.nginx) else None
    for bound, name in ((gate.minimum, "min"), (gate.maximum, "max")):
        if bound is None:
            continue
        limit = bound.against(nginx)
        if limit is None:
            return Verdict(gate, reading, False, f"no NGINX reading to compare with ({reading.error or 'no data'})",
                           unknown=True)
        if (reading.mse < limit) if name == "min" else (reading.mse > limit):
            return Verdict(gate, reading, False, f"{name} {bound.describe()} = {_num(limit)}{gate.unit}")
    return Verdict(gate, reading, True)


def evaluate(gates: Sequence[Gate], read: Reader) -> list[Verdict]:
    return [judge(g, read(g)) for g in gates]


def applicable(gates: Sequence[Gate], method: str) -> list[Gate]:
    """The gates that mean something for a method: SLB health checks only where the SLB is reused."""
    return [g for g in gates if g.source != "slb_health" or method == "slb"]


def summary(verdicts: Sequence[Verdict]) -> str:
    """One line for the card and the answers: `✓ backends 100% healthy · ✗ p99 420 ms (NGINX 175 ms) [...]`."""
    return " · ".join(v.short() for v in verdicts)


def failing(verdicts: Sequence[Verdict]) -> list[Verdict]:
    """Gates that were read and failed: these count towards an automatic rollback, whatever the
    others say (one unreadable gate must not hide another's real failure)."""
    return [v for v in verdicts if not v.ok and not v.unknown]


def unknown(verdicts: Sequence[Verdict]) -> list[Verdict]:
    return [v for v in verdicts if v.unknown]


# ---- config ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GateConfig:
    gates: tuple[Gate, ...] = DEFAULT_GATES
    analysis: Analysis = field(default_factory=Analysis)


def parse(raw_gates: Any, raw_analysis: Any) -> GateConfig:
    """`gates:` and `analysis:` from the config; a mistake raises UserError naming the key."""
    gates = DEFAULT_GATES if raw_gates is None else tuple(_gate(i, g) for i, g in enumerate(_list(raw_gates)))
    names = [g.name for g in gates]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UserError(f"gates: the name `{dupes[0]}` is used twice; give each gate its own name.")
    return GateConfig(gates, _analysis(raw_analysis))


def _list(raw: Any) -> list[Any]:
    if not isinstance(raw, list):
        raise UserError("gates: must be a list of {name, source, query, min|max, window}.")
    return raw


def _gate(i: int, raw: Any) -> Gate:
    where = f"gates[{i}]"
    if not isinstance(raw, dict):
        raise UserError(f"{where}: must be a mapping like {{name: success, source: prometheus, "
                        "query: success_rate, min: nginx - 0.5, window: 5m}.")
    extra = sorted(str(k) for k in raw if k not in {"name", "source", "query", "nginx_query", "min", "max", "window",
                                                     "unit"})
    if extra:
        raise UserError(f"{where}.{extra[0]}: unknown key; a gate has name, source, query, nginx_query, min, max, "
                        "window, unit.")
    for key in ("name", "source", "query", "nginx_query", "unit"):
        if key in raw and not isinstance(raw[key], str):
            raise UserError(f"{where}.{key}: must be text, not {type(raw[key]).__name__}.")
    name = str(raw.get("name") or "").strip()
    if not name:
        raise UserError(f"{where}.name: every gate needs a name.")
    source = str(raw.get("source") or "")
    if source not in SOURCES:
        raise UserError(f"{where}.source: `{source}` is not a source; use one of {', '.join(sorted(SOURCES))}.")
    if raw.get("min") is None and raw.get("max") is None:
        raise UserError(f"{where}: give `min` or `max` (a number, or relative to NGINX like `nginx - 0.5`).")
    minimum = _threshold(f"{where}.min", raw.get("min"))
    maximum = _threshold(f"{where}.max", raw.get("max"))
    if minimum and maximum and minimum.relative == maximum.relative and minimum.value > maximum.value:
        raise UserError(f"{where}.max: is below `min`, so the gate could never pass.")
    window = _duration(f"{where}.window", raw.get("window", "5m"))
    query, nginx_query, unit = "", "", str(raw.get("unit", ""))
    if source == "prometheus":
        query, nginx_query, unit = _queries(where, raw, unit)
    elif source == "slb_health":
        unit = unit or "% healthy"
    relative = [t for t in (minimum, maximum) if t is not None and t.relative]
    if relative and source == "prometheus" and not nginx_query:
        raise UserError(f"{where}.nginx_query: a threshold relative to NGINX needs NGINX's query too.")
    return Gate(name, source, query, nginx_query, unit, minimum, maximum, window)


def _queries(where: str, raw: dict[str, Any], unit: str) -> tuple[str, str, str]:
    query = str(raw.get("query") or "")
    if not query:
        raise UserError(f"{where}.query: a prometheus gate needs a query: PromQL, or one of "
                        f"{', '.join(TEMPLATES)}.")
    if query in TEMPLATES:
        mse, nginx, default_unit = TEMPLATES[query]
        return mse, str(raw.get("nginx_query") or nginx), unit or default_unit
    if query.count("(") != query.count(")") or query.count("[") != query.count("]"):
        raise UserError(f"{where}.query: the brackets do not balance in `{query[:60]}`.")
    return query, str(raw.get("nginx_query") or ""), unit


def _threshold(where: str, raw: Any) -> Threshold | None:
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise UserError(f"{where}: `{raw}` is not a threshold; give a number or `nginx - 0.5`.")
    if isinstance(raw, int | float):
        if not math.isfinite(raw):
            raise UserError(f"{where}: must be a finite number.")
        return Threshold(float(raw))
    text = str(raw).strip().lower()
    found = _RELATIVE.match(text)
    if found:
        sign, amount = found.group(1), float(found.group(2) or 0)
        if not math.isfinite(amount):
            raise UserError(f"{where}: must be a finite number.")
        return Threshold(-amount if sign == "-" else amount, relative=True)
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"{where}: `{str(raw)[:30]}` is not a threshold; give a number or `nginx - 0.5`.") from None
    if not math.isfinite(value):
        raise UserError(f"{where}: must be a finite number.")
    return Threshold(value)


def _duration(where: str, raw: Any) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool) and raw > 0:
        return raw
    found = _DURATION.match(str(raw).strip())
    if not found or int(found.group(1)) <= 0:
        raise UserError(f"{where}: `{str(raw)[:20]}` is not a duration; use e.g. 30s, 5m, 1h.")
    return int(found.group(1)) * _UNITS[found.group(2)]


def _analysis(raw: Any) -> Analysis:
    if raw is None:
        return Analysis()
    if not isinstance(raw, dict):
        raise UserError("analysis: must be a mapping of interval, failures_before_rollback, max_step_percent, "
                        "min_soak_before_verify.")
    extra = sorted(str(k) for k in raw if k not in {"interval", "failures_before_rollback", "max_step_percent",
                                                     "min_soak_before_verify"})
    if extra:
        raise UserError(f"analysis.{extra[0]}: unknown key.")
    failures = raw.get("failures_before_rollback", 3)
    if isinstance(failures, bool) or not isinstance(failures, int) or failures < 1:
        raise UserError("analysis.failures_before_rollback: must be a whole number of 1 or more.")
    step = raw.get("max_step_percent", 25)
    if isinstance(step, bool) or not isinstance(step, int | float) or not 0 < step <= 100:
        raise UserError("analysis.max_step_percent: must be a number of points above 0 and at most 100.")
    soak = raw.get("min_soak_before_verify", 0)
    no_soak = soak in (0, "0") or str(soak).strip() in ("0s", "0m", "0h")
    return Analysis(_duration("analysis.interval", raw.get("interval", "60s")), failures, float(step),
                    0 if no_soak else _duration("analysis.min_soak_before_verify", soak))


def format_window(seconds: int) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _num(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.2f}".rstrip("0").rstrip(".")
