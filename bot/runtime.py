"""Wiring shared by every front end (console, demo, serve): store, world and engine from settings."""

from __future__ import annotations

import os
import sys
from typing import Any

import redis

from commands.engine import Engine
from commands.policy import Policy
from providers.factory import build_world
from providers.store import RedisStore

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def open_store(url: str | None = None, *, prefix: str = "migrate", allow_stand_in: bool = True) -> RedisStore:
    """The Redis store; where no Redis answers, an in-memory stand-in, said in one line."""
    url = url or os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    store = RedisStore.from_url(url, prefix=prefix, timeout=2.0)
    try:
        store.r.ping()
        return store
    except (redis.ConnectionError, redis.TimeoutError):
        if not allow_stand_in:
            raise
    try:
        import fakeredis
    except ImportError:
        sys.exit(f"No Redis answers at {url}: start one with `redis-server --daemonize yes` or set REDIS_URL.")
    print(f"No Redis answers at {url} (start one with `redis-server --daemonize yes`); using an in-memory "
          "stand-in: nothing is persisted.", file=sys.stderr)
    return RedisStore(fakeredis.FakeRedis(decode_responses=True), prefix=prefix)


def make_engine(*, store: RedisStore, providers: str = "sim", config: dict[str, Any] | None = None,
                policy: Policy | None = None) -> Engine:
    world = build_world(providers, config or {})
    return Engine(store=store, world=world, policy=policy or Policy())
