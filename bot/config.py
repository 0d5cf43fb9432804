"""Settings from the environment and the YAML config, checked before anything starts.

Every problem is a `ConfigError` whose text is one line naming the setting and what is wrong,
so `migrate-bot serve` can print it and exit non-zero instead of failing later on a phone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from commands.controllerconf import parse_ref
from commands.errors import UserError
from commands.gates import GateConfig
from commands.gates import parse as parse_gates

PEOPLE_KEYS = ("operators", "approvers", "rollback")
PASS_THROUGH = ("providers", "sim", "alibaba", "clusters", "prometheus")
KNOWN_KEYS = {*PEOPLE_KEYS, "channels", "required_approvals", "dwell_seconds", "approval_ttl_minutes", "gates",
              "analysis", "controller_configmap", *PASS_THROUGH}
PROVIDERS = ("sim", "alibaba")
_PERSON = re.compile(r"^(\*|[UW][A-Z0-9]+|S[A-Z0-9]+)$")
_CHANNEL = re.compile(r"^[CGD][A-Z0-9]+$")


class ConfigError(Exception):
    """One setting is missing or wrong; `str()` is the line the operator sees."""

    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        super().__init__(f"{setting}: {problem}")


@dataclass(frozen=True)
class Settings:
    """Everything `serve` needs; people lists may still hold user-group ids (S...)."""

    bot_token: str
    signing_secret: str
    redis_url: str
    config_path: str
    providers: str = "sim"
    app_token: str = ""
    api_url: str = ""
    port: int = 3000
    operators: tuple[str, ...] = ("*",)
    approvers: tuple[str, ...] = ("*",)
    rollback: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    required_approvals: int = 1
    dwell_seconds: float = 180.0
    approval_ttl_minutes: float = 30.0
    gates: GateConfig = field(default_factory=GateConfig)
    sections: Mapping[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def socket_mode(self) -> bool:
        return bool(self.app_token)

    def world_config(self) -> dict[str, Any]:
        """The sections the world factory reads (`providers`, `sim`, `alibaba`, `clusters`)."""
        return {k: dict(v) for k, v in self.sections.items()}


def load_settings(env: Mapping[str, str]) -> Settings:
    """Read and check the environment, then the YAML file `MIGRATE_CONFIG` names."""
    app_token = env.get("SLACK_APP_TOKEN", "").strip()
    if app_token and not app_token.startswith("xapp-"):
        raise ConfigError("SLACK_APP_TOKEN", "must be an app-level token starting with xapp- (or unset for HTTP mode)")
    bot_token = _required(env, "SLACK_BOT_TOKEN", "the bot token from OAuth & Permissions (xoxb-...)")
    if not bot_token.startswith("xoxb-"):
        raise ConfigError("SLACK_BOT_TOKEN", "must be a bot token starting with xoxb-")
    secret = env.get("SLACK_SIGNING_SECRET", "").strip()
    if not secret and not app_token:
        raise ConfigError("SLACK_SIGNING_SECRET", "not set; copy it from Basic Information > App Credentials")
    redis_url = _required(env, "REDIS_URL", "e.g. redis://localhost:6379/0")
    if urlparse(redis_url).scheme not in ("redis", "rediss", "unix", "redis+sentinel"):
        raise ConfigError("REDIS_URL", "must be a redis://, rediss://, unix:// or redis+sentinel:// URL")
    api_url = env.get("SLACK_API_URL", "").strip()
    if api_url:
        if urlparse(api_url).scheme not in ("http", "https") or not urlparse(api_url).netloc:
            raise ConfigError("SLACK_API_URL", "must be an http(s) URL such as https://slack.com/api/")
        api_url = api_url.rstrip("/") + "/"
    providers = env.get("MIGRATE_PROVIDERS", "sim").strip() or "sim"
    if providers not in PROVIDERS:
        raise ConfigError("MIGRATE_PROVIDERS", f"must be one of {', '.join(PROVIDERS)}, not {providers[:20]!r}")
    port = _port(env.get("PORT", "3000"))
    path = _required(env, "MIGRATE_CONFIG", "the path of the YAML config (see docs/slack.md)")
    values = parse_config(_read_yaml(path))
    needs_prometheus = [g.name for g in values["gates"].gates if g.source == "prometheus"]
    if providers == "alibaba" and needs_prometheus and not values["sections"].get("prometheus", {}).get("url"):
        raise ConfigError("prometheus.url", f"is not set, but gate `{needs_prometheus[0]}` reads Prometheus: give the "
                                            "URL of a Prometheus-compatible HTTP API, or drop the gate")
    return Settings(bot_token=bot_token, signing_secret=secret, redis_url=redis_url, config_path=path,
                    providers=providers, app_token=app_token, api_url=api_url, port=port, **values)


def parse_config(raw: Any) -> dict[str, Any]:
    """Check the YAML mapping and turn it into Settings fields."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError("MIGRATE_CONFIG", "the file must hold a YAML mapping (operators:, approvers:, ...)")
    unknown = sorted(set(map(str, raw)) - KNOWN_KEYS)
    if unknown:
        raise ConfigError(unknown[0], f"unknown config key; known keys: {', '.join(sorted(KNOWN_KEYS))}")
    out: dict[str, Any] = {}
    for key in PEOPLE_KEYS:
        if key in raw:
            out[key] = _people(key, raw[key])
    if "channels" in raw:
        out["channels"] = _ids("channels", raw["channels"], _CHANNEL, "channel ids (C..., G...)")
    if "required_approvals" in raw:
        out["required_approvals"] = int(_number("required_approvals", raw["required_approvals"], 1, 10, whole=True))
    if "dwell_seconds" in raw:
        out["dwell_seconds"] = _number("dwell_seconds", raw["dwell_seconds"], 0, 86_400)
    if "approval_ttl_minutes" in raw:
        out["approval_ttl_minutes"] = _number("approval_ttl_minutes", raw["approval_ttl_minutes"], 0.1, 7 * 24 * 60)
    try:  # refused at start-up, in one line naming the key (`gates[1].min: ...`)
        out["gates"] = parse_gates(raw.get("gates"), raw.get("analysis"))
    except UserError as err:
        setting, _, problem = str(err).partition(": ")
        raise ConfigError(setting, problem) from None
    sections = {}
    for key in PASS_THROUGH:
        if key in raw and raw[key] is not None:
            if not isinstance(raw[key], dict):
                raise ConfigError(key, "must be a mapping")
            sections[key] = raw[key]
    if "prometheus" in sections:
        _prometheus(sections["prometheus"])
    if raw.get("controller_configmap"):  # the route check reads the NGINX controller's ConfigMap by this name
        try:
            parse_ref(str(raw["controller_configmap"]))
        except UserError as err:
            raise ConfigError("controller_configmap", str(err)) from None
        sections["controller_configmap"] = {"name": str(raw["controller_configmap"]).strip()}
    out["sections"] = sections
    # Required, not defaulted: a config that forgot them must not let the whole workspace in.
    if not out.get("operators"):
        raise ConfigError("operators", "is missing or empty: list the Slack user or group ids who may run "
                                       "migrations, or \"*\" for everyone")
    if not out.get("approvers"):
        raise ConfigError("approvers", "is missing or empty: list the Slack user or group ids who may approve, "
                                       "or \"*\" for everyone")
    return out


