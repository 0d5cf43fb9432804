"""Block Kit for the status card and approval messages, as pure functions of the records.

Pure so they can be tested without Slack and redrawn from the stored record at any time
(an expiry hours later draws the same card). Short lines, one fact per line, buttons last:
the card has to read well on a phone during an incident.
"""

from __future__ import annotations

import re
import time
from typing import Any

from bot.actions import ActionId, ButtonValue
from commands.dns import host_lines
from commands.model import Approval, Migration
from commands.phases import NEXT_STEP, ROLLBACK_OPEN, TERMINAL, WEIGHTS_UNLOCKED, Phase
from commands.policy import Policy, dwell_left, format_duration
from commands.render import drift_line, dwell_for, gates_line, held, next_verb, plan_line, shown_weights
from commands.traffic import format_share, share_bar

Block = dict[str, Any]
SLACK_ID = re.compile(r"^[UW][A-Z0-9]+$")  # only real user ids become mentions ("migrate-bot (plan)" is not one)
#: Traffic shares offered as quick steps; the card shows the next few above the current share.
SHARE_LADDER = (1, 5, 10, 25, 50, 75, 90)
QUICK_STEPS = 3


def escape(text: str) -> str:
    """Slack's escaping of `&`, `<` and `>`: words from a user or the cluster stay plain text, so a
    `<!channel>`, `<@U…>` or `<https://…|disguised link>` in them is shown, never acted on."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _text(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text[:3000]}


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def when(ts: float, fmt: str = "{date_short_pretty} {time}") -> str:
    """A Slack date token: shown in each reader's own time zone, with a UTC fallback."""
    fallback = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))
    return f"<!date^{int(ts)}^{fmt}|{fallback}>"


def method_line(m: Migration) -> str:
    if m.method == "slb" and m.slb:
        kept = f"; on NGINX: {', '.join(m.slb.kept)}" if m.slb.kept else ""
        return (f"SLB `{m.slb.slb_id}` ({m.slb.namespace}/{m.slb.service}; moved: "
                f"{', '.join(m.slb.listeners())}{kept})")
    if m.method == "slb":
        return "SLB"
    if m.method == "dns":
        shown = ", ".join(m.domains[:3]) + (f" +{len(m.domains) - 3}" if len(m.domains) > 3 else "")
        return f"DNS ({shown})" if shown else "DNS"
    return "not chosen yet"


def summary_text(m: Migration) -> str:
    """The card's notification text (what a phone shows in the banner)."""
    return f"Migration {m.id}: {m.phase.value}, {format_share(held(m)[0])} of traffic on MSE"


def status_blocks(m: Migration, *, now: float, policy: Policy, buttons: bool = True) -> list[Block]:
    """The status card: phase, method, traffic bar, next step, dwell, last action, buttons."""
    blocks: list[Block] = [
        {"type": "header", "text": _plain(f"NGINX → MSE · {m.cluster}"[:150])},
        {"type": "section", "text": _text(f"*Phase:* {m.phase.value}\n*Method:* {method_line(m)}\n"
                                          f"*Gateway:* `{m.gateway}` · class `{m.ingress_class}`")},
        {"type": "section", "text": _text(traffic_text(m))},
        {"type": "section", "text": _text(f"*Next:* {NEXT_STEP[m.phase]}")},
    ]
    drift = drift_line(m)
    if drift:
        blocks.append({"type": "section", "text": _text(drift)})
    if gates_line(m) and m.phase not in TERMINAL:
        blocks.append({"type": "context", "elements": [_text(f"*Gates:* {gates_line(m)}")]})
    if plan_line(m) and m.phase not in TERMINAL:
        blocks.append({"type": "context", "elements": [_text(plan_line(m))]})
    facts = []
    if m.phase in WEIGHTS_UNLOCKED:
        left = dwell_left(last_change_at=m.last_weight_change_at, now=now, dwell_seconds=dwell_for(m, policy))
        facts.append("Next increase: allowed now" if left <= 0 else
                     f"Next increase: not before {when(now + left, '{time}')} (dwell {format_duration(left)} left)")
    if m.pending_approval:
        facts.append("Waiting for approval: see the request in the thread")
    if m.last_action:
        who = f" by {m.last_actor}" if m.last_actor else ""
        if SLACK_ID.match(m.last_actor):
            who = f" by <@{m.last_actor}>"
        at = f" · {when(m.last_action_at)}" if m.last_action_at else ""
        facts.append(f"Last: {m.last_action}{who}{at}")
    facts.append(f"id `{m.id}`")
    blocks.append({"type": "context", "elements": [_text(f) for f in facts][:10]})
    if buttons:
        elements = card_buttons(m)
        if elements:
            blocks.append({"type": "actions", "block_id": "card_actions", "elements": elements})
    return blocks


