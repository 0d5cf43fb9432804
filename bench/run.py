"""Run every benchmark of issue 7 in one go, print one table and write the figures as JSON.

    /work/venv/bin/python bench/run.py            # about 2-3 minutes
    /work/venv/bin/python bench/run.py --quick    # under a minute, fewer samples

Starts its own redis-server, Slack Web API stand-in, Alibaba Cloud OpenAPI emulator and
`migrate-bot serve` (real SDK adapters against the emulator), all on 127.0.0.1, and stops
them at the end. Timings are reported, never asserted: the machine may be shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import footprint, load, many, race, rollback
from bench.botdrive import BotDriver, serve_config
from bench.common import ROOT, cpu_count, redis_server, running_serve
from bench.report import table
from tests.bot_server import GROUPS
from tests.slack_standin import SlackStandIn

FULL = {"rollback_samples": 300, "concurrent": 200, "bursts": 5, "sequential": 50, "racers": 500,
        "migrations": 100, "rounds": 3}
QUICK = {"rollback_samples": 30, "concurrent": 200, "bursts": 1, "sequential": 10, "racers": 500,
         "migrations": 100, "rounds": 1}


def bot_benchmarks(redis_url: str, sizes: dict[str, int], work: Path, say: Any, *,
                   api_latency_s: float = 0.0) -> dict[str, Any]:
    """Everything that goes through `serve`: footprint, rollback, ack under load, approval race."""
    out: dict[str, Any] = {}
    slack = SlackStandIn(groups=GROUPS).start()
    try:
        with rollback.WatchedEmulator(latency_s=api_latency_s) as emu:
            config = serve_config(emu.config(), racers=sizes["racers"])
            with running_serve(slack, redis_url, config, work) as serve:
                time.sleep(1.0)  # let the worker finish booting before calling it idle
                out["footprint_idle"] = footprint.rss(serve.pid)
                drv = BotDriver.connect(serve.url, slack, redis_url)
                say("migration to the switch over HTTP")
                drv.to_shifting()
                say(f"rollback latency: {sizes['rollback_samples']} by command, as many by button, with baseline")
                out["rollback"] = rollback.run(drv, emu, samples=sizes["rollback_samples"])
                say(f"ack under load: {sizes['bursts']} x {sizes['concurrent']} concurrent commands")
                out["ack"] = load.run(drv, concurrent=sizes["concurrent"], bursts=sizes["bursts"],
                                      sequential=sizes["sequential"])
                say(f"approval race: {sizes['racers']} concurrent Approve taps")
                out["race"] = race.run(drv, racers=sizes["racers"])
                out["footprint_after"] = footprint.rss(serve.pid)
                out["emulator_calls"] = dict(emu.calls)
    finally:
        slack.stop()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples, under a minute")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="where the JSON goes")
    parser.add_argument("--api-latency-ms", type=float, default=0.0,
                        help="added to every emulated cloud answer (20: like a regional API; default 0)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    started = time.perf_counter()

    def say(what: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s] {what}", file=sys.stderr, flush=True)

    results: dict[str, Any] = {"quick": args.quick, "sizes": sizes, "started": datetime.now(UTC).isoformat(),
                               "python": platform.python_version(), "cpus": cpu_count(),
                               "machine": platform.machine(), "api_latency_ms": args.api_latency_ms}
    with redis_server() as redis_base, tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        results.update(bot_benchmarks(f"{redis_base}/0", sizes, Path(tmp), say,
                                      api_latency_s=args.api_latency_ms / 1000))
        say(f"many migrations: {sizes['migrations']} in parallel through the engine")
        results["many"] = many.run(f"{redis_base}/1", migrations=sizes["migrations"], rounds=sizes["rounds"])
    results["seconds"] = time.perf_counter() - started
    print(table(results))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"bench-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}{'-quick' if args.quick else ''}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"\nJSON: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}  "
          f"(total {results['seconds']:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
