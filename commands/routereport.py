"""The route check as people read it: a thread reply that fits a phone, and the full report as a file.

The reply is at most ten lines: the counts, the three blocking findings that matter most (one
line each: id, resource, key), what the gateway lacks, and where the full report is. The file is
Markdown, grouped by Ingress, with every finding's caveat and source, and the curl lines.
Cluster text (annotation values, snippets) is shown on one line, cut with "…", inside code spans
it cannot break; Slack's own escaping of `&`, `<` and `>` happens where the text is posted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from commands.ports import Route
from commands.routefindings import NGINX, Finding, Report, by_severity

FILE_NAME = "route-check.md"
MAX_REPLY_LINES = 10
#: Which blocking findings the reply names first: what touches every request, then what silently
#: sends traffic elsewhere, then what changes answers for one Ingress.
RANK = {"controller": 0, "canary": 1, "canary-service": 1, "service": 2, "tls-redirect": 3, "regex": 4,
        "regex-target": 4}


@dataclass(frozen=True)
class Extras:
    """What the check verb knows beyond the report: the gateway's side and earlier acceptances."""

    missing: Sequence[Route] = ()
    curls: Sequence[str] = ()
    probe: Sequence[str] = ()  # probe result lines, the first one a summary
    accepted: Mapping[str, str] = field(default_factory=dict)  # fingerprint -> id of findings accepted earlier
    accepted_by: Sequence[str] = ()
    gateway_version: str = ""


def flat(text: str, limit: int) -> str:
    """One line: newlines shown as ⏎, tabs as spaces, cut with "…" at `limit` characters."""
    one = re.sub(r"\r?\n", " ⏎ ", text).replace("\t", " ")
    return one if len(one) <= limit else one[:limit - 1] + "…"


#: What makes emphasis, code, links, HTML, entities or strikethrough inside a line. `#`, `-` and `+`
#: matter only at a line's start and `(`, `!` only next to `[`, so prose after "- What changes:" needs
#: just these (CommonMark lets a backslash escape any ASCII punctuation).
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>~&])")


def md_text(text: str, limit: int) -> str:
    """Prose for the Markdown file: one line, Markdown's inline syntax backslash-escaped, so `*`, `_`
    or `[x](y)` in a regex or a value stays literal instead of turning into emphasis or a link."""
    return _MD_SPECIAL.sub(r"\\\1", flat(text, limit))


def slack_code(text: str, limit: int = 60) -> str:
    """An inline code span Slack cannot break: Slack has no escape for a backtick inside one."""
    return "`" + flat(text, limit).replace("`", "ˋ") + "`" if text.strip() else "(empty)"


def md_code(text: str, limit: int = 200) -> str:
    """A Markdown code span whose fence is longer than any backtick run inside it (CommonMark)."""
    inner = flat(text, limit)
    if not inner.strip():
        return "(empty)"
    fence = "`" * (max((len(r) for r in re.findall(r"`+", inner)), default=0) + 1)
    pad = " " if inner.startswith("`") or inner.endswith("`") else ""
    return f"{fence}{pad}{inner}{pad}{fence}"


def short_key(key: str) -> str:
    return key[len(NGINX):] if key.startswith(NGINX) else key


def ranked_blocking(report: Report) -> list[Finding]:
    return sorted(report.blocking, key=lambda f: RANK.get(f.rule, 5 if f.annotation.endswith("-snippet") else 6))


def finding_line(f: Finding) -> str:
    """`F3 Ingress shop/web `proxy-read-timeout`: what changes`, short enough for a phone."""
    return f"• {f.id} {f.kind} {f.resource} {slack_code(short_key(f.annotation), 50)}: {flat(f.caveat, 90)}"


def new_blocking(report: Report, extras: Extras) -> list[Finding]:
    return [f for f in report.blocking if f.fingerprint not in extras.accepted]


def thread_reply(report: Report, extras: Extras, *, next_step: str) -> str:
    """At most MAX_REPLY_LINES lines, whatever the cluster holds."""
    lines = [f"Route check: {report.summary_line()}."]
    if report.controller is not None and not report.controller.get("read"):
        lines.append(f"Controller settings not checked: {flat(str(report.controller.get('note', '')), 120)}.")
    blocking = ranked_blocking(report)
    fresh = new_blocking(report, extras)
    if blocking and extras.accepted:
        covered = len(blocking) - len(fresh)
        who = ", ".join(extras.accepted_by) or "an approver"
        lines.append(f"{covered} of {len(blocking)} blocking findings were accepted earlier ({who})"
                     + (f"; not covered: {_ids(fresh, 8)}." if fresh else "; none is new."))
    if blocking:
        lines.append("Most important blocking findings:")
        lines += [finding_line(f) for f in blocking[:3]]
        if len(blocking) > 3:
            lines.append(f"… and {len(blocking) - 3} more blocking: {_ids(blocking[3:], 8)}.")
    if extras.missing:
        shown = ", ".join(f"{r.host}{r.path}" for r in extras.missing[:3])
        more = f", … ({len(extras.missing)} in all)" if len(extras.missing) > 3 else ""
        lines.append(f"The gateway is missing routes: {flat(shown, 150)}{more}.")
    if extras.probe:
        lines.append(flat(extras.probe[0], 200))
    lines.append(f"Full report, grouped by Ingress, with every caveat, source and the curl lines: {FILE_NAME} "
                 "(attached below).")
    lines.append(next_step)
    return "\n".join(lines[:MAX_REPLY_LINES])


