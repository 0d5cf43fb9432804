"""A replica's job queue in Redis: one list per lane, and a reliable take so no acked request is lost.

Each replica (worker id: host and port) has its own lanes: its web workers push, its worker
process takes, so a request is carried out under the config of the replica that acked it,
as before jobs were queued. A job is taken by moving it (LMOVE/BLMOVE, atomic) into the
worker's `taken` list and removed from there only once it has run. What a worker that died
left, queued or taken, goes to the front of another's lanes: at once when the same worker id
starts again, or once its heartbeat has expired when another worker notices. A job may so run
twice after a crash; the delivery claim (bot/listeners/common.py, owned by the job's id) and
the engine's idempotency keys make the second run act no more than the first.
"""

from __future__ import annotations

import logging
import secrets

import redis

from bot.jobs import LANES, Job, Lane
from bot.keys import BotKeys

log = logging.getLogger("migrate.bot.queue")

# KEYS[1..n-1] = source lists, in order; KEYS[n] = destination lane.
# Moves every job of each source to the front (right end) of the destination in one step, so a
# taker blocked on the destination sees them all at once and in order. Returns how many.
_MOVE_ALL = """
local dest = KEYS[#KEYS]
local moved = 0
for i = 1, #KEYS - 1 do
  while redis.call('LMOVE', KEYS[i], dest, 'LEFT', 'RIGHT') do
    moved = moved + 1
  end
end
return moved
"""


# KEYS[1] = our taken list of a lane, KEYS[2] = that lane's queued list
# ARGV[1] = how many running jobs follow, ARGV[2] = how many finished ones follow after them;
# ARGV[3..] = running jobs, then finished jobs, then the strays the previous sweep returned.
# Drops the finished jobs, moves each stray seen twice (oldest first) to the front of the lane,
# returns {moved, jobs first seen stray now...}.
_SWEEP = """
local taken, queued = KEYS[1], KEYS[2]
local n_running, n_done = tonumber(ARGV[1]), tonumber(ARGV[2])
local running, before = {}, {}
for i = 3, 2 + n_running do running[ARGV[i]] = true end
for i = 3 + n_running, 2 + n_running + n_done do redis.call('LREM', taken, 1, ARGV[i]) end
for i = 3 + n_running + n_done, #ARGV do before[ARGV[i]] = true end
local moved, fresh = 0, {}
for _, job in ipairs(redis.call('LRANGE', taken, 0, -1)) do
  if not running[job] then
    if before[job] then
      redis.call('LREM', taken, 1, job)
      redis.call('RPUSH', queued, job)
      moved = moved + 1
    else
      table.insert(fresh, job)
    end
  end
end
table.insert(fresh, 1, moved)
return fresh
"""


class JobQueue:
    def __init__(self, client: redis.Redis, keys: BotKeys, worker: str) -> None:
        self.r, self.keys, self.worker = client, keys, worker
        self.life = ""  # this life of the worker (set by `begin_life`); its heartbeat holds it
        self._move_all = client.register_script(_MOVE_ALL)
        self._sweep = client.register_script(_SWEEP)

    def push(self, job: Job) -> None:
        """Enqueue at the back of the job's lane (takers take from the right: first in, first out)."""
        self.r.lpush(self.keys.jobs(self.worker, job.lane.value), job.encode())

    def take(self, lanes: tuple[Lane, ...], *, timeout_s: int) -> tuple[Lane, str] | None:
        """The next job of the first lane that has one; blocks up to `timeout_s` on the last lane only."""
        for lane in lanes[:-1]:
            raw = self.r.lmove(self._queued(lane), self._taken(lane), "RIGHT", "LEFT")
            if raw is not None:
                return lane, str(raw)
        home = lanes[-1]
        raw = self.r.blmove(self._queued(home), self._taken(home), timeout_s, "RIGHT", "LEFT")
        return (home, str(raw)) if raw is not None else None

    def done(self, lane: Lane, raw: str) -> None:
        self.r.lrem(self._taken(lane), 1, raw)

    def sweep(self, lane: Lane, *, running: set[str], done: set[str], strays: set[str]) -> tuple[int, set[str]]:
        """Tidy our taken list of `lane` while we are alive: drop the `done` jobs (a `done` that failed
        earlier), and put back at the front of the lane each job that is not `running` and was one
        of the `strays` already. A take whose reply was lost (timeout, reset) leaves such a job: Redis
        moved it, no thread runs it. Returns how many moved and the strays seen now.

        A stray is put back only when seen twice, a beat apart, so a job whose BLMOVE reply is
        still on its way to a thread is not taken from under it. Atomic (a Lua script)."""
        found = self._sweep(keys=[self._taken(lane), self._queued(lane)],
                            args=[len(running), len(done), *running, *done, *strays])
        moved = int(found[0])
        if moved:
            log.warning("re-queued taken jobs no thread was running", extra={"lane": lane.value, "jobs": moved})
        return moved, {str(job) for job in found[1:]}

    def retire(self) -> None:
        """Stop saying this worker is alive, so a peer takes over what is left at its next beat
        instead of after the heartbeat's TTL."""
        self.r.delete(self.keys.alive(self.worker))

    def begin_life(self) -> str:
        """A new life of this worker id (a process forked again keeps the id, not the life); returns
        the owner name its steps carry: `worker#life`."""
        self.life = secrets.token_hex(6)
        return self.owner

    @property
    def owner(self) -> str:
        return f"{self.worker}#{self.life}"

    def heartbeat(self, *, ttl_ms: int) -> None:
        """Say this life of the worker is alive for `ttl_ms` more; listed so others find it if it stops."""
        pipe = self.r.pipeline(transaction=False)
        pipe.sadd(self.keys.workers(), self.worker)
        pipe.set(self.keys.alive(self.worker), self.life or "1", px=ttl_ms)
        pipe.execute()

    def owner_alive(self, owner: str) -> bool:
        """Whether the worker life `owner` names still beats: gone once its heartbeat expired, or at once
        when the same worker id started again (a new life). Redis not answering: assumed alive."""
        worker, _, life = owner.rpartition("#")
        try:
            return self.r.get(self.keys.alive(worker)) == life
        except redis.RedisError:
            return True

    def requeue(self, worker: str) -> int:
        """Move `worker`'s unfinished jobs to the front of our lanes, in order, taken ones first; how many.

        Atomic per lane (a Lua script), so two requeues at once never lose or double a job."""
        moved = 0
        for lane in LANES:
            sources = [self._taken(lane, worker)]
            if worker != self.worker:
                sources.insert(0, self.keys.jobs(worker, lane.value))  # then its taken ones go in front of them
            moved += int(self._move_all(keys=[*sources, self._queued(lane)]))
        if moved:
            log.warning("re-queued jobs a stopped worker had not finished", extra={"worker": worker, "jobs": moved})
        return moved

    def requeue_dead(self) -> int:
        """Take over the jobs of every listed worker whose heartbeat has expired."""
        moved = 0
        for member in self.r.smembers(self.keys.workers()):
            worker = str(member)
            if worker != self.worker and not self.r.exists(self.keys.alive(worker)):
                moved += self.requeue(worker)
                self.r.srem(self.keys.workers(), worker)
        return moved

    def waiting(self) -> dict[str, int]:
        """Jobs waiting per lane (for logs and tests)."""
        return {lane.value: int(self.r.llen(self._queued(lane))) for lane in LANES}

    def _queued(self, lane: Lane) -> str:
        return self.keys.jobs(self.worker, lane.value)

    def _taken(self, lane: Lane, worker: str = "") -> str:
        return self.keys.taken(worker or self.worker, lane.value)
