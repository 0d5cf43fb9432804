"""`serve` acks, queues in Redis, and its job worker process does the work: nothing acked is lost to a crash.

The job worker process is frozen (SIGSTOP), a command is acked, a job is left in the worker's
taken list as if it had been running, then the whole process tree is SIGKILLed. `serve`
started again on the same host and port does both, once: one status card, one `start` in the
audit trail, one private answer; a Slack retry of the same command afterwards acts no more.
A job worker process killed on its own is forked again by gunicorn's master and serves on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import signal
import socket
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bot.jobs import Job, Kind
from bot.keys import BotKeys
from bot.queue import JobQueue
from providers.sim.world import SimWorld
from providers.store import RedisStore
from tests.bot_server import GROUPS, free_port
from tests.serve_process import Serve, launch, serving, write_config
from tests.slack_standin import SlackSender, SlackStandIn
from tests.test_bot_http import ALICE, BOB, CHANNEL, Bot

FORM = "application/x-www-form-urlencoded"
START = "start cluster=demo-cluster gateway=gw-demo"


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    standin = SlackStandIn(groups=GROUPS).start()
    yield standin
    standin.stop()


def on_port(slack: SlackStandIn, redis_url: str, tmp: Path, name: str, config: Path, port: int) -> Serve:
    bot = launch(slack, redis_url, tmp, name, config, env={"PORT": str(port)})
    return dataclasses.replace(bot, url=f"http://127.0.0.1:{port}")


def job_worker_pid(slack: SlackStandIn, bot: Serve) -> int:
    """The job worker's pid, from the master's JSON log line that announced it."""
    def found() -> int | None:
        for line in bot.output().splitlines():
            if '"worker process started"' in line:
                return int(json.loads(line)["pid"])
        return None

    return int(slack.wait_for(found, "the job worker process to start"))


def test_acked_and_taken_jobs_survive_a_sigkill_and_act_once(slack: SlackStandIn, redis_url: str,
                                                              tmp_path: Path) -> None:
    state = tmp_path / "world.json"
    SimWorld.from_seed(path=state)
    config = write_config(tmp_path, "bot", state=state)
    port = free_port()
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    keys = BotKeys()
    queue = JobQueue(r, keys, f"{socket.gethostname()}:{port}")
    first = on_port(slack, redis_url, tmp_path, "first", config, port)
    with serving(first):
        send = SlackSender(first.url, slack)
        os.kill(job_worker_pid(slack, first), signal.SIGSTOP)
        start_body = send.command_body(ALICE, START)
        assert send.post(start_body, FORM, timestamp=int(time.time()) - 10).status == 200  # acked, queued
        help_body = {k: v[0] for k, v in urllib.parse.parse_qs(send.command_body(BOB, "help weight")).items()}
        r.lpush(keys.taken(queue.worker, "normal"), Job.new(Kind.COMMAND, help_body).encode())
        # Queued, or already taken if a thread was waiting in BLMOVE when the process froze (Redis moves it anyway).
        assert r.llen(keys.jobs(queue.worker, "normal")) + r.llen(keys.taken(queue.worker, "normal")) == 2
        first.kill()

    second = on_port(slack, redis_url, tmp_path, "second", config, port)
    with serving(second):
        bot = Bot(second.url, slack, SlackSender(second.url, slack))
        bot.card_says("*Phase:* listening")
        bot.told(BOB, "weight")
        assert bot.send.post(start_body, FORM).status == 200  # Slack's retry: new signature, same trigger id
        slack.wait_for(lambda: not any(queue.waiting().values()) and not any(
            r.llen(k) for k in r.keys(keys.taken("*", "*"))), "every job to be done")
        bot.command(ALICE, "history")  # a later job: the queue still flows after the retry
        bot.told(ALICE, "start")

    store = RedisStore.from_url(redis_url)
    m = store.active_in_channel(CHANNEL)
    assert m is not None
    moves = [(e.verb, e.phase_before, e.phase_after) for e in store.events(m.id) if e.phase_before != e.phase_after]
    assert moves == [("start", "", "draft"), ("start", "draft", "listening")], moves
    assert len(bot.cards()) == 1
    assert len([t for t in slack.private_to(BOB) if re.search("weight", t)]) == 1


def test_a_killed_job_worker_process_is_started_again_by_the_master(slack: SlackStandIn, redis_url: str,
                                                                     tmp_path: Path) -> None:
    state = tmp_path / "world.json"
    SimWorld.from_seed(path=state)
    bot_process = launch(slack, redis_url, tmp_path, "bot", write_config(tmp_path, "bot", state=state))
    with serving(bot_process):
        os.kill(job_worker_pid(slack, bot_process), signal.SIGKILL)
        slack.wait_for(lambda: "starting it again" in bot_process.output(), "the master to notice")
        bot = Bot(bot_process.url, slack, SlackSender(bot_process.url, slack))
        bot.command(ALICE, START)
        bot.card_says("*Phase:* listening")


def listening_inodes(port: int) -> set[str]:
    """Socket inodes listening on `port` (any address), from /proc/net/tcp and tcp6."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as rows:
            for row in list(rows)[1:]:
                fields = row.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    found.add(fields[9])
    return found


def held(pid: int) -> list[str]:
    """What each open descriptor of `pid` points at."""
    fds = Path(f"/proc/{pid}/fd")
    return [os.readlink(fd) for fd in fds.iterdir() if fd.exists()]


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads /proc (Linux)")
def test_the_job_worker_process_holds_neither_the_port_nor_the_web_workers_files(
        slack: SlackStandIn, redis_url: str, tmp_path: Path) -> None:
    state = tmp_path / "world.json"
    SimWorld.from_seed(path=state)
    port = free_port()
    bot_process = on_port(slack, redis_url, tmp_path, "bot", write_config(tmp_path, "bot", state=state), port)
    with serving(bot_process):
        first = job_worker_pid(slack, bot_process)
        os.kill(first, signal.SIGKILL)  # forked again, now with web workers running beside it
        slack.wait_for(lambda: bot_process.output().count('"worker process started"') >= 2, "a second job worker")
        pids = [int(json.loads(line)["pid"]) for line in bot_process.output().splitlines()
                if '"worker process started"' in line]
        listening = {f"socket:[{inode}]" for inode in listening_inodes(port)}
        assert listening, "the master listens"

        def inherited() -> list[str]:
            return [f for f in held(pids[-1]) if f in listening or "wgunicorn-" in f]

        # Polled: the master logs the fork before the child has closed anything.
        slack.wait_for(lambda: not inherited(), "the job worker to close the port and the web workers' files")
