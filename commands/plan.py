"""Planned progression: `/migrate auto 1,5,10,25,50% every 5m`, as plain data and plain decisions.

A plan is a list of shares and a pace. The housekeeper ticks it: every analysis interval it
reads the gates; failing readings in a row roll back once there are enough of them, passing
ones let the next step go ahead when its time has come. Unknown readings (Prometheus not
answering) count neither way: no increase, no rollback. All of it is decided here from the
record, the verdicts and the clock; `verbs/auto.py` carries the decisions out.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from commands.errors import UserError
from commands.gates import Analysis, Verdict, failing, format_window, summary, unknown

_SHARES = re.compile(r"^[0-9]{1,2}(,[0-9]{1,2})*%$")
_DURATION = re.compile(r"^([0-9]{1,5})(s|m|h)$")
_UNITS = {"s": 1, "m": 60, "h": 3600}


@dataclass(frozen=True)
class Plan:
    steps: tuple[int, ...]
    every: int
    by: str
    state: str = "running"  # running | paused | done | stopped
    index: int = 0  # the next step to take
    failures: int = 0  # failed gate evaluations in a row
    next_step_at: float = 0.0
    next_check_at: float = 0.0
    last: str = ""  # the last evaluation, for the card
    history: tuple[str, ...] = field(default_factory=tuple)

    @property
    def next_share(self) -> int | None:
        return self.steps[self.index] if self.index < len(self.steps) else None

    def describe(self) -> str:
        shown = " → ".join(f"{s}%" if i != self.index else f"*{s}%*" for i, s in enumerate(self.steps))
        return f"{shown} every {format_window(self.every)} ({self.state})"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["steps"], d["history"] = list(self.steps), list(self.history)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Plan:
        return cls(**{**d, "steps": tuple(d["steps"]), "history": tuple(d.get("history") or ())})


def parse(shares: str, every: str, *, current: float, dwell: float, analysis: Analysis, by: str, now: float) -> Plan:
    """A plan from `1,5,10,25,50%` and `5m`, refused in one line when a step is not allowed."""
    if not _SHARES.match(shares):
        raise UserError(f"`{shares[:40]}` is not a list of shares: say e.g. `/migrate auto 1,5,10,25,50% every 5m` "
                        "(whole percents below 100, rising, the last one followed by %).")
    steps = tuple(int(s) for s in shares[:-1].split(","))
    if any(b <= a for a, b in itertools.pairwise(steps)) or steps[0] < 1:
        raise UserError(f"The shares {shares} must rise step by step from 1% or more, e.g. 1,5,10,25,50%.")
    if steps[0] <= current:
        raise UserError(f"MSE already has {current:.0f}%: start the plan above it, e.g. "
                        f"`/migrate auto {min(99, int(current) + 5)}%,... every 5m`.")
    found = _DURATION.match(every.strip())
    if not found:
        raise UserError(f"`every {every[:20]}` is not a pace: say e.g. `every 5m` (s, m or h).")
    seconds = int(found.group(1)) * _UNITS[found.group(2)]
    if seconds < dwell:
        raise UserError(f"`every {every}` is shorter than the dwell between increases ({format_window(int(dwell))}): "
                        "each step must be watched at least that long.")
    before = current
    for share in steps:
        if share - before > analysis.max_step_percent:
            raise UserError(f"The step from {before:.0f}% to {share}% is more than the {analysis.max_step_percent:g} "
                            "points a step may take without approval; add a step in between.")
        before = share
    return Plan(steps, seconds, by, next_step_at=now, next_check_at=now)


@dataclass(frozen=True)
class Decision:
    """What a tick does: `rollback` (with why), `step` (to share), or nothing but a new record.

    A step's plan still points at that step: it moves on only once the step has landed
    (`stepped`), so a step that fails or is interrupted is taken again, never skipped.
    """

    plan: Plan
    rollback: str = ""
    step: int | None = None
    note: str = ""  # a line for the thread, when there is something to say


WATCHED = frozenset({"running", "paused", "done"})
#: Whole weights cannot hit every share: 25% is MSE 33 / NGINX 100 = 24.8%. A step is judged
#: against what the SLB holds with this much slack, so a plan's own steps are never refused.
ROUNDING = 1.0


def tick(plan: Plan, verdicts: list[Verdict], *, now: float, analysis: Analysis, share: float,
         ready_at: float) -> Decision:
    """One evaluation of a watched plan whose check is due.

    Gates that were read and failed count, whatever the others say; `failures_before_rollback`
    of them in a row roll back, in any state (a paused plan and the final share are watched
    too). Only a running plan steps, only when every gate passed, its time has come and the
    dwell since the last change (`ready_at`) is over. `share` is what the SLB holds now: shares
    at or below it are passed over, and a step past `max_step_percent` from it pauses the plan.
    """
    line = summary(verdicts)
    plan = replace(plan, next_check_at=now + analysis.interval, last=line)
    if failing(verdicts):
        failures = plan.failures + 1
        plan = replace(plan, failures=failures, history=(*plan.history[-9:], "fail"))
        if failures >= analysis.failures_before_rollback:
            return Decision(plan, rollback=f"{failures} failed gate checks in a row: {line}")
        return Decision(plan, note=f"Gate check {failures} of {analysis.failures_before_rollback} failed "
                                   f"(a rollback follows at {analysis.failures_before_rollback}): {line}")
    if unknown(verdicts):  # said once when it starts, not at every interval
        note = "" if plan.history[-1:] == ("unknown",) else (
            f"Plan waits: a gate could not be read, so no increase (and no automatic rollback): {line}")
        return Decision(replace(plan, history=(*plan.history[-9:], "unknown")), note=note)
    plan = replace(plan, failures=0, history=(*plan.history[-9:], "pass"))
    if plan.state != "running":
        return Decision(plan)
    while plan.next_share is not None and plan.next_share <= share + 1e-9:  # reached already (a manual step)
        plan = replace(plan, index=plan.index + 1)
    if plan.next_share is None:
        return Decision(replace(plan, state="done"), note=f"The plan is done at {share:.0f}%, and the gates pass at "
                                                         f"it: watch it, then `/migrate verify`. Gates: {line}")
    if now < max(plan.next_step_at, ready_at):
        return Decision(plan)
    if plan.next_share - share > analysis.max_step_percent + ROUNDING:
        return Decision(replace(plan, state="paused"),
                        note=f"Plan paused: the step from {share:.0f}% to {plan.next_share}% is more than the "
                             f"{analysis.max_step_percent:g} points a step may take without approval; "
                             "`/migrate weight` by hand, then `/migrate resume`.")
    return Decision(plan, step=plan.next_share)


def stepped(plan: Plan, *, now: float) -> Plan:
    """The plan once its step has landed: on to the next share, after the pace."""
    return replace(plan, index=plan.index + 1, next_step_at=now + plan.every)
