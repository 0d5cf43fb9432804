"""Scan 10,000 Ingresses with `check-routes` and with `kubectl get ingress -A -o json`, same server, same run.

Both tools run as child processes against one local Kubernetes API test server (TLS, bearer
token, pages of 500), so time is wall time of the whole command and memory is the child's peak
RSS as the kernel reports it (os.wait4). The route check must stream: its memory should not
grow with the number of Ingresses the way a whole-list client's does.

    /work/venv/bin/python bench/bench_scan.py [--ingresses 10000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.kube_api_server import KubeApiServer, ingress_class_json, ingress_json  # noqa: E402

N = "nginx.ingress.kubernetes.io/"
MIXES: list[dict[str, str]] = [
    {N + "ssl-redirect": "true", N + "service-weight": ""},
    {N + "proxy-body-size": "8m", N + "proxy-read-timeout": "120"},
    {N + "enable-cors": "true", N + "cors-allow-origin": "https://a.example.com"},
    {N + "rewrite-target": "/$2", N + "use-regex": "true"},
    {N + "configuration-snippet": "more_set_headers 'X-Frame-Options: DENY';"},
    {},
]


def seed(api: KubeApiServer, count: int) -> None:
    api.add_ingress_class(ingress_class_json("nginx", default=True))
    api.add_ingress_class(ingress_class_json("internal"))
    for i in range(count):
        cls = "internal" if i % 10 == 0 else ("nginx" if i % 10 < 8 else None)  # 10% no class: the default
        host = f"app{i}.team{i % 40}.example.com"
        paths = ["/", "/svc(/|$)(.*)"] if i % 6 == 3 else ["/", "/api", "/static"]
        api.add_ingress(ingress_json(f"team{i % 40}", f"app{i:05}", ingress_class=cls, annotations=MIXES[i % 6],
                                     labels={"app": f"app{i}"}, rules={host: paths},
                                     tls=[host] if i % 2 else None))


def measure(argv: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a command with stdout discarded; its wall time, peak RSS and exit code."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"seconds": elapsed, "peak_rss_mib": usage.ru_maxrss / 1024, "exit": proc.returncode,
            "stderr": stderr.strip()[-300:]}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"seconds": statistics.median(r["seconds"] for r in runs),
            "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
            "exit": runs[-1]["exit"], "runs": runs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ingresses", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    kubectl = shutil.which("kubectl") or "/usr/bin/kubectl"
    work = Path(tempfile.mkdtemp(prefix="bench-scan-"))
    with KubeApiServer(tls=True) as api:
        t0 = time.perf_counter()
        seed(api, args.ingresses)
        print(f"seeded {args.ingresses} Ingresses in {time.perf_counter() - t0:.1f}s; server {api.url}")
        config = api.kubeconfig(work / "kubeconfig")
        env = {**os.environ, "HOME": str(work)}
        ours = [sys.executable, "-m", "bot.check_routes", "--kubeconfig", config, "--format", "json"]
        theirs = [kubectl, "--kubeconfig", config, "--cache-dir", str(work / "cache"),
                  "get", "ingress", "-A", "-o", "json"]
        measure(theirs, env)  # warm the discovery cache and the server once, for both
        rows = {"migrate-bot check-routes --format json": summarise([measure(ours, env) for _ in range(args.runs)]),
                "kubectl get ingress -A -o json": summarise([measure(theirs, env) for _ in range(args.runs)])}
        pages = len(api.calls("GET", "/ingresses?"))
    for name, row in rows.items():
        if row["exit"] not in (0, 1):
            print(f"{name} failed: {row['runs'][-1]['stderr']}", file=sys.stderr)
            return 2
    base = rows["kubectl get ingress -A -o json"]
    print(f"\n{args.ingresses} Ingresses, median of {args.runs} runs, peak RSS of the child process\n")
    print(f"{'command':42} {'time (s)':>9} {'peak RSS (MiB)':>15} {'time ratio':>11} {'RSS ratio':>10}")
    for name, row in rows.items():
        print(f"{name:42} {row['seconds']:9.2f} {row['peak_rss_mib']:15.1f} "
              f"{row['seconds'] / base['seconds']:10.2f}x {row['peak_rss_mib'] / base['peak_rss_mib']:9.2f}x")
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"scan-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps({"ingresses": args.ingresses, "runs": args.runs, "list_requests": pages,
                               "python": platform.python_version(), "machine": platform.machine(),
                               "results": rows}, indent=2))
    print(f"\nwrote {out.relative_to(ROOT)}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
