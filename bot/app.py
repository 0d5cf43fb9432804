"""Build the Bolt App: nothing at import time, everything from settings and deps.

`process_before_response=True` on purpose: Bolt then runs the ack listener inline in the
request thread, so the ack never queues behind engine work (with False, the ack itself is
submitted to the same executor the lazy listeners fill). Where the work goes is the handoff's
business (bot/handoff.py): a Redis queue over HTTP, Bolt's lazy executor in Socket Mode.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from slack_bolt import App, BoltResponse
from slack_sdk import WebClient

from bot import group_events, listeners
from bot.boundary import error_id
from bot.config import Settings
from bot.deps import Deps
from bot.handoff import Handoff, InProcess
from bot.verify import SignedOnly

log = logging.getLogger("migrate.bot")
LAZY_WORKERS = 16  # Socket Mode only: over HTTP the work runs in the job worker process


def web_client(settings: Settings) -> WebClient:
    """The Web API client; SLACK_API_URL points it at a proxy or a test stand-in."""
    return WebClient(token=settings.bot_token, base_url=settings.api_url or WebClient.BASE_URL, timeout=15)


def create_app(settings: Settings, deps: Deps, *, client: WebClient | None = None,
               handoff: Handoff | None = None) -> App:
    """A Bolt App with our signature check, the listeners and a last-resort error handler.

    Without a `handoff`, the work runs in this process (Bolt's lazy listeners)."""
    app = App(
        client=client or web_client(settings),
        signing_secret=settings.signing_secret,
        process_before_response=True,
        request_verification_enabled=False,
        before_authorize=SignedOnly(settings.signing_secret, deps.redis, deps.keys),
        listener_executor=ThreadPoolExecutor(max_workers=LAZY_WORKERS, thread_name_prefix="migrate-lazy"),
    )
    listeners.register(app, deps.command, handoff or InProcess(deps, listeners.RUNNERS))
    group_events.register(app, deps.redis, deps.keys)

    @app.error
    def on_error(error: Exception, body: dict[str, Any]) -> BoltResponse:
        """Malformed or hostile payloads end here: a logged id and a 200 with one line, never a 5xx
        (Slack would retry a 5xx and show the person a generic failure)."""
        ident = error_id()
        kind = body.get("type") or body.get("command", "") if isinstance(body, dict) else ""
        log.error("error before the work started", exc_info=error,
                  extra={"error_id": ident, "payload_type": kind if isinstance(kind, str) else "?"})
        return BoltResponse(status=200, body=f"That request could not be handled (error id {ident}); nothing changed.")

    return app
