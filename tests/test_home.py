"""The App Home tab as a reader sees it: pure blocks from records, and the store's index it is read from."""

from __future__ import annotations

import dataclasses
import json

import redis

from bot.home import MAX_FINISHED, home_view
from commands.model import Migration, StepIntent
from commands.phases import Phase
from providers.keys import Keys
from providers.store import FINISHED_KEPT
from tests.engine_helpers import make_harness

NOW = 1_800_000_000.0
SLACK = "https://acme.slack.com/"


def migration(n: int = 1, **kw: object) -> Migration:
    base = Migration(id=f"m-{n}", cluster=f"cluster-{n}", gateway="gw-demo", ingress_class="nginx",
                     channel=f"C0CHAN{n:04d}", created_by="U0ALICE01", created_at=NOW - 3600,
                     card_ts="1800000000.000100")
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def text_of(view: dict) -> str:
    return json.dumps(view, ensure_ascii=False)


def actions(view: dict) -> list[dict]:
    return [b for b in view["blocks"] if b["type"] == "actions" or "accessory" in b]


def test_a_running_migration_shows_phase_the_share_read_back_gates_and_its_thread() -> None:
    observed = {"groups": {"rsp-a": {"share": 4.76}}, "share": 4.76, "mse": 5, "nginx": 100,
                "gates": "✓ backends 100% healthy · ✗ p99 420 ms (NGINX 175 ms)"}
    m = migration(phase=Phase.SHIFTING, method="slb", mse_weight=25, observed=observed)  # meant 20%, holds 5%
    shown = text_of(home_view([m], [], now=NOW, workspace=SLACK))
    assert "*cluster-1* → `gw-demo`" in shown and "*Phase:* shifting" in shown
    assert "MSE █░░░░░░░░░ 5%` read back" in shown and "20%" not in shown
    assert "*Gates:* ✓ backends 100% healthy · ✗ p99 420 ms (NGINX 175 ms)" in shown
    assert "<#C0CHAN0001> · <https://acme.slack.com/archives/C0CHAN0001/p1800000000000100|open the thread>" in shown
    assert "To roll back" in shown and "/migrate rollback" in shown


def test_a_share_never_read_back_says_so() -> None:
    """(The DNS method's lowest name, read back: tests/test_dns_method.py, on a real DNS migration.)"""
    set_only = text_of(home_view([migration(phase=Phase.SHIFTING, method="slb", mse_weight=10)], [], now=NOW))
    assert "as set; not read back yet" in set_only
    early = text_of(home_view([migration(phase=Phase.CHECKED)], [], now=NOW))
    assert "no traffic on MSE yet" in early


def test_finished_migrations_show_outcome_and_duration_newest_first() -> None:
    done = migration(1, phase=Phase.COMPLETED, mse_weight=100, nginx_weight=0, last_action="complete")
    aborted = migration(2, phase=Phase.ABORTED, created_at=NOW - 600, last_action="abort")
    shown = text_of(home_view([], [(done, NOW - 60), (aborted, NOW - 120)], now=NOW))
    assert "*Running now:* none" in shown
    assert "✅ completed *cluster-1*" in shown and "after 59m" in shown and "MSE 100% at the end" in shown
    assert "🛑 aborted *cluster-2*" in shown and "after 8m" in shown
    assert shown.index("cluster-1") < shown.index("cluster-2")


def test_the_view_keeps_within_slacks_limits_with_many_migrations() -> None:
    long = "x" * 5000
    running = [migration(n, phase=Phase.SHIFTING, mse_weight=5, last_action=long, pending_approval="r-1",
                         intent=StepIntent("s", "weights", "weight", "U1", {}, "shifting", NOW),
                         observed={"gates": long}) for n in range(120)]
    finished = [(migration(200 + n, phase=Phase.ABORTED, last_action=long), NOW - n) for n in range(50)]
    view = home_view(running, finished, now=NOW, workspace=SLACK)
    assert len(view["blocks"]) <= 100
    assert all(len(b["text"]["text"]) <= 3000 for b in view["blocks"] if b["type"] == "section")
    assert all(len(b["text"]["text"]) <= 150 for b in view["blocks"] if b["type"] == "header")
    assert "and 80 more" in text_of(view)
    assert text_of(view).count("🛑 aborted") == MAX_FINISHED


def test_hostile_names_are_shown_not_acted_on_and_no_button_acts() -> None:
    m = migration(phase=Phase.SHIFTING, cluster="<!channel>", last_action="<https://evil|approve>",
                  observed={"gates": "<@U0MALLORY>"})
    shown = text_of(home_view([m], [(dataclasses.replace(m, phase=Phase.ABORTED), NOW)], now=NOW))
    assert "<!channel>" not in shown and "&lt;!channel&gt;" in shown
    assert "<https://evil" not in shown and "<@U0MALLORY>" not in shown
    view = home_view([m], [], now=NOW, may_roll_back=False)
    assert actions(view) == [] and "not on the rollback list" in text_of(view)
    assert "You may roll back" in text_of(home_view([m], [], now=NOW, may_roll_back=True))


def test_the_store_indexes_finished_migrations_in_the_same_step_that_finishes_them(redis_url: str) -> None:
    h = make_harness(redis_url)
    for n in range(3):
        h.channel = f"C-{n}"
        h.ok("alice", "/migrate start cluster=demo-cluster gateway=gw-demo")
        h.clock.advance(60 * (n + 1))
        h.ok("alice", "/migrate abort")
    h.channel = "C-run"
    h.ok("alice", "/migrate start cluster=demo-cluster gateway=gw-demo")
    assert [m.channel for m in h.store.active_migrations()] == ["C-run"]
    finished = h.store.finished_migrations(limit=2)
    assert [m.channel for m, _ in finished] == ["C-2", "C-1"]  # newest first, and only as many as asked
    assert all(m.phase is Phase.ABORTED and at == m.last_action_at for m, at in finished)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    assert client.zcard(Keys().finished()) == 3
    m = finished[0][0]  # a later write to a finished record (a card attached) keeps when it finished
    h.engine.attach_card(m.id, card_ts="1.2")
    assert h.store.finished_migrations(limit=1)[0][1] == finished[0][1]
    assert FINISHED_KEPT >= MAX_FINISHED


def test_the_manifest_enables_the_home_tab_and_subscribes_to_its_event() -> None:
    from pathlib import Path

    import yaml

    manifest = yaml.safe_load((Path(__file__).resolve().parents[1] / "slack-manifest.yaml").read_text())
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    events = manifest["settings"]["event_subscriptions"]
    assert "app_home_opened" in events["bot_events"]
    assert events["request_url"] == manifest["settings"]["interactivity"]["request_url"]
    assert events["request_url"].endswith("/slack/events")
