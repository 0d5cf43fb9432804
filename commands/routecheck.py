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

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from commands.errors import UserError
from commands.ports import Ingress, Route

if TYPE_CHECKING:
    from commands.controllerconf import Controller

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
#: ingress-nginx limits per client IP (annotations.md "Rate Limiting"); MSE's counterparts limit per route.
RATE_LIMITS = frozenset({"limit-rps", "limit-rpm", "limit-connections"})
OFF_VALUES = frozenset({"false", "off", "0", ""})
BACKEND_PROTOCOLS = frozenset({"HTTP", "HTTP2", "HTTPS", "GRPC", "GRPCS"})
HASH_BY = re.compile(r"^\$(request_uri|host|remote_addr|http_\w+|arg_\w+)$")
#: What PCRE (NGINX) compiles and RE2 (MSE's Envoy) refuses, each with the name the finding shows.
#: RE2 syntax: github.com/google/re2/wiki/Syntax ("NOT SUPPORTED" rows).
PCRE_ONLY = (
    (re.compile(r"\(\?<?[=!]"), "lookaround"),
    (re.compile(r"\\[1-9]|\\[gk][{<'\d]|\(\?P=\w"), "backreference"),
    (re.compile(r"[*+?}]\+"), "possessive quantifier"),
    (re.compile(r"\(\?>"), "atomic group"),
    (re.compile(r"\(\?\("), "conditional"),
    (re.compile(r"\(\?(?:R|[+-]?\d)\)|\(\?&\w"), "recursion"),
    (re.compile(r"\(\?\|"), "branch reset"),
    (re.compile(r"\(\?#"), "comment group"),
    (re.compile(r"\\[GZK]"), "\\G, \\Z or \\K"),
)
REGEX_CHARS = re.compile(r"[\^$*+?()\[\]{}|\\]")
#: The characters that make Higress treat a path as a regex when rewrite-target is set
#: (higress @4e0d691 pkg/ingress/kube/annotations/annotations.go NeedRegexMatch).
HIGRESS_REGEX_CHARS = re.compile(r"[\\.+*?()|\[\]{}^$]")
#: Higress turns `$1` into `\1` only when the target has a `$digit`, and then turns every `$` into `\`
#: (higress @4e0d691 pkg/ingress/kube/annotations/rewrite.go): `$host` or `${name}` never expand.
TARGET_VARIABLE = re.compile(r"\$(?![0-9])")


def re2_problem(pattern: str) -> str:
    """The PCRE-only constructs in `pattern` that RE2 cannot compile, named; "" when there are none."""
    found = [name for rx, name in PCRE_ONLY if rx.search(pattern)]
    return ", ".join(found)
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
    annotation: str  # the annotation, or the ConfigMap key for a controller setting
    value: str
    status: str  # supported | partial | unsupported | ignored | unknown
    severity: str  # blocking | warning | info
    mse_alternative: str | None
    note: str  # what changes on MSE, then " Source: " and where that fact comes from
    id: str = ""  # short and stable within a migration (F3); `check accept=F3` names it
    rule: str = "annotation"  # annotation | tls-redirect | regex | canary | service | controller
    kind: str = "Ingress"  # Ingress | ConfigMap

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
        text = "\0".join((self.kind, self.namespace, self.name, self.annotation, self.value, self.rule))
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
                               "findings": [asdict(f) for f in self.findings]}
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


def assign_ids(findings: Iterable[Finding], known: Mapping[str, str] | None = None
               ) -> tuple[tuple[Finding, ...], dict[str, str]]:
    """Give each finding its short id: the one it had before (by fingerprint), else the next free number.

    Returns the findings with ids and the fingerprint -> id map of the blocking ones, which the
    next check passes back in so that F3 still means the same finding after a re-run.
    """
    known = dict(known or {})
    used = {int(v[1:]) for v in known.values() if v[1:].isdigit()}
    nxt = max(used, default=0) + 1
    out: list[Finding] = []
    blocking: dict[str, str] = {}
    for f in findings:
        fid = known.get(f.fingerprint)
        if fid is None:
            fid = f"F{nxt}"
            nxt += 1
            known[f.fingerprint] = fid
        out.append(replace(f, id=fid))
        if f.severity == "blocking":
            blocking[f.fingerprint] = fid
    return tuple(out), blocking


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

