"""`/migrate help`: short enough for a phone, and about what can be done now; `help all` lists everything."""

from __future__ import annotations

import itertools

import pytest

from commands.grammar import HELP_LINES, VERBS, help_now, help_text, parse
from commands.phases import Phase
from tests.engine_helpers import make_harness


def verbs_in(text: str) -> set[str]:
    return {verb for verb in VERBS if f"`/migrate {verb}" in text}


@pytest.mark.parametrize(("phase", "pending", "plan"),
                         list(itertools.product([None, *Phase], [False, True], ["", "running", "paused"])))
def test_help_is_at_most_twelve_lines_in_every_phase_and_always_offers_rollback_status_and_help(
        phase: Phase | None, pending: bool, plan: str) -> None:
    text = help_now(phase, pending=pending, plan=plan)
    assert len(text.splitlines()) <= HELP_LINES == 12
    assert {"rollback", "status", "help"} <= verbs_in(text)
    assert "`/migrate help all`" in text


def test_help_fits_the_phase() -> None:
    assert verbs_in(help_now(None)) == {"start", "rollback", "status", "history", "help"}
    assert verbs_in(help_now(Phase.LISTENING)) - {"rollback", "status", "history", "help"} == {"check", "abort"}
    assert "method" in verbs_in(help_now(Phase.CHECKED)) and "weight" not in verbs_in(help_now(Phase.CHECKED))
    shifting = verbs_in(help_now(Phase.SHIFTING))
    assert {"weight", "auto", "verify", "abort"} <= shifting and "cutover" not in shifting
    assert "pause" in verbs_in(help_now(Phase.SHIFTING, plan="running"))
    assert "resume" in verbs_in(help_now(Phase.SHIFTING, plan="paused"))
    locked = verbs_in(help_now(Phase.VERIFIED))
    assert "cutover" in locked and not {"weight", "abort", "start"} & locked
    assert {"approve", "deny"} <= verbs_in(help_now(Phase.CUT_OVER, pending=True))
    assert not {"approve", "deny"} & verbs_in(help_now(Phase.CUT_OVER))


def test_help_all_lists_every_verb_and_help_verb_explains_one() -> None:
    assert parse("help all").positional == "all"
    assert verbs_in(help_text("all")) == set(VERBS)
    assert help_text("weight").startswith("`/migrate weight N")


def test_help_through_the_engine_follows_the_channels_migration(redis_url: str) -> None:
    h = make_harness(redis_url, dwell_seconds=0)
    assert "start" in verbs_in(h.ok("mallory", "/migrate help").text)  # anyone may ask; nothing running
    h.to_shifting()
    shown = h.ok("mallory", "/migrate help").text
    assert "the migration is shifting" in shown and "verify" in verbs_in(shown) and "start" not in verbs_in(shown)
    assert len(shown.splitlines()) <= 12
    everything = h.ok("mallory", "/migrate help all").text
    assert verbs_in(everything) == set(VERBS) and len(everything.splitlines()) > 12
