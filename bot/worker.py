"""The worker: threads that take jobs from the Redis queue and run what the listeners would have run.

Each lane has threads of its own, and a thread also serves every lane above its own before
waiting on it: the rollback threads wait only for rollbacks, so a rollback never waits behind
an approval or a status, and approvals never wait behind a backlog of status commands. A
heartbeat says this worker is alive; on start it puts back what a previous life of the same
worker id left unfinished, and on every beat what any worker whose heartbeat ran out left, and
what sits in our own taken lists with no thread running it (a take whose reply was lost). A
graceful stop ends the heartbeat at once, so a peer takes over our queue at its next beat. A job
that waited longer than MAX_AGE_S is not run: its user is told, privately, that nothing changed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping

import redis
from slack_bolt import Respond
from slack_sdk import WebClient

from bot.boundary import error_id
from bot.deps import Deps
from bot.handoff import Runner
from bot.jobs import LANES, Job, Kind, Lane
from bot.listeners.common import respond_reply
from bot.logging import bound
from bot.queue import JobQueue

log = logging.getLogger("migrate.bot.worker")
#: Threads per lane. Rollbacks get their own so one never queues; the rest is sized for a burst
#: of mostly read-only commands without starving the web processes of CPU.
THREADS = {Lane.ROLLBACK: 2, Lane.URGENT: 2, Lane.NORMAL: 4}
TAKE_TIMEOUT_S = 1  # how long a thread waits on its lane before it looks at stop and the lanes above
HEARTBEATS_PER_TTL = 3
#: Seconds between heartbeats (its own setting: tests shorten it, production leaves it alone).
HEARTBEAT_ENV = "MIGRATE_HEARTBEAT_SECONDS"
HEARTBEAT_S = 5.0
#: A job older than this is not run: what it asked for may no longer apply, and Slack's
#: response_url (valid 30 minutes) must still be good for telling the user so.
MAX_AGE_S = 10 * 60
TOO_OLD = "That request waited too long and was not carried out; nothing changed. Send it again if it still applies."


def heartbeat_seconds(env: Mapping[str, str]) -> float:
    """`MIGRATE_HEARTBEAT_SECONDS` if set to a positive number, else HEARTBEAT_S."""
    try:
        value = float(env.get(HEARTBEAT_ENV) or HEARTBEAT_S)
    except ValueError:
        return HEARTBEAT_S
    return value if value > 0 else HEARTBEAT_S


class Worker:
    def __init__(self, deps: Deps, client: WebClient, queue: JobQueue, runners: Mapping[Kind, Runner], *,
                 heartbeat_s: float, threads: Mapping[Lane, int] = THREADS) -> None:
        self.deps, self.client, self.queue, self.runners = deps, client, queue, runners
        self.id, self.threads = queue.worker, threads
        self.owner = ""  # `worker#life`, named on the steps this life runs (set at start)
        self.beat_every(heartbeat_s)
        self.stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._running: set[tuple[Lane, str]] = set()  # raw jobs our threads are running now
        self._undone: set[tuple[Lane, str]] = set()  # finished, but `done` failed: still in taken
        self._strays: dict[Lane, set[str]] = {lane: set() for lane in LANES}

    def beat_every(self, heartbeat_s: float) -> None:
        """Set the heartbeat interval (and so the TTL others wait out if we die); before `start`."""
        self.heartbeat_s = heartbeat_s
        self.ttl_ms = max(1000, int(heartbeat_s * HEARTBEATS_PER_TTL * 1000))

    def start(self) -> None:
        # Before the first beat: from then on the steps a previous life left are orphans.
        self.owner = self.queue.owner if self.queue.life else self.queue.begin_life()
        self.queue.heartbeat(ttl_ms=self.ttl_ms)
        self.queue.requeue(self.id)  # ours, from before a crash or a kill: nobody else is working them
        self._spawn(self._beat, "migrate-heartbeat")
        for i, lane in enumerate(LANES):
            for n in range(self.threads.get(lane, 0)):
                self._spawn(lambda lanes=LANES[: i + 1]: self._serve(lanes), f"migrate-{lane.value}-{n}")
        log.info("worker started", extra={"worker": self.id, "waiting": self.queue.waiting()})

    def stop(self, timeout_s: float = 10.0) -> None:
        """Take no new job; wait up to `timeout_s` for the running ones, then end the heartbeat so a
        peer takes over what is left at its next beat (or this worker id at its restart).

        If a job still runs after `timeout_s`, the heartbeat is left to expire instead: a peer
        taking over now could run it a second time while it is still running here."""
        self.stopping.set()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in self._threads):
            log.warning("jobs still running at stop; the heartbeat is left to expire", extra={"worker": self.id})
            return
        try:
            self.queue.retire()
        except redis.RedisError:
            log.warning("could not end the worker heartbeat: Redis did not answer; it expires on its own")

    def _spawn(self, target: object, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def _serve(self, lanes: tuple[Lane, ...]) -> None:
        while not self.stopping.is_set():
            try:
                taken = self.queue.take(lanes, timeout_s=TAKE_TIMEOUT_S)
            except redis.RedisError:
                log.warning("could not take a job: Redis did not answer")
                self.stopping.wait(TAKE_TIMEOUT_S)
                continue
            if taken is not None:
                self.run(*taken)

    def run(self, lane: Lane, raw: str) -> None:
        """Run one taken job, then drop it from our taken list whatever happened (errors are logged, not retried)."""
        with self._lock:
            self._running.add((lane, raw))
        try:
            job = Job.decode(raw)
            with bound(job=job.id):
                if job.age_s() > MAX_AGE_S:
                    self._refuse_old(job)
                else:
                    self.runners[job.kind](self.deps, job.body, self.client, job=job.id)
        except Exception:
            log.exception("a job failed", extra={"error_id": error_id(), "lane": lane.value})
        try:
            self.queue.done(lane, raw)
        except redis.RedisError:
            log.warning("could not mark a job done; the next heartbeat tries again")
            with self._lock:
                self._undone.add((lane, raw))
        finally:
            with self._lock:
                self._running.discard((lane, raw))

    def _refuse_old(self, job: Job) -> None:
        log.warning("dropped a job that waited too long", extra={"kind": job.kind.value, "age_s": int(job.age_s()),
                                                                 "lane": job.lane.value})
        url = job.body.get("response_url")
        if isinstance(url, str) and url:
            respond_reply(Respond(response_url=url, proxy=self.client.proxy, ssl=self.client.ssl))(TOO_OLD)

    def _beat(self) -> None:
        while not self.stopping.wait(self.heartbeat_s):
            try:
                self.queue.heartbeat(ttl_ms=self.ttl_ms)
                self.queue.requeue_dead()
                self._sweep()
            except redis.RedisError:
                log.warning("could not renew the worker heartbeat: Redis did not answer")

    def _sweep(self) -> None:
        """Finish the `done`s that failed, and put back taken jobs no thread runs (bot/queue.py sweep)."""
        for lane in LANES:
            with self._lock:
                running = {raw for at, raw in self._running if at is lane}
                done = {raw for at, raw in self._undone if at is lane}
            _, self._strays[lane] = self.queue.sweep(lane, running=running, done=done, strays=self._strays[lane])
            with self._lock:
                self._undone -= {(lane, raw) for raw in done}
