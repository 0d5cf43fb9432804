"""A short Redis lock, so two threads or replicas never post or redraw one status card at once.

Taken with SET NX PX and released only by its holder (compare-and-delete in Lua), so a lock
whose holder died simply runs out.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Iterator

import redis

# KEYS[1] = lock key; ARGV[1] = holder token. Deletes the lock only if we still hold it.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


@contextlib.contextmanager
def short_lock(client: redis.Redis, key: str, *, ttl_ms: int = 10_000, wait_s: float = 10.0) -> Iterator[bool]:
    """Hold `key` for the block; yields False if it could not be had in `wait_s` (the caller goes on anyway)."""
    token = secrets.token_hex(8)
    deadline = time.monotonic() + wait_s
    held = False
    while True:
        held = bool(client.set(key, token, nx=True, px=ttl_ms))
        if held or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    try:
        yield held
    finally:
        if held:
            with contextlib.suppress(redis.RedisError):
                client.eval(_RELEASE, 1, key, token)
