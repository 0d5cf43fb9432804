"""A small, strict renderer for the Go-template subset that helm/migrate-bot uses.

No helm binary exists on the CI machine, and the chart must still be rendered and validated
there. This renders the chart the way `helm template` would, for exactly the constructs listed
below, and raises `RenderError` on anything else, so the chart cannot drift outside what is
checked here. Where Helm's real engine is present (the `helm-python-sdk` wheel or a `helm`
binary) the tests also render with it and compare both outputs.

Supported (Go text/template + Helm + sprig semantics):
  actions `{{ }}` with `{{-`/`-}}` trimming, `{{/* comments */}}`; pipelines with `|`;
  `.Values.a.b`, `$`, `$.Values`, `$var`, `$var.a`, `(sub pipelines)`; string, number,
  true/false/nil literals; `$x := pipeline` (scoped to its block);
  if / else if / else / end, range (lists and maps, `$v :=` / `$k, $v :=`), with / else,
  define + include;
  functions: include, toYaml, nindent, indent, quote, default, b64enc, sha256sum, printf (%s %d %v),
  trunc, trimSuffix, eq, ne, not, and, or, required, empty, toString.
Helm's root: .Values, .Release.{Name,Namespace,Service,IsInstall,IsUpgrade,Revision},
  .Chart.{Name,Version,AppVersion}.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class RenderError(Exception):
    """The chart used something outside the subset, or a template failed (as `helm` would)."""


# ---------------------------------------------------------------------------------------------
# Lexing the template into text and actions
# ---------------------------------------------------------------------------------------------

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)


@dataclass
class Text:
    text: str


@dataclass
class Action:
    code: str
    where: str


@dataclass
class Block:
    kind: str  # if | range | with | define
    code: str  # the opening action's code (after the keyword)
    where: str
    body: list[Any] = field(default_factory=list)
    # (condition code or None for plain else, body) pairs for `else if` / `else`
    branches: list[tuple[str | None, list[Any]]] = field(default_factory=list)


def _lex(src: str, name: str) -> list[Text | Action]:
    out: list[Text | Action] = []
    pos = 0
    trim_next = False
    for m in _ACTION.finditer(src):
        text = src[pos : m.start()]
        if trim_next:
            text = text.lstrip(" \t\r\n")
        if m.group(1):
            text = text.rstrip(" \t\r\n")
        if text:
            out.append(Text(text))
        code = m.group(2).strip()
        line = src.count("\n", 0, m.start()) + 1
        if not (code.startswith("/*") and code.endswith("*/")):
            out.append(Action(code, f"{name}:{line}"))
        trim_next = bool(m.group(3))
        pos = m.end()
    tail = src[pos:]
    if trim_next:
        tail = tail.lstrip(" \t\r\n")
    if tail:
        out.append(Text(tail))
    return out


def _parse(tokens: list[Text | Action]) -> tuple[list[Any], dict[str, list[Any]]]:
    """Build the node tree; returns (top-level nodes, {define name: body})."""
    defines: dict[str, list[Any]] = {}
    root: list[Any] = []
    stack: list[tuple[Block, list[Any]]] = []
    current = root
    for tok in tokens:
        if isinstance(tok, Text):
            current.append(tok)
            continue
        word, _, rest = tok.code.partition(" ")
        rest = rest.strip()
        if word in ("if", "range", "with", "define"):
            block = Block(word, rest, tok.where)
            current.append(block)
            stack.append((block, current))
            current = block.body
        elif word == "else":
            if not stack or stack[-1][0].kind == "define":
                raise RenderError(f"{tok.where}: else outside if/range/with")
            block = stack[-1][0]
            cond: str | None = None
            if rest.startswith("if "):
                cond = rest[3:].strip()
            elif rest:
                raise RenderError(f"{tok.where}: unsupported `else {rest}`")
            body: list[Any] = []
            block.branches.append((cond, body))
            current = body
        elif word == "end":
            if not stack:
                raise RenderError(f"{tok.where}: `end` without a block")
            block, current = stack.pop()
            if block.kind == "define":
                current.remove(block)
                defines[json.loads(block.code)] = block.body
        elif word in ("template", "block", "break", "continue", "tpl"):
            raise RenderError(f"{tok.where}: `{word}` is outside the supported subset")
        else:
            current.append(tok)
    if stack:
        raise RenderError(f"{stack[-1][0].where}: `{stack[-1][0].kind}` is never closed")
    return root, defines


# ---------------------------------------------------------------------------------------------
# Expressions: pipelines of commands
# ---------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>"(?:[^"\\]|\\.)*")
    | (?P<raw>`[^`]*`)
    | (?P<num>-?\d+(?:\.\d+)?)
    | (?P<decl>:=)
    | (?P<punct>[|(),=])
    | (?P<var>\$[A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)
    | (?P<field>(?:\.[A-Za-z0-9_]+)+|\.)
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.X,
)


def _tokens(code: str, where: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    code = code.strip()
    while pos < len(code):
        m = _TOKEN.match(code, pos)
        if not m or m.end() == pos:
            raise RenderError(f"{where}: cannot parse {code[pos:]!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
        while pos < len(code) and code[pos].isspace():
            pos += 1
    return out


_MISSING = object()


class _NoValue:
    """Go's `<no value>`: a missing map key. Helm turns it into the empty string on output."""

    def __bool__(self) -> bool:
        return False