def check_routes(ingresses: Iterable[Ingress], *, gateway_version: str | None = None,
                 controller: Controller | None = None, service_exists: Callable[[str, str], bool] | None = None,
                 known_ids: Mapping[str, str] | None = None) -> Report:
    """Classify every annotation of every Ingress, then what only shows across Ingresses (canary
    pairs, settings MSE applies per Service) and the controller's own ConfigMap.

    Streams its input, keeping only findings, counts and the few facts the pair checks need.
    `service_exists(namespace, name)` lets the canary check say when a canary's Service is missing.
    """
    from commands import controllerconf, routepairs

    version = parse_version(gateway_version) if gateway_version else None
    table = load_table()
    snippets_on = controllerconf.snippets_allowed(controller)
    findings: list[Finding] = list(controllerconf.findings(controller)) if controller is not None else []
    counts: Counter[str] = Counter()
    pairs = routepairs.Pairs()
    scanned = 0
    for ing in ingresses:
        scanned += 1
        counts.update(k for k in ing.annotations if k.startswith((NGINX, MSE)))
        findings += check_ingress(ing, table, version, snippets_on=snippets_on)
        pairs.add(ing)
    findings += pairs.findings(service_exists)
    numbered, _ = assign_ids(findings, known_ids)
    return Report(scanned, numbered, tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
                  controllerconf.summary(controller) if controller is not None else None)


def check_ingress(ing: Ingress, table: Table, version: tuple[int, ...] | None, *,
                  snippets_on: bool | None = None) -> list[Finding]:
    ann = ing.annotations
    out = [f for key in sorted(ann) for f in _check_key(ing, key, ann[key], table, version, snippets_on)]
    out += _tls_redirect(ing)
    out += _regex(ing)
    return out


def _finding(ing: Ingress, key: str, value: str, status: str, severity: str, alt: str | None,
             note: str, rule: str = "annotation") -> Finding:
    return Finding(ing.namespace, ing.name, key, value, status, severity, alt, note, rule=rule)


def _has(ann: Mapping[str, str], suffix: str) -> bool:
    return any(p + suffix in ann for p in (NGINX, MSE))


def _check_key(ing: Ingress, key: str, value: str, table: Table,
               version: tuple[int, ...] | None, snippets_on: bool | None = None) -> list[Finding]:
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
        return [_unsupported(ing, key, suffix, value, entry, source, snippets_on)]
    out = _value_rules(ing, key, suffix, value, entry, source)
    if entry.min_version:
        out += _version_gate(ing, key, value, entry.status, entry.min_version, version, source)
    return out


def _unsupported(ing: Ingress, key: str, suffix: str, value: str, entry: Entry, source: str,
                 snippets_on: bool | None = None) -> Finding:
    alt = entry.mse_alternative
    if suffix in SPELLING_TRAPS:
        twin = SPELLING_TRAPS[suffix]
        if _has(ing.annotations, twin):
            return _finding(ing, key, value, "unsupported", "info", alt,
                            f"Spelling trap already handled: {twin} is set too, and MSE reads that one." + source)
        return _finding(ing, key, value, "unsupported", "blocking", alt,
                        f"Spelling trap: MSE reads only {twin}, so this setting would be dropped." + source)
    if suffix.endswith("-snippet"):
        if snippets_on is False:
            return _finding(ing, key, value, "unsupported", "warning", alt,
                            "Raw NGINX configuration that NGINX ignores too: the controller's ConfigMap sets "
                            "allow-snippet-annotations to false, so nothing changes on MSE; delete it." + source)
        return _finding(ing, key, value, "unsupported", "blocking", alt,
                        "Raw NGINX configuration: MSE runs no NGINX config; rewrite it with header-control "
                        "annotations or a gateway plugin." + source)
    special = _special_unsupported(ing, key, suffix, value, alt, source)
    if special is not None:
        return special
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


def _special_unsupported(ing: Ingress, key: str, suffix: str, value: str, alt: str | None,
                         source: str) -> Finding | None:
    """Unsupported keys whose loss is narrower than "what it does would stop"."""
    v = value.strip().strip('"').lower()
    if suffix == "proxy-http-version":
        if v == "1.1":
            return _finding(ing, key, value, "unsupported", "info", alt,
                            "HTTP/1.1 to the backends is already the default on both sides (ingress-nginx "
                            "proxy-http-version defaults to 1.1; MSE's Envoy speaks HTTP/1.1 upstream unless "
                            "backend-protocol says HTTP2/GRPC), so nothing changes." + source)
        return _finding(ing, key, value, "unsupported", "warning", alt,
                        f"NGINX talks HTTP/{value.strip()} to the backends here; MSE ignores the key and talks "
                        "HTTP/1.1 (keep-alive and chunked bodies differ at the edges)." + source)
    if suffix == "proxy-body-size":
        if v in ("0", "0m", "0k", "0g"):
            return _finding(ing, key, value, "unsupported", "info", alt,
                            "0 turns NGINX's body limit off; MSE sets none either, so nothing changes." + source)
        return _finding(ing, key, value, "unsupported", "warning", alt,
                        f"A lost restriction, not lost traffic: NGINX refuses bodies over {value.strip()} with "
                        "413; MSE imposes no body size limit (it streams bodies), so larger uploads reach the "
                        "backend. Enforce the limit there if it matters." + source)
    if suffix in RATE_LIMITS:
        return _finding(ing, key, value, "unsupported", "blocking", alt,
                        f"MSE ignores this key, so the limit of {value.strip()} per client IP would stop. MSE "
                        "limits per route (route-limit-*: per gateway instance; rate-limit and concurrency-limit: "
                        "the whole route), never per client IP: the same number there means something "
                        "else." + source)
    return None


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
    elif suffix == "canary-by-header-pattern" and (why := re2_problem(v)):
        problem = (f"The pattern uses PCRE-only syntax ({why}) that RE2 cannot compile; Higress matches "
                   f"the header with the RE2 regex .*{v}.* (canary.go), so this canary would not work.")
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


