"""Idempotency answers keep only what a replay needs, under a cap, so Redis does not grow by
kilobytes per request for a day (issue 14, item 12). Real Redis, the engine as `serve` runs it."""

from __future__ import annotations

import redis

from providers.store import MAX_ANSWER_BYTES, RedisStore
from tests.engine_helpers import make_harness

SCRIPT = [
    ("alice", "/migrate start cluster=demo-cluster gateway=gw-demo"), ("alice", "/migrate check"),
    ("alice", "/migrate method slb service=ingress-nginx/nginx-ingress-lb"), ("alice", "/migrate switch"),
    ("alice", "/migrate weight 10"), ("alice", "/migrate status"), ("alice", "/migrate help"),
    ("alice", "/migrate history"), ("alice", "/migrate frobnicate"), ("alice", "/migrate verify"),
    ("bob", "/migrate approve"), ("alice", "/migrate rollback"),
]


def stored_sizes(redis_url: str) -> dict[str, int]:
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    return {key: int(r.strlen(key)) for key in r.scan_iter("migrate:idem:*")}


def test_each_answer_is_kept_small_and_a_replay_still_redraws_its_record(redis_url: str) -> None:
    h = make_harness(redis_url, dwell_seconds=0)
    first = {}
    for n, (user, text) in enumerate(SCRIPT):
        first[n] = h.say(user, text, key=f"delivery-{n}")
    sizes = stored_sizes(redis_url)
    assert len(sizes) == len(SCRIPT)
    print(f"bytes kept per request: max {max(sizes.values())}, mean {sum(sizes.values()) // len(sizes)}")
    assert max(sizes.values()) <= MAX_ANSWER_BYTES, sizes  # was about 2.5 KB each: the whole record
    for n, (user, text) in enumerate(SCRIPT):
        again = h.say(user, text, key=f"delivery-{n}")
        assert again.replayed and again.ok == first[n].ok and again.verb == first[n].verb
        if first[n].migration is not None:
            assert again.migration is not None and again.migration.id == first[n].migration.id
            assert again.migration.version >= first[n].migration.version  # read fresh, not a stale copy
        else:
            assert again.text[:200] == first[n].text[:200]
    verify = next(n for n, (_, text) in enumerate(SCRIPT) if text.endswith("verify"))
    assert h.say("alice", "/migrate verify", key=f"delivery-{verify}").approval == h.store.approval(
        first[verify].migration.id, first[verify].approval.id)  # type: ignore[union-attr]


def test_the_cap_holds_for_any_text(redis_url: str) -> None:
    store = RedisStore.from_url(redis_url)
    for text in ("x" * 20_000, "é≥🙂\n\"" * 4_000):
        store.remember("long", {"text": text, "ok": False, "ephemeral": True, "verb": "help"}, ttl_seconds=60)
        assert max(stored_sizes(redis_url).values()) <= MAX_ANSWER_BYTES
        kept = store.recall("long")
        assert kept is not None and kept["text"].endswith("…") and text.startswith(kept["text"][:-1])