def _prometheus(cfg: dict[str, Any]) -> None:
    """The `prometheus:` section: an http(s) URL and a timeout that makes sense (checked at start-up)."""
    url = str(cfg.get("url") or "")
    if url and (urlparse(url).scheme not in ("http", "https") or not urlparse(url).netloc):
        raise ConfigError("prometheus.url", "must be an http(s) URL such as https://prometheus.example.internal:9090")
    if "timeout_seconds" in cfg:
        _number("prometheus.timeout_seconds", cfg["timeout_seconds"], 0.1, 120)


def _required(env: Mapping[str, str], name: str, hint: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(name, f"not set; {hint}")
    return value


def _port(text: str) -> int:
    if not text.strip().isdigit() or not 1 <= int(text) <= 65535:
        raise ConfigError("PORT", f"must be a port number 1..65535, not {text[:20]!r}")
    return int(text)


def _read_yaml(path: str) -> Any:
    p = Path(path)
    if not p.is_file():
        raise ConfigError("MIGRATE_CONFIG", f"no file at {path}")
    try:
        return yaml.safe_load(p.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError("MIGRATE_CONFIG", f"{path} is not valid YAML{where}") from None


def _people(key: str, value: Any) -> tuple[str, ...]:
    return _ids(key, value, _PERSON, "Slack user ids (U...), user-group ids (S...) or \"*\"")


def _ids(key: str, value: Any, pattern: re.Pattern[str], what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ConfigError(key, f"must be a list of {what}")
    out = []
    for item in value:
        if not isinstance(item, str) or not pattern.match(item.strip()):
            raise ConfigError(key, f"{str(item)[:30]!r} is not one of {what}")
        out.append(item.strip())
    return tuple(dict.fromkeys(out))


def _number(key: str, value: Any, low: float, high: float, *, whole: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or (whole and not isinstance(value, int)):
        raise ConfigError(key, f"must be a {'whole ' if whole else ''}number from {low:g} to {high:g}, not {value!r}")
    if not low <= value <= high:
        raise ConfigError(key, f"must be from {low:g} to {high:g}, not {value!r}")
    return float(value)
