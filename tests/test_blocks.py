"""The status card and approval messages, as a reader on a phone would see them."""

from __future__ import annotations

import dataclasses
import json

from bot.actions import ActionId, ButtonValue
from bot.blocks import approval_blocks, next_shares, status_blocks, summary_text
from commands.grammar import parse
from commands.model import Approval, Migration, MovedGroup, SlbChoice, StepIntent
from commands.phases import Phase
from commands.policy import Policy

NOW = 1_700_000_000.0
POLICY = Policy(dwell_seconds=180)


def migration(**kw: object) -> Migration:
    base = Migration(id="m-1", cluster="demo-cluster", gateway="gw-demo", ingress_class="nginx", channel="C1",
                     created_by="U1", created_at=NOW - 600)
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def text_of(blocks: list[dict]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def buttons(blocks: list[dict]) -> list[dict]:
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


def test_card_shows_phase_method_bar_next_step_and_last_action() -> None:
    slb = SlbChoice("ingress-nginx", "nginx-ingress-lb", "lb-demo",
                    (MovedGroup("rsp-demo-80", "k8s/30080/x/y/z", ("80/TCP",), 80, 30080, 80),
                     MovedGroup("rsp-demo-443", "k8s/30443/x/y/z", ("443/TCP",), 443, 30443, 443)))
    m = migration(phase=Phase.SHIFTING, method="slb", slb=slb, mse_weight=10, last_weight_change_at=NOW - 60,
                  last_action="weight 10", last_actor="U1", last_action_at=NOW - 60)
    shown = text_of(status_blocks(m, now=NOW, policy=POLICY))
    assert "*Phase:* shifting" in shown
    assert "SLB `lb-demo` (ingress-nginx/nginx-ingress-lb; moved: 80/TCP, 443/TCP)" in shown
    assert "MSE █░░░░░░░░░ 9%" in shown
    assert "/migrate verify" in shown
    assert "Next increase: not before" in shown and "dwell 2m left" in shown
    assert "Last: weight 10 by <@U1>" in shown
    assert summary_text(m) == "Migration m-1: shifting, 9% of traffic on MSE"


def test_rollback_is_a_danger_button_with_confirm_while_weights_move() -> None:
    m = migration(phase=Phase.SHIFTING, mse_weight=10, version=7)
    rollback = [b for b in buttons(status_blocks(m, now=NOW, policy=POLICY)) if b["action_id"] == ActionId.ROLLBACK]
    assert len(rollback) == 1
    assert rollback[0]["style"] == "danger"
    assert rollback[0]["confirm"]["style"] == "danger"
    assert ButtonValue.decode(rollback[0]["value"]) == ButtonValue("m-1", 7)


def test_weight_steps_offer_the_next_shares_as_absolute_targets() -> None:
    m = migration(phase=Phase.SWITCHED)
    steps = [b for b in buttons(status_blocks(m, now=NOW, policy=POLICY))
             if b["action_id"].startswith(ActionId.WEIGHT_STEP)]
    assert [ButtonValue.decode(b["value"]).weight for b in steps] == ["1%", "5%", "10%"]
    assert len({b["action_id"] for b in steps}) == len(steps)  # unique within the block
    assert next_shares(9.09) == [25, 50, 75]
    assert next_shares(95) == []


def test_no_buttons_before_the_switch_or_once_finished_unless_the_next_step_is_one() -> None:
    for phase in (Phase.DRAFT, Phase.CHECKED, Phase.COMPLETED, Phase.ABORTED):
        m = migration(phase=phase, mse_weight=100)
        assert buttons(status_blocks(m, now=NOW, policy=POLICY)) == [], phase


def test_once_weights_are_locked_rollback_comes_first_and_says_what_it_undoes_then_the_next_step() -> None:
    for phase, undone, verb in ((Phase.VERIFIED, "Traffic verification is undone", "cutover"),
                                (Phase.CUT_OVER, "The cutover and traffic verification are undone", "complete")):
        m = migration(phase=phase, mse_weight=100)
        shown = buttons(status_blocks(m, now=NOW, policy=POLICY))
        assert [b["action_id"] for b in shown] == [ActionId.ROLLBACK, f"{ActionId.NEXT_STEP}:{verb}"], phase
        assert undone in shown[0]["confirm"]["text"]["text"]


def next_buttons(m: Migration) -> list[dict]:
    return [b for b in buttons(status_blocks(m, now=NOW, policy=POLICY))
            if b["action_id"].startswith(ActionId.NEXT_STEP)]


def test_next_is_a_button_where_the_next_step_is_a_verb_without_parameters() -> None:
    expected = {Phase.DRAFT: None, Phase.LISTENING: "check", Phase.CHECKED: None, Phase.METHOD_CHOSEN: "switch",
                Phase.SWITCHED: None, Phase.SHIFTING: "verify", Phase.VERIFIED: "cutover",
                Phase.CUT_OVER: "complete", Phase.COMPLETED: None, Phase.ABORTED: None}
    for phase, verb in expected.items():
        m = migration(phase=phase, mse_weight=10, version=4, last_action_at=NOW - 5)
        shown = next_buttons(m)
        if verb is None:
            assert shown == [], phase  # `method ...` and the weight steps need a value: they stay text
            continue
        assert [b["action_id"] for b in shown] == [f"{ActionId.NEXT_STEP}:{verb}"], phase
        assert shown[0]["text"]["text"].startswith("Next: ")
        assert ButtonValue.decode(shown[0]["value"]) == ButtonValue("m-1", 4, changed=NOW - 5)
        assert parse(verb).verb == verb  # the verb alone is a whole command
    assert "Asks for approval" in next_buttons(migration(phase=Phase.VERIFIED))[0]["confirm"]["text"]["text"]


def test_no_next_button_while_a_request_waits_or_a_step_runs() -> None:
    assert next_buttons(migration(phase=Phase.SHIFTING, mse_weight=5, pending_approval="r-1")) == []
    intent = StepIntent("s-1", "listen", "check", "U1", {}, "checked", NOW)
    assert next_buttons(migration(phase=Phase.LISTENING, intent=intent)) == []


def test_card_shows_each_group_read_back_and_the_lowest_share() -> None:
    observed = {"groups": {"rsp-a": {"listeners": "80/TCP", "mse": 10, "nginx": 100, "share": 9.09},
                           "rsp-b": {"listeners": "443/TCP", "mse": 5, "nginx": 100, "share": 4.76}},
                "mse": 5, "nginx": 100, "share": 4.76, "drift": ["rsp-b: eni-1:443 at 0, expected 4"]}
    m = migration(phase=Phase.SHIFTING, method="slb", mse_weight=10, observed=observed)
    shown = text_of(status_blocks(m, now=NOW, policy=POLICY))
    assert "MSE █░░░░░░░░░ 5%" in shown and "MSE weight 5 · NGINX weight 100" in shown
    assert "80/TCP: 9% (MSE 10 / NGINX 100)" in shown and "443/TCP: 5% (MSE 5 / NGINX 100)" in shown
    assert "Drift: rsp-b: eni-1:443 at 0, expected 4" in shown
    assert summary_text(m) == "Migration m-1: shifting, 5% of traffic on MSE"


def test_no_rollback_button_when_nothing_is_on_mse() -> None:
    m = migration(phase=Phase.SWITCHED, mse_weight=0)
    ids = [b["action_id"] for b in buttons(status_blocks(m, now=NOW, policy=POLICY))]
    assert ActionId.ROLLBACK not in ids


def test_dwell_over_says_allowed_now() -> None:
    m = migration(phase=Phase.SHIFTING, mse_weight=5, last_weight_change_at=NOW - 999)
    assert "Next increase: allowed now" in text_of(status_blocks(m, now=NOW, policy=POLICY))


def test_card_text_fits_block_kit_limits() -> None:
    m = migration(phase=Phase.METHOD_CHOSEN, method="dns", domains=tuple(f"d{i}.example.com" for i in range(40)))
    blocks = status_blocks(m, now=NOW, policy=POLICY)
    assert "DNS (d0.example.com, d1.example.com, d2.example.com +37)" in text_of(blocks)
    assert len(blocks) <= 50
    for b in blocks:
        if b["type"] == "section":
            assert len(b["text"]["text"]) <= 3000
        if b["type"] == "header":
            assert len(b["text"]["text"]) <= 150


def approval(**kw: object) -> Approval:
    base = Approval(id="a-1", migration_id="m-1", verb="cutover", args={}, requested_by="U1",
                    requested_at=NOW - 60, expires_at=NOW + 1740, summary="Send all traffic to MSE.")
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def test_pending_approval_has_approve_and_deny_with_confirm() -> None:
    blocks = approval_blocks(approval(), now=NOW)
    shown = text_of(blocks)
    assert "Approval needed: cutover" in shown and "Send all traffic to MSE." in shown
    assert "Asked by <@U1>" in shown and "(in 29m)" in shown
    by_id = {b["action_id"]: b for b in buttons(blocks)}
    assert set(by_id) == {ActionId.APPROVE, ActionId.DENY}
    assert all("confirm" in b for b in by_id.values())
    assert ButtonValue.decode(by_id[ActionId.APPROVE]["value"]).approval == "a-1"


def test_partial_approval_lists_who_approved_so_far() -> None:
    shown = text_of(approval_blocks(approval(required=2, approvals=("U2",)), now=NOW))
    assert "needs 2 approvals" in shown and "approved by <@U2>" in shown


def test_decided_or_expired_approval_has_no_buttons_and_says_who() -> None:
    approved = approval_blocks(approval(state="approved", approvals=("U2",), decided_at=NOW), now=NOW)
    assert buttons(approved) == [] and "approved by <@U2>" in text_of(approved)
    denied = approval_blocks(approval(state="denied", denied_by="U3", reason="error rate up"), now=NOW)
    assert buttons(denied) == [] and "denied by <@U3>: error rate up" in text_of(denied)
    expired = approval_blocks(approval(state="expired"), now=NOW)
    assert buttons(expired) == [] and "Expired" in text_of(expired)


def test_button_value_round_trips_and_rejects_foreign_values() -> None:
    v = ButtonValue("m-1", 3, approval="a-9", weight="25%")
    assert ButtonValue.decode(v.encode()) == v
    for bad in ("", "[]", "{\"x\": 1}", "not json"):
        try:
            ButtonValue.decode(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


def test_rollback_is_the_first_button_on_the_card() -> None:
    m = migration(phase=Phase.SHIFTING, mse_weight=10)
    ids = [b["action_id"] for b in buttons(status_blocks(m, now=NOW, policy=POLICY))]
    assert ids[0] == ActionId.ROLLBACK and len(ids) > 1
