"""A user-group event re-reads the roles at once: someone removed from the operators' group in
Slack is refused within seconds, not at the next minute's re-read (bot/group_events.py)."""

from __future__ import annotations

import json
import time

import pytest

from tests.slack_standin import TEAM
from tests.test_bot_http import ALICE, CAROL, Bot, bot  # noqa: F401 (fixture)


def group_event(kind: str, group: str, removed: list[str]) -> str:
    """An Events API delivery shaped like Slack's `subteam_members_changed` / `subteam_updated`."""
    now = int(time.time())
    event = {"type": kind, "subteam_id": group, "team_id": TEAM, "date_previous_update": now - 60,
             "date_update": now, "added_users": [], "added_users_count": "0", "removed_users": removed,
             "removed_users_count": str(len(removed))} if kind == "subteam_members_changed" else {
        "type": kind, "subteam": {"id": group, "team_id": TEAM, "is_usergroup": True, "date_update": now,
                                  "users": [], "user_count": 0}}
    return json.dumps({"token": "unused", "team_id": TEAM, "api_app_id": "A0MIGRATE", "type": "event_callback",
                       "event_id": f"Ev{now}{kind[:4]}", "event_time": now, "event": event})


@pytest.mark.parametrize("kind", ["subteam_members_changed", "subteam_updated"])
def test_someone_removed_from_the_operators_group_is_refused_after_the_event(bot: Bot, kind: str) -> None:  # noqa: F811
    bot.command(CAROL, "start cluster=demo-cluster gateway=gw-demo")  # an operator through S0ONCALL1
    bot.thread_says("started by <@U0CAROL01>")
    bot.slack.groups = {**bot.slack.groups, "S0ONCALL1": []}  # removed in Slack
    reads = len(bot.slack.of("usergroups.users.list"))
    assert bot.send.post(group_event(kind, "S0ONCALL1", ["U0CAROL01"]), "application/json").status == 200
    # The minute's re-read would come later than this wait: the event made the groups be read again.
    bot.slack.wait_for(lambda: len(bot.slack.of("usergroups.users.list")) > reads, "the groups to be re-read",
                       timeout=20)
    bot.command(CAROL, "check")
    bot.told(CAROL, "You are not allowed to operate migrations")
    bot.command(ALICE, "status")
    bot.told(ALICE, "Phase: listening")  # Carol's check did nothing


def test_the_manifest_subscribes_to_every_group_event_the_bot_listens_to() -> None:
    """Slack sends only the events the app subscribes to: without these the re-read waits a minute."""
    from pathlib import Path

    import yaml

    from bot.group_events import EVENTS

    manifest = yaml.safe_load((Path(__file__).resolve().parents[1] / "slack-manifest.yaml").read_text())
    subscribed = manifest["settings"]["event_subscriptions"]["bot_events"]
    assert set(EVENTS) <= set(subscribed)
    assert "usergroups:read" in manifest["oauth_config"]["scopes"]["bot"]
