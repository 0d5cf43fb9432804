"""Route-check findings that only show across Ingresses: canary pairs, and settings MSE applies per Service.

Canary: Higress attaches a canary Ingress's path to the main route with the same host, path type
and path, where a path counts as regex if its own Ingress turns regex on (higress @4e0d691
pkg/ingress/kube/ingressv1/controller.go `ApplyCanaryIngress`, `isCanaryRoute`, the rule key built
from `PathFormat()` = host-pathType-path; Prefix paths lose a trailing `/`; ImplementationSpecific
counts as Prefix). A canary that finds no such route is skipped without a word: its traffic share
silently stays on the main Service.

Service scope: affinity, backend-protocol, load balancing, hashing and upstream TLS apply per
Service on MSE, not per route (MSE doc "Annotations supported by MSE Ingress gateways", scope
column; annotations.md "Scope"), so two Ingresses sending the same Service different values get
one of them for both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from commands.ports import Ingress
from commands.routefindings import MSE, NGINX, Finding
from commands.routeregex import HIGRESS_REGEX_CHARS, path_is_regex, regex_switch

CANARY = NGINX + "canary"
#: Keys MSE applies to the whole Service (MSE doc scope column: "Service").
SERVICE_SCOPED = ("affinity", "affinity-mode", "session-cookie-name", "session-cookie-path", "session-cookie-max-age",
                  "session-cookie-expires", "backend-protocol", "load-balance", "upstream-hash-by", "proxy-ssl-secret",
                  "proxy-ssl-verify", "proxy-ssl-name", "proxy-ssl-server-name")
_SCOPED_KEYS = frozenset(p + s for p in (NGINX, MSE) for s in SERVICE_SCOPED)
#: Service-wide keys that change how the gateway talks to the backend: one Ingress setting them and
#: another not still breaks requests (plain HTTP to a TLS port, HTTP/1 to gRPC). The other scoped keys
#: only choose which pod answers, so "set on one, not set on another" is a warning.
WIRE_KEYS = frozenset({"backend-protocol", "proxy-ssl-secret", "proxy-ssl-verify", "proxy-ssl-name",
                       "proxy-ssl-server-name"})
#: An Ingress with one of these answers every request with a redirect "instead of sending data to the
#: upstream" (ingress-nginx @dbb11b92 docs/user-guide/nginx-configuration/annotations.md, Permanent and
#: Temporal Redirect), so its Service-wide settings never meet a request.
REDIRECTS = ("permanent-redirect", "temporal-redirect")
CANARY_SOURCE = (" Source: higress @4e0d691 pkg/ingress/kube/ingressv1/controller.go (ApplyCanaryIngress, "
                 "isCanaryRoute, createRuleKey) and pkg/ingress/kube/common/controller.go (PathFormat).")
SCOPE_SOURCE = (" Source: MSE doc 'Annotations supported by MSE Ingress gateways' (scope: Service) and "
                "shared/reference/annotations.md 'Scope'.")

RouteKey = tuple[str, str, str]  # host, path type as Higress keys it, path as Higress keys it


def route_key(ing: Ingress, host: str, path: str, path_type: str) -> RouteKey:
    if path_is_regex(ing, path):
        return host, "regex", path
    return route_key_plain(host, path, path_type)


def route_key_plain(host: str, path: str, path_type: str) -> RouteKey:
    kind = "exact" if path_type == "Exact" else "prefix"
    if kind == "prefix" and path != "/":
        path = path.rstrip("/") or "/"
    return host, kind, path


def _is_canary(ing: Ingress) -> bool:
    return any(ing.annotations.get(p + "canary", "").strip().lower() == "true" for p in (NGINX, MSE))


@dataclass
class Pairs:
    """Fed one Ingress at a time; keeps main routes by key and by (host, path), canaries whole."""

    # every main route, kept raw: keyed only when there are canaries (most clusters have few or none)
    routes: list[tuple[str, str, str, bool, bool, str]] = field(default_factory=list)
    mains: dict[RouteKey, str] = field(default_factory=dict)  # key -> "ns/name" of the first main Ingress
    main_paths: dict[tuple[str, str], list[tuple[RouteKey, str]]] = field(default_factory=dict)
    main_hosts: set[str] = field(default_factory=set)
    canaries: list[Ingress] = field(default_factory=list)
    # (namespace, service) -> the Ingresses sending it, and key suffix -> value -> first Ingress setting it
    senders: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    scoped: dict[tuple[str, str], dict[str, dict[str, str]]] = field(default_factory=dict)
    setters: dict[tuple[str, str], dict[str, set[str]]] = field(default_factory=dict)

    def add(self, ing: Ingress) -> None:
        if _is_canary(ing):
            self.canaries.append(ing)
            return
        who = f"{ing.namespace}/{ing.name}"
        regex = regex_switch(ing)
        target = bool(ing.annotations.get(NGINX + "rewrite-target") or ing.annotations.get(MSE + "rewrite-target"))
        self.routes += [(host, path, path_type, regex, target, who) for host, path, path_type in ing.paths]
        if _redirect_only(ing):
            return  # its Service never sees a request through it, so its settings there never apply
        for svc in set(ing.backends):
            if svc:
                self._scope(ing, svc, who)

    def _index(self) -> None:
        """Key the main routes as Higress would (see route_key), once, when a canary needs them."""
        for host, path, path_type, regex, target, who in self.routes:
            if regex or (target and HIGRESS_REGEX_CHARS.search(path)):
                key: RouteKey = (host, "regex", path)
            else:
                key = route_key_plain(host, path, path_type)
            self.mains.setdefault(key, who)
            self.main_hosts.add(host)
            self.main_paths.setdefault((host, key[2] if key[1] == "regex" else path.rstrip("/") or "/"),
                                       []).append((key, who))
        self.routes = []

    def _scope(self, ing: Ingress, svc: str, who: str) -> None:
        key = (ing.namespace, svc)
        self.senders.setdefault(key, []).append(who)
        if _SCOPED_KEYS.isdisjoint(ing.annotations):
            return
        for suffix in SERVICE_SCOPED:
            value = _value(ing, suffix)
            if value:
                self.scoped.setdefault(key, {}).setdefault(suffix, {}).setdefault(value, who)
                self.setters.setdefault(key, {}).setdefault(suffix, set()).add(who)

    def findings(self, service_exists: Callable[[str, str], bool] | None = None) -> list[Finding]:
        if self.canaries:
            self._index()
        out = [f for ing in self.canaries for f in self._canary(ing, service_exists)]
        return out + self._conflicts()

    def _canary(self, ing: Ingress, service_exists: Callable[[str, str], bool] | None) -> list[Finding]:
        value = ing.annotations.get(CANARY, ing.annotations.get(MSE + "canary", "true"))
        problems: list[str] = []
        for host, path, path_type in ing.paths:
            key = route_key(ing, host, path, path_type)
            if key in self.mains:
                continue
            if host not in self.main_hosts:
                problems.append(f"no main Ingress serves host {host or '(any host)'}")
                continue
            near = self.main_paths.get((host, path if key[1] == "regex" else path.rstrip("/") or "/"), [])
            if near:
                main_key, who = near[0]
                problems.append(f"{host}{path} is matched as {key[1]} here but as {main_key[1]} on the main "
                                f"Ingress {who} (path type and regex mode must be the same: use-regex or "
                                "rewrite-target on one side only changes the mode)")
            else:
                problems.append(f"no main Ingress has path {path} ({path_type}) on {host}")
        if not ing.paths:
            problems.append("it has no rules, so there is no route to attach to")
        missing = sorted({svc for svc in ing.backends if svc and service_exists is not None
                          and not service_exists(ing.namespace, svc)})
        out: list[Finding] = []
        if problems:
            out.append(Finding(ing.namespace, ing.name, CANARY, value, "partial", "blocking", None,
                               "Canary without a matching main route: MSE attaches a canary only to a route with "
                               "the same host, path type and path, and silently drops it otherwise, so its share "
                               "would stay on the main Service: " + "; ".join(problems[:5])
                               + ("; …" if len(problems) > 5 else "") + "." + CANARY_SOURCE, rule="canary"))
        if missing:
            out.append(Finding(ing.namespace, ing.name, CANARY, value, "partial", "blocking", None,
                               f"The canary sends its share to Service {', '.join(missing)}, which does not exist "
                               f"in {ing.namespace}: those requests would fail.{CANARY_SOURCE}",
                               rule="canary-service"))
        return out

    def _conflicts(self) -> list[Finding]:
        out: list[Finding] = []
        for (namespace, svc), keys in sorted(self.scoped.items()):
            senders = self.senders[(namespace, svc)]
            for suffix, set_by in keys.items():
                values = dict(set_by)
                unset = [who for who in senders if who not in self.setters[(namespace, svc)][suffix]]
                if unset:
                    values[""] = unset[0]
                if len(values) < 2:
                    continue
                shown = "; ".join(f"{who}: {v or '(not set)'}" for v, who in sorted(values.items(),
                                                                                    key=lambda kv: kv[1]))
                last_who = sorted(values.values())[-1]
                ns, name = last_who.split("/", 1)
                set_or_not = len(values) == 2 and "" in values
                if set_or_not and suffix not in WIRE_KEYS:
                    severity, effect = "warning", (
                        "MSE applies it per Service, not per route, so either all of them get it or none does. "
                        "It only chooses which pod answers, so this is mostly harmless; set it on each to be sure.")
                else:
                    severity, effect = "blocking", (
                        "MSE applies it per Service, not per route, so one value would win for all of them. "
                        "Set the same value on each.")
                out.append(Finding(ns, name, NGINX + suffix, ", ".join(sorted(v or "(not set)" for v in values)),
                                   "partial", severity, None,
                                   f"Ingresses sending Service {namespace}/{svc} disagree on {suffix} ({shown}). "
                                   + effect + SCOPE_SOURCE, rule="service", subject=f"{namespace}/{svc}"))
        return out


def _redirect_only(ing: Ingress) -> bool:
    return any(_value(ing, suffix) for suffix in REDIRECTS)


def _value(ing: Ingress, suffix: str) -> str:
    return (ing.annotations.get(NGINX + suffix) or ing.annotations.get(MSE + suffix) or "").strip()
