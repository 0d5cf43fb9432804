"""`/metrics` as Prometheus scrapes it: a migration driven over HTTP, the text parsed, the numbers an operator reads."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from bot.actions import ActionId
from bot.keys import BotKeys
from bot.metrics import ROLLBACK, Metrics
from tests.bot_server import GROUPS, get, running_bot
from tests.slack_standin import SlackSender, SlackStandIn
from tests.test_bot_http import ALICE, BOB, Bot, start_switched, step

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
FAMILIES = {
    "migrate_commands_total": "counter", "migrate_transitions_total": "counter", "migrate_approvals_pending": "gauge",
    "migrate_approval_decision_seconds": "histogram", "migrate_provider_calls_total": "counter",
    "migrate_provider_call_seconds": "histogram", "migrate_mse_weight": "gauge", "migrate_nginx_weight": "gauge",
    "migrate_mse_share_ratio": "gauge", "migrate_rollbacks_total": "counter", "migrate_rollback_seconds": "histogram",
}


@dataclass
class Scrape:
    types: dict[str, str] = field(default_factory=dict)
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)

    def value(self, name: str, **labels: str) -> float:
        found = [v for n, lab, v in self.samples if n == name and all(lab.get(k) == x for k, x in labels.items())]
        assert len(found) == 1, f"{name}{labels}: {found}"
        return found[0]

    def series(self, name: str) -> list[tuple[dict[str, str], float]]:
        return [(lab, v) for n, lab, v in self.samples if n == name]


def parse(text: str) -> Scrape:
    """The text exposition format, strictly: every line a comment or a well-formed sample."""
    scrape = Scrape()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            scrape.types[name] = kind
        elif line.startswith("# HELP ") or not line:
            continue
        else:
            match = _SAMPLE.match(line)
            assert match, f"not a sample: {line!r}"
            labels = dict(_LABEL.findall(match.group(2) or ""))
            scrape.samples.append((match.group(1), labels, float(match.group(3))))
    return scrape


def scrape(bot: Bot) -> Scrape:
    status, text = get(bot.url + "/metrics")
    assert status == 200
    return parse(text)


@pytest.fixture
def bot(redis_url: str, tmp_path: Path) -> Iterator[Bot]:
    slack = SlackStandIn(groups=GROUPS).start()
    try:
        with running_bot(slack, redis_url, tmp_path) as url:
            yield Bot(url, slack, SlackSender(url, slack))
    finally:
        slack.stop()


def test_a_migration_shows_up_in_metrics(bot: Bot) -> None:
    card = start_switched(bot)
    bot.tap(ALICE, card, step(card, 1))
    card = bot.card_says("MSE weight 1 ·")
    bot.tap(BOB, card, ActionId.ROLLBACK)
    bot.card_says("MSE ░░░░░░░░░░ 0%")
    bot.command(ALICE, "weight 10")
    bot.card_says("MSE weight 10 ·")
    bot.command(ALICE, "verify")
    request = bot.approval_message("verify")

    during = scrape(bot)
    assert {name: during.types.get(name) for name in FAMILIES} == FAMILIES
    [(labels, weight)] = during.series("migrate_mse_weight")
    assert labels["cluster"] == "demo-cluster" and labels["migration"] and weight == 10
    assert during.value("migrate_nginx_weight", migration=labels["migration"]) == 100
    assert during.value("migrate_mse_share_ratio", migration=labels["migration"]) == pytest.approx(10 / 110, abs=1e-4)
    assert during.value("migrate_approvals_pending") == 1

    bot.tap(BOB, request, ActionId.APPROVE)
    bot.card_says("*Phase:* verified")
    after = scrape(bot)
    assert after.value("migrate_rollbacks_total") == 1
    assert after.value("migrate_rollback_seconds_count") == 1
    assert after.value("migrate_rollback_seconds_bucket", le="+Inf") == 1
    assert after.value("migrate_approvals_pending") == 0
    assert after.value("migrate_approval_decision_seconds_count", verb="verify", state="approved") == 1
    assert after.value("migrate_transitions_total", verb="switch", phase_to="switched") == 1
    assert after.value("migrate_transitions_total", verb="verify", phase_to="verified") == 1
    assert after.value("migrate_commands_total", verb="rollback", result="ok") == 1
    writes = after.value("migrate_provider_calls_total", operation="slb.set_weights", outcome="ok")
    assert writes > 0
    assert after.value("migrate_provider_call_seconds_count", operation="slb.set_weights") == writes
    buckets = [v for lab, v in after.series("migrate_provider_call_seconds_bucket")
               if lab["operation"] == "slb.set_weights"]
    assert buckets == sorted(buckets) and buckets[-1] == writes, "cumulative, ending at the count"


def test_recording_never_raises_when_redis_is_gone() -> None:
    client = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    gone = Metrics(client, BotKeys())
    gone.command("weight", "ok")
    gone.transition("weight", "shifting")
    gone.provider_call("slb.set_weights", "ok", 0.01)
    gone.rollback()
    gone.observe(ROLLBACK, (), 0.5)


def test_made_up_verbs_do_not_grow_the_verb_label(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    metrics = Metrics(client, BotKeys("migrate-test-labels"))
    for i in range(200):
        metrics.command(f"frobnicate{i}", "refused")
    metrics.command("weight", "ok")
    fields = set(client.hkeys(BotKeys("migrate-test-labels").commands()))
    assert fields == {"unknown|refused", "weight|ok"}
    assert client.hget(BotKeys("migrate-test-labels").commands(), "unknown|refused") == "200"
