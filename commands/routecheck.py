"""Step 2, "check routes": what the MSE gateway would do differently with each migrated Ingress.

MSE reads the same Ingresses as NGINX and silently skips every annotation it does not know,
so nothing fails loudly: this check is the only place a difference shows before traffic moves.
The per-key verdicts come from `data/annotations.json` (research data with its sources, not
code); the checks a per-key table cannot make (TLS redirect default, NGINX variables in
values, gateway versions, spelling traps) live here, regex and RE2 in `routeregex.py`, what
only shows across Ingresses in `routepairs.py`, the controller's ConfigMap in `controllerconf.py`.

Severities, and why:
- blocking: some request would be answered differently by MSE than by NGINX (the key is
  ignored, its value cannot be honoured, HTTP stops redirecting to HTTPS, a regex RE2 rejects,
  the gateway in use is too old for the key, a canary that would never attach, two Ingresses
  giving one Service different settings). Fix it, re-run, or have an approver accept it.
- warning: traffic flows, but semantics differ at the edges (partial keys, case-sensitive
  regex, keys that only tune buffering or logs, a restriction MSE does not impose such as a
  body size limit or a proxy timeout, a version we could not check, an MSE alternative already added whose
  semantics differ) or the key is unknown to the table.
- info: nothing changes (`service-weight: ""`, `proxy-http-version: "1.1"`, a backend-protocol
  MSE speaks, a spelling trap already fixed).
Snippet annotations block unless NGINX ignored them too: the ConfigMap's allow-snippet-annotations,
else its default for the controller's version (false from v1.9); an unknown version blocks and says so.
Annotations MSE supports as NGINX does give no finding; they still count in the summary.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from commands import controllerconf, routepairs
from commands.controllerconf import Controller
from commands.errors import UserError
from commands.ports import Ingress, Route
from commands.routefindings import MSE, NGINX, SEVERITIES, Finding, Report, assign_ids, by_severity
from commands.routeregex import (
    HIGRESS_REGEX_CHARS,
    REGEX_CHARS,
    path_is_regex,
    re2_problem,
    regex_findings,
    regex_on,
)

__all__ = ["MSE", "NGINX", "SEVERITIES", "Finding", "Report", "assign_ids", "by_severity", "check_routes",
           "curl_lines", "load_table", "missing_routes", "parse_version", "path_is_regex", "re2_problem", "regex_on"]


#: Unsupported keys that tune buffering, logging or tracing: requests are still routed alike.
NO_TRAFFIC_EFFECT = frozenset({
    "client-body-buffer-size", "proxy-buffering", "proxy-buffers-number", "proxy-buffer-size",
    "proxy-busy-buffers-size", "proxy-max-temp-file-size", "proxy-request-buffering", "enable-access-log",
    "enable-rewrite-log", "enable-opentelemetry", "opentelemetry-trust-incoming-span",
    "opentelemetry-operation-name", "modsecurity-transaction-id", "http2-push-preload",
})
#: NGINX spellings MSE does not read although it reads a near twin.
SPELLING_TRAPS = {"ssl-ciphers": "ssl-cipher", "allowlist-source-range": "whitelist-source-range"}
#: What each NGINX timeout bounds; MSE has none of them and no timeout by default (annotations.md caveat 6).
TIMEOUTS = {"proxy-read-timeout": "waiting for the backend's response", "proxy-send-timeout": "sending the request "
            "to the backend", "proxy-connect-timeout": "connecting to the backend"}
#: ingress-nginx limits per client IP (annotations.md "Rate Limiting"); MSE's counterparts limit per route.
RATE_LIMITS = frozenset({"limit-rps", "limit-rpm", "limit-connections"})
OFF_VALUES = frozenset({"false", "off", "0", ""})
BACKEND_PROTOCOLS = frozenset({"HTTP", "HTTP2", "HTTPS", "GRPC", "GRPCS"})
HASH_BY = re.compile(r"^\$(request_uri|host|remote_addr|http_\w+|arg_\w+)$")
#: annotations.md caveat 3 (ssl-redirect default), from higress @4e0d691 pkg/ingress/kube/annotations/redirect.go.
REDIRECT_SOURCE = (" Source: shared/reference/annotations.md caveat 3 (ssl-redirect default); higress @4e0d691 "
                   "pkg/ingress/kube/annotations/redirect.go.")
SNIPPET_DEFAULT_SOURCE = (" ingress-nginx @dbb11b92 changelog/controller-1.9.0.md (#10393): allow-snippet-annotations "
                          "defaults to false from v1.9.")
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
                 known_ids: Mapping[str, str] | None = None, next_id: int = 0) -> Report:
    """Classify every annotation of every Ingress, then what only shows across Ingresses (canary
    pairs, settings MSE applies per Service) and the controller's own ConfigMap.

    Streams its input, keeping only findings, counts and the few facts the pair checks need.
    `service_exists(namespace, name)` lets the canary check say when a canary's Service is missing.
    """
    version = parse_version(gateway_version) if gateway_version else None
    table = load_table()
    snippets_on = controllerconf.snippets_allowed(controller)
    snippets_why = controllerconf.snippets_said(controller)
    redirects = controllerconf.redirects_tls(controller)
    findings: list[Finding] = list(controllerconf.findings(controller)) if controller is not None else []
    counts: Counter[str] = Counter()
    pairs = routepairs.Pairs()
    scanned = 0
    for ing in ingresses:
        scanned += 1
        counts.update(k for k in ing.annotations if k.startswith((NGINX, MSE)))
        findings += check_ingress(ing, table, version, snippets_on=snippets_on, redirects=redirects,
                                  snippets_why=snippets_why)
        pairs.add(ing)
    findings += pairs.findings(service_exists)
    numbered, _ = assign_ids(findings, known_ids, next_free=next_id)
    return Report(scanned, numbered, tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
                  controllerconf.summary(controller) if controller is not None else None)


def check_ingress(ing: Ingress, table: Table, version: tuple[int, ...] | None, *,
                  snippets_on: bool | None = None, redirects: bool = True, snippets_why: str = "") -> list[Finding]:
    ann = ing.annotations
    out = [f for key in sorted(ann)
           for f in _check_key(ing, key, ann[key], table, version, (snippets_on, snippets_why))]
    out += _tls_redirect(ing) if redirects else []
    out += regex_findings(ing)
    return out


def _finding(ing: Ingress, key: str, value: str, status: str, severity: str, alt: str | None,
             note: str, rule: str = "annotation") -> Finding:
    return Finding(ing.namespace, ing.name, key, value, status, severity, alt, note, rule=rule)


def _has(ann: Mapping[str, str], suffix: str) -> bool:
    return any(p + suffix in ann for p in (NGINX, MSE))


#: Whether NGINX obeys snippet annotations (None: unknown), and why, from controllerconf.
Snippets = tuple[bool | None, str]


def _check_key(ing: Ingress, key: str, value: str, table: Table,
               version: tuple[int, ...] | None, snippets: Snippets = (None, "")) -> list[Finding]:
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
        return [_unsupported(ing, key, suffix, value, entry, source, snippets)]
    out = _value_rules(ing, key, suffix, value, entry, source)
    if entry.min_version:
        out += _version_gate(ing, key, value, entry.status, entry.min_version, version, source)
    return out


def _unsupported(ing: Ingress, key: str, suffix: str, value: str, entry: Entry, source: str,
                 snippets: Snippets = (None, "")) -> Finding:
    alt = entry.mse_alternative
    if suffix in SPELLING_TRAPS:
        twin = SPELLING_TRAPS[suffix]
        if _has(ing.annotations, twin):
            return _finding(ing, key, value, "unsupported", "info", alt,
                            f"Spelling trap already handled: {twin} is set too, and MSE reads that one." + source)
        return _finding(ing, key, value, "unsupported", "blocking", alt,
                        f"Spelling trap: MSE reads only {twin}, so this setting would be dropped." + source)
    if suffix.endswith("-snippet"):
        snippets_on, why = snippets
        cite = source + (SNIPPET_DEFAULT_SOURCE if "default" in why else "")
        if snippets_on is False:
            return _finding(ing, key, value, "unsupported", "warning", alt,
                            f"Raw NGINX configuration that NGINX ignores too: {why}, so nothing changes on MSE; "
                            "delete it." + cite)
        unknown = (f" Blocking because it is unknown whether NGINX obeys it: {why}." if snippets_on is None and why
                   else "")
        return _finding(ing, key, value, "unsupported", "blocking", alt,
                        "Raw NGINX configuration: MSE runs no NGINX config; rewrite it with header-control "
                        "annotations or a gateway plugin." + unknown + cite)
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
    if suffix in TIMEOUTS and not (alt and alt in ing.annotations):
        return _finding(ing, key, value, "unsupported", "warning", alt,
                        f"A lost limit, not lost traffic: NGINX gives up after {value.strip()} s "
                        f"{TIMEOUTS[suffix]} (504); MSE ignores the key and sets no timeout by default, so slow "
                        f"requests run on instead of failing. To keep a limit, set {alt or MSE + 'timeout'} "
                        "(seconds, the whole request) on this Ingress." + source)
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
    if suffix == "canary-by-header-value" and HIGRESS_REGEX_CHARS.search(v):
        why = re2_problem(v)
        return [_finding(ing, key, value, "partial", "blocking" if why else "warning", None,
                         f"NGINX compares the header with {v} exactly; Higress matches the RE2 regex always|{v} "
                         "(canary.go), so regex characters in it "
                         + (f"fail to compile ({why})." if why else "match more values than this one.")
                         + " Source: higress @4e0d691 pkg/ingress/kube/annotations/canary.go.")]
    if suffix == "backend-protocol":  # a value MSE accepts (checked above): it speaks it as NGINX does
        return [_finding(ing, key, value, "partial", "info", None,
                         f"MSE speaks {v.upper()} to the backend too (it accepts {', '.join(sorted(BACKEND_PROTOCOLS))}"
                         "); it applies the setting per Service, not per Ingress." + source)]
    if entry.status == "partial":
        return [_finding(ing, key, value, "partial", "warning", entry.mse_alternative,
                         "MSE reads this key with a different meaning at the edges; the source below says "
                         "how." + source)]
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
                     'when ssl-redirect or force-ssl-redirect is "true"; set ssl-redirect: "true" to keep it.'
                     + REDIRECT_SOURCE, rule="tls-redirect")]


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