def regex_on(ing: Ingress) -> bool:
    """Whether Higress matches this Ingress's paths as regex, as `NeedRegexMatch` decides (any path)."""
    return any(path_is_regex(ing, p) for _, p, _ in ing.paths) if ing.paths else _regex_switch(ing)


def _regex_switch(ing: Ingress) -> bool:
    ann = ing.annotations
    target = ann.get(NGINX + "rewrite-target", ann.get(MSE + "rewrite-target"))
    use_regex = ann.get(NGINX + "use-regex", ann.get(MSE + "use-regex", "")).strip().lower() == "true"
    return use_regex or (target is not None and ("$" in target or "\\" in target))


def path_is_regex(ing: Ingress, path: str) -> bool:
    """Higress: regex when use-regex is on, when rewrite-target holds `$` or a backslash, or when
    rewrite-target is set and the path has regex characters (annotations.go NeedRegexMatch)."""
    ann = ing.annotations
    target = ann.get(NGINX + "rewrite-target", ann.get(MSE + "rewrite-target"))
    return _regex_switch(ing) or (bool(target) and bool(HIGRESS_REGEX_CHARS.search(path)))


def _regex(ing: Ingress) -> list[Finding]:
    """Regex paths: PCRE, case-insensitive and host-wide on NGINX; RE2, case-sensitive, per Ingress on MSE."""
    ann = ing.annotations
    use_regex = ann.get(NGINX + "use-regex", "").strip().lower() == "true"
    target = ann.get(NGINX + "rewrite-target")
    captures = target is not None and ("$" in target or "\\" in target)
    regex_paths = [p for _, p, _ in ing.paths if HIGRESS_REGEX_CHARS.search(p)]
    if not (use_regex or captures or (target is not None and regex_paths)):
        return []
    key = NGINX + ("use-regex" if use_regex else "rewrite-target")
    value = ann[key]
    out: list[Finding] = []
    bad = [(p, why) for _, p, _ in ing.paths if (why := re2_problem(p))]
    if bad:
        listed = "; ".join(f"{p} ({why})" for p, why in bad)
        out.append(_finding(ing, key, value, "partial", "blocking", None,
                            f"Paths use PCRE-only syntax that MSE's RE2 cannot compile: {listed}. Rewrite them "
                            "without it.", rule="regex"))
    if target is not None:
        out += _target_problems(ing, target)
    if bad:
        return out
    hosts = ", ".join(sorted(set(ing.hosts))) or "the default host"
    note = ("Regex paths: MSE uses RE2 and matches case-sensitively, on this Ingress only; NGINX matched "
            f"case-insensitively and applied regex to every path of {hosts}.")
    if captures:
        note += " Capture groups in rewrite-target carry over ($1 becomes \\1)."
    return [_finding(ing, key, value, "partial", "warning", None, note, rule="regex"), *out]


def _target_problems(ing: Ingress, target: str) -> list[Finding]:
    key = NGINX + "rewrite-target"
    problems = []
    if TARGET_VARIABLE.search(target):
        problems.append("`$` followed by a name (an NGINX variable or a named group) is not expanded: Higress "
                        "rewrites only `$1`..`$9`, and then turns every `$` into a backslash")
    if why := re2_problem(target):
        problems.append(f"PCRE-only syntax RE2 refuses ({why})")
    if not problems:
        return []
    return [_finding(ing, key, target, "partial", "blocking", None,
                     "rewrite-target: " + "; ".join(problems) + ". Source: higress @4e0d691 "
                     "pkg/ingress/kube/annotations/rewrite.go.", rule="regex-target")]


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
