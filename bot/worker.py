"""The worker: threads that take jobs from the Redis queue and run what the listeners would have run.

Each lane has threads of its own, and a thread also serves every lane above its own before
waiting on it: the rollback threads wait only for rollbacks, so a rollback never waits behind
an approval or a status, and approvals never wait behind a backlog of status commands. A
heartbeat says this worker is alive; on start it puts back what a previous life of the same
worker id left unfinished, and on every beat what any worker whose heartbeat ran out left.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

import redis
from slack_sdk import WebClient

from bot.boundary import error_id
from bot.deps import Deps
from bot.handoff import Runner
from bot.jobs import LANES, Job, Kind, Lane
from bot.logging import bound
from bot.queue import JobQueue

log = logging.getLogger("migrate.bot.worker")
#: Threads per lane. Rollbacks get their own so one never queues; the rest is sized for a burst
#: of mostly read-only commands without starving the web processes of CPU.
THREADS = {Lane.ROLLBACK: 2, Lane.URGENT: 2, Lane.NORMAL: 4}
TAKE_TIMEOUT_S = 1  # how long a thread waits on its lane before it looks at stop and the lanes above
HEARTBEATS_PER_TTL = 3


class Worker:
    def __init__(self, deps: Deps, client: WebClient, queue: JobQueue, runners: Mapping[Kind, Runner], *,
                 heartbeat_s: float, threads: Mapping[Lane, int] = THREADS) -> None:
        self.deps, self.client, self.queue, self.runners = deps, client, queue, runners
        self.id, self.heartbeat_s, self.threads = queue.worker, heartbeat_s, threads
        self.ttl_ms = max(1000, int(heartbeat_s * HEARTBEATS_PER_TTL * 1000))
        self.stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self.queue.heartbeat(ttl_ms=self.ttl_ms)
        self.queue.requeue(self.id)  # ours, from before a crash or a kill: nobody else is working them
        self._spawn(self._beat, "migrate-heartbeat")
        for i, lane in enumerate(LANES):
            for n in range(self.threads.get(lane, 0)):
                self._spawn(lambda lanes=LANES[: i + 1]: self._serve(lanes), f"migrate-{lane.value}-{n}")
        log.info("worker started", extra={"worker": self.id, "waiting": self.queue.waiting()})

    def stop(self, timeout_s: float = 10.0) -> None:
        """Take no new job; wait up to `timeout_s` for the running ones (the rest are re-queued on restart)."""
        self.stopping.set()
        for thread in self._threads:
            thread.join(timeout_s)

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
        try:
            job = Job.decode(raw)
            with bound(job=job.id):
                self.runners[job.kind](self.deps, job.body, self.client, job=job.id)
        except Exception:
            log.exception("a job failed", extra={"error_id": error_id(), "lane": lane.value})
        try:
            self.queue.done(lane, raw)
        except redis.RedisError:
            log.warning("could not mark a job done; it runs again after a restart (acting once)")

    def _beat(self) -> None:
        while not self.stopping.wait(self.heartbeat_s):
            try:
                self.queue.heartbeat(ttl_ms=self.ttl_ms)
                self.queue.requeue_dead()
            except redis.RedisError:
                log.warning("could not renew the worker heartbeat: Redis did not answer")
