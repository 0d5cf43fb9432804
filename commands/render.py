"""Text views of a migration: what the console prints and what Slack shows as fallback text."""

from __future__ import annotations

import time

from commands.model import Event, Migration
from commands.phases import NEXT_STEP, WEIGHTS_UNLOCKED, Phase
from commands.plan import Plan
from commands.policy import Policy, dwell_left, format_duration
from commands.traffic import share_bar


def clock_time(at: float) -> str:
    return time.strftime("%H:%M:%S UTC", time.gmtime(at))


def method_line(m: Migration) -> str:
    if m.method == "slb" and m.slb:
        s = m.slb
        kept = f" (left on NGINX: {', '.join(s.kept)})" if s.kept else ""
        return f"SLB reuse: {s.slb_id} listeners {', '.join(s.listeners())}{kept}, Service {s.namespace}/{s.service}"
    if m.method == "dns":
        return f"DNS: {', '.join(m.domains)}"

    return "not chosen yet"


def dwell_for(m: Migration, policy: Policy) -> float:
    """Seconds between increases: the policy's dwell, and for DNS at least the largest TTL the last
    step changed (a resolver may answer from its cache that long)."""
    return max(policy.dwell_seconds, float(m.observed.get("ttl", 0) if m.method == "dns" else 0))


def held(m: Migration) -> tuple[float, int, int]:
    """(share, MSE weight, NGINX weight) as last read back from the SLB, else as last set.

    Over several groups it is the lowest group's share: the answer never overstates MSE's
    share on any listener.
    """
    seen = m.observed
    if (m.method == "slb" and seen.get("groups")) or (m.method == "dns" and seen.get("hosts")):
        return float(seen["share"]), int(seen["mse"]), int(seen["nginx"])
    return m.weights.share, m.mse_weight, m.nginx_weight


def shown_weights(m: Migration) -> tuple[int, int, str]:
    """The weights to print: read back from the SLB; for DNS the weights as set (0..100 each side),
    since the sum of one name's record weights (NGINX 1 after a switch) reads as a tiny NGINX."""
    if m.method == "dns":
        return m.mse_weight, m.nginx_weight, " as set"
    _, mse, nginx = held(m)
    return mse, nginx, ""


def weights_line(m: Migration) -> str:
    mse, nginx, note = shown_weights(m)
    return f"{share_bar(held(m)[0])} · MSE weight {mse} / NGINX weight {nginx}{note}"


def drift_line(m: Migration) -> str:
    """A warning naming the groups and backends where the SLB holds other weights than set."""
    drift = m.observed.get("drift") or []
    if m.method != "slb" or not drift or m.intent is not None:
        return ""
    more = int(m.observed.get("drift_count", len(drift))) - len(drift)
    return "⚠ Drift: " + "; ".join(drift) + (f"; and {more} more" if more > 0 else "") + "."


def gates_line(m: Migration) -> str:
    """The latest gate values: a watching plan's last check, else the last read (status, a step)."""
    if m.plan.get("state") in ("running", "paused", "done") and m.plan.get("last"):
        return str(m.plan["last"])
    return str(m.observed.get("gates", ""))


def plan_line(m: Migration) -> str:
    """`Plan: 1% → *5%* → 10% every 5m (running) · last check: ✓ ...`, while there is one."""
    if not m.plan or m.plan.get("state") in (None, "") or m.phase not in WEIGHTS_UNLOCKED:
        return ""
    p = Plan.from_dict(m.plan)
    return f"Plan: {p.describe()}"


def next_increase_line(m: Migration, *, now: float, policy: Policy) -> str:
    if m.phase not in WEIGHTS_UNLOCKED:
        return ""
    left = dwell_left(last_change_at=m.last_weight_change_at, now=now, dwell_seconds=dwell_for(m, policy))
    if left <= 0:
        return "Next weight increase: allowed now."
    return f"Next weight increase: in {format_duration(left)} (at {clock_time(now + left)})."


def status_text(m: Migration, *, now: float, policy: Policy) -> str:
    lines = [
        f"*Migration {m.id}*: {m.cluster} → {m.gateway} (Ingress class {m.ingress_class})",
        f"Phase: {m.phase.value} · Method: {method_line(m)}",
        weights_line(m),
    ]
    drift = drift_line(m)
    if drift:
        lines.append(drift)
    if m.method == "dns" and len(m.observed.get("hosts", {})) > 1:
        from commands.dns import host_lines

        lines.append("Per name: " + "; ".join(host_lines(m.observed)))
    if gates_line(m):
        lines.append(f"Gates: {gates_line(m)}")
    plan = plan_line(m)
    if plan:
        lines.append(plan)
    if m.intent is not None:
        lines.append(f"In progress: {m.intent.verb} by {m.intent.user} since {clock_time(m.intent.started_at)}.")
    if m.pending_approval:
        lines.append(f"Waiting for approval: request {m.pending_approval}.")
    lines.append(f"Next: {NEXT_STEP[m.phase]}.")
    nxt = next_increase_line(m, now=now, policy=policy)
    if nxt:
        lines.append(nxt)
    if m.last_action:
        lines.append(f"Last: {m.last_actor} {m.last_action} at {clock_time(m.last_action_at)}.")
    return "\n".join(lines)


def history_text(m: Migration, events: list[Event]) -> str:
    if not events:
        return f"No events recorded for {m.id}."
    lines = [f"*History of {m.id}* (oldest first):"]
    for e in events:
        move = f"{e.phase_before} → {e.phase_after}" if e.phase_before != e.phase_after else e.phase_after
        lines.append(f"{clock_time(e.at)} · {e.user} · {e.verb} · {move} · {e.result}")
    return "\n".join(lines)


#: The next step as a verb that takes nothing more, by phase: the card offers it as a button. Phases
#: whose next step needs parameters (`method ...`) or a choice of share (the weight steps) have none.
NEXT_VERB: dict[Phase, str] = {
    Phase.LISTENING: "check",
    Phase.METHOD_CHOSEN: "switch",
    Phase.SHIFTING: "verify",
    Phase.VERIFIED: "cutover",
    Phase.CUT_OVER: "complete",
}


def next_verb(m: Migration) -> str:
    """The verb a "Next" button runs now; none while a step runs or a request waits for approval."""
    if m.intent is not None or m.pending_approval:
        return ""
    return NEXT_VERB.get(m.phase, "")


def read_back_share(m: Migration) -> float | None:
    """MSE's share as last read back from the providers, the lowest group's or name's (never
    overstated); None when nothing has been read back yet."""
    seen = m.observed
    read_back = seen.get("groups") if m.method == "slb" else seen.get("hosts") if m.method == "dns" else None
    if read_back and "share" in seen:
        return float(seen["share"])
    return None


def is_done(m: Migration) -> bool:
    return m.phase is Phase.COMPLETED
