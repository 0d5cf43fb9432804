"""The `migrate-bot` command: demo, console, serve and check-routes."""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="migrate-bot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="a scripted migration on the simulated world")
    demo.add_argument("--redis-url", default=None, help="default: $REDIS_URL or redis://127.0.0.1:6379/0")
    console = sub.add_parser("console", help="type /migrate lines; prints what Slack would show")
    console.add_argument("--user", required=True, help="who you are (switch-user NAME changes it)")
    console.add_argument("--channel", default="console")
    console.add_argument("--redis-url", default=None)
    console.add_argument("--dwell", type=float, default=None, help="seconds between weight increases (default 180)")
    console.add_argument("--seed", default=None, help="YAML seed of the simulated world")
    console.add_argument("--sim-state", default=None,
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

        routes = argparse.ArgumentParser(prog="migrate-bot check-routes")
        check_routes.add_arguments(routes)
        return check_routes.run(routes.parse_args(argv[1:]))
    args = parser.parse_args(argv)
    from bot.runtime import open_store

    if args.command == "demo":
        from bot import demo

        store = open_store(args.redis_url, prefix=f"migrate-demo:{secrets.token_hex(3)}")
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
    store = open_store(args.redis_url, prefix=prefix)
    policy = Policy(dwell_seconds=DEFAULT_DWELL_SECONDS if args.dwell is None else args.dwell)
    engine = Engine(store=store, world=SimWorld.from_seed(args.seed, path=args.sim_state), policy=policy)
    try:
        for outcome in engine.reconcile():  # finish what a crashed process left half-done
            print(console_mod.render(outcome))
        return console_mod.run(engine, user=args.user, channel=args.channel)
    finally:
        if not kept:
            _forget(store)


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
