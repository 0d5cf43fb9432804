"""The full route-check report as a file in the migration's thread, over real HTTP.

`serve` runs as a process against a simulated cluster with 30 Ingresses carrying an annotation
MSE ignores, so the report is longer than the code block a thread reply could hold. Slack's
upload flow (getUploadURLExternal, POST the bytes, completeUploadExternal) is answered by the
stand-in; when the app lacks `files:write`, the report falls back to a truncated code block.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
import yaml

from bot.publish import MAX_SNIPPET
from tests import bot_server
from tests.bot_server import running_bot
from tests.slack_standin import BOT_TOKEN, SlackSender, SlackStandIn, Upload
from tests.test_bot_http import ALICE, CHANNEL, Bot, shown

NOISY = 30
UNSUPPORTED = "nginx.ingress.kubernetes.io/auth-tls-verify-client"


def noisy_seed(path: Path) -> Path:
    """The shipped demo world plus NOISY Ingresses whose annotation MSE does not read."""
    seed = yaml.safe_load(resources.files("providers.sim").joinpath("seed.yaml").read_text())
    seed["clusters"]["demo-cluster"]["ingresses"] += [
        {"namespace": "legacy", "name": f"app-{n:02d}", "ingress_class": "nginx", "annotations": {UNSUPPORTED: "on"},
         "rules": [{"host": f"app-{n:02d}.example.com", "paths": [{"path": "/", "pathType": "Prefix"}]}]}
        for n in range(1, NOISY + 1)
    ]
    path.write_text(yaml.safe_dump(seed))
    return path


@pytest.fixture
def bot(slack: SlackStandIn, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bot]:
    seed = noisy_seed(tmp_path / "seed.yaml")
    monkeypatch.setattr(bot_server, "CONFIG", bot_server.CONFIG + f"sim:\n  seed: '{seed}'\n")
    with running_bot(slack, redis_url, tmp_path) as url:
        yield Bot(url, slack, SlackSender(url, slack))


def run_check(bot: Bot) -> dict[str, str]:
    """Alice starts a migration and checks its routes; the card, as she sees it afterwards."""
    bot.command(ALICE, "start cluster=demo-cluster gateway=gw-demo")
    card = bot.card_says("*Phase:* listening")
    bot.command(ALICE, "check")
    bot.thread_says(f"{NOISY} blocking")
    return card


def test_check_uploads_the_full_report_into_the_thread(bot: Bot) -> None:
    card = run_check(bot)
    files: list[Upload] = bot.slack.wait_for(lambda: bot.slack.uploaded_files(card["ts"]), "the report file")
    assert [(f.filename, f.title, f.channel_id) for f in files] == [("route-check.txt", "route-check.txt", CHANNEL)]
    report = files[0].text
    assert len(report) > MAX_SNIPPET, "the file holds more than a code block in the thread could"
    assert report.startswith("Route check:") and f"{NOISY} blocking" in report
    for n in range(1, NOISY + 1):
        assert f"BLOCKING legacy/app-{n:02d} {UNSUPPORTED}=\"on\" [unsupported]" in report

    shared = bot.thread_says("Full report attached: route-check.txt")
    assert [f["id"] for f in shared.get("files", [])] == [files[0].file_id]
    summary = bot.thread_says("Route check:")
    assert "BLOCKING legacy/app-01" in summary["text"] and f"and {NOISY - 10} more blocking findings" in summary["text"]
    assert not any("```" in m["text"] for m in bot.thread()), "no truncated copy when the file went up"
    assert "*Phase:* listening" in shown(bot.card()), "blocking findings keep the migration where it is"


def test_a_refused_upload_falls_back_to_a_truncated_block(bot: Bot, tmp_path: Path) -> None:
    bot.slack.refuse("files.getUploadURLExternal", "missing_scope", needed="files:write",
                     provided="commands,chat:write,usergroups:read")
    run_check(bot)
    block = bot.thread_says("*route-check.txt*")
    assert "```Route check:" in block["text"] and "more characters)" in block["text"]
    assert "legacy/app-01" in block["text"] and f"legacy/app-{NOISY:02d}" not in block["text"]
    assert bot.slack.uploaded_files() == []
    log = (tmp_path / "serve.log").read_text()
    assert "missing_scope" in log and BOT_TOKEN not in log
