"""The WSGI app gunicorn serves: Slack's endpoint plus /healthz, /readyz and /metrics on one port.

/healthz says the process is up (for a liveness probe: no dependency checked, so a Redis
outage does not get the pod restarted); /readyz says Redis answers and the config loaded (for
a readiness probe); /metrics is Prometheus text.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import redis
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot.boundary import error_id
from bot.deps import Deps
from commands.errors import MigrateError
from commands.model import Migration

log = logging.getLogger("migrate.bot.web")
EVENTS_PATH = "/slack/events"
#: Slack's largest payloads (a block_actions with a full card) are tens of kilobytes; anything past
#: this is refused on its Content-Length, before a byte of it is read or a signature is checked.
MAX_BODY = 1024 * 1024
StartResponse = Callable[..., Any]


class WebApp:
    def __init__(self, app: App | None, deps: Deps, *, config_loaded: bool = True,
                 migrations: Callable[[], Sequence[Migration]] = lambda: ()) -> None:
        """`app` None (Socket Mode) serves only the probes and metrics; `migrations` lists the active ones."""
        self.slack = SlackRequestHandler(app, path=EVENTS_PATH) if app is not None else None
        self.deps, self.config_loaded, self.migrations = deps, config_loaded, migrations

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        if path == EVENTS_PATH and self.slack is not None:
            return self.events(environ, start_response)
        if method != "GET":
            return _text(start_response, "405 Method Not Allowed", "method not allowed\n")
        if path == "/healthz":
            return _text(start_response, "200 OK", "ok\n")
        if path == "/readyz":
            return self.ready(start_response)
        if path == "/metrics":
            return self.metrics(start_response)
        return _text(start_response, "404 Not Found", "not found\n")

    def events(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Slack's endpoint. A payload whose shape breaks Bolt itself (it reads `actions[0]` of
        whatever arrives, even in its own error path) gets a 400, never a 5xx; it has passed the
        signature check by then, since Bolt checks before it matches listeners."""
        assert self.slack is not None
        length = str(environ.get("CONTENT_LENGTH") or "0")
        if not length.isdigit() or int(length) > MAX_BODY:
            log.warning("refused a request body over the size limit", extra={"content_length": length[:20]})
            return _text(start_response, "413 Content Too Large", "request body too large\n")
        try:
            return self.slack(environ, start_response)
        except Exception:
            log.warning("malformed Slack payload", exc_info=True, extra={"error_id": error_id()})
            return _text(start_response, "400 Bad Request", "malformed request\n")

    def ready(self, start_response: StartResponse) -> Iterable[bytes]:
        if not self.config_loaded:
            return _text(start_response, "503 Service Unavailable", "config not loaded\n")
        try:
            self.deps.redis.ping()
        except redis.RedisError:
            return _text(start_response, "503 Service Unavailable", "redis does not answer\n")
        return _text(start_response, "200 OK", "ready\n")

    def metrics(self, start_response: StartResponse) -> Iterable[bytes]:
        try:
            body = self.deps.metrics.render(self.deps.pending_approvals, self.migrations)
        except (redis.RedisError, MigrateError):
            return _text(start_response, "503 Service Unavailable", "redis does not answer\n")
        return _text(start_response, "200 OK", body, content_type="text/plain; version=0.0.4; charset=utf-8")


def _text(start_response: StartResponse, status: str, body: str, *,
          content_type: str = "text/plain; charset=utf-8") -> list[bytes]:
    data = body.encode()
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(data)))])
    return [data]
