"""The `migrate-bot` command: demo, console, serve and check-routes."""

from __future__ import annotations

import argparse
import math
import os
import secrets
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

MAX_DWELL = 86_400  # as `dwell_seconds` in serve's config (bot/config.py)


class OneLineParser(argparse.ArgumentParser):
    """A bad option is one line and exit code 2, without the usage block (`--help` still shows it)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"{self.prog}: {message}", file=sys.stderr)
        raise SystemExit(2)


def dwell(text: str) -> float:
    """`--dwell`: seconds, finite, 0..86400, as `serve` checks `dwell_seconds`."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or not 0 <= value <= MAX_DWELL:
        raise argparse.ArgumentTypeError(f"must be from 0 to {MAX_DWELL} seconds, not {text}")
    return value


def existing_file(text: str) -> str:
    if not Path(text).is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    return text


def seed_file(text: str) -> str:
    """`--seed`: a file holding a YAML mapping (the simulated world), said in one line if not."""
    existing_file(text)
    import yaml

    try:
        data = yaml.safe_load(Path(text).read_text())
    except (OSError, UnicodeDecodeError) as err:
        raise argparse.ArgumentTypeError(f"cannot read {text}: {err.__class__.__name__}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise argparse.ArgumentTypeError(f"{text} is not valid YAML"
                                         + (f" (line {mark.line + 1})" if mark else "")) from None
    if not isinstance(data, dict):
        raise argparse.ArgumentTypeError(f"{text} must hold a YAML mapping (clusters:, gateways:, ...), "
                                         "like providers/sim/seed.yaml")
    return text


def state_file(text: str) -> str:
    """`--sim-state`: a file that may not exist yet, in a directory that must, and is writable."""
    folder = Path(text).expanduser().resolve().parent
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(f"no such directory: {folder} (the file itself is created on first use)")
    if Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory; name a file in it, e.g. {text.rstrip('/')}/sim.json")
    if not os.access(folder, os.W_OK):
        raise argparse.ArgumentTypeError(f"cannot write in {folder}")
    return text


def _version() -> str:
    try:
        return version("migrate-bot")
    except PackageNotFoundError:
        return "unknown (not installed)"


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="migrate-bot", description=__doc__)
    parser.add_argument("--version", action="version", version=f"migrate-bot {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    demo = sub.add_parser("demo", help="a scripted migration on the simulated world")
    demo.add_argument("--redis-url", default=None, help="default: $REDIS_URL or redis://127.0.0.1:6379/0")
    console = sub.add_parser("console", help="type /migrate lines; prints what Slack would show")
    console.add_argument("--user", required=True, help="who you are (switch-user NAME changes it)")
    console.add_argument("--channel", default="console")
    console.add_argument("--redis-url", default=None)
    console.add_argument("--dwell", type=dwell, default=None, help="seconds between weight increases (default 180)")
    console.add_argument("--seed", type=seed_file, default=None, help="YAML seed of the simulated world")
    console.add_argument("--sim-state", type=state_file, default=None,
                         help="keep the simulated world in this file, shared with other processes")
    sub.add_parser("serve", help="run the Slack app (see README)", add_help=False)
    sub.add_parser("check-routes", help="the route check on its own, read-only (needs no Slack, Redis or cloud)",
                   add_help=False)
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        from bot import serve

        return serve.main(argv[1:])
    if argv[:1] == ["check-routes"]:
        from bot import check_routes

        routes = OneLineParser(prog="migrate-bot check-routes", description=check_routes.__doc__.splitlines()[0])
        check_routes.add_arguments(routes)
        return check_routes.run(routes.parse_args(argv[1:]))
    args = parser.parse_args(argv)
    from bot.runtime import open_store

    if args.command == "demo":
        from bot import demo

        store = _store_or_exit(open_store, args.redis_url, prefix=f"migrate-demo:{secrets.token_hex(3)}")
        try:
            return demo.run(store, world=_demo_world())
        finally:
            _forget(store)
    from bot import console as console_mod
    from commands.engine import Engine
    from commands.policy import DEFAULT_DWELL_SECONDS, Policy
    from providers.sim.world import SimWorld

    # The records last as long as the world they describe: with --sim-state both outlive the
    # process (and a restart reconciles); without it the world is in memory, so are the records.
    kept = bool(args.sim_state)
    prefix = os.environ.get("MIGRATE_KEY_PREFIX", "migrate-console") if kept else \
        f"migrate-console:{secrets.token_hex(3)}"
    store = _store_or_exit(open_store, args.redis_url, prefix=prefix)
    policy = Policy(dwell_seconds=DEFAULT_DWELL_SECONDS if args.dwell is None else args.dwell)
    engine = Engine(store=store, world=SimWorld.from_seed(args.seed, path=args.sim_state), policy=policy)
    try:
        for outcome in engine.reconcile():  # finish what a crashed process left half-done
            print(console_mod.render(outcome))
        return console_mod.run(engine, user=args.user, channel=args.channel)
    except KeyboardInterrupt:  # Ctrl-C at the prompt: a clean stop, no traceback
        print()
        return 130
    finally:
        if not kept:
            _forget(store)


def _store_or_exit(open_store: Any, url: str | None, *, prefix: str) -> Any:
    """The store, or one line saying what is wrong with `--redis-url` (exit code 2)."""
    import redis

    try:
        return open_store(url, prefix=prefix)
    except (ValueError, redis.RedisError) as err:
        print(f"migrate-bot: --redis-url: {err} (e.g. redis://127.0.0.1:6379/0; databases 0-15)", file=sys.stderr)
        raise SystemExit(2) from None


def _demo_world() -> object | None:
    """The sim by default; with MIGRATE_PROVIDERS=alibaba, the cloud APIs named in MIGRATE_CONFIG."""
    providers = os.environ.get("MIGRATE_PROVIDERS", "sim")
    if providers == "sim":
        return None
    import yaml

    from providers.factory import build_world

    path = os.environ.get("MIGRATE_CONFIG")
    config = yaml.safe_load(Path(path).read_text()) if path else {}
    config.setdefault("clusters", {}).setdefault("demo-cluster", {"sim_seed": ""})
    return build_world(providers, config)


def _forget(store: object) -> None:
    """The demo leaves nothing behind in a shared Redis."""
    from providers.store import RedisStore

    assert isinstance(store, RedisStore)
    keys = list(store.r.scan_iter(match=f"{store.k.prefix}:*", count=500))
    if keys:
        store.r.delete(*keys)


if __name__ == "__main__":
    sys.exit(main())