NO_VALUE = _NoValue()


def _truthy(v: Any) -> bool:
    if v is None or v is NO_VALUE:
        return False
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return v != 0
    if isinstance(v, (str, list, dict, tuple)):
        return len(v) > 0
    return True


def _to_str(v: Any) -> str:
    """Go's fmt %v for the value kinds a chart meets."""
    if v is None or v is NO_VALUE:
        return "<no value>" if v is NO_VALUE else "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e21:
        return str(int(v)) if abs(v) < 1e6 else f"{v:g}".replace("e+0", "e+")
    if isinstance(v, (dict, list)):
        raise RenderError(f"printing a map or list directly ({v!r}) prints Go syntax; use toYaml")
    return str(v)


def _sprig_str(v: Any) -> str:
    """sprig's strval: nil becomes the empty string."""
    return "" if v is None or v is NO_VALUE else _to_str(v)


_GO_YAML11_BOOLS = frozenset({"y", "Y", "n", "N"})  # booleans to Go's YAML 1.1 resolver, strings to PyYAML's


class _GoYamlDumper(yaml.SafeDumper):
    """Scalar styles as Go's yaml encoder (a libyaml port, like PyYAML's emitter) picks them.

    A string that would read back as another type (`""`, `"yes"`, `"0123"`) is double-quoted; one the
    emitter can't write plain (`'*'`) is single-quoted; a multi-line one is a `|` block.
    """

    def choose_scalar_style(self) -> str:
        event = self.event
        if isinstance(event, yaml.ScalarEvent) and not event.style and event.tag == "tag:yaml.org,2002:str":
            if event.value in _GO_YAML11_BOOLS:
                return '"'
            if "\n" in event.value:
                self.analysis = self.analysis or self.analyze_scalar(event.value)
                if self.analysis.allow_block and not self.simple_key_context and not self.flow_level:
                    return "|"
                return '"'
        style = super().choose_scalar_style()
        # PyYAML alone resolves "!", "&", "*", "=" to special tags; to Go they are plain strings
        if style == "'" and isinstance(event, yaml.ScalarEvent) and not event.implicit[0] \
                and event.value not in ("!", "&", "*", "="):
            return '"'
        return style


def _to_yaml(v: Any) -> str:
    """Helm's toYaml: yaml.Marshal (sorted keys, no line folding) without the trailing newline."""
    if v is NO_VALUE:
        v = None
    out = yaml.dump(v, Dumper=_GoYamlDumper, default_flow_style=False, sort_keys=True, allow_unicode=True,
                    width=1 << 30)
    if out.endswith("\n...\n"):
        out = out[: -len("...\n")]
    return out.rstrip("\n") if out != "\n" else ""


def _indent(n: int, s: str) -> str:
    pad = " " * int(n)
    return pad + s.replace("\n", "\n" + pad)


def _printf(fmt: str, *args: Any) -> str:
    it = iter(args)

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "%%":
            return "%"
        v = next(it)
        return str(int(v)) if m.group(1) == "d" else _to_str(v)

    return re.sub(r"%([sdv])|%%", sub, fmt)


