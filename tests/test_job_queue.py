"""The job queue and the worker against a real Redis: lanes, the reliable take, redelivery acting once;
and Socket Mode, which keeps running the work in-process.

The runners here stand in for the listeners (they record what ran and can be held on an
event), so what is asserted is the queue's promise: a rollback (and an approval) is taken
while a backlog of status commands waits, and a job a dead worker had taken runs again.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from slack_bolt import App
from slack_bolt.request import BoltRequest
from slack_sdk import WebClient

from bot import listeners
from bot.deps import Deps
from bot.handoff import InProcess
from bot.jobs import Job, Kind, Lane
from bot.keys import BotKeys
from bot.listeners.common import first_delivery
from bot.queue import JobQueue
from bot.worker import MAX_AGE_S, THREADS, TOO_OLD, Worker
from commands.policy import Policy
from tests.slack_standin import BOT_TOKEN, TEAM, SlackStandIn

KEYS = BotKeys()


@pytest.fixture
def r(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url, decode_responses=True)


@pytest.fixture
def queue(r: redis.Redis) -> JobQueue:
    return JobQueue(r, KEYS, "w-test")


def command(text: str, trigger: str = "") -> Job:
    return Job.new(Kind.COMMAND, {"token": "verification-token", "user_id": "U0ALICE01", "channel_id": "C0MIGRATE1",
                                  "text": text, "trigger_id": trigger or f"t.{text}.{time.time_ns()}",
                                  "response_url": "http://127.0.0.1:9/response"})


def wait(predicate: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)
    return found


class Recorder:
    """Runners that record each job's text (or kind) and hold status commands until released."""

    def __init__(self) -> None:
        self.ran: list[str] = []
        self.release = threading.Event()
        self._lock = threading.Lock()

    def runners(self) -> dict[Kind, Any]:
        def run(deps: Any, body: dict[str, Any], client: Any, *, job: str = "", kind: Kind = Kind.COMMAND) -> None:
            with self._lock:
                self.ran.append(body.get("text") or kind.value)
            if body.get("text") == "status":
                self.release.wait(30)

        return {kind: (lambda d, b, c, *, job="", k=kind: run(d, b, c, job=job, kind=k)) for kind in Kind}


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder()
    yield rec
    rec.release.set()


def worker(queue: JobQueue, recorder: Recorder, **threads: int) -> Worker:
    lanes = {Lane(k): v for k, v in threads.items()} or THREADS
    return Worker(None, None, queue, recorder.runners(), heartbeat_s=0.2, threads=lanes)  # type: ignore[arg-type]


def test_the_body_is_stored_without_slacks_verification_token() -> None:
    job = command("status")
    assert "token" not in job.body and "verification-token" not in job.encode()
    assert Job.decode(job.encode()) == job


@pytest.mark.parametrize(("job", "lane"), [
    (command("rollback"), Lane.ROLLBACK), (command("  ROLLBACK now"), Lane.ROLLBACK),
    (command('"rollback"'), Lane.ROLLBACK), (command("ｒｏｌｌｂａｃｋ"), Lane.ROLLBACK),
    (Job.new(Kind.ROLLBACK, {}), Lane.ROLLBACK), (Job.new(Kind.APPROVE, {}), Lane.URGENT),
    (Job.new(Kind.DENY, {}), Lane.URGENT), (command("approve"), Lane.URGENT), (command("status"), Lane.NORMAL),
    (Job.new(Kind.WEIGHT_STEP, {}), Lane.NORMAL), (Job.new(Kind.COMMAND, {"text": 7}), Lane.NORMAL),
])
def test_rollbacks_and_approvals_have_lanes_of_their_own(job: Job, lane: Lane) -> None:
    assert job.lane is lane


