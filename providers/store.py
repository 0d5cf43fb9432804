"""The Redis store: migration records, approvals, the audit stream and idempotency keys.

Every change is one WATCH/MULTI transaction: the record's version is compared, the new record
written, and the audit event appended to the stream in the same step, so the trail can never
disagree with the record. A lost race raises Conflict; a Redis outage raises StoreUnavailable
before anything was written.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

import redis

from commands.errors import Conflict, StoreUnavailable
from commands.model import Approval, Event, Migration
from providers.keys import Keys

MAX_EVENTS = 10_000
#: Finished migrations kept in the index the App Home reads (the records themselves stay).
FINISHED_KEPT = 200
#: The most an idempotency answer may take (the engine keeps ids and a short text: about 100 bytes).
MAX_ANSWER_BYTES = 512
CLAIM_MARK = "claimed:"  # an idempotency key claimed but not yet answered (never valid JSON)
CHANGED = "The migration changed while this request was handled; run `/migrate status` and try again."


@contextlib.contextmanager
def _available() -> Iterator[None]:
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise StoreUnavailable(
            "The state store (Redis) is unavailable, so nothing was changed. Try again in a minute; "
            "if it persists, check the bot's REDIS_URL and the Redis server."
        ) from exc


class RedisStore:
    def __init__(self, client: redis.Redis, *, prefix: str = "migrate") -> None:
        self.r = client
        self.k = Keys(prefix)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "migrate", timeout: float = 5.0) -> RedisStore:
        """A store on `url`: redis://, rediss:// (TLS) or redis+sentinel://HOST:PORT[,HOST:PORT]/SERVICE[/DB]."""
        if url.startswith("redis+sentinel://"):
            return cls(_sentinel_client(url, timeout), prefix=prefix)
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                      health_check_interval=30, decode_responses=True)
        return cls(client, prefix=prefix)

    def ping(self) -> bool:
        with _available():
            return bool(self.r.ping())

    # ---- reads ----------------------------------------------------------------------------

    def load(self, migration_id: str) -> Migration | None:
        with _available():
            raw = self.r.hget(self.k.record(migration_id), "data")
        return Migration.from_dict(json.loads(raw)) if raw else None

    def active_in_channel(self, channel: str) -> Migration | None:
        with _available():
            mid = self.r.get(self.k.channel(channel))
        return self.load(mid) if mid else None

    def latest_in_channel(self, channel: str) -> Migration | None:
        with _available():
            mid = self.r.get(self.k.channel_latest(channel))
        return self.load(mid) if mid else None

    def active_migrations(self) -> list[Migration]:
        with _available():
            ids = sorted(self.r.smembers(self.k.active()))
        return self._load_all(ids)

    def finished_migrations(self, *, limit: int = 20) -> list[tuple[Migration, float]]:
        """The last `limit` migrations to finish, newest first, with when each finished: read from
        an index kept in the same transaction as the change that finished them (no scan)."""
        with _available():
            pairs = self.r.zrevrange(self.k.finished(), 0, max(0, limit - 1), withscores=True)
        at = {mid: float(score) for mid, score in pairs}
        return [(m, at[m.id]) for m in self._load_all([mid for mid, _ in pairs])]

    def _load_all(self, ids: list[str]) -> list[Migration]:
        """Records for `ids` in one round trip, in order; ids whose record is gone are left out."""
        with _available(), self.r.pipeline(transaction=False) as pipe:
            for mid in ids:
                pipe.hget(self.k.record(mid), "data")
            raws = pipe.execute() if ids else []
        return [Migration.from_dict(json.loads(raw)) for raw in raws if raw]

    def approval(self, migration_id: str, approval_id: str) -> Approval | None:
        with _available():
            raw = self.r.get(self.k.approval(migration_id, approval_id))
        return Approval.from_dict(json.loads(raw)) if raw else None

    def pending_approvals(self) -> list[Approval]:
        with _available():
            members = self.r.zrange(self.k.pending_approvals(), 0, -1)
        out = []
        for member in members:
            mid, _, req = member.partition("/")
            approval = self.approval(mid, req)
            if approval and approval.pending:
                out.append(approval)
        return out

    def events(self, migration_id: str, *, limit: int = 50) -> list[Event]:
        with _available():
            entries = self.r.xrevrange(self.k.events(migration_id), count=limit)
        return [Event.from_dict(json.loads(fields["event"])) for _, fields in reversed(entries)]

    # ---- atomic writes ---------------------------------------------------------------------

    def create(self, migration: Migration, event: Event) -> Migration:
        """Store a new migration, unless its cluster or channel already has an active one."""
        lock, chan = self.k.cluster_lock(migration.cluster), self.k.channel(migration.channel)
        created = Migration.from_dict({**migration.to_dict(), "version": 1})
        with _available(), self.r.pipeline() as pipe:
            try:
                pipe.watch(lock, chan)
                holder = pipe.get(lock)
                if holder:
                    raise Conflict(f"Cluster {migration.cluster} already has an active migration ({holder}); "
                                   "finish or abort it first.")
                in_channel = pipe.get(chan)
                if in_channel:
                    raise Conflict(f"This channel already coordinates migration {in_channel}; "
                                   "finish or abort it, or start the new one in another channel.")
                pipe.multi()
                pipe.hset(self.k.record(created.id), mapping={"version": 1, "data": json.dumps(created.to_dict())})
                pipe.set(lock, created.id)
                pipe.set(chan, created.id)
                pipe.set(self.k.channel_latest(created.channel), created.id)
                pipe.sadd(self.k.active(), created.id)
                self._append(pipe, created, event)
                pipe.execute()
            except redis.WatchError:
                raise Conflict("Another migration was started here at the same moment; "
                               "run `/migrate status`.") from None
        return created

    def commit(self, *, expected_version: int, migration: Migration, event: Event,
               approval: Approval | None = None) -> Migration:
        """Write `migration` if the stored version is still `expected_version`, with its audit event."""
        key = self.k.record(migration.id)
        new = Migration.from_dict({**migration.to_dict(), "version": expected_version + 1})
        with _available(), self.r.pipeline() as pipe:
            try:
                pipe.watch(key)
                current = pipe.hget(key, "version")
                if current is None or int(current) != expected_version:
                    raise Conflict(CHANGED)
                pipe.multi()
                pipe.hset(key, mapping={"version": new.version, "data": json.dumps(new.to_dict())})
                if approval is not None:
                    pipe.set(self.k.approval(new.id, approval.id), json.dumps(approval.to_dict()))
                    member = f"{new.id}/{approval.id}"
                    if approval.pending:
                        pipe.zadd(self.k.pending_approvals(), {member: approval.expires_at})
                    else:
                        pipe.zrem(self.k.pending_approvals(), member)
                if not new.active:
                    pipe.delete(self.k.cluster_lock(new.cluster))
                    pipe.delete(self.k.channel(new.channel))
                    pipe.srem(self.k.active(), new.id)
                    pipe.zadd(self.k.finished(), {new.id: event.at}, nx=True)  # when it first finished
                    pipe.zremrangebyrank(self.k.finished(), 0, -FINISHED_KEPT - 1)
                self._append(pipe, new, event)
                pipe.execute()
            except redis.WatchError:
                raise Conflict(CHANGED) from None
        return new

    def _append(self, pipe: Any, migration: Migration, event: Event) -> None:
        stamped = Event.from_dict({**event.to_dict(), "version": migration.version})
        pipe.xadd(self.k.events(migration.id), {"event": json.dumps(stamped.to_dict())},
                  maxlen=MAX_EVENTS, approximate=True)

    # ---- idempotency --------------------------------------------------------------------------

    def claim(self, key: str, *, ttl_seconds: int, attempt: str = "") -> bool:
        """True for the first delivery of `key`, and for the same `attempt` coming back before an
        answer was stored (its process died mid-request); False for every other repeat."""
        mark = CLAIM_MARK + attempt
        with _available():
            if self.r.set(self.k.idem(key), mark, nx=True, ex=ttl_seconds):
                return True
            return bool(attempt) and self.r.get(self.k.idem(key)) == mark

    def remember(self, key: str, value: Mapping[str, Any], *, ttl_seconds: int) -> None:
        """Keep a delivery's answer for replays, never more than MAX_ANSWER_BYTES (a longer text is cut)."""
        raw, text = _compact(value), str(value.get("text", ""))
        while len(raw.encode()) > MAX_ANSWER_BYTES and text:
            text = text[: max(0, len(text) - (len(raw.encode()) - MAX_ANSWER_BYTES) - 1)]
            raw = _compact({**value, "text": text + "…"})
        with _available():
            self.r.set(self.k.idem(key), raw, ex=ttl_seconds)

    def recall(self, key: str) -> dict[str, Any] | None:
        """The stored answer of a delivery; None while it is only claimed."""
        with _available():
            raw = self.r.get(self.k.idem(key))
        return json.loads(raw) if raw and not raw.startswith(CLAIM_MARK) else None


def _compact(value: Mapping[str, Any]) -> str:
    return json.dumps(dict(value), separators=(",", ":"), ensure_ascii=False)


def _sentinel_client(url: str, timeout: float) -> redis.Redis:
    """redis+sentinel://h1:26379,h2:26379/mymaster/0 -> the master of `mymaster`, via Sentinel."""
    from redis.sentinel import Sentinel

    rest = url.removeprefix("redis+sentinel://")
    hosts, _, path = rest.partition("/")
    service, _, db = path.partition("/")
    nodes = []
    for hp in hosts.split(","):
        host, _, port = hp.rpartition(":")
        nodes.append((host, int(port or 26379)))
    sentinel = Sentinel(nodes, socket_timeout=timeout)
    return sentinel.master_for(service or "mymaster", db=int(db or 0), socket_timeout=timeout, decode_responses=True)
