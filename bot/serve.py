"""`migrate-bot serve`: the Slack app behind gunicorn, as one process tree.

HTTP mode (default): gunicorn's threaded web workers serve /slack/events, /healthz, /readyz and
/metrics on $PORT, each request read whole before a thread sees it (bot/edge_worker.py); they
only verify, ack and queue. One job worker process, forked and watched by gunicorn's master,
runs the queued work and the expiry loop (bot/worker_process.py), so a simulated world held in
memory is still one world; scale with replicas (the loop's lease keeps it to one). Socket Mode
when SLACK_APP_TOKEN is set: one web worker runs everything, as before (the probes and metrics
are still served on $PORT).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlparse

from gunicorn import sock
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter

from bot.config import ConfigError, Settings, load_settings
from bot.logging import configure, gunicorn_logconfig, mask_secrets
from bot.wiring import Runtime, build, reachability
from bot.worker_process import WorkerProcess
from commands.errors import ProviderError

THREADS = 8
log = logging.getLogger("migrate.bot.serve")
SECRET_ENV = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
              "ALIBABA_CLOUD_SECURITY_TOKEN", "PROMETHEUS_TOKEN")


class Server(BaseApplication):  # type: ignore[misc]
    """gunicorn run programmatically, so `serve` needs no gunicorn command line or config file."""

    def __init__(self, wsgi: Callable[..., Any], options: dict[str, Any], *,
                 jobs: WorkerProcess | None = None) -> None:
        self.application, self.options, self.jobs = wsgi, options, jobs
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Callable[..., Any]:
        return self.application

    def run(self) -> None:
        """BaseApplication.run, with a master that also looks after the job worker process."""
        try:
            JobArbiter(self, self.jobs).run()
        except RuntimeError as err:
            print(f"\nError: {err}\n", file=sys.stderr)
            sys.exit(1)


class JobArbiter(Arbiter):  # type: ignore[misc]
    """gunicorn's master, which starts the job worker once it listens, forks it again whenever it
    finds it gone (on each turn of its loop, where it also replaces web workers), and stops it
    after the web workers on shutdown."""

    def __init__(self, app: Server, jobs: WorkerProcess | None) -> None:
        super().__init__(app)
        self.jobs = jobs
        if jobs is not None:
            jobs.after_fork = self.close_inherited

    def close_inherited(self) -> None:
        """In the job worker, right after the fork: close the listening sockets (never unlinking a
        unix socket the master still serves on) and every web worker's tmp file."""
        sock.close_sockets(self.LISTENERS, unlink=False)
        for worker in self.WORKERS.values():
            worker.tmp.close()

    def start(self) -> None:
        super().start()
        if self.jobs is not None:
            self.jobs.start()

    def manage_workers(self) -> None:
        super().manage_workers()
        if self.jobs is not None:
            self.jobs.ensure()

    def stop(self, graceful: bool = True) -> None:
        super().stop(graceful)
        if self.jobs is not None:
            self.jobs.stop(self.cfg.graceful_timeout if graceful else 1.0)


def worker_count(settings: Any, env: Mapping[str, str]) -> int:
    """Web worker processes: `WEB_CONCURRENCY` if set; else 2 over HTTP, 1 in Socket Mode.

    Two processes halve the ack time under a burst on two cores (see bench/README.md). Over
    HTTP they never touch the world (the job worker process does), so even a simulated world
    kept in memory stays one world; in Socket Mode the web worker does the work itself, so it
    gets one unless the world lives in a shared state file (`sim: {state_file: ...}`).
    """
    if env.get("WEB_CONCURRENCY", "").strip().isdigit():
        return max(1, int(env["WEB_CONCURRENCY"]))
    shared = settings.providers == "alibaba" or bool((settings.world_config().get("sim") or {}).get("state_file"))
    return 2 if shared or not settings.socket_mode else 1


