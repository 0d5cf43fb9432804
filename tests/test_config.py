"""Settings: a missing or wrong setting is one line that names it; groups expand through Slack."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings, parse_config
from bot.roles import build_policy, expand

GOOD_YAML = """
operators: [U111, S0ONCALL]
approvers: [U222]
rollback: ["*"]
channels: [C0MIGRATE]
required_approvals: 2
dwell_seconds: 0
approval_ttl_minutes: 15
sim: {seed: demo}
"""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    cfg = tmp_path / "migrate.yaml"
    cfg.write_text(GOOD_YAML)
    return {"SLACK_BOT_TOKEN": "xoxb-1-abc", "SLACK_SIGNING_SECRET": "s3cr3t", "REDIS_URL": "redis://localhost/0",
            "MIGRATE_CONFIG": str(cfg)}


def test_good_settings(env: dict[str, str]) -> None:
    s = load_settings(env)
    assert s.port == 3000 and s.providers == "sim" and not s.socket_mode
    assert s.operators == ("U111", "S0ONCALL") and s.rollback == ("*",) and s.channels == ("C0MIGRATE",)
    assert s.required_approvals == 2 and s.dwell_seconds == 0 and s.approval_ttl_minutes == 15
    assert s.world_config() == {"sim": {"seed": "demo"}}


def test_defaults_when_the_file_says_little(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "migrate.yaml").write_text("operators: [U1]\napprovers: [U2]\n")
    s = load_settings({**env, "PORT": "8080", "SLACK_API_URL": "http://127.0.0.1:9/api"})
    assert s.approvers == ("U2",) and s.approval_ttl_minutes == 30 and s.dwell_seconds == 180
    assert s.port == 8080 and s.api_url == "http://127.0.0.1:9/api/"


@pytest.mark.parametrize(("change", "setting"), [
    ({"SLACK_BOT_TOKEN": ""}, "SLACK_BOT_TOKEN"),
    ({"SLACK_BOT_TOKEN": "xoxp-user-token"}, "SLACK_BOT_TOKEN"),
    ({"SLACK_SIGNING_SECRET": ""}, "SLACK_SIGNING_SECRET"),
    ({"REDIS_URL": ""}, "REDIS_URL"),
    ({"REDIS_URL": "http://x"}, "REDIS_URL"),
    ({"MIGRATE_CONFIG": ""}, "MIGRATE_CONFIG"),
    ({"MIGRATE_CONFIG": "/nonexistent/migrate.yaml"}, "MIGRATE_CONFIG"),
    ({"MIGRATE_PROVIDERS": "aws"}, "MIGRATE_PROVIDERS"),
    ({"PORT": "http"}, "PORT"),
    ({"PORT": "70000"}, "PORT"),
    ({"SLACK_API_URL": "slack.com"}, "SLACK_API_URL"),
    ({"SLACK_APP_TOKEN": "xoxb-not-app"}, "SLACK_APP_TOKEN"),
])
def test_bad_environment_names_the_setting(env: dict[str, str], change: dict[str, str], setting: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings({**env, **change})
    assert str(err.value).startswith(f"{setting}: ")
    assert "\n" not in str(err.value)


def test_controller_configmap_reaches_the_world(env: dict[str, str], tmp_path: Path) -> None:
    """The route check of the running bot reads the ConfigMap the config names (and only that one)."""
    from bot.wiring import _build_world

    (tmp_path / "migrate.yaml").write_text("operators: [U1]\napprovers: [U2]\n"
                                           "controller_configmap: ingress-nginx/ingress-nginx-controller\n")
    s = load_settings(env)
    assert _build_world(s).controller_configmap == "ingress-nginx/ingress-nginx-controller"


def test_socket_mode_needs_no_signing_secret(env: dict[str, str]) -> None:
    s = load_settings({**env, "SLACK_SIGNING_SECRET": "", "SLACK_APP_TOKEN": "xapp-1-abc"})
    assert s.socket_mode


@pytest.mark.parametrize(("raw", "setting"), [
    ("- just a list", "MIGRATE_CONFIG"),
    ("operators: [U1]\ncolour: blue", "colour"),
    ("operators: []", "operators"),
    ("operators: [U1]\napprovers: []", "approvers"),
    ("operators: [alice]", "operators"),
    ("operators: 42", "operators"),
    ("channels: [general]", "channels"),
    ("required_approvals: 0", "required_approvals"),
    ("required_approvals: 1.5", "required_approvals"),
    ("required_approvals: yes", "required_approvals"),
    ("dwell_seconds: -1", "dwell_seconds"),
    ("dwell_seconds: soon", "dwell_seconds"),
    ("approval_ttl_minutes: 0", "approval_ttl_minutes"),
    ("alibaba: [region]", "alibaba"),
    ("operators: [U1]\napprovers: [U2]\ncontroller_configmap: nginx-config", "controller_configmap"),
])
def test_bad_config_names_the_key(env: dict[str, str], tmp_path: Path, raw: str, setting: str) -> None:
    (tmp_path / "migrate.yaml").write_text(raw)
    with pytest.raises(ConfigError) as err:
        load_settings(env)
    assert str(err.value).startswith(f"{setting}: ")


def test_broken_yaml_says_where(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "migrate.yaml").write_text("operators: [U1\napprovers: [U2]\n")
    with pytest.raises(ConfigError, match=r"^MIGRATE_CONFIG: .* is not valid YAML \(line \d+\)$"):
        load_settings(env)


def test_an_error_never_echoes_a_secret(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings({**env, "SLACK_BOT_TOKEN": "xoxp-very-secret"})
    assert "very-secret" not in str(err.value)


def test_groups_expand_to_their_members(env: dict[str, str]) -> None:
    s = load_settings(env)
    asked: list[str] = []

    def lookup(group: str) -> list[str]:
        asked.append(group)
        return ["U333", "U444"]

    policy = build_policy(s, lookup)
    assert asked == ["S0ONCALL"]
    assert policy.operators == {"U111", "U333", "U444"}
    assert policy.approvers == {"U222"} and policy.rollback == {"*"}
    assert policy.required_approvals == 2 and policy.approval_ttl_seconds == 900
    assert expand("operators", ["U1"], lookup) == {"U1"} and asked == ["S0ONCALL"]


def test_parse_config_of_an_empty_file_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^operators: is missing"):
        parse_config(None)


@pytest.mark.parametrize(("text", "setting"), [("approvers: [U2]\n", "operators"), ("operators: [U1]\n", "approvers"),
                                               ("{}\n", "operators")])
def test_a_config_that_forgets_who_may_act_is_refused(env: dict[str, str], tmp_path: Path, text: str,
                                                       setting: str) -> None:
    (tmp_path / "migrate.yaml").write_text(text)
    with pytest.raises(ConfigError, match=rf"^{setting}: is missing or empty"):
        load_settings(env)
