"""The one table `bench/run.py` prints, from the results dict it also writes as JSON."""

from __future__ import annotations

from typing import Any

HEAD = ("benchmark", "what is measured", "p50", "p99", "target", "result")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def rows(r: dict[str, Any]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    rb = r["rollback"]
    for key, label in (("command", "/migrate rollback"), ("button", "Rollback button")):
        s = rb[key]
        out.append((f"1 rollback: {label}", f"signed request -> SLB weight-0 write (n={s['n']})",
                    _ms(s["p50_ms"]), _ms(s["p99_ms"]), "", ""))
    b = rb["baseline"]
    out.append(("1 rollback: baseline", f"bare SDK SetVServerGroupAttribute -> emulator (n={b['n']})",
                _ms(b["p50_ms"]), _ms(b["p99_ms"]), "", ""))
    bot = rb["bot"]
    out.append(("1 rollback: bot - baseline", f"both ways together (n={bot['n']}): added",
                f"+{bot['added_p50_ms']:.1f} ms", f"+{bot['added_p99_ms']:.1f} ms", "added p99 < 50 ms",
                _verdict(rb["met"])))
    out.append(("1 rollback: bot / baseline", "ratio", f"{bot['ratio_p50']:.1f}x", f"{bot['ratio_p99']:.1f}x", "",
                ""))
    ack = r["ack"]
    out.append(("2 ack: one at a time", f"signed command -> HTTP response (n={ack['alone']['n']})",
                _ms(ack["alone"]["p50_ms"]), _ms(ack["alone"]["p99_ms"]), "", ""))
    fl = ack["healthz_floor"]
    out.append((f"2 ack: floor, {ack['concurrent']} concurrent", f"GET /healthz, same server (n={fl['n']})",
                _ms(fl["p50_ms"]), _ms(fl["p99_ms"]), "", ""))
    fg = ack["forged_401"]
    out.append((f"2 ack: forged, {ack['concurrent']} concurrent", f"same commands, forged signature -> 401 "
                f"(no lazy work; n={fg['n']})", _ms(fg["p50_ms"]), _ms(fg["p99_ms"]), "", ""))
    nl = ack["no_listener_404"]
    out.append((f"2 ack: no listener, {ack['concurrent']} conc.", f"signed, verified, dispatched; no listener -> 404 "
                f"(n={nl['n']})", _ms(nl["p50_ms"]), _ms(nl["p99_ms"]), "", ""))
    codes = ", ".join(f"{k}: {v}" for k, v in sorted(ack["statuses"].items()))
    out.append((f"2 ack: {ack['concurrent']} concurrent",
                f"{ack['bursts']} bursts (n={ack['loaded']['n']}; HTTP {codes})",
                _ms(ack["loaded"]["p50_ms"]), _ms(ack["loaded"]["p99_ms"]), "p99 < 300 ms", _verdict(ack["met"])))
    rc = r["race"]
    out.append((f"3 approval race: {rc['racers']} taps",
                f"transitions: {rc['transitions']} (phase {rc['phase_after']}); to the transition "
                f"{_ms(rc['to_transition_ms'])}, all handled {_ms(rc['all_handled_ms'])}",
                _ms(rc["acks"]["p50_ms"]) + " ack", _ms(rc["acks"]["p99_ms"]) + " ack", "exactly 1 transition",
                _verdict(rc["met"])))
    mg = r["many"]
    out.append((f"4 many: {mg['migrations']} migrations",
                f"{mg['transitions']}/{mg['expected']} transitions in {mg['wall_s']:.1f} s = "
                f"{mg['per_second']:.0f}/s; one transition:", _ms(mg["transition"]["p50_ms"]),
                _ms(mg["transition"]["p99_ms"]), "", "ok" if mg["refused_count"] == 0 else "REFUSED"))
    for key, label in (("footprint_idle", "idle"), ("footprint_after", "after 1-3")):
        fp = r[key]
        procs = " + ".join(f"{p.get('pss_mib', 0):.0f}" for p in fp["processes"])
        out.append((f"5 footprint: serve {label}", f"PSS of {len(fp['processes'])} processes ({procs} MiB); "
                    f"RSS summed {fp['rss_mib']:.0f}, USS {fp.get('uss_mib', 0):.0f} MiB",
                    f"{fp.get('pss_mib', 0):.0f} MiB", "", "", ""))
    return out


def table(r: dict[str, Any]) -> str:
    body = [HEAD, *rows(r)]
    widths = [max(len(row[i]) for row in body) for i in range(len(HEAD))]
    line = "-+-".join("-" * w for w in widths)
    fmt = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in body]
    latency = f"emulated cloud API round trip: {r.get('api_latency_ms', 0):g} ms (--api-latency-ms)"
    return "\n".join([latency, fmt[0], line, *fmt[1:]])
