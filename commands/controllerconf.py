"""The ingress-nginx controller's own ConfigMap: global settings MSE never reads.

Many clusters keep HSTS, global snippets, timeouts and body limits there rather than on each
Ingress, and NGINX's defaults (a 60 s read timeout, a 1m body limit, HSTS on) apply even with an
empty ConfigMap. MSE reads Ingresses only, so every one of these changes at the move unless each
Ingress says the same with an annotation. Facts and sources: `data/configmap.json`.

The ConfigMap is named in the config (`controller_configmap: NS/NAME`) or on the command line, or
found from the controller Deployment's `--configmap` argument (ingress-nginx cli-arguments.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from commands.errors import MigrateError, UserError
from commands.ports import ClusterPort
from commands.routefindings import Finding

#: The labels the ingress-nginx Helm chart and static manifests put on the controller Deployment.
CONTROLLER_SELECTOR = "app.kubernetes.io/name=ingress-nginx,app.kubernetes.io/component=controller"
_REF = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
#: The first controller release whose allow-snippet-annotations defaults to false (ingress-nginx @dbb11b92
#: changelog/controller-1.9.0.md "Disable user snippets per default (#10393)", commit cf889c6c changing
#: AllowSnippetAnnotations true -> false in internal/ingress/controller/config/config.go).
SNIPPETS_OFF_FROM = (1, 9)
_IMAGE_VERSION = re.compile(r":v?(\d+)\.(\d+)(?:\.(\d+))?(?:[-@+]|$)")
FALSE = frozenset({"false", "off", "no", "0"})
TRUE = frozenset({"true", "on", "yes", "1"})


@dataclass(frozen=True)
class Setting:
    key: str
    default: str
    when: str  # set | true | false | differs | always | never
    severity: str
    mse: str | None
    note: str
    source: str


@dataclass(frozen=True)
class Controller:
    """What was found of the controller's settings. `data` is None when they could not be read."""

    ref: str  # "NAMESPACE/NAME" of the ConfigMap, or "" when the controller runs without one
    data: Mapping[str, str] | None
    how: str  # how it was found, or why it was not
    version: tuple[int, ...] | None = None  # the controller image's version, when its Deployment was found


@lru_cache(maxsize=1)
def settings() -> tuple[Setting, ...]:
    raw = json.loads(resources.files("commands").joinpath("data/configmap.json").read_text(encoding="utf-8"))
    return tuple(Setting(r["key"], r["default"], r["when"], r["severity"], r.get("mse"), r["note"], r["source"])
                 for r in raw["settings"])


def parse_ref(text: str) -> tuple[str, str]:
    """`ingress-nginx/ingress-nginx-controller` as (namespace, name); a UserError for anything else."""
    if not _REF.match(text.strip()):
        raise UserError(f"`{text[:60]}` is not a ConfigMap reference; use NAMESPACE/NAME, e.g. "
                        "ingress-nginx/ingress-nginx-controller")
    ns, name = text.strip().split("/")
    return ns, name


def locate(cluster: ClusterPort, *, named: str = "", ingress_class: str = "nginx") -> Controller:
    """The controller's ConfigMap: the one named, else the one the controller Deployment's
    `--configmap` names. Never raises for what it cannot read: the reason goes in `how`."""
    if named:
        parse_ref(named)  # a typo is the user's to fix, said at once
    try:
        if named:
            ns, name = parse_ref(named)
            cm = cluster.get_config_map(namespace=ns, name=name)
            if cm is None:
                return Controller(named, None, f"ConfigMap {named} (configured) does not exist")
            return Controller(named, dict(cm.data), "named in the configuration")
        deployments = cluster.list_deployments(label_selector=CONTROLLER_SELECTOR)
    except MigrateError as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        return Controller(named, None, f"could not be read ({first[:200]})")
    ours = [d for d in deployments if _flag(d.args, "--ingress-class") in (ingress_class, "")]
    if not ours:
        return Controller("", None, "no ingress-nginx controller Deployment found (labels "
                                    f"{CONTROLLER_SELECTOR}); name it with controller_configmap / "
                                    "--controller-configmap")
    if len(ours) > 1:
        names = ", ".join(f"{d.namespace}/{d.name}" for d in ours[:3])
        return Controller("", None, f"several controller Deployments ({names}); name the ConfigMap with "
                                    "controller_configmap / --controller-configmap")
    dep = ours[0]
    version = image_version(dep.images)
    ref = _flag(dep.args, "--configmap").replace("$(POD_NAMESPACE)", dep.namespace)
    if not ref:
        return Controller("", {}, f"controller Deployment {dep.namespace}/{dep.name} has no --configmap: "
                                  "NGINX's defaults apply", version)
    try:
        ns, name = parse_ref(ref)
        cm = cluster.get_config_map(namespace=ns, name=name)
    except MigrateError as err:
        return Controller(ref, None, f"named by {dep.namespace}/{dep.name} --configmap, could not be read "
                                     f"({str(err).splitlines()[0][:200] if str(err) else type(err).__name__})",
                          version)
    how = f"from --configmap of Deployment {dep.namespace}/{dep.name}"
    if cm is None:  # the controller starts without it and runs on its defaults
        return Controller(ref, {}, how + "; it does not exist, so NGINX's defaults apply", version)
    return Controller(ref, dict(cm.data), how, version)


