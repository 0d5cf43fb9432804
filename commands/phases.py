"""Phases of a migration and the transitions between them, as one table.

The table *is* the definition: the engine looks verbs up here, the help text and the
status card read it, and `check_table()` proves every phase is reachable and none is a
trap. Which steps are irreversible (and so need an approval) is data in the table too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from commands.errors import TransitionNotAllowed


class Phase(StrEnum):
    DRAFT = "draft"
    LISTENING = "listening"
    CHECKED = "checked"
    METHOD_CHOSEN = "method chosen"
    SWITCHED = "switched"
    SHIFTING = "shifting"
    VERIFIED = "verified"
    CUT_OVER = "cut over"
    COMPLETED = "completed"
    ABORTED = "aborted"


TERMINAL = frozenset({Phase.COMPLETED, Phase.ABORTED})
BEFORE_SWITCH = frozenset({Phase.DRAFT, Phase.LISTENING, Phase.CHECKED, Phase.METHOD_CHOSEN})
#: Phases in which the MSE weight may still move up.
WEIGHTS_UNLOCKED = frozenset({Phase.SWITCHED, Phase.SHIFTING})
#: Phases a rollback can leave: the verification lock stops increases, not the way back, which
#: stays open until `complete` (MSE at 0 with NGINX's weight restored still works after cutover).
ROLLBACK_OPEN = frozenset({Phase.SWITCHED, Phase.SHIFTING, Phase.VERIFIED, Phase.CUT_OVER})


@dataclass(frozen=True)
class Transition:
    """One edge: `verb` moves a migration from any of `sources` to `target`."""

    verb: str
    sources: frozenset[Phase]
    target: Phase
    step: str
    needs_approval: bool = False


def _t(verb: str, sources: Iterable[Phase], target: Phase, step: str, *, approval: bool = False) -> Transition:
    return Transition(verb, frozenset(sources), target, step, approval)


TRANSITIONS: tuple[Transition, ...] = (
    _t("start", [], Phase.DRAFT, "Pre-flight checks and a record of the migration"),
    _t("attach", [Phase.DRAFT], Phase.LISTENING, "Step 1: the gateway listens to the Ingress class"),
    _t("check", [Phase.LISTENING, Phase.CHECKED], Phase.CHECKED, "Step 2: check routes"),
    _t("check", [Phase.CHECKED], Phase.LISTENING, "Step 2 again: new blocking findings send it back"),
    _t("accept", [Phase.LISTENING], Phase.CHECKED, "Step 2: accept blocking findings", approval=True),
    _t("method", [Phase.CHECKED, Phase.METHOD_CHOSEN], Phase.METHOD_CHOSEN, "Step 3: choose how to switch"),
    _t("switch", [Phase.METHOD_CHOSEN], Phase.SWITCHED, "Steps 4a+4b: hand the SLB or DNS to the bot"),
    _t("weight", [Phase.SWITCHED, Phase.SHIFTING], Phase.SHIFTING, "Step 4c: shift traffic by weight"),
    _t("rollback", ROLLBACK_OPEN, Phase.SHIFTING, "Rollback: MSE weight 0 (undoes verification and cutover)"),
    _t("verify", [Phase.SHIFTING], Phase.VERIFIED, "Complete Traffic Verification: lock weights", approval=True),
    _t("cutover", [Phase.VERIFIED], Phase.CUT_OVER, "Step 4d: all traffic to MSE", approval=True),
    _t("complete", [Phase.CUT_OVER], Phase.COMPLETED, "Step 5: finish the migration", approval=True),
    _t("abort", [Phase.DRAFT, Phase.LISTENING, Phase.CHECKED, Phase.METHOD_CHOSEN], Phase.ABORTED,
       "Abort: undo what the bot changed"),
    _t("abort", [Phase.SWITCHED, Phase.SHIFTING], Phase.ABORTED,
       "Abort after switch: restore the Service, SLB and DNS", approval=True),
)

#: Verbs the engine takes on its own as the second half of a user's verb, never typed.
INTERNAL_VERBS = frozenset({"attach", "accept"})
#: Verbs that read or decide but never move a phase by themselves.
READ_ONLY_VERBS = frozenset({"status", "history", "help"})
DECISION_VERBS = frozenset({"approve", "deny"})

NEXT_STEP: dict[Phase, str] = {
    Phase.DRAFT: "the gateway is being attached; wait, or `/migrate abort`",
    Phase.LISTENING: "`/migrate check` to check the routes",
    Phase.CHECKED: "`/migrate method slb service=NS/NAME` or `/migrate method dns`",
    Phase.METHOD_CHOSEN: "`/migrate switch` (steps 4a and 4b)",
    Phase.SWITCHED: "`/migrate weight 1` to send the first traffic to MSE",
    Phase.SHIFTING: "raise the weight step by step, then `/migrate verify`",
    Phase.VERIFIED: "`/migrate cutover` to send all traffic to MSE (`/migrate rollback` still undoes it all)",
    Phase.CUT_OVER: "`/migrate complete` to finish (until then `/migrate rollback` brings NGINX back)",
    Phase.COMPLETED: "nothing: the migration is complete",
    Phase.ABORTED: "nothing: the migration was aborted; `/migrate start` to begin again",
}


def transition_for(verb: str, phase: Phase | None) -> Transition:
    """The transition `verb` takes from `phase`, or TransitionNotAllowed saying why not."""
    for t in TRANSITIONS:
        if t.verb == verb and ((phase is None and not t.sources) or (phase in t.sources)):
            return t
    raise TransitionNotAllowed(refusal(verb, phase))


def refusal(verb: str, phase: Phase | None) -> str:
    """The sentence a user sees when `verb` is not possible now."""
    if phase is None:
        return f"Can't {verb}: no migration is running here. Start one with `/migrate start cluster=ID gateway=ID`."
    if phase in TERMINAL:
        return f"Can't {verb}: the migration is {phase.value}. {NEXT_STEP[phase].capitalize()}."
    if verb == "weight" and phase in {Phase.VERIFIED, Phase.CUT_OVER}:
        return (f"Can't {verb} when {phase.value}: traffic verification locked the weights. "
                f"What is still possible: {NEXT_STEP[phase]}.")
    if verb == "abort" and phase in {Phase.VERIFIED, Phase.CUT_OVER}:
        return (f"Can't abort when {phase.value}: the weights are locked and NGINX is being retired. "
                f"What is still possible: {NEXT_STEP[phase]}; `/migrate rollback` first, then abort.")
    if verb in {"weight", "rollback"} and phase in BEFORE_SWITCH:
        return f"Can't {verb} when {phase.value}: no traffic has been switched yet. Next: {NEXT_STEP[phase]}."
    if verb == "start":
        return f"Can't start: a migration is already {phase.value} here. Next: {NEXT_STEP[phase]}."
    return f"Can't {verb} when {phase.value}. Next: {NEXT_STEP[phase]}."


def allowed_verbs(phase: Phase) -> list[str]:
    return sorted({t.verb for t in TRANSITIONS if phase in t.sources})


def check_table() -> list[str]:
    """Problems with the table: unreachable phases and traps (non-terminal with no exit)."""
    problems: list[str] = []
    reachable: set[Phase] = {t.target for t in TRANSITIONS if not t.sources}
    frontier = set(reachable)
    while frontier:
        nxt = {t.target for t in TRANSITIONS if t.sources & frontier} - reachable
        reachable |= nxt
        frontier = nxt
    problems += [f"{p.value} is unreachable" for p in Phase if p not in reachable]
    for p in Phase:
        if p in TERMINAL:
            continue
        exits = {t.target for t in TRANSITIONS if p in t.sources} - {p}
        if not exits:
            problems.append(f"{p.value} is a trap: no way out")
    # Every non-terminal phase must be able to reach a terminal one.
    for p in Phase:
        if p in TERMINAL:
            continue
        seen, todo = {p}, [p]
        while todo:
            cur = todo.pop()
            for t in TRANSITIONS:
                if cur in t.sources and t.target not in seen:
                    seen.add(t.target)
                    todo.append(t.target)
        if not seen & TERMINAL:
            problems.append(f"{p.value} can never finish")
    return problems
