"""How a listener's work leaves the request: the ack never waits for it.

Over HTTP (`Queued`) the ack pushes a job to Redis and returns; a separate worker process runs
it (bot/worker.py). The web processes then hold no engine work at all, so under a burst their
request threads do not fight engine threads for the GIL, and a job survives the process that
acked it. In Socket Mode (`InProcess`) the work stays a Bolt lazy listener in this process:
no public endpoint has to answer fast, and a connection per process keeps it simple.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import redis
from slack_bolt import Ack
from slack_sdk import WebClient

from bot.deps import Deps
from bot.jobs import Job, Kind
from bot.queue import JobQueue

log = logging.getLogger("migrate.bot")
UNAVAILABLE = "The state store (Redis) did not answer; nothing was changed. Try again shortly."
#: A listener builder as Bolt returns it from `app.command(...)` / `app.action(...)`.
Listener = Callable[..., Any]


class Runner(Protocol):
    """Carries out one request's work from its body; `job` names the job when run from the queue."""

    def __call__(self, deps: Deps, body: dict[str, Any], client: WebClient, *, job: str = "") -> None: ...


class Handoff(Protocol):
    """Promises an ack that does not wait for the work, and that acked work is carried out."""

    def listen(self, listener: Listener, kind: Kind) -> None: ...


class Queued:
    def __init__(self, queue: JobQueue) -> None:
        self.queue = queue

    def listen(self, listener: Listener, kind: Kind) -> None:
        def ack_queued(ack: Ack, body: dict[str, Any]) -> None:
            try:
                self.queue.push(Job.new(kind, body))
            except redis.RedisError:
                log.error("could not queue a request: Redis did not answer", extra={"kind": kind.value})
                ack(text=UNAVAILABLE)
                return
            ack()

        listener(ack=ack_queued, lazy=[])


class InProcess:
    def __init__(self, deps: Deps, runners: Mapping[Kind, Runner]) -> None:
        self.deps, self.runners = deps, runners

    def listen(self, listener: Listener, kind: Kind) -> None:
        runner = self.runners[kind]

        def ack_now(ack: Ack) -> None:
            ack()

        def run(body: dict[str, Any], client: WebClient) -> None:
            runner(self.deps, body, client)

        listener(ack=ack_now, lazy=[run])
