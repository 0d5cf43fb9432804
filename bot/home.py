"""The App Home tab as pure functions of the records: what runs now in every channel, what finished.

Pure so it is tested without Slack and drawn from Redis alone. Read-only for everyone: it has no
button that acts (acting stays in the migration's thread, where the channel sees it), and it
keeps within Slack's limits: 100 blocks per Home view, 3,000 characters per section, 150 per header.
"""

from __future__ import annotations

import re
from typing import Any

from bot.blocks import SLACK_ID, escape, when
from commands.model import Migration
from commands.phases import BEFORE_SWITCH, Phase
from commands.policy import format_duration
from commands.render import gates_line, plan_line, read_back_share
from commands.traffic import format_share, share_bar

Block = dict[str, Any]
#: Slack's limit is 100 blocks per Home view (docs.slack.dev/reference/views/home-tab-views); the rest is
#: said in one line. 40 + 20 + the frame stays well inside it.
MAX_RUNNING = 40
MAX_FINISHED = 20
MAX_SECTION = 3000
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,20}$")
TS = re.compile(r"^\d{1,12}\.\d{1,8}$")
WORKSPACE = re.compile(r"^https://[a-z0-9.-]+/$")  # auth.test's `url`, e.g. https://acme.slack.com/
OUTCOME = {Phase.COMPLETED: "✅ completed", Phase.ABORTED: "🛑 aborted"}
HOW_TO_ROLL_BACK = ("*To roll back:* open the migration's thread and tap *Rollback*, the first button on its card, "
                    "or type `/migrate rollback` in its channel; MSE's weight goes to 0 at once.")


def home_view(running: list[Migration], finished: list[tuple[Migration, float]], *, now: float,
              workspace: str = "", may_roll_back: bool = False) -> dict[str, Any]:
    """The Home tab: how to roll back, the migrations running now, the last ones finished."""
    you = (" You may roll back." if may_roll_back else
           " You are not on the rollback list: ask the on-call or an operator.")
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": "NGINX → MSE migrations", "emoji": True}},
        _section(HOW_TO_ROLL_BACK + you),
        {"type": "context", "elements": [_mrkdwn(f"Every channel, as of {when(now)}. Open the tab again to "
                                                 "refresh. Read-only: steps are taken in each migration's thread.")]},
        {"type": "divider"},
        _section(f"*Running now* ({len(running)})" if running else "*Running now:* none"),
    ]
    blocks += [_section(running_text(m, workspace)) for m in running[:MAX_RUNNING]]
    if len(running) > MAX_RUNNING:
        blocks.append({"type": "context", "elements": [_mrkdwn(
            f"and {len(running) - MAX_RUNNING} more: `/migrate status` in their channels")]})
    shown = finished[:MAX_FINISHED]
    blocks += [{"type": "divider"},
               _section(f"*Finished* (the last {len(shown)})" if shown else "*Finished:* none yet")]
    blocks += [_section(finished_text(m, at, workspace)) for m, at in shown]
    return {"type": "home", "blocks": blocks}


def running_text(m: Migration, workspace: str = "") -> str:
    """Where it runs, phase, the share read back (never the intended one), gates and plan."""
    lines = [f"*{escape(m.cluster)}* → `{escape(m.gateway)}` · {where(m, workspace)}",
             f"*Phase:* {m.phase.value} · {share_text(m)}"]
    gates = gates_line(m)
    if gates:
        lines.append(f"*Gates:* {escape(gates)}")
    plan = plan_line(m)
    if plan:
        lines.append(plan)  # our own template: shares and a pace
    if m.intent is not None:
        lines.append(f"In progress: `{escape(m.intent.verb)}`")
    if m.pending_approval:
        lines.append("Waiting for approval: see the request in the thread")
    lines.append(f"Started by {person(m.created_by)} {when(m.created_at)} · id `{escape(m.id)}`")
    return "\n".join(lines)


def share_text(m: Migration) -> str:
    """`MSE ██░░ 25% (read back)`; before the switch MSE has no way to get traffic at all."""
    if m.phase in BEFORE_SWITCH:
        return "no traffic on MSE yet (not switched)"
    share = read_back_share(m)
    if share is None:
        return f"`{share_bar(m.weights.share)}` as set; not read back yet"
    return f"`{share_bar(share)}` read back"


def finished_text(m: Migration, at: float, workspace: str = "") -> str:
    """One line: outcome, when and how long it took, where; the last action as it was recorded."""
    outcome = OUTCOME.get(m.phase, m.phase.value)
    took = format_duration(max(0.0, at - m.created_at))
    last = f" · last: {escape(m.last_action[:120])}" if m.last_action else ""
    read = read_back_share(m)
    share = format_share(m.weights.share if read is None else read)
    return (f"{outcome} *{escape(m.cluster)}* → `{escape(m.gateway)}` {when(at)} after {took} · "
            f"MSE {share} at the end · {where(m, workspace)}{last}")


def where(m: Migration, workspace: str = "") -> str:
    """`<#C123>` and a link to the card's thread: a permalink built from channel and ts (no scope needed)."""
    channel = f"<#{m.channel}>" if CHANNEL_ID.match(m.channel) else escape(m.channel)
    if WORKSPACE.match(workspace) and CHANNEL_ID.match(m.channel) and TS.match(m.card_ts):
        return f"{channel} · <{workspace}archives/{m.channel}/p{m.card_ts.replace('.', '')}|open the thread>"
    return channel


def person(user: str) -> str:
    return f"<@{user}>" if SLACK_ID.match(user) else escape(user)


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text[:MAX_SECTION]}


def _section(text: str) -> Block:
    return {"type": "section", "text": _mrkdwn(text)}
