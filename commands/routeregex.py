"""Regex on both sides: when Higress matches a path as a regex, and what RE2 cannot compile.

NGINX (PCRE) matches regex locations case-insensitively, for every path of the host; Higress
(RE2, through Envoy) turns regex on per Ingress and matches case-sensitively
(higress @4e0d691 pkg/ingress/kube/annotations/annotations.go `NeedRegexMatch`, rewrite.go).
"""

from __future__ import annotations

import re

from commands.ports import Ingress
from commands.routefindings import MSE, NGINX, Finding

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


REGEX_SOURCE = (" Source: higress @4e0d691 pkg/ingress/kube/annotations/annotations.go (NeedRegexMatch) and "
                "rewrite.go; RE2 syntax: github.com/google/re2/wiki/Syntax.")
_ANY_PCRE_ONLY = re.compile("|".join(f"(?:{rx.pattern})" for rx, _ in PCRE_ONLY))


def re2_problem(pattern: str) -> str:
    """The PCRE-only constructs in `pattern` that RE2 cannot compile, named; "" when there are none."""
    if not _ANY_PCRE_ONLY.search(pattern):  # one scan for the common case
        return ""
    found = [name for rx, name in PCRE_ONLY if rx.search(pattern)]
    return ", ".join(found)


def regex_on(ing: Ingress) -> bool:
    """Whether Higress matches this Ingress's paths as regex, as `NeedRegexMatch` decides (any path)."""
    return any(path_is_regex(ing, p) for _, p, _ in ing.paths) if ing.paths else regex_switch(ing)


def regex_switch(ing: Ingress) -> bool:
    """Regex on for every path of the Ingress: use-regex, or `$` or a backslash in rewrite-target."""
    ann = ing.annotations
    target = ann.get(NGINX + "rewrite-target", ann.get(MSE + "rewrite-target"))
    use_regex = ann.get(NGINX + "use-regex", ann.get(MSE + "use-regex", "")).strip().lower() == "true"
    return use_regex or (target is not None and ("$" in target or "\\" in target))


def path_is_regex(ing: Ingress, path: str, *, switch: bool | None = None) -> bool:
    """Higress: regex when use-regex is on, when rewrite-target holds `$` or a backslash, or when
    rewrite-target is set and the path has regex characters (annotations.go NeedRegexMatch).
    `switch` is `regex_switch(ing)` when the caller has it already."""
    if regex_switch(ing) if switch is None else switch:
        return True
    ann = ing.annotations
    target = ann.get(NGINX + "rewrite-target", ann.get(MSE + "rewrite-target"))
    return bool(target) and bool(HIGRESS_REGEX_CHARS.search(path))


def regex_findings(ing: Ingress) -> list[Finding]:
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
        out.append(_found(ing, key, value, "partial", "blocking", None,
                            f"Paths use PCRE-only syntax that MSE's RE2 cannot compile: {listed}. Rewrite them "
                            "without it." + REGEX_SOURCE, rule="regex"))
    if target is not None:
        out += _target_problems(ing, target)
    if bad:
        return out
    hosts = ", ".join(sorted(set(ing.hosts))) or "the default host"
    note = ("Regex paths: MSE uses RE2 and matches case-sensitively, on this Ingress only; NGINX matched "
            f"case-insensitively and applied regex to every path of {hosts}.")
    if captures:
        note += " Capture groups in rewrite-target carry over ($1 becomes \\1)."
    return [_found(ing, key, value, "partial", "warning", None, note + REGEX_SOURCE, rule="regex"), *out]


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
    return [_found(ing, key, target, "partial", "blocking", None,
                     "rewrite-target: " + "; ".join(problems) + ". Source: higress @4e0d691 "
                     "pkg/ingress/kube/annotations/rewrite.go.", rule="regex-target")]


def _found(ing: Ingress, key: str, value: str, status: str, severity: str, alt: str | None, note: str,
           rule: str) -> Finding:
    return Finding(ing.namespace, ing.name, key, value, status, severity, alt, note, rule=rule)
