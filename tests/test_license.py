"""The package declares its licence the current way (PEP 639) and ships the licence text."""

from __future__ import annotations

import shutil
import subprocess
import sys
from email.parser import Parser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_licence_file_is_the_apache_2_0_text() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License\n                           Version 2.0, January 2004")
    assert "END OF TERMS AND CONDITIONS" in text
    assert "APPENDIX: How to apply the Apache License to your work." in text


def test_built_metadata_has_an_spdx_licence_expression_and_no_deprecation(tmp_path: Path) -> None:
    # the build backend's own metadata step, on a copy (so no egg-info lands in the checkout)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "out").mkdir()
    build = subprocess.run(
        [sys.executable, "-W", "always", "-c",
         "from setuptools import build_meta; print(build_meta.prepare_metadata_for_build_wheel('out'))"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True)
    assert "deprecat" not in (build.stdout + build.stderr).lower(), build.stderr
    dist_info = tmp_path / "out" / build.stdout.strip().splitlines()[-1]
    metadata = Parser().parsestr((dist_info / "METADATA").read_text())
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert metadata["License"] is None  # the deprecated free-text field
    assert (dist_info / "licenses" / "LICENSE").read_text() == (ROOT / "LICENSE").read_text()
