"""Resident memory of `serve`: VmRSS of every process in its tree, from /proc.

gunicorn runs a master and one worker; both are counted (the master holds the app built
before the fork, the worker the live state). Shared pages are counted once per process, as
`ps` does, so the sum is an upper bound of what the tree really holds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _status(pid: int) -> dict[str, str]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def children(pid: int) -> list[int]:
    """Direct children of `pid`, from every thread's /proc/PID/task/TID/children."""
    found: list[int] = []
    tasks = Path(f"/proc/{pid}/task")
    for task in tasks.iterdir() if tasks.exists() else []:
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo and len(out) < 1000:  # bounded: a runaway tree must not hang the benchmark
        p = todo.pop()
        out.append(p)
        todo += children(p)
    return out


def rss(pid: int) -> dict[str, Any]:
    """Total VmRSS in MiB of `pid` and its descendants, and each process's share."""
    procs = []
    for p in tree(pid):
        try:
            st = _status(p)
        except OSError:
            continue
        kib = int(st.get("VmRSS", "0 kB").split()[0])
        procs.append({"pid": p, "name": st.get("Name", ""), "rss_mib": round(kib / 1024, 1),
                      "threads": int(st.get("Threads", "0"))})
    return {"rss_mib": round(sum(p["rss_mib"] for p in procs), 1), "processes": procs}