def _required(msg: str, v: Any) -> Any:
    if v is None or v is NO_VALUE or (isinstance(v, str) and v == ""):
        raise RenderError(msg)
    return v


def _go_quote(v: Any) -> str:
    return json.dumps(_sprig_str(v), ensure_ascii=False)


FUNCS: dict[str, Callable[..., Any]] = {
    "toYaml": _to_yaml,
    "nindent": lambda n, s: "\n" + _indent(n, s),
    "indent": _indent,
    "quote": lambda *vs: " ".join(_go_quote(v) for v in vs if v is not None and v is not NO_VALUE),
    "default": lambda d, *v: v[0] if v and _truthy(v[0]) else d,
    "b64enc": lambda s: base64.b64encode(_sprig_str(s).encode()).decode(),
    "sha256sum": lambda s: hashlib.sha256(_sprig_str(s).encode()).hexdigest(),
    "printf": _printf,
    "trunc": lambda n, s: s[: int(n)] if int(n) >= 0 else s[int(n) :],
    "trimSuffix": lambda suf, s: s[: -len(suf)] if suf and s.endswith(suf) else s,
    "eq": lambda a, *bs: any(a == b for b in bs),
    "ne": lambda a, b: a != b,
    "not": lambda v: not _truthy(v),
    "required": _required,
    "empty": lambda v: not _truthy(v),
    "toString": _sprig_str,
}


