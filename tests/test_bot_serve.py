"""`serve` as a process: bad settings stop it with one line; timed work (expiry) edits Slack."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.actions import ActionId
from tests.bot_server import GROUPS, ROOT, running_bot, serve_env
from tests.slack_standin import SlackSender, SlackStandIn, buttons


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    standin = SlackStandIn(groups=GROUPS).start()
    yield standin
    standin.stop()


def run_serve(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "import sys; from bot.serve import main; sys.exit(main(['--check']))"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("change", "line"), [
    ({"SLACK_SIGNING_SECRET": ""}, "migrate-bot serve: SLACK_SIGNING_SECRET: not set"),
    ({"SLACK_BOT_TOKEN": "xoxb-wrong"}, "migrate-bot serve: SLACK_BOT_TOKEN: Slack refused it (invalid_auth)"),
    ({"REDIS_URL": "redis://127.0.0.1:1/0"}, "migrate-bot serve: REDIS_URL: no Redis answers there"),
    ({"MIGRATE_PROVIDERS": "gcp"}, "migrate-bot serve: MIGRATE_PROVIDERS: must be one of sim, alibaba"),
])
def test_bad_settings_exit_non_zero_with_one_line(slack: SlackStandIn, redis_url: str, tmp_path: Path,
                                                  change: dict[str, str], line: str) -> None:
    config = tmp_path / "migrate.yaml"
    config.write_text("operators: [U0ALICE01]\napprovers: [U0BOB0001]\n")
    done = run_serve({**serve_env(slack, redis_url, config, 3999), **change})
    assert done.returncode != 0
    errors = [ln for ln in done.stderr.splitlines() if ln.startswith("migrate-bot serve:")]
    assert errors and errors[0].startswith(line), done.stderr
    assert "Traceback" not in done.stderr and "xoxb-wrong" not in done.stderr


def test_an_unknown_user_group_names_the_setting(slack: SlackStandIn, redis_url: str, tmp_path: Path) -> None:
    config = tmp_path / "migrate.yaml"
    config.write_text("operators: [S0NOSUCH1]\napprovers: [U0BOB0001]\n")
    done = run_serve(serve_env(slack, redis_url, config, 3999))
    assert done.returncode != 0
    assert "migrate-bot serve: operators: user group S0NOSUCH1 could not be read (no_such_subteam)" in done.stderr


def test_check_passes_with_good_settings(slack: SlackStandIn, redis_url: str, tmp_path: Path) -> None:
    config = tmp_path / "migrate.yaml"
    config.write_text("operators: [U0ALICE01, S0ONCALL1]\napprovers: [U0BOB0001]\n")
    done = run_serve(serve_env(slack, redis_url, config, 3999))
    assert done.returncode == 0, done.stderr


def test_an_expired_request_is_edited_and_loses_its_buttons(slack: SlackStandIn, redis_url: str,
                                                            tmp_path: Path) -> None:
    with running_bot(slack, redis_url, tmp_path, ttl_minutes=0.1) as url:
        send = SlackSender(url, slack)
        steps = (("start cluster=demo-cluster gateway=gw-demo", "listening"), ("check", "checked"),
                 ("method slb service=ingress-nginx/nginx-ingress-lb", "method chosen"), ("switch", "switched"),
                 ("weight 1", "shifting"), ("verify", "Waiting for approval"))
        for text, then in steps:
            send.command("U0ALICE01", text)
            slack.wait_for(lambda t=then: any(t in json.dumps(m["blocks"], ensure_ascii=False)
                                              for m in slack.messages.values() if not m.get("thread_ts")), then)
        request = slack.wait_for(lambda: next((m for m in slack.messages.values()
                                               if ActionId.APPROVE in [b["action_id"] for b in buttons(m)]), None),
                                 "the approval request")
        expired = slack.wait_for(lambda: "Expired" in json.dumps(slack.messages[request["ts"]]["blocks"],
                                                                 ensure_ascii=False)
                                 and slack.messages[request["ts"]], "the request to expire", timeout=60)
        assert buttons(expired) == []
        slack.wait_for(lambda: any("expired without a decision" in m["text"] for m in slack.messages.values()),
                       "a thread line about the expiry")


def test_check_runs_the_gate_queries_and_names_a_refused_one(slack: SlackStandIn, redis_url: str,
                                                             tmp_path: Path) -> None:
    import yaml

    from tests.openapi_emulator import Emulator
    from tests.prometheus_server import PrometheusStandIn

    refusing = PrometheusStandIn(status=400, body={"status": "error", "errorType": "bad_data",
                                                   "error": "1:5: parse error: unexpected identifier \"rat\""})
    try:
        with Emulator() as emu:
            config = tmp_path / "migrate.yaml"
            config.write_text(yaml.safe_dump({
                "operators": ["U0ALICE01"], "approvers": ["U0BOB0001"], "alibaba": emu.config(),
                "clusters": {"demo-cluster": {"sim_seed": ""}}, "prometheus": {"url": refusing.url, "token": "t0ken"},
                "gates": [{"name": "errors", "source": "prometheus", "query": "sum(rat(x[5m]))", "max": 1}]}))
            env = {**serve_env(slack, redis_url, config, 3999), "MIGRATE_PROVIDERS": "alibaba"}
            done = run_serve(env)
    finally:
        refusing.close()
    assert done.returncode == 2, done.stderr
    [line] = [ln for ln in done.stderr.splitlines() if ln.startswith("migrate-bot serve:")]
    assert line.startswith("migrate-bot serve: gates[0].query:") and "PrometheusBadQuery" in line
    assert "parse error" in line and "t0ken" not in done.stderr and "Traceback" not in done.stderr


def test_check_says_every_warning_in_one_run(slack: SlackStandIn, redis_url: str, tmp_path: Path) -> None:
    config = tmp_path / "migrate.yaml"
    config.write_text("operators: [U0ALICE01]\napprovers: [U0BOB0001]\nrequired_approvals: 5\n")
    env = {**serve_env(slack, redis_url, config, 3999), "MIGRATE_PROVIDERS": "alibaba", "HOME": str(tmp_path),
           "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true"}
    env = {k: v for k, v in env.items() if not k.startswith("ALIBABA_CLOUD_ACCESS")}
    done = run_serve(env)
    assert done.returncode == 0, done.stderr
    warned = [ln for ln in done.stderr.splitlines() if ln.startswith("migrate-bot serve: warning:")]
    assert any("required_approvals: 5 approvals are needed, but only 1 approver" in ln for ln in warned)
    assert any("MIGRATE_PROVIDERS: alibaba, but no Alibaba Cloud credentials" in ln for ln in warned)
    # The tests' throwaway Redis keeps no AOF (or, as the fakeredis stand-in, will not say): warned either way.
    assert any(ln.startswith("migrate-bot serve: warning: REDIS_URL:") for ln in warned)
    assert f"({len(warned)} warning(s) above)" in done.stdout
