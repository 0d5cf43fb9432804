"""`migrate-bot console`: the same `/migrate ...` lines as Slack, answered as text.

Reads a line at a time from a terminal or a pipe; `switch-user NAME` acts as someone else
(for approvals). Every answer is what the channel would show, with the status in brief.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import TextIO

from commands.engine import Engine
from commands.outcome import Outcome, Request
from commands.render import weights_line

PROMPT = "migrate> "


def render(outcome: Outcome) -> str:
    """The text Slack would show: the answer, then phase and traffic for thread replies."""
    lines = [("✖ " if not outcome.ok else "") + outcome.text]
    m = outcome.migration
    if m is not None and not outcome.ephemeral and outcome.verb not in {"status", "history"}:
        lines.append(f"   [{m.phase.value}] {weights_line(m)}")
    return "\n".join(lines)


def save(name: str, content: str) -> Path:
    """An attachment (the full route-check report) as a file the person at the console can open."""
    folder = Path(tempfile.gettempdir()) / "migrate-console"
    folder.mkdir(exist_ok=True)
    path = folder / Path(name).name
    path.write_text(content, encoding="utf-8")
    return path


def run(engine: Engine, *, user: str, channel: str = "console", stdin: TextIO = sys.stdin,
        stdout: TextIO = sys.stdout) -> int:
    interactive = stdin.isatty()
    if interactive:
        try:  # line editing and history at the prompt (the standard library's readline, where it exists)
            import readline  # noqa: F401
        except ImportError:
            pass
    counter = 0
    while True:
        if interactive:
            stdout.write(f"{user}@{PROMPT}")
            stdout.flush()
        line = stdin.readline()
        if not line:
            return 0
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if text in {"quit", "exit"}:
            return 0
        if text.startswith("switch-user"):
            parts = text.split()
            if len(parts) != 2:
                stdout.write("✖ Say `switch-user NAME`.\n")
            else:
                user = parts[1]
                stdout.write(f"Now acting as {user}.\n")
            continue
        counter += 1
        outcome = engine.handle(Request(text=text, user=user, channel=channel))
        stdout.write(render(outcome) + "\n")
        for name, content in outcome.files.items():  # what Slack would get as an uploaded file
            stdout.write(f"   {name} saved to {save(name, content)}\n")
        stdout.flush()