def traffic_text(m: Migration) -> str:
    """The bar and weights read back from the SLB; one short line per moved group when there are several."""
    share = held(m)[0]
    mse, nginx, note = shown_weights(m)
    lines = [f"`{share_bar(share)}`", f"MSE weight {mse} · NGINX weight {nginx}{note}"]
    groups = m.observed.get("groups", {}) if m.method == "slb" else {}
    if len(groups) > 1:
        lines += [f"{v['listeners']}: {format_share(v['share'])} (MSE {v['mse']} / NGINX {v['nginx']})"
                  for v in list(groups.values())[:5]]
    if m.method == "dns" and len(m.observed.get("hosts", {})) > 1:  # lowest share first, five and a count
        lines += host_lines(m.observed)
    return "\n".join(lines)


def next_shares(share: float) -> list[int]:
    """The next quick steps at least one point above the current share (9.1% does not offer 10%)."""
    return [s for s in SHARE_LADDER if s >= share + 1][:QUICK_STEPS]


def card_buttons(m: Migration) -> list[Block]:
    """Rollback first until `complete` (it undoes verify and cutover), weight steps while the weights
    may move, then the Next step when it is a verb that takes nothing more."""
    if m.phase not in ROLLBACK_OPEN:
        return next_button(m)
    share = held(m)[0]
    out: list[Block] = []
    # First: the one button the on-call looks for on a phone, while MSE answers for ANY name (the
    # highest, not the lowest share: a step that failed halfway may leave one name on MSE).
    if m.mse_weight > 0 or share > 0 or float(m.observed.get("highest", 0)) > 0:
        undone = {Phase.VERIFIED: " Traffic verification is undone.",
                  Phase.CUT_OVER: " The cutover and traffic verification are undone: NGINX comes back first."}
        out.append({"type": "button", "action_id": ActionId.ROLLBACK, "text": _plain("Rollback"), "style": "danger",
                    "value": ButtonValue(m.id, m.version).encode(),
                    "confirm": _confirm("Roll back to NGINX?", "MSE weight goes to 0 at once: all traffic back on "
                                        f"NGINX (now {format_share(share)} on MSE).{undone.get(m.phase, '')}",
                                        "Roll back", style="danger")})
    for step in next_shares(share) if m.phase in WEIGHTS_UNLOCKED else []:
        value = ButtonValue(m.id, m.version, weight=f"{step}%", changed=m.last_weight_change_at)
        out.append({"type": "button", "action_id": f"{ActionId.WEIGHT_STEP}:{step}", "text": _plain(f"→ {step}%"),
                    "value": value.encode(),
                    "confirm": _confirm(f"Send {step}% to MSE?",
                                        f"MSE gets {step}% of traffic (now {format_share(share)}).",
                                        "Shift traffic", style="primary")})
    return out + next_button(m)


#: What the Next button says and what its confirmation warns of, per verb (commands.render.NEXT_VERB).
NEXT_BUTTONS = {
    "check": ("Check routes", ""),
    "switch": ("Switch", "Steps 4a and 4b: the SLB or DNS is handed to the bot; MSE gets no traffic yet."),
    "verify": ("Verify", "Asks for approval to lock the weights (Complete Traffic Verification)."),
    "cutover": ("Cut over", "Asks for approval to send all traffic to MSE."),
    "complete": ("Complete", "Asks for approval to finish the migration; after it there is no rollback."),
}