def test_a_rollback_and_an_approval_do_not_wait_behind_a_backlog_of_status_commands(
        queue: JobQueue, recorder: Recorder) -> None:
    for _ in range(20):
        queue.push(command("status"))
    w = worker(queue, recorder)
    w.start()
    try:
        wait(lambda: len(recorder.ran) >= 4, "every general thread to be busy with a status")
        queue.push(command("rollback"))
        queue.push(Job.new(Kind.ROLLBACK, {"actions": []}))
        queue.push(Job.new(Kind.APPROVE, {"actions": []}))
        wait(lambda: {"rollback", "approve"} <= set(recorder.ran) and recorder.ran.count("rollback") == 2,
             "the rollbacks and the approval to run")
        assert recorder.ran.count("status") == 4 and queue.waiting()["normal"] == 16, "the backlog still waits"
        recorder.release.set()
        wait(lambda: recorder.ran.count("status") == 20, "the backlog to drain")
    finally:
        recorder.release.set()
        w.stop()
    assert all(not queue.r.llen(KEYS.taken("w-test", lane.value)) for lane in Lane)


def test_jobs_a_dead_replica_had_acked_or_taken_run_once_on_another(queue: JobQueue, r: redis.Redis,
                                                                     recorder: Recorder) -> None:
    dead = JobQueue(r, KEYS, "w-dead")
    for text in ("help", "history", "status weight"):
        dead.push(command(text))
    dead.heartbeat(ttl_ms=60_000)
    assert dead.take((Lane.NORMAL,), timeout_s=1) is not None  # taken, then the replica died
    r.delete(KEYS.alive("w-dead"))  # its heartbeat ran out
    w = worker(queue, recorder, normal=1)  # one thread: the order they run in is the order they are taken
    w.start()
    try:
        wait(lambda: sorted(recorder.ran) == ["help", "history", "status weight"], "the three jobs to run")
        wait(lambda: not r.sismember(KEYS.workers(), "w-dead"), "the dead worker to be forgotten")
    finally:
        w.stop()
    assert recorder.ran == ["help", "history", "status weight"], "the job it had taken first, then in order"
    assert not any(dead.waiting().values()) and not r.llen(KEYS.taken("w-dead", "normal"))


def test_a_worker_restarted_under_its_own_id_takes_back_its_jobs_at_once(queue: JobQueue, r: redis.Redis,
                                                                           recorder: Recorder) -> None:
    queue.push(command("help"))
    queue.heartbeat(ttl_ms=60_000)  # a heartbeat still running: the previous life of this worker
    assert queue.take((Lane.NORMAL,), timeout_s=1) is not None
    w = worker(queue, recorder)
    w.start()
    try:
        wait(lambda: recorder.ran == ["help"], "the job to run")
    finally:
        w.stop()


def test_a_redelivered_job_goes_on_but_a_repeated_delivery_does_not(r: redis.Redis) -> None:
    deps = Deps(engine=None, redis=r, policy=Policy())  # type: ignore[arg-type]
    assert first_delivery(deps, "cmd:1.2.3", job="job-a")
    assert first_delivery(deps, "cmd:1.2.3", job="job-a"), "the same job, run again after its worker died"
    assert not first_delivery(deps, "cmd:1.2.3", job="job-b"), "a Slack retry of the same command"
    assert not first_delivery(deps, "cmd:1.2.3")
    assert first_delivery(deps, "", job="job-c") and first_delivery(deps, "", job="job-c")


def test_in_socket_mode_the_work_still_runs_in_process_after_the_ack() -> None:
    standin = SlackStandIn().start()
    ran: dict[str, Any] = {}
    done = threading.Event()

    def runner(deps: Any, body: dict[str, Any], client: Any, *, job: str = "") -> None:
        ran.update(body=body, job=job)
        done.set()

    try:
        app = App(client=WebClient(token=BOT_TOKEN, base_url=standin.api_url), signing_secret="unused",
                  process_before_response=True, request_verification_enabled=False)
        listeners.register(app, "/migrate", InProcess(None, dict.fromkeys(Kind, runner)))  # type: ignore[arg-type]
        body = urllib.parse.urlencode({"command": "/migrate", "text": "status", "user_id": "U0ALICE01",
                                       "channel_id": "C0MIGRATE1", "team_id": TEAM, "trigger_id": "1.2.3",
                                       "response_url": f"{standin.url}/response/U0ALICE01/1"})
        assert app.dispatch(BoltRequest(body=body, mode="socket_mode")).status == 200
        assert done.wait(30), "the lazy work to run"
    finally:
        standin.stop()
    assert ran["body"]["text"] == "status" and ran["job"] == ""