class _Renderer:
    def __init__(self, defines: dict[str, list[Any]], root: dict[str, Any]) -> None:
        self.defines = defines
        self.root = root
        self.depth = 0

    # -- values ---------------------------------------------------------------------------------

    def _walk(self, base: Any, path: list[str], where: str, what: str) -> Any:
        for i, key in enumerate(path):
            if base is None or base is NO_VALUE:
                raise RenderError(f"{where}: nil pointer evaluating {what}: .{'.'.join(path[: i + 1])}")
            if not isinstance(base, dict):
                raise RenderError(f"{where}: can't evaluate field {key} in {type(base).__name__}")
            base = base.get(key, NO_VALUE)
        return base

    def _operand(self, tok: tuple[str, str], dot: Any, scope: list[dict[str, Any]], where: str) -> Any:
        kind, text = tok
        if kind == "str":
            return json.loads(text)
        if kind == "raw":
            return text[1:-1]
        if kind == "num":
            return float(text) if "." in text else int(text)
        if kind == "field":
            return dot if text == "." else self._walk(dot, text[1:].split("."), where, text)
        if kind == "var":
            name, *path = text.split(".")
            for frame in reversed(scope):
                if name in frame:
                    return self._walk(frame[name], path, where, text)
            raise RenderError(f"{where}: undefined variable {name}")
        if kind == "ident" and text in ("true", "false"):
            return text == "true"
        if kind == "ident" and text == "nil":
            return None
        raise RenderError(f"{where}: unexpected {text!r}")

    def _command(self, toks: list[tuple[str, str]], dot: Any, scope: list[dict[str, Any]], where: str,
                 piped: Any = _MISSING) -> Any:
        # split into words, keeping parenthesised sub-pipelines whole
        words: list[list[tuple[str, str]]] = []
        i = 0
        while i < len(toks):
            if toks[i] == ("punct", "("):
                depth, j = 1, i + 1
                while depth:
                    if j >= len(toks):
                        raise RenderError(f"{where}: unbalanced parenthesis")
                    depth += {"(": 1, ")": -1}.get(toks[j][1], 0) if toks[j][0] == "punct" else 0
                    j += 1
                words.append(toks[i:j])
                i = j
            else:
                words.append([toks[i]])
                i += 1
        if not words:
            raise RenderError(f"{where}: empty command")

        def value(word: list[tuple[str, str]]) -> Any:
            if word[0] == ("punct", "("):
                return self._pipeline(word[1:-1], dot, scope, where)
            return self._operand(word[0], dot, scope, where)

        head = words[0]
        if len(head) == 1 and head[0][0] == "ident" and head[0][1] not in ("true", "false", "nil"):
            fname = head[0][1]
            if fname in ("and", "or"):  # Go 1.18+: short-circuit, returns the deciding operand
                args = [lambda w=w: value(w) for w in words[1:]]
                if piped is not _MISSING:
                    args.append(lambda: piped)
                v: Any = None
                for get in args:
                    v = get()
                    if _truthy(v) != (fname == "and"):
                        return v
                return v
            args = [value(w) for w in words[1:]]
            if piped is not _MISSING:
                args.append(piped)
            if fname == "include":
                return self.include(*args, where=where)
            if fname not in FUNCS:
                raise RenderError(f"{where}: function {fname!r} is outside the supported subset")
            try:
                return FUNCS[fname](*args)
            except RenderError:
                raise
            except Exception as e:  # wrong arity or types: report like helm would, with the place
                raise RenderError(f"{where}: error calling {fname}: {e}") from e
        if len(words) > 1 or piped is not _MISSING:
            raise RenderError(f"{where}: can't give arguments to a non-function")
        return value(head)

    def _pipeline(self, toks: list[tuple[str, str]], dot: Any, scope: list[dict[str, Any]], where: str) -> Any:
        cmds: list[list[tuple[str, str]]] = [[]]
        depth = 0
        for t in toks:
            if t[0] == "punct" and t[1] == "(":
                depth += 1
            elif t[0] == "punct" and t[1] == ")":
                depth -= 1
            if t == ("punct", "|") and depth == 0:
                cmds.append([])
            else:
                cmds[-1].append(t)
        v: Any = _MISSING
        for c in cmds:
            v = self._command(c, dot, scope, where, v)
        return v

    def evaluate(self, code: str, dot: Any, scope: list[dict[str, Any]], where: str) -> tuple[Any, bool]:
        """Evaluate an action; returns (value, is_declaration)."""
        toks = _tokens(code, where)
        if len(toks) >= 2 and toks[0][0] == "var" and toks[1][0] in ("decl", "punct") and toks[1][1] in (":=", "="):
            v = self._pipeline(toks[2:], dot, scope, where)
            name = toks[0][1]
            if toks[1][1] == "=":
                for frame in reversed(scope):
                    if name in frame:
                        frame[name] = v
                        break
                else:
                    raise RenderError(f"{where}: assignment to undeclared {name}")
            else:
                scope[-1][name] = v
            return v, True
        return self._pipeline(toks, dot, scope, where), False

    # -- nodes ----------------------------------------------------------------------------------

    def include(self, name: Any, dot: Any = None, *, where: str) -> str:
        if name not in self.defines:
            raise RenderError(f"{where}: no template {name!r}")
        self.depth += 1
        if self.depth > 100:
            raise RenderError(f"{where}: include recursion too deep")
        try:
            return self.nodes(self.defines[name], dot, [{"$": dot}])
        finally:
            self.depth -= 1

    def nodes(self, nodes: list[Any], dot: Any, scope: list[dict[str, Any]]) -> str:
        out: list[str] = []
        for n in nodes:
            if isinstance(n, Text):
                out.append(n.text)
            elif isinstance(n, Action):
                v, decl = self.evaluate(n.code, dot, scope, n.where)
                if not decl:
                    out.append(_to_str(v))
            else:
                out.append(self.block(n, dot, scope))
        return "".join(out)

    def block(self, b: Block, dot: Any, scope: list[dict[str, Any]]) -> str:
        if b.kind == "if":
            arms = [(b.code, b.body), *b.branches]
            for cond, body in arms:
                if cond is None or _truthy(self.evaluate(cond, dot, [*scope, {}], b.where)[0]):
                    return self.nodes(body, dot, [*scope, {}])
            return ""
        if b.kind == "with":
            frame: dict[str, Any] = {}
            v, _ = self.evaluate(b.code, dot, [*scope, frame], b.where)
            if _truthy(v):
                return self.nodes(b.body, v, [*scope, frame])
            for cond, body in b.branches:
                if cond is not None:
                    raise RenderError(f"{b.where}: `else if` inside with is outside the subset")
                return self.nodes(body, dot, [*scope, {}])
            return ""
        if b.kind == "range":
            code, names = b.code, []
            m = re.match(r"^(\$\w+)(?:\s*,\s*(\$\w+))?\s*:=\s*(.*)$", code, re.S)
            if m:
                names = [x for x in (m.group(1), m.group(2)) if x]
                code = m.group(3)
            seq, _ = self.evaluate(code, dot, scope, b.where)
            if seq is None or seq is NO_VALUE:
                items: list[tuple[Any, Any]] = []
            elif isinstance(seq, dict):
                items = sorted(seq.items())  # Go ranges over maps in key order
            elif isinstance(seq, list):
                items = list(enumerate(seq))
            elif isinstance(seq, int) and not isinstance(seq, bool):
                items = [(i, i) for i in range(seq)]
            else:
                raise RenderError(f"{b.where}: range can't iterate over {seq!r}")
            if not items:
                return "".join(self.nodes(body, dot, [*scope, {}]) for cond, body in b.branches[:1])
            out = []
            for k, v in items:
                frame = {}
                if len(names) == 1:
                    frame[names[0]] = v
                elif len(names) == 2:
                    frame[names[0]], frame[names[1]] = k, v
                out.append(self.nodes(b.body, v, [*scope, frame]))
            return "".join(out)
        raise RenderError(f"{b.where}: unexpected block {b.kind}")


