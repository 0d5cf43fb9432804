"""Everything `serve` runs, built from Settings before the server starts.

Built up front (in gunicorn's master, before any fork) so a bad token, an unreadable user
group or a silent Redis stops start-up with one line naming the setting. Threads start only
after the fork. Over HTTP, the web workers only ack and queue; the job worker process
(bot/worker_process.py) runs the jobs and the housekeeper, so the engine and the world (a
simulated one held in memory included) are used in that one process. In Socket Mode the web
worker runs everything, as before. The engine's world, store and the engine itself are
wrapped in recording proxies (bot/instrumented.py) for /metrics.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis
from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.app import create_app, web_client
from bot.config import ConfigError, Problems, Settings, api_url_of, bot_token_of, redis_url_of
from bot.deps import Deps
from bot.group_events import GroupsWatch
from bot.handoff import Queued
from bot.housekeeper import INTERVAL_S, Housekeeper
from bot.instrumented import InstrumentedEngine, InstrumentedStore, InstrumentedWorld
from bot.keys import BotKeys
from bot.listeners import RUNNERS
from bot.metrics import Metrics
from bot.queue import JobQueue
from bot.roles import build_policy, refresher, slack_group_lookup
from bot.timed import TimedWork
from bot.web import WebApp
from bot.worker import Worker, heartbeat_seconds
from commands.engine import Engine
from commands.errors import MigrateError
from providers.factory import build_world
from providers.store import RedisStore

log = logging.getLogger("migrate.bot")
SIM_STATE_DIR = tempfile.gettempdir()  # /tmp: the chart's only writable path; a rehearsal's state
#: Seconds between rounds of timed work; tests shorten it, production leaves it alone.
INTERVAL_ENV = "MIGRATE_TIMED_WORK_SECONDS"


@dataclass
class Runtime:
    settings: Settings
    deps: Deps
    client: WebClient
    app: App
    web: WebApp
    housekeeper: Housekeeper
    worker: Worker | None = None  # over HTTP: runs the queued jobs, in a process of its own
    started: list[object] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # found while building: user groups that do not exist

    def start_background(self) -> None:
        """In a web worker: in Socket Mode the connection and the expiry loop; over HTTP nothing."""
        if self.settings.socket_mode:
            # The websocket-client adapter, not Bolt's default (built-in) one: after a connection is
            # cut without a close frame, the built-in client spins on an empty read and needs five
            # failed pings (about a minute) to connect again; this one sees the close and reconnects
            # at once (tests/test_socket_mode.py).
            from slack_bolt.adapter.socket_mode.websocket_client import SocketModeHandler

            self.housekeeper.start()
            handler = SocketModeHandler(self.app, self.settings.app_token, web_client=self.client)
            handler.connect()
            self.started.append(handler)
        log.info("serving", extra={"mode": "socket" if self.settings.socket_mode else "http",
                                   "port": self.settings.port})

    def start_jobs(self) -> None:
        """In the job worker process: the job threads and the expiry loop."""
        assert self.worker is not None
        engine = self.housekeeper.work.engine  # the steps this process runs name this life of the worker
        engine.owner, engine.owner_alive = self.worker.queue.begin_life(), self.worker.queue.owner_alive
        self.worker.start()
        self.housekeeper.start()

    def stop_jobs(self) -> None:
        assert self.worker is not None
        self.housekeeper.stop()
        self.worker.stop()


def build(settings: Settings, *, port: int | None = None) -> Runtime:
    """`port` (default: the settings') names this replica's job worker: a restart on the same host
    and port takes back what its previous life left unfinished at once."""
    problems = Problems()
    store = problems.check(_reach_redis, settings.redis_url)
    client = web_client(settings)
    slack_ok = problems.check(_reach_slack, client, settings.api_url) is not None
    world = problems.check(_build_world, settings)
    problems.raise_any()
    assert store is not None and slack_ok and world is not None
    unknown_groups: list[str] = []
    policy = build_policy(settings, slack_group_lookup(client), unknown_groups)
    keys = BotKeys()
    metrics = Metrics(store.r, keys)
    engine = Engine(store=InstrumentedStore(store, metrics), world=InstrumentedWorld(world, metrics), policy=policy)
    deps = Deps(engine=InstrumentedEngine(engine, metrics), redis=store.r, policy=policy, keys=keys,
                pending_approvals=lambda: len(store.pending_approvals()))
    interval = float(os.environ.get(INTERVAL_ENV) or INTERVAL_S)
    queue = JobQueue(store.r, keys, f"{socket.gethostname()}:{port or settings.port}")
    app = create_app(settings, deps, client=client, handoff=None if settings.socket_mode else Queued(queue))
    web = WebApp(None if settings.socket_mode else app, deps, migrations=store.active_migrations)
    work = TimedWork(engine=engine, store=store, client=store.r, keys=keys, dwell_seconds=policy.dwell_seconds,
                     clock=deps.clock)
    beat = heartbeat_seconds(os.environ)  # its own setting, not the timed work's interval
    worker = None if settings.socket_mode else Worker(deps, client, queue, RUNNERS, heartbeat_s=beat)
    roles = refresher(settings, slack_group_lookup(client), engine, deps)
    return Runtime(settings, deps, client, app, web,
                   Housekeeper(deps, client, work, interval_s=interval, refresh_roles=roles,
                               groups_changed=GroupsWatch(store.r, keys).changed), worker,
                   warnings=unknown_groups)


def _reach_redis(url: str) -> RedisStore:
    """A store on `url` that answers; a Redis that answers with an error (a db out of range, a wrong
    password) is named in one line, never a traceback."""
    try:
        store = RedisStore.from_url(url)
        store.ping()
    except MigrateError:
        raise ConfigError("REDIS_URL", "no Redis answers there (is it running and reachable?)") from None
    except (ValueError, redis.RedisError) as err:
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError("REDIS_URL", f"Redis refused it: {detail[:120]}") from None
    return store


def reachability(env: Mapping[str, str]) -> list[ConfigError]:
    """With the settings refused, still say whether Redis and Slack answer to what was given, so
    `serve --check` lists those problems in the same run (each only when its own value is well-formed)."""
    problems = Problems()
    url = _well_formed(redis_url_of, env)
    if url:
        problems.check(_reach_redis, url)
    token, api = _well_formed(bot_token_of, env), _well_formed(api_url_of, env)
    if token and api is not None:
        problems.check(_reach_slack, WebClient(token=token, base_url=api or WebClient.BASE_URL, timeout=15), api)
    return problems.found


def _well_formed(check: Callable[[Mapping[str, str]], str], env: Mapping[str, str]) -> str | None:
    """What `check` (the settings' own) accepts, or None where it refuses: that error is said already."""
    try:
        return check(env)
    except ConfigError:
        return None


def _reach_slack(client: WebClient, api_url: str) -> bool:
    """Slack accepts the token; an unreachable API names the variable only when the operator set it."""
    try:
        client.auth_test()
    except SlackApiError as err:
        raise ConfigError("SLACK_BOT_TOKEN", f"Slack refused it ({err.response.get('error', 'error')})") from None
    except OSError as err:
        where = ("SLACK_API_URL", api_url) if api_url else ("Slack", client.base_url)
        raise ConfigError(where[0], f"the Slack Web API at {where[1]} did not answer ({type(err).__name__}); "
                                    "check the pod's egress, proxy or DNS") from None
    return True


def _build_world(settings: Settings) -> Any:
    try:
        return build_world(settings.providers, sim_on_disk(settings.world_config(), settings.providers),
                           controller_configmap=settings.controller_configmap)
    except MigrateError as err:
        raise ConfigError("MIGRATE_PROVIDERS", str(err)) from None


def sim_on_disk(config: dict[str, Any], providers: str) -> dict[str, Any]:
    """A simulated world kept in a file, even when the config gave none.

    The job worker process is forked from gunicorn's master and forked again if it dies; a world
    held only in its memory would then go back to the seed while Redis remembers the migration.
    """
    if providers not in ("", "sim"):
        return config
    sim = dict(config.get("sim") or {})
    if not sim.get("state_file"):
        handle, path = tempfile.mkstemp(prefix="migrate-sim-", suffix=".json", dir=SIM_STATE_DIR)
        os.close(handle)
        os.unlink(path)  # SimState writes the seed there on first use
        sim["state_file"] = path
        atexit.register(_remove_if_creator, path, os.getpid())
        log.info("simulated world kept in a file", extra={"path": path})
    return {**config, "sim": sim}


def _remove_if_creator(path: str, creator: int) -> None:
    """The file we made goes when the process that made it ends (gunicorn's master, or `--check`);
    forked workers inherit this hook and must leave the file to the processes still using it."""
    if os.getpid() == creator:
        for leftover in (path, path + ".lock"):
            try:
                os.unlink(leftover)
            except FileNotFoundError:
                pass
