"""Step 2, "check routes": what the MSE gateway would do differently with each migrated Ingress.

MSE reads the same Ingresses as NGINX and silently skips every annotation it does not know,
so nothing fails loudly: this check is the only place a difference shows before traffic moves.
The per-key verdicts come from `data/annotations.json` (research data with its sources, not
code); the checks a per-key table cannot make (TLS redirect default, regex paths, NGINX
variables in values, gateway versions, spelling traps) live here.

Severities, and why:
- blocking: some request would be answered differently by MSE than by NGINX (the key is
  ignored, its value cannot be honoured, HTTP stops redirecting to HTTPS, a regex RE2 rejects,
  the gateway in use is too old for the key). Fix it, re-run, or have an approver accept it.
- warning: traffic flows, but semantics differ at the edges (partial keys, case-sensitive
  regex, keys that only tune buffering or logs, a version we could not check, an MSE
  alternative already added whose semantics differ) or the key is unknown to the table.
- info: nothing changes (`service-weight: ""`, a spelling trap already fixed).
Annotations MSE supports as NGINX does give no finding; they still count in the summary.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from commands.errors import UserError
from commands.ports import Ingress, Route

NGINX = "nginx.ingress.kubernetes.io/"
MSE = "mse.ingress.kubernetes.io/"
SEVERITIES = ("blocking", "warning", "info")

#: Unsupported keys that tune buffering, logging or tracing: requests are still routed alike.
NO_TRAFFIC_EFFECT = frozenset({
    "client-body-buffer-size", "proxy-buffering", "proxy-buffers-number", "proxy-buffer-size",
    "proxy-busy-buffers-size", "proxy-max-temp-file-size", "proxy-request-buffering", "enable-access-log",
    "enable-rewrite-log", "enable-opentelemetry", "opentelemetry-trust-incoming-span",
    "opentelemetry-operation-name", "modsecurity-transaction-id", "http2-push-preload",
})
#: NGINX spellings MSE does not read although it reads a near twin.
SPELLING_TRAPS = {"ssl-ciphers": "ssl-cipher", "allowlist-source-range": "whitelist-source-range"}
OFF_VALUES = frozenset({"false", "off", "0", ""})
BACKEND_PROTOCOLS = frozenset({"HTTP", "HTTP2", "HTTPS", "GRPC", "GRPCS"})
HASH_BY = re.compile(r"^\$(request_uri|host|remote_addr|http_\w+|arg_\w+)$")
# RE2 has no lookaround, backreferences, possessive quantifiers, atomic groups or \G.
PCRE_ONLY = re.compile(r"\(\?(?:[=!>(R]|<[=!])|\\[1-9]|[*+?}]\+|\\G")
REGEX_CHARS = re.compile(r"[\^$*+?()\[\]{}|\\]")
VERSION_IN_NOTE = re.compile(r"gateway\s*>=\s*[vV]?(\d+(?:\.\d+)+)")


@dataclass(frozen=True)
class Entry:
    """One row of the compatibility table, with the gateway version its note asks for."""

    status: str
    mse_alternative: str | None
    note: str
    min_version: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Table:
    read_on: str
    entries: Mapping[str, Entry]  # by suffix, e.g. "ssl-redirect"
    mse_min_versions: Mapping[str, tuple[int, ...]]  # MSE-only keys (suffix) -> gateway version


@dataclass(frozen=True)
class Finding:
    namespace: str
    name: str
    annotation: str
    value: str
    status: str  # supported | partial | unsupported | ignored | unknown
    severity: str  # blocking | warning | info
    mse_alternative: str | None
    note: str


@dataclass(frozen=True)
class Report:
    ingresses: int
    findings: tuple[Finding, ...]
    annotation_counts: tuple[tuple[str, int], ...] = ()  # every NGINX/MSE key seen, most used first

    @property
    def blocking(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "blocking")

    @property
    def summary(self) -> dict[str, int]:
        counts = Counter(f.severity for f in self.findings)
        return {s: counts.get(s, 0) for s in SEVERITIES}

    def to_json_dict(self) -> dict[str, Any]:
        return {"ingresses": self.ingresses, "summary": self.summary,
                "findings": [asdict(f) for f in self.findings]}

    def summary_line(self) -> str:
        s = self.summary
        noun = "Ingress" if self.ingresses == 1 else "Ingresses"
        warnings = "warning" if s["warning"] == 1 else "warnings"
        return f"{self.ingresses} {noun}: {s['blocking']} blocking, {s['warning']} {warnings}, {s['info']} info"

    def to_text(self, *, top: int = 10) -> str:
        lines = [f"Route check: {self.summary_line()}"]
        if self.annotation_counts:
            used = ", ".join(f"{_short(k)} ({n})" for k, n in self.annotation_counts[:top])
            lines.append(f"Top annotations: {used}")
        if not self.findings:
            lines.append("No findings: every annotation behaves the same on MSE.")
        order = {s: i for i, s in enumerate(SEVERITIES)}
        for f in sorted(self.findings, key=lambda f: order[f.severity]):
            lines.append(_finding_line(f))
        return "\n".join(lines)


def _short(key: str) -> str:
    return key[len(NGINX):] if key.startswith(NGINX) else key


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _finding_line(f: Finding) -> str:
    alt = f" Use {f.mse_alternative}." if f.mse_alternative else ""
    head = f.note.split(" Source: ")[0]
    return (f"{f.severity.upper():8} {f.namespace}/{f.name} {f.annotation}={json.dumps(_clip(f.value, 60))} "
            f"[{f.status}] {_clip(head, 240)}{alt}")


# ---- the table ------------------------------------------------------------------------------

def parse_version(text: str) -> tuple[int, ...]:
    """'1.2.25' or 'v1.2.25' as (1, 2, 25); a UserError for anything else."""
    m = re.fullmatch(r"\s*[vV]?(\d+(?:\.\d+){0,3})\s*", text)
    if not m:
        raise UserError(f"gateway version {text!r} is not a version; use the form 1.2.25")
    return tuple(int(p) for p in m.group(1).split("."))


def _versions_in(note: str) -> tuple[tuple[int, ...] | None, dict[str, tuple[int, ...]]]:
    """The note's gateway version for its own key, and for MSE-only keys it mentions.

    A clause naming an `mse.ingress.kubernetes.io/` key speaks of that key, not of the row's.
    """
    own: tuple[int, ...] | None = None
    others: dict[str, tuple[int, ...]] = {}
    for clause in re.split(r"(?<=[.;])\s+", note):
        m = VERSION_IN_NOTE.search(clause)
        if not m:
            continue
        version = parse_version(m.group(1))
        named = re.findall(re.escape(MSE) + r"([a-z0-9-]+)", clause)
        if named:
            others.update({k: version for k in named})
        else:
            own = version
    return own, others


@lru_cache(maxsize=1)
def load_table() -> Table:
    """The compatibility table shipped as package data (read once per process)."""
    raw = json.loads(resources.files("commands").joinpath("data/annotations.json").read_text(encoding="utf-8"))
    entries: dict[str, Entry] = {}
    mse_versions: dict[str, tuple[int, ...]] = {}
    for row in raw["annotations"]:
        own, others = _versions_in(row["note"])
        mse_versions.update(others)
        if row["status"] not in ("supported", "partial"):
            own = None  # a version in an unsupported key's note belongs to its alternative
        entries[row["key"].removeprefix(NGINX)] = Entry(row["status"], row.get("mse_alternative"), row["note"], own)
    return Table(str(raw.get("read_on", "")), entries, mse_versions)


# ---- the check ------------------------------------------------------------------------------

def check_routes(ingresses: Iterable[Ingress], *, gateway_version: str | None = None) -> Report:
    """Classify every annotation of every Ingress; streams, keeping only findings and counts."""
    version = parse_version(gateway_version) if gateway_version else None
    table = load_table()
    findings: list[Finding] = []
    counts: Counter[str] = Counter()
    scanned = 0
    for ing in ingresses:
        scanned += 1
        counts.update(k for k in ing.annotations if k.startswith((NGINX, MSE)))
        findings += check_ingress(ing, table, version)
    return Report(scanned, tuple(findings), tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))))


def check_ingress(ing: Ingress, table: Table, version: tuple[int, ...] | None) -> list[Finding]:
    ann = ing.annotations
    out = [f for key in sorted(ann) for f in _check_key(ing, key, ann[key], table, version)]
    out += _tls_redirect(ing)
    out += _regex(ing)
    return out


def _finding(ing: Ingress, key: str, value: str, status: str, severity: str, alt: str | None,
             note: str) -> Finding:
    return Finding(ing.namespace, ing.name, key, value, status, severity, alt, note)


def _has(ann: Mapping[str, str], suffix: str) -> bool:
    return any(p + suffix in ann for p in (NGINX, MSE))


def _check_key(ing: Ingress, key: str, value: str, table: Table,
               version: tuple[int, ...] | None) -> list[Finding]:
    if key.startswith(MSE):
        suffix = key[len(MSE):]
        need = table.mse_min_versions.get(suffix)
        if suffix not in table.entries and need:
            return _version_gate(ing, key, value, "supported", need, version, "")
        if suffix not in table.entries or table.entries[suffix].status not in ("supported", "partial"):
            return []  # MSE-only keys NGINX never reads: nothing migrates away from them
    elif not key.startswith(NGINX):
        return []  # not an NGINX annotation (class, cert-manager, kubectl): no behaviour to lose
    suffix = key.split("/", 1)[1]
    if suffix in ("use-regex", "rewrite-target"):
        return []  # judged with the paths, in _regex
    entry = table.entries.get(suffix)
    if entry is None:
        return [_finding(ing, key, value, "unknown", "warning", None,
                         "Not in the compatibility table (read " + table.read_on + "); MSE ignores keys it does not "
                         "know, so confirm what this one does before moving traffic.")]
    source = f" Source: {entry.note}"
    if entry.status == "ignored":
        if value.strip() == "":
            return [_finding(ing, key, value, "ignored", "info", None, "Empty service-weight has no effect." + source)]
        return [_finding(ing, key, value, "unsupported", "blocking", entry.mse_alternative,
                         "MSE does not read service-weight; the weights set here would not apply." + source)]
    if entry.status == "unsupported":
        return [_unsupported(ing, key, suffix, value, entry, source)]
    out = _value_rules(ing, key, suffix, value, entry, source)
    if entry.min_version:
        out += _version_gate(ing, key, value, entry.status, entry.min_version, version, source)
    return out


def _unsupported(ing: Ingress, key: str, suffix: str, value: str, entry: Entry, source: str) -> Finding:
    alt = entry.mse_alternative
    if suffix in SPELLING_TRAPS:
        twin = SPELLING_TRAPS[suffix]
        if _has(ing.annotations, twin):
            return _finding(ing, key, value, "unsupported", "info", alt,
                            f"Spelling trap already handled: {twin} is set too, and MSE reads that one." + source)
        return _finding(ing, key, value, "unsupported", "blocking", alt,
                        f"Spelling trap: MSE reads only {twin}, so this setting would be dropped." + source)
    if suffix.endswith("-snippet"):
        return _finding(ing, key, value, "unsupported", "blocking", alt,
                        "Raw NGINX configuration: MSE runs no NGINX config; rewrite it with header-control "
                        "annotations or a gateway plugin." + source)
    if alt and alt in ing.annotations:
        return _finding(ing, key, value, "unsupported", "warning", alt,
                        f"MSE ignores this key; {alt} is already set, check it matches (semantics differ)." + source)
    if suffix in NO_TRAFFIC_EFFECT:
        return _finding(ing, key, value, "unsupported", "warning", alt,
                        "MSE ignores this key; it tunes buffering or logging, not routing." + source)
    if value.strip().lower() in OFF_VALUES:
        return _finding(ing, key, value, "unsupported", "warning", alt,
                        "MSE ignores this key, but its value switches the feature off anyway." + source)
    return _finding(ing, key, value, "unsupported", "blocking", alt,
                    "MSE ignores this key, so what it does on NGINX would stop." + source)


def _value_rules(ing: Ingress, key: str, suffix: str, value: str, entry: Entry, source: str) -> list[Finding]:
    """Values MSE cannot honour although it reads the key (taken from the table's notes)."""
    v = value.strip()
    problem = ""
    if suffix == "backend-protocol" and v.upper() not in BACKEND_PROTOCOLS:
        problem = f"MSE accepts only {', '.join(sorted(BACKEND_PROTOCOLS))}; {v} falls back to HTTP."
    elif suffix == "affinity-mode" and v == "persistent":
        problem = "MSE supports only balanced affinity; persistent stickiness would be lost."
    elif suffix == "auth-type" and v.lower() != "basic":
        problem = "MSE supports only basic authentication."
    elif suffix == "upstream-hash-by" and not HASH_BY.match(v):
        problem = "MSE hashes only on one of $request_uri, $host, $remote_addr, $http_<h>, $arg_<a>."
    elif suffix == "custom-http-errors" and not _has(ing.annotations, "default-backend"):
        problem = "MSE applies custom-http-errors only together with default-backend."
    elif suffix in ("permanent-redirect", "temporal-redirect", "app-root") and "$" in v:
        problem = "MSE does not expand NGINX variables in redirect targets."
    if problem:
        return [_finding(ing, key, value, entry.status, "blocking", entry.mse_alternative, problem + source)]
    if entry.status == "partial":
        return [_finding(ing, key, value, "partial", "warning", entry.mse_alternative,
                         "MSE reads this key with a different meaning at the edges; see the caveat." + source)]
    return []


def _version_gate(ing: Ingress, key: str, value: str, status: str, need: tuple[int, ...],
                  have: tuple[int, ...] | None, source: str) -> list[Finding]:
    need_text = ".".join(map(str, need))
    if have is None:
        return [_finding(ing, key, value, status, "warning", None,
                         f"Needs MSE gateway >= {need_text}; pass the gateway version to check it." + source)]
    if have < need:
        return [_finding(ing, key, value, status, "blocking", None,
                         f"Needs MSE gateway >= {need_text}, the gateway runs {'.'.join(map(str, have))}: "
                         "it would ignore this key. Upgrade the gateway first." + source)]
    return []


def _tls_redirect(ing: Ingress) -> list[Finding]:
    """NGINX redirects HTTP to HTTPS for TLS hosts by default; MSE only when told to."""
    ann = ing.annotations
    if not ing.tls_hosts:
        return []
    values = {ann.get(p + s, "").strip().lower() for p in (NGINX, MSE) for s in ("ssl-redirect", "force-ssl-redirect")}
    if "true" in values or ann.get(NGINX + "ssl-redirect", "").strip().lower() == "false":
        return []
    key = NGINX + "ssl-redirect"
    return [_finding(ing, key, ann.get(key, ""), "partial", "blocking", key,
                     f"TLS hosts {', '.join(ing.tls_hosts)}: NGINX redirects HTTP to HTTPS by default, MSE only "
                     'when ssl-redirect or force-ssl-redirect is "true"; set ssl-redirect: "true" to keep it.')]


def _regex(ing: Ingress) -> list[Finding]:
    """Regex paths: PCRE, case-insensitive and host-wide on NGINX; RE2, case-sensitive, per Ingress on MSE."""
    ann = ing.annotations
    use_regex = ann.get(NGINX + "use-regex", "").strip().lower() == "true"
    target = ann.get(NGINX + "rewrite-target")
    captures = target is not None and ("$" in target or "\\" in target)
    regex_paths = [p for _, p, _ in ing.paths if REGEX_CHARS.search(p)]
    if not (use_regex or captures or (target is not None and regex_paths)):
        return []
    key = NGINX + ("use-regex" if use_regex else "rewrite-target")
    value = ann[key]
    bad = [p for _, p, _ in ing.paths if PCRE_ONLY.search(p)]
    if bad:
        return [_finding(ing, key, value, "partial", "blocking", None,
                         f"Paths {', '.join(bad)} use PCRE-only syntax (lookaround, backreference, possessive or "
                         "atomic groups) that MSE's RE2 cannot compile; rewrite them.")]
    hosts = ", ".join(sorted(set(ing.hosts))) or "the default host"
    note = ("Regex paths: MSE uses RE2 and matches case-sensitively, on this Ingress only; NGINX matched "
            f"case-insensitively and applied regex to every path of {hosts}.")
    if captures:
        note += " Capture groups in rewrite-target carry over ($1 becomes \\1)."
    return [_finding(ing, key, value, "partial", "warning", None, note)]


# ---- route sync and test lines (items 6 and 7) ----------------------------------------------

def missing_routes(ingresses: Iterable[Ingress], gateway_routes: Iterable[Route]) -> list[Route]:
    """Host and path pairs the Ingresses declare that the gateway does not report, in order."""
    have = {(r.host, r.path) for r in gateway_routes}
    missing: dict[tuple[str, str], Route] = {}
    for ing in ingresses:
        for host, path, _ in ing.paths:
            if (host, path) not in have:
                missing.setdefault((host, path), Route(host, path))
    return list(missing.values())


def curl_lines(ingresses: Iterable[Ingress], *, mse_ip: str) -> list[str]:
    """One `curl --resolve` line per host, as the procedure's "test before switching" asks.

    TLS hosts are tried on 443 so the gateway's certificate is checked too; a wildcard or
    empty host cannot be resolved by name and is left out.
    """
    lines: dict[str, str] = {}
    for ing in ingresses:
        first_path = {h: p for h, p, _ in reversed(ing.paths)}
        for host in ing.hosts:
            if not host or "*" in host or host in lines:
                continue
            tls = host in ing.tls_hosts
            port, scheme = (443, "https") if tls else (80, "http")
            path = first_path.get(host, "/")
            path = path if path.startswith("/") and not REGEX_CHARS.search(path) else "/"
            lines[host] = (f"curl -sS -o /dev/null -w '%{{http_code}}\\n' --resolve {host}:{port}:{mse_ip} "
                           f"{scheme}://{host}{path}")
    return list(lines.values())
