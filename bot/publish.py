"""Turn an engine Outcome into what people see in Slack.

The status card roots the migration's thread and is only ever edited (chat.update) after it
is first posted; its ts is stored in the record, so an edit hours later still finds it. New
approval requests are posted into the thread; decided ones are edited to say who decided and
lose their buttons. Refusals and read-only answers go to the asker alone. Attachments (the
full route-check report) are uploaded into the thread as files; without `files:write` they
are posted there as a truncated code block instead.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterable
from typing import Any, Protocol

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError

from bot import blocks
from bot.deps import Deps
from bot.locks import short_lock
from commands.model import Approval, Migration
from commands.outcome import Outcome
from commands.policy import Policy

log = logging.getLogger("migrate.bot.publish")
PRIVATE_VERBS = frozenset({"help", "status", "history"})
_USER_ID = re.compile(r"(?<![<@\w])([UW][A-Z0-9]{8,})\b")
MAX_SNIPPET = 2800


class Reply(Protocol):
    """Answers the person who asked, and only them."""

    def __call__(self, text: str, blocks: list[dict[str, Any]] | None = None) -> None: ...


def mentions(text: str, people: Iterable[str] = ()) -> str:
    """Engine text made safe for Slack, then the ids of `people` made mentions (Slack shows names).

    `&`, `<` and `>` are escaped first (Slack's own escaping), so text that came from a user or
    the cluster (a deny reason, an annotation, an echoed parameter) cannot smuggle in a live
    `<!channel>`, `<@U…>` or a `<https://…|disguised link>`. Only ids the bot itself knows as
    people of this migration become mentions: cluster text shaped like an id (a path
    `/UPLOADS2024`) stays plain text.
    """
    known = frozenset(people)
    return _USER_ID.sub(lambda m: f"<@{m.group(1)}>" if m.group(1) in known else m.group(1), blocks.escape(text))


def people_of(outcome: Outcome, policy: Policy) -> frozenset[str]:
    """The user ids the bot itself writes into its text: who started, acted on, asked, approved or
    denied, who accepted findings, and the people the policy names (never cluster data)."""
    ids: set[str] = set()
    m, a = outcome.migration, outcome.approval
    if m is not None:
        ids.update((m.created_by, m.last_actor, m.intent.user if m.intent else ""))
        ids.update(str(u) for u in m.check.get("accepted_by") or [])
        ids.add(str(m.plan.get("by", "")) if m.plan else "")
    if a is not None:
        ids.update((a.requested_by, a.denied_by, *a.approvals))
    ids.update(policy.operators | policy.approvers | policy.rollback)
    return frozenset(i for i in ids if i and i != "*")


class Publisher:
    def __init__(self, client: WebClient, deps: Deps) -> None:
        self.client, self.deps = client, deps

    def publish(self, outcome: Outcome, *, reply: Reply, approval_ts: str = "") -> None:
        """Draw `outcome`: card, approval message, thread reply or a private answer."""
        m, a = outcome.migration, outcome.approval
        text = mentions(outcome.text, people_of(outcome, self.deps.policy))
        if outcome.replayed:
            if m is None:
                reply(text)  # "already being handled": said privately rather than nothing
                return
            if m.card_ts:
                self.refresh_card(m.id)
            live = self.deps.engine.approval(m.id, a.id) if a is not None else None
            if live is not None and live.pending and not live.message_ts and m.card_ts:
                self.post_approval(m, live, card_ts=m.card_ts, text=text)  # the first run died before posting it
            return
        if outcome.verb in PRIVATE_VERBS or m is None:
            shown = m if outcome.verb == "status" else None
            reply(text, self.status_blocks(shown, buttons=False) if shown else None)
            return
        if outcome.broadcast:  # an automatic rollback: the whole channel hears it first, whatever the card does
            self.client.chat_postMessage(channel=m.channel, text=text[:3000])
        card_ts = self.ensure_card(m)
        new_request = a is not None and a.pending and not a.message_ts and not a.approvals and not approval_ts
        if a is not None and not new_request:
            self.redraw_approval(m, a, ts=a.message_ts or approval_ts)
        if outcome.ephemeral:
            reply(text)
        elif new_request and a is not None:
            self.post_approval(m, a, card_ts=card_ts, text=text)
        else:
            self.thread(m, card_ts, text)
            for name, content in outcome.files.items():
                self.attach(m, card_ts, name, content)


    # ---- the status card ----------------------------------------------------------------------

    def status_blocks(self, m: Migration, *, buttons: bool = True) -> list[dict[str, Any]]:
        return blocks.status_blocks(m, now=self.deps.clock(), policy=self.deps.policy, buttons=buttons)

    def ensure_card(self, m: Migration) -> str:
        """The card's ts: posted once per migration, redrawn from the stored record after that."""
        if m.card_ts:
            self.refresh_card(m.id)
            return m.card_ts
        with short_lock(self.deps.redis, self.deps.keys.card(m.id)):
            latest = self.deps.engine.load(m.id) or m
            if latest.card_ts:
                self._update_card(latest)
                return latest.card_ts
            resp = self.client.chat_postMessage(channel=latest.channel, text=blocks.summary_text(latest),
                                                blocks=self.status_blocks(latest))
            ts = str(resp["ts"])
            attached = self.deps.engine.attach_card(m.id, card_ts=ts)
            if _drawn(attached) != _drawn(latest):
                self._update_card(attached)  # the record moved while we posted: draw the newer one
            return ts

    def refresh_card(self, migration_id: str) -> None:
        """Redraw the card from the record as it is now, so a late edit never shows older state."""
        with short_lock(self.deps.redis, self.deps.keys.card(migration_id)):
            m = self.deps.engine.load(migration_id)
            if m is not None and m.card_ts:
                self._update_card(m)

    def _update_card(self, m: Migration) -> None:
        self.client.chat_update(channel=m.channel, ts=m.card_ts, text=blocks.summary_text(m),
                                blocks=self.status_blocks(m))

    # ---- approvals and the thread -------------------------------------------------------------

    def post_approval(self, m: Migration, a: Approval, *, card_ts: str, text: str) -> None:
        resp = self.client.chat_postMessage(channel=m.channel, thread_ts=card_ts, text=text[:3000],
                                            blocks=blocks.approval_blocks(a, now=self.deps.clock()))
        self.deps.engine.attach_approval_message(m.id, a.id, message_ts=str(resp["ts"]))

    def redraw_approval(self, m: Migration, a: Approval, *, ts: str) -> None:
        if not ts:
            log.warning("approval has no message to edit", extra={"approval": a.id})
            return
        # Our own template over a verb from the grammar's closed set and a user id Slack gave us: its
        # `<@U…>` must stay a mention, so it does not go through `mentions()` (which would escape it).
        self.client.chat_update(channel=m.channel, ts=ts, text=blocks.approval_text(a),
                                blocks=blocks.approval_blocks(a, now=self.deps.clock()))

    def attach(self, m: Migration, card_ts: str, name: str, content: str) -> None:
        """Upload `content` as a file in the thread; if Slack refuses, post it there truncated.

        The fallback keeps the summary readable when the app lacks `files:write` (`missing_scope`)
        or the upload URL fails; the log line says why, by Slack's error code only.
        """
        try:
            self.client.files_upload_v2(channel=m.channel, thread_ts=card_ts, filename=name, title=name,
                                        content=content, initial_comment=f"Full report attached: {name}")
            return
        except SlackApiError as err:
            code = str(err.response.get("error", "")) if err.response is not None else ""
        except (SlackRequestError, OSError) as err:  # the upload URL refused the bytes or did not answer
            code = type(err).__name__
        log.warning("file upload failed; posting it truncated in the thread",
                    extra={"file": name, "slack_error": code or "unknown"})
        self.thread(m, card_ts, f"*{name}*\n```{_snip(_in_code_block(content))}```")

    def thread(self, m: Migration, card_ts: str, text: str) -> None:
        if text:
            self.client.chat_postMessage(channel=m.channel, thread_ts=card_ts, text=text[:39_000])


def _drawn(m: Migration) -> Migration:
    """What the card shows of a record: everything but its version and the card's own ts."""
    return dataclasses.replace(m, version=0, card_ts="")


def _in_code_block(content: str) -> str:
    """File text made safe inside a Slack code block: Slack's escaping (cluster text such as a
    snippet holding `<!channel>` stays inert) and no ``` of its own that would end the block."""
    return blocks.escape(content).replace("```", "ˋˋˋ")


def _snip(content: str) -> str:
    if len(content) <= MAX_SNIPPET:
        return content
    return content[:MAX_SNIPPET] + f"\n… ({len(content) - MAX_SNIPPET} more characters)"


def log_reply(text: str, blocks: list[dict[str, Any]] | None = None) -> None:
    """The Reply of timed work (expiry, reconcile), which has nobody to answer privately."""
    log.info("no one to answer privately", extra={"text": text[:200]})

