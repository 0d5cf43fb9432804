"""The one error boundary of the Slack edge: whatever goes wrong, the asker gets one line.

Known refusals (MigrateError) are shown as they are. Slack's own "I can't post here" errors get
a line saying what to do. Anything else is logged with a short error id and only that id is
shown: never a stack trace in a channel.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable

from slack_sdk.errors import SlackApiError

from bot.deps import Deps
from bot.publish import Reply
from commands.errors import MigrateError

log = logging.getLogger("migrate.bot")
SLACK_HINTS = {
    "not_in_channel": "I am not in this channel: invite me with `/invite @migrate-bot`, then try again.",
    "channel_not_found": "I can't see this channel: invite me with `/invite @migrate-bot`, then try again.",
    "is_archived": "This channel is archived; run the migration from an active channel.",
    "ratelimited": "Slack is rate-limiting me; the step itself went through. `/migrate status` shows the state.",
}


def error_id() -> str:
    return f"err-{secrets.token_hex(4)}"


def guarded(deps: Deps, reply: Reply, work: Callable[[], None], *, verb: str = "") -> None:
    """Run `work`; turn any exception into a one-line private reply (and a log line with an id)."""
    try:
        work()
    except MigrateError as err:
        deps.metrics.command(verb, "refused")
        _safe_reply(reply, str(err))
    except SlackApiError as err:
        code = str(err.response.get("error", "")) if err.response is not None else ""
        eid = error_id()
        log.warning("Slack API call failed", extra={"error_id": eid, "slack_error": code})
        deps.metrics.command(verb, "error")
        _safe_reply(reply, SLACK_HINTS.get(code, f"Slack refused a call ({code or 'unknown error'}); "
                                                 f"error id {eid}. `/migrate status` shows where things stand."))
    except Exception:
        eid = error_id()
        log.exception("unexpected error in a Slack handler", extra={"error_id": eid})
        deps.metrics.command(verb, "error")
        _safe_reply(reply, f"Something went wrong on our side (error id {eid}). "
                           "`/migrate status` shows where things stand.")


def _safe_reply(reply: Reply, text: str) -> None:
    try:
        reply(text)
    except Exception:
        log.exception("could not deliver a private reply")