def test_a_job_whose_take_reply_was_lost_runs_while_the_worker_lives(queue: JobQueue, r: redis.Redis,
                                                                      recorder: Recorder) -> None:
    w = worker(queue, recorder, normal=1)
    w.start()
    try:
        # BLMOVE ran in Redis but its reply never reached a thread: the job sits in our taken list.
        r.lpush(KEYS.taken("w-test", "normal"), command("help").encode())
        wait(lambda: recorder.ran == ["help"], "the stranded job to be put back and run")
        wait(lambda: not r.llen(KEYS.taken("w-test", "normal")), "the taken list to empty")
    finally:
        w.stop()


class DoneFailsOnce(JobQueue):
    """A queue whose first `done` is lost, as when Redis drops the connection at that moment."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.failed = threading.Event()

    def done(self, lane: Lane, raw: str) -> None:
        if not self.failed.is_set():
            self.failed.set()
            raise redis.ConnectionError("connection reset by peer")
        super().done(lane, raw)


def test_a_failed_done_is_retried_on_the_next_beat_and_the_job_runs_once(r: redis.Redis, recorder: Recorder) -> None:
    queue = DoneFailsOnce(r, KEYS, "w-test")
    queue.push(command("help"))
    w = worker(queue, recorder, normal=1)
    w.start()
    try:
        wait(queue.failed.is_set, "the done to fail")
        wait(lambda: not r.llen(KEYS.taken("w-test", "normal")), "the pending done to be retried")
        queue.push(command("history"))  # one thread: once this ran, a re-queued `help` would have run too
        wait(lambda: "history" in recorder.ran, "a later job to run")
    finally:
        w.stop()
    assert recorder.ran == ["help", "history"], "the finished job was not put back and run again"


def test_a_graceful_stop_lets_a_peer_take_over_the_queue_at_its_next_beat(queue: JobQueue, r: redis.Redis,
                                                                           recorder: Recorder) -> None:
    slow = Worker(None, None, queue, recorder.runners(), heartbeat_s=600, threads={})  # type: ignore[arg-type]
    slow.start()  # its heartbeat would hold for half an hour
    queue.push(command("rollback"))  # acked, never taken: this worker serves no lane
    slow.stop()
    assert not r.exists(KEYS.alive("w-test")), "the heartbeat ends with the worker"
    peer = worker(JobQueue(r, KEYS, "w-peer"), recorder, rollback=1)
    peer.start()
    try:
        wait(lambda: recorder.ran == ["rollback"], "the peer to run the stopped worker's rollback")
    finally:
        peer.stop()


def test_a_job_that_waited_too_long_is_not_run_and_its_user_is_told(queue: JobQueue, recorder: Recorder) -> None:
    standin = SlackStandIn().start()
    old = command("rollback")
    body = {**old.body, "response_url": f"{standin.url}/response/U0ALICE01/1"}
    queue.push(dataclasses.replace(old, body=body, queued_at=time.time() - MAX_AGE_S - 1))
    w = Worker(None, WebClient(token=BOT_TOKEN, base_url=standin.api_url), queue,  # type: ignore[arg-type]
               recorder.runners(), heartbeat_s=0.2, threads={Lane.ROLLBACK: 1})
    w.start()
    try:
        told = standin.wait_for(lambda: standin.private_to("U0ALICE01"), "the user to be told")
        queue.push(command("rollback"))  # one thread: once this ran, the old one was handled before it
        wait(lambda: recorder.ran, "a fresh rollback to run")
    finally:
        w.stop()
        standin.stop()
    assert told == [TOO_OLD] and recorder.ran == ["rollback"]
    assert Job.decode(old.encode()).queued_at == old.queued_at > 0
