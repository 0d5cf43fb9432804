"""Memory of `serve`: every process in its tree, from /proc, as RSS, PSS and USS.

gunicorn runs a master, its web workers and the job worker; all are counted. RSS counts a
page shared after the fork once per process (as `ps` does), so its sum overstates the tree;
PSS splits each shared page between the processes sharing it, so its sum is what the tree
really holds, and what a pod's memory limit counts; USS is each process's own pages.
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


def _rollup(pid: int) -> dict[str, int]:
    """KiB figures of /proc/PID/smaps_rollup (Pss, Private_Clean, Private_Dirty, ...)."""
    out = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, value = line.partition(":")
        if value.strip().endswith("kB"):
            out[key.strip()] = int(value.split()[0])
    return out


def rss(pid: int) -> dict[str, Any]:
    """Totals in MiB of `pid` and its descendants (RSS, PSS, USS), and each process's figures."""
    procs = []
    for p in tree(pid):
        try:
            st, roll = _status(p), _rollup(p)
        except OSError:
            continue
        kib = int(st.get("VmRSS", "0 kB").split()[0])
        uss = roll.get("Private_Clean", 0) + roll.get("Private_Dirty", 0)
        procs.append({"pid": p, "name": st.get("Name", ""), "rss_mib": round(kib / 1024, 1),
                      "pss_mib": round(roll.get("Pss", 0) / 1024, 1), "uss_mib": round(uss / 1024, 1),
                      "threads": int(st.get("Threads", "0"))})
    return {"rss_mib": round(sum(p["rss_mib"] for p in procs), 1),
            "pss_mib": round(sum(p["pss_mib"] for p in procs), 1),
            "uss_mib": round(sum(p["uss_mib"] for p in procs), 1), "processes": procs}
