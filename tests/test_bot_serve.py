"""`serve` as a process: bad settings stop it with one line; timed work (expiry) edits Slack."""

from __future__ import annotations

import json
import os
import socket
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
    ({"REDIS_URL": "DB99"}, "migrate-bot serve: REDIS_URL: Redis refused it: DB index is out of range"),
    ({"MIGRATE_PROVIDERS": "gcp"}, "migrate-bot serve: MIGRATE_PROVIDERS: must be one of sim, alibaba"),
])
def test_bad_settings_exit_non_zero_with_one_line(slack: SlackStandIn, redis_url: str, tmp_path: Path,
                                                  change: dict[str, str], line: str) -> None:
    config = tmp_path / "migrate.yaml"
    config.write_text("operators: [U0ALICE01]\napprovers: [U0BOB0001]\n")
    if change.get("REDIS_URL") == "DB99":  # the tests' own Redis, asked for a database it does not have
        change = {"REDIS_URL": redis_url.rsplit("/", 1)[0] + "/99999"}
    done = run_serve({**serve_env(slack, redis_url, config, 3999), **change})
    assert done.returncode != 0
    errors = [ln for ln in done.stderr.splitlines() if ln.startswith("migrate-bot serve:")]
    assert errors and errors[0].startswith(line), done.stderr
    assert "Traceback" not in done.stderr and "xoxb-wrong" not in done.stderr


def test_an_unknown_user_group_is_a_warning_naming_the_setting_and_the_id(slack: SlackStandIn, redis_url: str,
                                                                          tmp_path: Path) -> None:
    """A group id that names no group counts as nobody: a warning with the right hint, not a scope hint."""
    config = tmp_path / "migrate.yaml"
    config.write_text("operators: [U0ALICE01, S0NOSUCH1]\napprovers: [U0BOB0001]\n")
    done = run_serve(serve_env(slack, redis_url, config, 3999))
    assert done.returncode == 0, done.stderr
    [line] = [ln for ln in done.stderr.splitlines() if "S0NOSUCH1" in ln]
    assert line.startswith("migrate-bot serve: warning: operators: user group S0NOSUCH1 does not exist")
    assert "People > User groups" in line and "usergroups:read" not in line


def test_every_error_is_said_in_one_run_and_slack_unreachable_names_no_unset_variable(redis_url: str,
                                                                                     tmp_path: Path) -> None:
    bare = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    done = run_serve(bare)
    assert done.returncode == 2
    errors = [ln.split(": ")[1] for ln in done.stderr.splitlines() if ln.startswith("migrate-bot serve:")]
    assert errors == ["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "REDIS_URL", "MIGRATE_CONFIG"], done.stderr
    # A settings error does not hide that Redis is down: what was given is still tried, in the same run.
    done = run_serve({**bare, "SLACK_SIGNING_SECRET": "s", "REDIS_URL": "redis://127.0.0.1:1/0"})
    lines = done.stderr.splitlines()
    assert [ln.split(": ")[1] for ln in lines] == ["SLACK_BOT_TOKEN", "MIGRATE_CONFIG", "REDIS_URL"], done.stderr
    assert lines[-1].endswith("no Redis answers there (is it running and reachable?)")

    config = tmp_path / "migrate.yaml"
    config.write_text("operators: [U0ALICE01]\napprovers: [U0BOB0001]\nrequired_approvals: 0\n"
                      "dwell_seconds: -1\n")
    with socket.socket() as sock:  # a port nobody listens on: the default Slack API is not reached in tests
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    env = {**bare, "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "REDIS_URL": "redis://127.0.0.1:1/0",
           "MIGRATE_CONFIG": str(config), "SLACK_API_URL": f"http://127.0.0.1:{closed}/api/"}
    done = run_serve(env)  # the file's two problems, both at once, then Redis and Slack, tried all the same
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("migrate-bot serve:")]
    assert [ln.split(": ")[1] for ln in lines] == ["required_approvals", "dwell_seconds", "REDIS_URL",
                                                   "SLACK_API_URL"], done.stderr
    config.write_text("operators: [U0ALICE01]\napprovers: [U0BOB0001]\n")
    done = run_serve(env)
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("migrate-bot serve:")]
    assert done.returncode == 2 and len(lines) == 2, done.stderr
    assert lines[0].startswith("migrate-bot serve: REDIS_URL: no Redis answers there")
    assert lines[1].startswith(f"migrate-bot serve: SLACK_API_URL: the Slack Web API at http://127.0.0.1:{closed}/")
    assert "Traceback" not in done.stderr
    assert all(ln.startswith("migrate-bot serve: ") for ln in done.stderr.splitlines()), done.stderr  # no log lines


def test_check_passes_with_good_settings(slack: SlackStandIn, redis_url: str, tmp_path: Path) -> None:
    config = tmp_path / "migrate.yaml"
    config.write_text("operators: [U0ALICE01, S0ONCALL1]\napprovers: [U0BOB0001]\n")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    done = run_serve({**serve_env(slack, redis_url, config, 3999), "TMPDIR": str(scratch)})
    assert done.returncode == 0, done.stderr
    assert list(scratch.iterdir()) == []  # the simulated world's file it made is gone with it


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


def test_slack_unreachable_without_slack_api_url_names_slack_and_its_address(tmp_path: Path) -> None:
    """The operator never set SLACK_API_URL: the line must not tell them to fix it."""
    from slack_sdk import WebClient

    from bot.config import ConfigError, Settings
    from bot.wiring import _reach_slack

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    client = WebClient(token="xoxb-1", base_url=f"http://127.0.0.1:{closed}/api/", timeout=2)
    settings = Settings(bot_token="xoxb-1", signing_secret="s", redis_url="redis://x", config_path="c",
                        providers="sim", operators=("*",), approvers=("*",))
    with pytest.raises(ConfigError) as err:
        _reach_slack(client, settings.api_url)
    assert str(err.value).startswith(f"Slack: the Slack Web API at http://127.0.0.1:{closed}/api/ did not answer")
    assert "SLACK_API_URL" not in str(err.value)
