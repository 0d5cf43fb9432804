"""`migrate-bot demo` with MIGRATE_PROVIDERS=alibaba: the real SDKs against the OpenAPI emulator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.openapi_emulator import TEST_ACCESS_KEY_ID, TEST_ACCESS_KEY_SECRET, Emulator
from tests.test_cli import DEMO_END


def test_demo_completes_through_the_real_sdks(redis_url: str, tmp_path: Path) -> None:
    with Emulator() as emu:
        config = {"alibaba": {"region": "cn-hangzhou", "protocol": "http",
                              "endpoints": {p: emu.endpoint for p in ("mse", "slb", "dns")},
                              "access_key_id": TEST_ACCESS_KEY_ID, "access_key_secret": TEST_ACCESS_KEY_SECRET}}
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        env = {**os.environ, "REDIS_URL": redis_url, "MIGRATE_PROVIDERS": "alibaba", "MIGRATE_CONFIG": str(path)}
        done = subprocess.run([sys.executable, "-m", "bot.cli", "demo"], env=env, capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        assert done.stdout.strip().splitlines()[-1].endswith(DEMO_END)
        assert emu.calls["SetVServerGroupAttribute"] > 0 and emu.calls["AddServiceSource"] == 1
        assert TEST_ACCESS_KEY_SECRET not in done.stdout + done.stderr
