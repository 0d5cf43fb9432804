"""Opening the state store for the command-line front ends (demo, console)."""

from __future__ import annotations

import os
import sys

import redis

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
