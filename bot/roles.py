"""Turn the config's people lists into a Policy, expanding user groups through Slack.

A user group (S...) is listed once in the config and resolved at start-up with
`usergroups.users.list`, so adding someone to the on-call group in Slack is enough; a group
that cannot be read stops start-up with a one-line ConfigError naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.config import ConfigError, Settings
from commands.policy import Policy

GroupLookup = Callable[[str], list[str]]


def slack_group_lookup(client: WebClient) -> GroupLookup:
    """A lookup that asks Slack for the members of one user group."""

    def lookup(group_id: str) -> list[str]:
        resp = client.usergroups_users_list(usergroup=group_id)
        return [str(u) for u in resp.get("users", [])]

    return lookup


def expand(setting: str, ids: Iterable[str], lookup: GroupLookup) -> frozenset[str]:
    """User ids for `ids`, with each group id replaced by its members."""
    people: set[str] = set()
    for item in ids:
        if not item.startswith("S"):
            people.add(item)
            continue
        try:
            people.update(lookup(item))
        except SlackApiError as err:
            code = err.response.get("error", "unknown_error") if err.response is not None else "unknown_error"
            raise ConfigError(setting, f"user group {item} could not be read ({code}); "
                                       "the app needs the usergroups:read scope") from None
    return frozenset(people)


def build_policy(settings: Settings, lookup: GroupLookup) -> Policy:
    """The engine's Policy, with every user group expanded."""
    return Policy(
        operators=expand("operators", settings.operators, lookup),
        approvers=expand("approvers", settings.approvers, lookup),
        rollback=expand("rollback", settings.rollback, lookup),
        channels=frozenset(settings.channels),
        required_approvals=settings.required_approvals,
        dwell_seconds=settings.dwell_seconds,
        approval_ttl_seconds=settings.approval_ttl_minutes * 60,
        gates=settings.gates,
    )
