"""`app_home_opened`: publish the Home tab (bot/home.py) for the person who opened it, from Redis.

Read-only, so anyone in the workspace may see it; who may roll back only changes one sentence.
Publishing twice draws the same view, so a redelivered event needs no delivery claim.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError

from bot import home
from bot.blocks import SLACK_ID
from bot.deps import Deps
from commands.errors import MigrateError
from providers.store import RedisStore

log = logging.getLogger("migrate.bot.home")
UNAVAILABLE = ("The state store (Redis) did not answer, so the migrations cannot be listed now. "
               "Open the tab again in a minute; `/migrate status` in a migration's channel shows its card.")


def publish_home(deps: Deps, body: dict[str, Any], client: WebClient, *, job: str = "") -> None:
    event = body.get("event") if isinstance(body, dict) else None
    if not isinstance(event, dict) or event.get("type") != "app_home_opened" or event.get("tab", "home") != "home":
        return  # the Messages tab, or not an App Home event at all
    user = event.get("user")
    if not isinstance(user, str) or not SLACK_ID.match(user):
        log.warning("app_home_opened without a user id; nothing published")
        return
    try:
        view = home_for(deps, client, user)
    except MigrateError:
        log.warning("could not read the migrations for the Home tab: Redis did not answer")
        view = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": UNAVAILABLE}}]}
    try:
        client.views_publish(user_id=user, view=view)
    except SlackApiError as err:
        code = str(err.response.get("error", "")) if err.response is not None else ""
        log.warning("Slack refused the Home tab", extra={"slack_error": code or "unknown"})
    except (SlackRequestError, OSError) as err:
        log.warning("could not reach Slack to publish the Home tab", extra={"error": type(err).__name__})


def home_for(deps: Deps, client: WebClient, user: str) -> dict[str, Any]:
    """The view for `user`: the migration store's index of running and finished ones (bot/home.py)."""
    store = RedisStore(deps.redis)  # the engine's store on the same connection, default key prefix
    running = store.active_migrations()
    finished = store.finished_migrations(limit=home.MAX_FINISHED)
    return home.home_view(running, finished, now=deps.clock(), workspace=workspace_url(client),
                          may_roll_back=deps.policy.may(user, "rollback"))


def workspace_url(client: WebClient) -> str:
    """`https://acme.slack.com/` from auth.test (no scope needed), for thread links; "" if Slack does not say."""
    try:
        url = client.auth_test().get("url")
    except (SlackApiError, SlackRequestError, OSError):
        return ""
    return url if isinstance(url, str) else ""
