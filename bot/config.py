"""Settings from the environment and the YAML config, checked before anything starts.

Every problem is a `ConfigError` whose text is one line naming the setting and what is wrong,
so `migrate-bot serve` can print it and exit non-zero instead of failing later on a phone.
Independent problems are collected into one `ConfigErrors`, so a bare environment takes one run
of `serve --check` to list, not one run per missing variable.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import yaml

from commands.errors import UserError
from commands.gates import GateConfig
from commands.gates import parse as parse_gates

T = TypeVar("T")
PEOPLE_KEYS = ("operators", "approvers", "rollback")
PASS_THROUGH = ("providers", "sim", "alibaba", "clusters", "prometheus")
KNOWN_KEYS = {*PEOPLE_KEYS, "channels", "required_approvals", "dwell_seconds", "approval_ttl_minutes", "gates",
              "analysis", "controller_configmap", *PASS_THROUGH}
PROVIDERS = ("sim", "alibaba")
_PERSON = re.compile(r"^(\*|[UW][A-Z0-9]+|S[A-Z0-9]+)$")
_CHANNEL = re.compile(r"^[CGD][A-Z0-9]+$")
# NAMESPACE/NAME: a DNS label, then a DNS subdomain (a ConfigMap's name)
_NS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?/[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


class ConfigError(Exception):
    """One setting is missing or wrong; `str()` is the line the operator sees."""

    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        super().__init__(f"{setting}: {problem}")

    @property
    def lines(self) -> list[str]:
        return [str(self)]


class ConfigErrors(ConfigError):
    """Several settings wrong at once, one line each, in the order they were checked."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = [line for err in errors for line in err.lines]
        Exception.__init__(self, "\n".join(self.errors))
        self.setting = errors[0].setting

    @property
    def lines(self) -> list[str]:
        return list(self.errors)


