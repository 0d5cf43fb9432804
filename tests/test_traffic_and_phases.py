"""Traffic maths and the phase table."""

from __future__ import annotations

import pytest

from commands.errors import TransitionNotAllowed
from commands.phases import TRANSITIONS, Phase, check_table, transition_for
from commands.traffic import Weights, format_share, mse_share, share_bar, spread, weights_for_share


def test_share_follows_the_procedure() -> None:
    assert mse_share(100, 100) == 50
    assert round(mse_share(50, 100), 1) == 33.3
    assert mse_share(0, 100) == 0
    assert mse_share(100, 0) == 100
    assert mse_share(0, 0) == 0


@pytest.mark.parametrize("percent", [0, 1, 9, 25, 33, 50, 60, 75, 90, 99])
def test_weights_for_share_round_trip(percent: int) -> None:
    w = weights_for_share(percent, nginx_floor=1)
    assert abs(w.share - percent) < 1.0
    assert 0 <= w.mse <= 100 and 0 <= w.nginx <= 100
    if percent > 50:
        assert w.mse == 100 and w.nginx < 100  # more than half means lowering NGINX's side


def test_bar_never_hides_a_small_share() -> None:
    assert share_bar(9.09) == "MSE █░░░░░░░░░ 9%"
    assert share_bar(0) == "MSE ░░░░░░░░░░ 0%"
    assert share_bar(100) == "MSE ██████████ 100%"
    assert "█" in share_bar(0.5) and format_share(0.5) == "0.5%"
    assert share_bar(99.5).count("█") == 9


def test_spread_adds_up_exactly() -> None:
    assert spread(10, 3) == [4, 3, 3]
    assert sum(spread(1, 3)) == 1
    assert spread(5, 0) == []


def test_table_has_no_unreachable_phase_and_no_trap() -> None:
    assert check_table() == []
    targets = {t.target for t in TRANSITIONS}
    assert set(Phase) <= targets


def test_irreversible_steps_need_approval() -> None:
    needs = {(t.verb, frozenset(t.sources)) for t in TRANSITIONS if t.needs_approval}
    verbs = {v for v, _ in needs}
    assert {"verify", "cutover", "complete", "abort"} <= verbs
    assert transition_for("abort", Phase.SHIFTING).needs_approval
    assert not transition_for("abort", Phase.CHECKED).needs_approval


def test_locked_weights_are_refused_with_a_reason_but_rollback_stays_open_until_complete() -> None:
    with pytest.raises(TransitionNotAllowed) as err:
        transition_for("weight", Phase.VERIFIED)
    assert "locked" in str(err.value) and "cutover" in str(err.value) and "rollback" in str(err.value)
    with pytest.raises(TransitionNotAllowed):
        transition_for("weight", Phase.CUT_OVER)
    for phase in (Phase.SWITCHED, Phase.SHIFTING, Phase.VERIFIED, Phase.CUT_OVER):
        assert transition_for("rollback", phase).target is Phase.SHIFTING
    for phase in (Phase.COMPLETED, Phase.ABORTED, Phase.METHOD_CHOSEN):
        with pytest.raises(TransitionNotAllowed):
            transition_for("rollback", phase)


def test_weights_describe_both_sides() -> None:
    assert Weights(50, 100).describe() == "MSE weight 50 / NGINX weight 100 = 33% on MSE"