def image_version(images: tuple[str, ...]) -> tuple[int, ...] | None:
    """The version in the ingress-nginx controller image's tag (`...controller:v1.9.4@sha256:...`), or
    None when no image of the Deployment is that controller's or its tag is no version (`latest`)."""
    for image in images:
        name = image.split("@", 1)[0]
        if "ingress-nginx" not in name and "nginx-ingress" not in name:
            continue
        m = _IMAGE_VERSION.search(name[name.rfind("/"):])
        if m:
            return tuple(int(p) for p in m.groups() if p is not None)
    return None


def _flag(args: tuple[str, ...], name: str) -> str:
    """The value of `--name=value` or `--name value` in a container's arguments, "" if absent."""
    for i, arg in enumerate(args):
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1].strip()
        if arg == name and i + 1 < len(args):
            return args[i + 1].strip()
    return ""


def snippets_allowed(controller: Controller | None) -> bool | None:
    """Whether NGINX obeys snippet annotations: what the ConfigMap says, else the default of the
    controller's version (false from v1.9, see SNIPPETS_OFF_FROM), else None when that is unknown."""
    if controller is None or controller.data is None:
        return None
    value = controller.data.get("allow-snippet-annotations", "").strip().lower()
    if value in TRUE or value in FALSE:
        return value in TRUE
    if controller.version is None:
        return None
    return controller.version < SNIPPETS_OFF_FROM


def snippets_said(controller: Controller | None) -> str:
    """Why snippets_allowed answered as it did, in words for a finding."""
    if controller is None or controller.data is None:
        return "the controller's settings were not read"
    if controller.data.get("allow-snippet-annotations", "").strip():
        said = controller.data["allow-snippet-annotations"].strip()
        return f"the controller's ConfigMap sets allow-snippet-annotations to {said}"
    if controller.version is None:
        return ("the controller's ConfigMap does not set allow-snippet-annotations and the controller's version "
                "is unknown (the default is false from v1.9, true before)")
    shown = ".".join(map(str, controller.version))
    default = "true" if controller.version < SNIPPETS_OFF_FROM else "false"
    return (f"the controller runs v{shown} and its ConfigMap does not set allow-snippet-annotations, which "
            f"defaults to {default} there (false from v1.9: ingress-nginx changelog/controller-1.9.0.md, #10393)")


def redirects_tls(controller: Controller | None) -> bool:
    """Whether NGINX redirects TLS hosts to HTTPS when an Ingress does not say: the ConfigMap's
    `ssl-redirect`, default true (ingress-nginx configmap.md @dbb11b92 "ssl-redirect"; the annotation
    falls back to it). With it off, NGINX does not redirect either, so MSE's default loses nothing."""
    if controller is None or controller.data is None:
        return True
    return controller.data.get("ssl-redirect", "true").strip().lower() not in FALSE


def _differs(s: Setting, value: str, explicit: bool) -> bool:
    v = value.strip().lower()
    return {"set": bool(v), "true": v in TRUE, "false": v in FALSE, "always": v not in ("0", "0m", "0k"),
            "differs": explicit and " ".join(v.split()) != " ".join(s.default.lower().split()),
            "never": False}[s.when]


def findings(controller: Controller) -> list[Finding]:
    """One finding per setting whose value (set, or NGINX's default) behaves differently on MSE."""
    if controller.data is None:
        return []
    ns, _, name = controller.ref.partition("/")
    out = []
    for s in settings():
        explicit = s.key in controller.data
        value = controller.data.get(s.key, s.default)
        if not _differs(s, value, explicit):
            continue
        note = s.note if explicit else f"NGINX's default ({s.default or 'empty'}) applies: {s.note}"
        out.append(Finding(ns or "(defaults)", name or "(none)", s.key, value, "unsupported", s.severity, s.mse,
                           f"{note} Source: {s.source}.", rule="controller", kind="ConfigMap"))
    return out


def summary(controller: Controller) -> dict[str, Any]:
    """For the report: where the settings came from, and each listed setting's value and MSE side."""
    rows = []
    for s in settings():
        data = controller.data or {}
        rows.append({"key": s.key, "value": data.get(s.key, s.default), "set": s.key in data,
                     "mse": s.mse or "no counterpart", "note": s.note, "source": s.source})
    return {"configmap": controller.ref, "read": controller.data is not None, "note": controller.how,
            "settings": rows if controller.data is not None else []}
