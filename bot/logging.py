"""One JSON object per log line, bound to the migration, user and verb being handled.

stdlib logging only (structlog is not a dependency). Context lives in a ContextVar so each
request thread carries its own; `bound(...)` sets it for a block. Anything that looks like a
Slack token is masked before a line is written, and so is every secret `serve` was given
(`mask_secrets`): a token must never reach a log, whatever library wrote the line.
gunicorn's own loggers go through the same formatter (`gunicorn_logconfig`).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterator
from typing import Any

_CONTEXT: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("migrate_log_context", default=None)
_SECRET = re.compile(r"\b(xox[abposer]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|v0=[0-9a-f]{16,})")
_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_KNOWN: list[str] = []
MIN_SECRET = 6  # shorter values would mask ordinary words


def mask_secrets(*values: str) -> None:
    """Mask these exact values (the signing secret, a Redis password) in every line from now on."""
    for value in values:
        if value and len(value) >= MIN_SECRET and value not in _KNOWN:
            _KNOWN.append(value)
    _KNOWN.sort(key=len, reverse=True)


def mask(text: str) -> str:
    """Replace Slack tokens, signatures and the secrets given to `mask_secrets` with a fixed marker."""
    for value in _KNOWN:
        if value in text:
            text = text.replace(value, "[masked]")
    return _SECRET.sub("[masked]", text)


@contextlib.contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Bind fields (migration, user, verb, ...) to every log line written inside the block."""
    merged = {**(_CONTEXT.get() or {}), **{k: v for k, v in fields.items() if v not in (None, "")}}
    token = _CONTEXT.set(merged)
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def context() -> dict[str, Any]:
    """The fields bound to the current request (a copy)."""
    return dict(_CONTEXT.get() or {})


class JsonFormatter(logging.Formatter):
    """`{"ts":..., "level":..., "logger":..., "msg":..., <context>, <extra>}` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update(_CONTEXT.get() or {})
        line.update({k: v for k, v in vars(record).items() if k not in _RESERVED and not k.startswith("_")})
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return mask(json.dumps(line, default=str, ensure_ascii=False))


def configure(level: str = "INFO", stream: Any = None) -> None:
    """Route every logger through the JSON formatter; quiet the SDKs, whose debug lines carry bodies."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("slack_bolt", "slack_sdk", "urllib3", "gunicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.captureWarnings(True)  # Python warnings become JSON lines too, not bare text on stderr


def gunicorn_logconfig(level: str = "INFO") -> dict[str, Any]:
    """gunicorn's `logconfig_dict`: its error and access loggers write JSON through the root handler.

    gunicorn applies this with dictConfig when it starts, replacing the handlers `configure` set,
    so the root handler is declared here again with our formatter.
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"json": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "root": {"level": level.upper(), "handlers": ["json"]},
        "loggers": {
            "gunicorn.error": {"level": "WARNING", "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": True},
        },
    }