def gunicorn_options(runtime: Runtime, *, port: int, threads: int, log_level: str = "INFO",
                     workers: int = 1) -> dict[str, Any]:
    def post_worker_init(worker: Any) -> None:
        runtime.start_background()

    return {
        "bind": f"0.0.0.0:{port}", "workers": workers, "threads": threads,
        "worker_class": "bot.edge_worker.BufferedThreadWorker",  # slow clients never hold a thread
        "timeout": 30, "graceful_timeout": 10, "keepalive": 5, "accesslog": None, "errorlog": "-",
        "loglevel": "warning", "post_worker_init": post_worker_init, "proc_name": "migrate-bot",
        "logconfig_dict": gunicorn_logconfig(log_level),
        # No control-socket thread in the master: it forks the job worker again at any time, and a
        # fork is only safe from a process without other threads. Nothing here uses `gunicornc`.
        "control_socket_disable": True,
    }


def setup_warnings(settings: Settings, runtime: Runtime) -> list[str]:
    """What `serve --check` (and `serve` at start) warns about, all at once."""
    from bot import warnings

    return [*runtime.warnings, *warnings.approvals(runtime.deps.policy),
            *warnings.redis_persistence(runtime.deps.redis), *settings_warnings(settings)]


def settings_warnings(settings: Settings) -> list[str]:
    """The warnings the settings alone can tell, said even when an error stops start-up."""
    from bot import warnings

    return warnings.cloud_credentials(settings.providers, settings.world_config().get("alibaba") or {}, os.environ)


def check_gate_queries(settings: Settings, world: Any) -> None:
    """`serve --check`: every Prometheus gate's queries run once, so a query Prometheus refuses is a
    config error naming the gate now, not a plan that waits forever later."""
    metrics = getattr(world, "metrics", None)
    for i, gate in enumerate(settings.gates.gates):
        if gate.source != "prometheus" or metrics is None:
            continue
        for side, key in (("mse", "query"), ("nginx", "nginx_query")):
            if side == "nginx" and not gate.nginx_query:
                continue
            try:
                metrics.value(promql=gate.promql(side))
            except ProviderError as err:
                raise ConfigError(f"gates[{i}].{key}", err.one_line()) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="migrate-bot serve", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=None, help="default: $PORT or 3000")
    parser.add_argument("--threads", type=int, default=THREADS, help=f"request threads (default {THREADS})")
    parser.add_argument("--check", action="store_true", help="check the settings, Slack and Redis, then exit")
    args = parser.parse_args(argv or [])
    log_level = os.environ.get("LOG_LEVEL", "INFO")
    configure(log_level)
    if args.check:  # one plain line per finding: the SDKs' own log lines (retries, schedulers) would bury them
        logging.disable(logging.ERROR)
    redis_password = urlparse(os.environ.get("REDIS_URL", "")).password or ""
    mask_secrets(*(os.environ.get(name, "") for name in SECRET_ENV), redis_password)
    settings: Settings | None = None
    try:
        settings = load_settings(os.environ)
        cloud = settings.world_config().get("alibaba") or {}
        mask_secrets(str(cloud.get("access_key_secret") or ""), str(cloud.get("security_token") or ""),
                     str((settings.world_config().get("prometheus") or {}).get("token") or ""))
        runtime = build(settings, port=args.port)
        if args.check:
            check_gate_queries(settings, runtime.deps.engine.world)
    except ConfigError as err:
        found = err.lines if settings is not None else [*err.lines, *(str(e) for e in reachability(os.environ))]
        for line in found:  # every error found, then what would also be warned about
            print(f"migrate-bot serve: {line}", file=sys.stderr)
        for line in settings_warnings(settings) if settings is not None else []:
            print(f"migrate-bot serve: warning: {line}", file=sys.stderr)
        return 2
    warned = setup_warnings(settings, runtime)
    for line in warned:  # plain lines for a person at `--check`; JSON log lines when serving
        if args.check:
            print(f"migrate-bot serve: warning: {line}", file=sys.stderr)
        else:
            log.warning("setup warning", extra={"warning": line})
    if args.check:
        print("migrate-bot serve: settings, Slack token, Redis and the gates' queries are fine"
              + (f" ({len(warned)} warning(s) above)" if warned else ""))
        return 0
    options = gunicorn_options(runtime, port=args.port or settings.port, threads=args.threads, log_level=log_level,
                               workers=worker_count(settings, os.environ))
    jobs = None
    if runtime.worker is not None:
        jobs = WorkerProcess(runtime.start_jobs, runtime.stop_jobs)
    server = Server(runtime.web, options, jobs=jobs)
    try:
        server.run()
    except SystemExit as done:
        return int(done.code or 0) if not isinstance(done.code, str) else 1
    return 0