class Problems:
    """Collects ConfigErrors from independent checks; `raise_any()` ends the collection."""

    def __init__(self) -> None:
        self.found: list[ConfigError] = []

    def check(self, fn: Callable[..., T], *args: Any) -> T | None:
        try:
            return fn(*args)
        except ConfigError as err:
            self.found.append(err)
            return None

    def raise_any(self) -> None:
        if len(self.found) == 1:
            raise self.found[0]
        if self.found:
            raise ConfigErrors(self.found)


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
    controller_configmap: str = ""  # NAMESPACE/NAME of the ingress-nginx controller's ConfigMap; "" when unset
    sections: Mapping[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def socket_mode(self) -> bool:
        return bool(self.app_token)

    def world_config(self) -> dict[str, Any]:
        """The sections the world factory reads (`providers`, `sim`, `alibaba`, `clusters`)."""
        return {k: dict(v) for k, v in self.sections.items()}


def load_settings(env: Mapping[str, str]) -> Settings:
    """Read and check the environment, then the YAML file `MIGRATE_CONFIG` names; every problem at once."""
    problems = Problems()
    app_token = problems.check(_app_token, env) or ""
    bot_token = problems.check(bot_token_of, env) or ""
    secret = env.get("SLACK_SIGNING_SECRET", "").strip()
    if not secret and not app_token:
        problems.found.append(ConfigError("SLACK_SIGNING_SECRET",
                                          "not set; copy it from Basic Information > App Credentials"))
    redis_url = problems.check(redis_url_of, env) or ""
    api_url = problems.check(api_url_of, env) or ""
    providers = problems.check(_providers, env) or "sim"
    port = problems.check(_port, env.get("PORT", "3000")) or 3000
    path = problems.check(_required, env, "MIGRATE_CONFIG", "the path of the YAML config (see docs/slack.md)")
    values = problems.check(lambda: parse_config(_read_yaml(path))) if path else None
    if values is not None:
        problems.check(_prometheus_for_gates, providers, values)
    problems.raise_any()
    assert values is not None and path is not None
    return Settings(bot_token=bot_token, signing_secret=secret, redis_url=redis_url, config_path=path,
                    providers=providers, app_token=app_token, api_url=api_url, port=port, **values)


def _app_token(env: Mapping[str, str]) -> str:
    app_token = env.get("SLACK_APP_TOKEN", "").strip()
    if app_token and not app_token.startswith("xapp-"):
        raise ConfigError("SLACK_APP_TOKEN", "must be an app-level token starting with xapp- (or unset for HTTP mode)")
    return app_token


def bot_token_of(env: Mapping[str, str]) -> str:
    bot_token = _required(env, "SLACK_BOT_TOKEN", "the bot token from OAuth & Permissions (xoxb-...)")
    if not bot_token.startswith("xoxb-"):
        raise ConfigError("SLACK_BOT_TOKEN", "must be a bot token starting with xoxb-")
    return bot_token


def redis_url_of(env: Mapping[str, str]) -> str:
    redis_url = _required(env, "REDIS_URL", "e.g. redis://localhost:6379/0")
    if urlparse(redis_url).scheme not in ("redis", "rediss", "unix", "redis+sentinel"):
        raise ConfigError("REDIS_URL", "must be a redis://, rediss://, unix:// or redis+sentinel:// URL")
    return redis_url


def api_url_of(env: Mapping[str, str]) -> str:
    api_url = env.get("SLACK_API_URL", "").strip()
    if not api_url:
        return ""
    if urlparse(api_url).scheme not in ("http", "https") or not urlparse(api_url).netloc:
        raise ConfigError("SLACK_API_URL", "must be an http(s) URL such as https://slack.com/api/")
    return api_url.rstrip("/") + "/"


def _providers(env: Mapping[str, str]) -> str:
    providers = env.get("MIGRATE_PROVIDERS", "sim").strip() or "sim"
    if providers not in PROVIDERS:
        raise ConfigError("MIGRATE_PROVIDERS", f"must be one of {', '.join(PROVIDERS)}, not {providers[:20]!r}")
    return providers


def _prometheus_for_gates(providers: str, values: dict[str, Any]) -> None:
    needs_prometheus = [g.name for g in values["gates"].gates if g.source == "prometheus"]
    if providers == "alibaba" and needs_prometheus and not values["sections"].get("prometheus", {}).get("url"):
        raise ConfigError("prometheus.url", f"is not set, but gate `{needs_prometheus[0]}` reads Prometheus: give the "
                                            "URL of a Prometheus-compatible HTTP API, or drop the gate")


def parse_config(raw: Any) -> dict[str, Any]:
    """Check the YAML mapping and turn it into Settings fields."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError("MIGRATE_CONFIG", "the file must hold a YAML mapping (operators:, approvers:, ...)")
    unknown = sorted(set(map(str, raw)) - KNOWN_KEYS)
    if unknown:
        raise ConfigError(unknown[0], f"unknown config key; known keys: {', '.join(sorted(KNOWN_KEYS))}")
    problems = Problems()
    out: dict[str, Any] = {}

    def keep(key: str, fn: Callable[..., Any], *args: Any) -> None:
        value = problems.check(fn, *args)
        if value is not None:
            out[key] = value

    for key in PEOPLE_KEYS:
        if key in raw:
            keep(key, _people, key, raw[key])
    if "channels" in raw:
        keep("channels", _ids, "channels", raw["channels"], _CHANNEL, "channel ids (C..., G...)")
    if "required_approvals" in raw:
        keep("required_approvals", lambda: int(_number("required_approvals", raw["required_approvals"], 1, 10,
                                                       whole=True)))
    if "dwell_seconds" in raw:
        keep("dwell_seconds", _number, "dwell_seconds", raw["dwell_seconds"], 0, 86_400)
    if "approval_ttl_minutes" in raw:
        keep("approval_ttl_minutes", _number, "approval_ttl_minutes", raw["approval_ttl_minutes"], 0.1, 7 * 24 * 60)
    if raw.get("controller_configmap") is not None:
        keep("controller_configmap", _controller_configmap, raw["controller_configmap"])
    keep("gates", _gates, raw)
    sections = {}
    for key in PASS_THROUGH:
        if key in raw and raw[key] is not None:
            if not isinstance(raw[key], dict):
                problems.found.append(ConfigError(key, "must be a mapping"))
                continue
            sections[key] = raw[key]
    if "prometheus" in sections:
        problems.check(_prometheus, sections["prometheus"])
    out["sections"] = sections
    # Required, not defaulted: a config that forgot them must not let the whole workspace in.
    if "operators" not in raw or raw["operators"] in (None, [], ""):
        problems.found.append(ConfigError("operators", "is missing or empty: list the Slack user or group ids who "
                                                       "may run migrations, or \"*\" for everyone"))
    if "approvers" not in raw or raw["approvers"] in (None, [], ""):
        problems.found.append(ConfigError("approvers", "is missing or empty: list the Slack user or group ids who "
                                                       "may approve, or \"*\" for everyone"))
    problems.raise_any()
    return out


def _controller_configmap(value: Any) -> str:
    text = str(value).strip()
    if not _NS_NAME.match(text):
        raise ConfigError("controller_configmap", f"{text[:60]!r} is not NAMESPACE/NAME of the ingress-nginx "
                                                  "controller's ConfigMap, e.g. ingress-nginx/ingress-nginx-controller")
    return text


def _gates(raw: dict[str, Any]) -> GateConfig:
    try:  # refused at start-up, in one line naming the key (`gates[1].min: ...`)
        return parse_gates(raw.get("gates"), raw.get("analysis"))
    except UserError as err:
        setting, _, problem = str(err).partition(": ")
        raise ConfigError(setting, problem) from None


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