# ---------------------------------------------------------------------------------------------
# The chart
# ---------------------------------------------------------------------------------------------


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Helm's coalescing of user values over the chart's: maps merge, anything else replaces; null
    deletes a key the chart has (and stays null where the chart has none)."""
    out = dict(base)
    for k, v in over.items():
        if v is None and k in base:
            out.pop(k)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def render_chart(chart_dir: str | Path, values: dict[str, Any] | None = None, *, name: str = "release",
                 namespace: str = "default") -> dict[str, str]:
    """Render like `helm template NAME CHART -n NAMESPACE -f values`: {template path: text}.

    Partials (`_*.tpl`) are not output; NOTES.txt is included under its own path.
    """
    chart_dir = Path(chart_dir)
    meta = yaml.safe_load((chart_dir / "Chart.yaml").read_text())
    defaults = yaml.safe_load((chart_dir / "values.yaml").read_text()) or {}
    root = {
        "Values": deep_merge(defaults, values or {}),
        "Release": {"Name": name, "Namespace": namespace, "Service": "Helm", "IsInstall": True,
                    "IsUpgrade": False, "Revision": 1},
        "Chart": {"Name": meta["name"], "Version": meta["version"], "AppVersion": meta.get("appVersion", "")},
    }
    templates = sorted(p for p in (chart_dir / "templates").iterdir() if p.is_file())
    defines: dict[str, list[Any]] = {}
    trees: dict[str, list[Any]] = {}
    for p in templates:
        rel = f"{meta['name']}/templates/{p.name}"
        tree, defs = _parse(_lex(p.read_text(), rel))
        defines.update(defs)
        trees[rel] = tree
    r = _Renderer(defines, root)
    out: dict[str, str] = {}
    for rel, tree in trees.items():
        if Path(rel).name.startswith("_"):
            continue
        out[rel] = r.nodes(tree, root, [{"$": root}]).replace("<no value>", "")
    return out


def manifests(rendered: dict[str, str]) -> list[dict[str, Any]]:
    """Every non-empty YAML document of the rendered templates (NOTES.txt excluded)."""
    docs: list[dict[str, Any]] = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                docs.append(doc)
    return docs


def main(argv: list[str] | None = None) -> int:
    """`python tests/helm_render.py CHART [-f values.yaml]... [--name N] [--namespace NS]`: like `helm template`."""
    import argparse
    import sys

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("chart")
    p.add_argument("-f", "--values", action="append", default=[])
    p.add_argument("--name", default="migrate-bot")
    p.add_argument("-n", "--namespace", default="default")
    args = p.parse_args(argv)
    values: dict[str, Any] = {}
    for path in args.values:
        values = deep_merge(values, yaml.safe_load(Path(path).read_text()) or {})
    try:
        rendered = render_chart(args.chart, values, name=args.name, namespace=args.namespace)
    except RenderError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    for path, text in sorted(rendered.items()):
        if not path.endswith("NOTES.txt") and text.strip():
            print(f"---\n# Source: {path}\n{text.strip()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
