"""The docs' commands work on any machine: no absolute path from the machine they were written on."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Absolute paths into a developer's machine; /tmp and /etc inside example commands are fine.
MACHINE_PATH = re.compile(r"(?<![\w.])/(?:work|root|home|Users)/[\w.-]+")


def test_no_doc_names_a_path_on_the_machine_it_was_written_on() -> None:
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "bench" / "README.md"]
    found = {str(p.relative_to(ROOT)): MACHINE_PATH.findall(p.read_text()) for p in docs}
    assert {k: v for k, v in found.items() if v} == {}