def next_button(m: Migration) -> list[Block]:
    """`Next: Cut over`: the same as typing `/migrate cutover`, with the same role and approval checks."""
    verb = next_verb(m)
    if verb not in NEXT_BUTTONS:
        return []
    label, warning = NEXT_BUTTONS[verb]
    button: Block = {"type": "button", "action_id": f"{ActionId.NEXT_STEP}:{verb}", "text": _plain(f"Next: {label}"),
                     "value": ButtonValue(m.id, m.version, changed=m.last_action_at).encode()}
    if warning:
        button["confirm"] = _confirm(f"{label}?", f"The same as `/migrate {verb}`. {warning}", label, style="primary")
    return [button]


def _confirm(title: str, text: str, confirm: str, *, style: str) -> Block:
    return {"title": _plain(title[:100]), "text": _text(text[:300]), "confirm": _plain(confirm[:30]),
            "deny": _plain("Cancel"), "style": style}


_DECIDED = {"approved": "✅ Approved", "denied": "❌ Denied", "expired": "⌛ Expired", "cancelled": "🚫 Cancelled"}


def approval_text(a: Approval) -> str:
    """Notification text for an approval message."""
    if a.pending:
        return f"Approval needed: {a.verb} (asked by <@{a.requested_by}>)"
    return f"{_DECIDED.get(a.state, a.state)}: {a.verb}"


def approval_blocks(a: Approval, *, now: float) -> list[Block]:
    """An approval request; once decided or expired, the outcome and no buttons."""
    if a.pending:
        head = f"✋ *Approval needed: {a.verb}*\n{a.summary}"
        so_far = f" · approved by {_people(a.approvals)}" if a.approvals else ""
        left = max(0.0, a.expires_at - now)
        facts = (f"Asked by <@{a.requested_by}> · expires {when(a.expires_at, '{time}')} (in {format_duration(left)})"
                 f" · needs {a.required} approval{'s' if a.required != 1 else ''}{so_far}")
    else:
        head = f"{_DECIDED.get(a.state, a.state)}: *{a.verb}*\n{a.summary}"
        facts = f"Asked by <@{a.requested_by}> · {_decision(a)}"
    blocks: list[Block] = [{"type": "section", "text": _text(head)},
                           {"type": "context", "elements": [_text(facts)]}]
    if a.pending:
        value = ButtonValue(a.migration_id, approval=a.id).encode()
        blocks.append({"type": "actions", "block_id": f"approval:{a.id}"[:255], "elements": [
            {"type": "button", "action_id": ActionId.APPROVE, "text": _plain("Approve"), "style": "primary",
             "value": value, "confirm": _confirm(f"Approve {a.verb}?", a.summary, "Approve", style="primary")},
            {"type": "button", "action_id": ActionId.DENY, "text": _plain("Deny"), "style": "danger",
             "value": value, "confirm": _confirm(f"Deny {a.verb}?", "The step will not be carried out.", "Deny",
                                                 style="danger")},
        ]})
    return blocks


def _people(users: tuple[str, ...]) -> str:
    return ", ".join(f"<@{u}>" for u in users)


def _decision(a: Approval) -> str:
    at = f" · {when(a.decided_at)}" if a.decided_at else ""
    if a.state == "approved":
        return f"approved by {_people(a.approvals) or 'the approvers'}{at}"
    if a.state == "denied":
        reason = f": {escape(a.reason)}" if a.reason else ""
        return f"denied by <@{a.denied_by}>{reason}{at}" if a.denied_by else f"denied{reason}{at}"
    if a.state == "expired":
        return f"expired before enough approvals (the step was not carried out){at}"
    return f"{a.state}{(': ' + escape(a.reason)) if a.reason else ''}{at}"