def _ids(findings: Sequence[Finding], limit: int) -> str:
    ids = ", ".join(f.id for f in findings[:limit])
    return ids + (", …" if len(findings) > limit else "")


def markdown(report: Report, extras: Extras | None = None) -> str:
    """The full report: blocking index, the controller's settings, then each Ingress's findings."""
    extras = extras or Extras()
    out = ["# Route check", "", f"{report.summary_line()}."]
    if extras.gateway_version:
        out[-1] += f" MSE gateway version {md_text(extras.gateway_version, 40)}."
    if report.annotation_counts:
        out += ["", "Most used annotations: " + ", ".join(f"{md_text(short_key(k), 120)} ({n})"
                                                            for k, n in report.annotation_counts[:10]) + "."]
    blocking = ranked_blocking(report)
    if blocking:
        out += ["", "## Blocking findings", "",
                "Fix them and run `/migrate check` again, or have an approver accept some with "
                "`/migrate check accept=F1,F2` (or all with `accept=all`).", ""]
        for f in blocking:
            mark = " (accepted earlier)" if f.fingerprint in extras.accepted else ""
            out.append(f"- **{f.id}** {f.kind} `{f.resource}` {md_code(short_key(f.annotation), 80)}{mark}")
    if report.controller is not None:
        out += ["", *_controller(report.controller, report.findings)]
    groups: dict[tuple[str, str], list[Finding]] = {}
    for f in report.findings:
        if f.kind == "Ingress":
            groups.setdefault((f.namespace, f.name), []).append(f)
    order = sorted(groups, key=lambda k: (not any(f.severity == "blocking" for f in groups[k]), k))
    for key in order:
        out += ["", f"## Ingress {md_code('/'.join(key), 120)}", ""]
        for f in by_severity(groups[key]):
            out += _finding_md(f)
    if not report.findings:
        out += ["", "No findings: every annotation behaves the same on MSE."]
    if extras.missing:
        out += ["", "## Routes the gateway does not have yet", ""]
        out += [f"- {md_code(r.host + r.path, 200)}" for r in extras.missing]
    if extras.probe:
        out += ["", "## Probe through both gateways", ""] + [f"- {md_text(line, 300)}" for line in extras.probe]
    if extras.curls:
        out += ["", "## Test before switching", "", "```sh", *extras.curls, "```"]
    return "\n".join(out) + "\n"


def _finding_md(f: Finding) -> list[str]:
    lines = [f"- **{f.id} {f.severity}** {md_code(f.annotation, 120)} = {md_code(f.value, 200)} ({f.status})",
             f"  - What changes: {md_text(f.caveat, 1200)}"]
    if f.mse_alternative:
        lines.append(f"  - On MSE use: {md_code(f.mse_alternative, 200)}")
    if f.source:
        lines.append(f"  - Source: {md_text(f.source, 1200)}")
    return lines


def _controller(controller: Mapping[str, Any], findings: Iterable[Finding]) -> list[str]:
    ref = controller.get("configmap") or "(none)"
    found = md_text(str(controller.get("note", "")), 300)
    out = [f"## Controller ConfigMap {md_code(ref, 120)}", "", f"How it was found: {found}."]
    if not controller.get("read"):
        out.append("Its global settings were not compared: name it with `controller_configmap: NS/NAME` in the "
                   "bot's config, or `--controller-configmap NS/NAME` on `migrate-bot check-routes`.")
        return out
    by_key = {f.annotation: f for f in findings if f.kind == "ConfigMap"}
    out.append("")
    for row in controller.get("settings", []):
        f = by_key.get(row["key"])
        head = f"**{f.id} {f.severity}** " if f else ""
        where = "set" if row["set"] else "NGINX default"
        out.append(f"- {head}{md_code(row['key'], 60)} = {md_code(str(row['value']), 120)} ({where}); "
                   f"on MSE: {md_text(str(row['mse']), 200)}")
        if f:
            out.append(f"  - What changes: {md_text(f.caveat, 600)}")
            out.append(f"  - Source: {md_text(row['source'], 400)}")
    return out
