"""Turn the config's people lists into a Policy, expanding user groups through Slack.

A user group (S...) is listed once in the config and resolved with `usergroups.users.list`,
at start-up and again every minute while running (`refresher`), so adding someone to the
on-call group in Slack is enough, and someone removed from the operators' group stops being
able to shift traffic within a minute, without a restart. A group that does not exist counts as
nobody and is warned about (`serve --check`, and logged at start); any other failure to read a
group stops start-up with a one-line ConfigError naming it; later, the last good lists stay in force.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.config import ConfigError, Settings
from commands.policy import Policy

GroupLookup = Callable[[str], list[str]]
log = logging.getLogger("migrate.bot.roles")


def slack_group_lookup(client: WebClient) -> GroupLookup:
    """A lookup that asks Slack for the members of one user group."""

    def lookup(group_id: str) -> list[str]:
        resp = client.usergroups_users_list(usergroup=group_id)
        return [str(u) for u in resp.get("users", [])]

    return lookup


#: Slack's answers for a group id that names no group: the id is wrong, not the app's scopes.
NO_SUCH_GROUP = frozenset({"no_such_subteam", "subteam_not_found", "invalid_usergroup"})


def expand(setting: str, ids: Iterable[str], lookup: GroupLookup,
           unknown: list[str] | None = None) -> frozenset[str]:
    """User ids for `ids`, with each group id replaced by its members; a group that does not exist
    adds nobody and a line to `unknown`."""
    people: set[str] = set()
    for item in ids:
        if not item.startswith("S"):
            people.add(item)
            continue
        try:
            people.update(lookup(item))
        except SlackApiError as err:
            code = err.response.get("error", "unknown_error") if err.response is not None else "unknown_error"
            if code in NO_SUCH_GROUP and unknown is not None:
                unknown.append(f"{setting}: user group {item} does not exist in this workspace ({code}); it counts "
                               "as nobody: check the id in Slack under People > User groups (it starts with S)")
                continue
            hint = ("the app needs the usergroups:read scope (reinstall it after adding the scope)"
                    if code in ("missing_scope", "not_allowed_token_type", "no_permission")
                    else "Slack did not answer as expected; try again, or check the id")
            raise ConfigError(setting, f"user group {item} could not be read ({code}); {hint}") from None
    return frozenset(people)


def build_policy(settings: Settings, lookup: GroupLookup, unknown: list[str] | None = None) -> Policy:
    """The engine's Policy, with every user group expanded. At start-up (`unknown` given) a group that
    does not exist is warned about; while running (`refresher`) it keeps the last good lists."""
    return Policy(
        operators=expand("operators", settings.operators, lookup, unknown),
        approvers=expand("approvers", settings.approvers, lookup, unknown),
        rollback=expand("rollback", settings.rollback, lookup, unknown),
        channels=frozenset(settings.channels),
        required_approvals=settings.required_approvals,
        dwell_seconds=settings.dwell_seconds,
        approval_ttl_seconds=settings.approval_ttl_minutes * 60,
        gates=settings.gates,
    )


def refresher(settings: Settings, lookup: GroupLookup, *holders: object) -> Callable[[], None]:
    """Re-expand the user groups and hand the new Policy to every holder (the engine, the deps).

    A Slack error keeps the lists in force and says so in the log; it never stops the bot.
    """

    def refresh() -> None:
        try:
            policy = build_policy(settings, lookup)
        except (ConfigError, SlackApiError, OSError) as err:
            log.warning("could not re-read the user groups; the last lists stay in force", extra={"error": str(err)})
            return
        for holder in holders:
            holder.policy = policy  # type: ignore[attr-defined]

    return refresh
