"""What the route check found, as data: findings with short ids, the report, and its plain text.

Kept apart from the checks themselves so the pair checks, the controller's settings and the
report renderers share one Finding without importing each other.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

NGINX = "nginx.ingress.kubernetes.io/"
MSE = "mse.ingress.kubernetes.io/"
SEVERITIES = ("blocking", "warning", "info")


@dataclass(frozen=True)
class Finding:
    namespace: str
    name: str
    annotation: str  # the annotation, or the ConfigMap key for a controller setting
    value: str
    status: str  # supported | partial | unsupported | ignored | unknown
    severity: str  # blocking | warning | info
    mse_alternative: str | None
    note: str  # what changes on MSE, then " Source: " and where that fact comes from
    id: str = ""  # short and stable within a migration (F3); `check accept=F3` names it
    rule: str = "annotation"  # annotation | tls-redirect | regex | canary | service | controller
    kind: str = "Ingress"  # Ingress | ConfigMap
    subject: str = ""  # what else the finding is about (the Service of a per-Service conflict); part of its print

    @property
    def resource(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def caveat(self) -> str:
        return self.note.split(" Source: ", 1)[0]

    @property
    def source(self) -> str:
        return self.note.split(" Source: ", 1)[1] if " Source: " in self.note else ""

    @property
    def fingerprint(self) -> str:
        """Names the finding across checks: the same resource, key, value and rule give the same print."""
        parts = (self.kind, self.namespace, self.name, self.annotation, self.value, self.rule)
        text = "\0".join((*parts, self.subject) if self.subject else parts)  # prints without a subject unchanged
        return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Report:
    ingresses: int
    findings: tuple[Finding, ...]
    annotation_counts: tuple[tuple[str, int], ...] = ()  # every NGINX/MSE key seen, most used first
    controller: Mapping[str, Any] | None = None  # the controller's ConfigMap as read, and each setting's MSE side

    @property
    def blocking(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "blocking")

    @property
    def summary(self) -> dict[str, int]:
        counts = Counter(f.severity for f in self.findings)
        return {s: counts.get(s, 0) for s in SEVERITIES}

    def to_json_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ingresses": self.ingresses, "summary": self.summary,
                               "findings": [dict(f.__dict__) for f in self.findings]}  # asdict, 10x faster
        if self.controller is not None:
            out["controller"] = dict(self.controller)
        return out

    def summary_line(self) -> str:
        s = self.summary
        noun = "Ingress" if self.ingresses == 1 else "Ingresses"
        warnings = "warning" if s["warning"] == 1 else "warnings"
        return f"{self.ingresses} {noun}: {s['blocking']} blocking, {s['warning']} {warnings}, {s['info']} info"

    def to_text(self, *, top: int = 10) -> str:
        """Plain text for a terminal: one line per finding, then its caveat's source indented under it."""
        lines = [f"Route check: {self.summary_line()}"]
        if self.annotation_counts:
            used = ", ".join(f"{_short(k)} ({n})" for k, n in self.annotation_counts[:top])
            lines.append(f"Top annotations: {used}")
        if self.controller is not None:
            lines.append(f"Controller ConfigMap: {self.controller.get('configmap') or 'not read'}"
                         + (f" ({self.controller['note']})" if self.controller.get("note") else ""))
        if not self.findings:
            lines.append("No findings: every annotation behaves the same on MSE.")
        for f in by_severity(self.findings):
            lines.append(_finding_line(f))
            if f.source:
                lines.append(f"         source: {_one_line(f.source, 400)}")
        return "\n".join(lines)


def by_severity(findings: Iterable[Finding]) -> list[Finding]:
    order = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(findings, key=lambda f: order[f.severity])


def _short(key: str) -> str:
    return key[len(NGINX):] if key.startswith(NGINX) else key


def _one_line(text: str, limit: int) -> str:
    """Newlines and tabs shown as ⏎ and spaces, then cut with an ellipsis."""
    flat = text.replace("\r\n", "\n").replace("\n", " ⏎ ").replace("\t", " ")
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"


def _finding_line(f: Finding) -> str:
    alt = f" Use {f.mse_alternative}." if f.mse_alternative else ""
    ident = f"{f.id} " if f.id else ""
    value = json.dumps(_one_line(f.value, 60), ensure_ascii=False)
    caveat = _one_line(f.caveat, 400)
    return f"{f.severity.upper():8} {ident}{f.resource} {f.annotation}={value} [{f.status}] {caveat}{alt}"


def _with_id(f: Finding, fid: str) -> Finding:
    """`replace(f, id=fid)` without re-running __init__: a scan numbers tens of thousands of findings."""
    new = object.__new__(Finding)
    new.__dict__.update(f.__dict__, id=fid)
    return new


def assign_ids(findings: Iterable[Finding], known: Mapping[str, str] | None = None, *, next_free: int = 0
               ) -> tuple[tuple[Finding, ...], dict[str, str]]:
    """Give each finding its short id: the one it had before (by fingerprint), else the next free number.

    Returns the findings with ids and the fingerprint -> id map of all of them (blocking or not),
    which the next check passes back in so that F3 still means the same finding after a re-run.
    `next_free` is the first number never handed out, so an id dropped from a capped map is not reused.
    """
    known = dict(known or {})
    used = {int(v[1:]) for v in known.values() if v[1:].isdigit()}
    nxt = max(max(used, default=0) + 1, next_free)
    out: list[Finding] = []
    ids: dict[str, str] = {}
    for f in findings:
        fp = f.fingerprint
        fid = known.get(fp) or ids.get(fp)
        if fid is None:
            fid = f"F{nxt}"
            nxt += 1
        out.append(_with_id(f, fid))
        ids[fp] = fid
    return tuple(out), ids


def id_number(fid: str) -> int:
    return int(fid[1:]) if fid[1:].isdigit() else 0
