"""The full route-check report as a file in the migration's thread, over real HTTP.

`serve` runs as a process against a simulated cluster with Ingresses carrying an annotation MSE
ignores (30 by default, 10 for the "fits on a phone" check), so the report is longer than the code
block a thread reply could hold. Slack's upload flow (getUploadURLExternal, POST the bytes,
completeUploadExternal) is answered by the stand-in; when the app lacks `files:write`, the report
falls back to a truncated code block.
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


def noisy_seed(path: Path, noisy: int = NOISY, *, snippet: str = "", hostile: bool = False) -> Path:
    """The shipped demo world plus `noisy` Ingresses whose annotation MSE does not read (and, with
    `snippet`, a global server snippet in the controller's ConfigMap; with `hostile`, cluster text
    shaped like Slack mentions, on a route the gateway lacks)."""
    seed = yaml.safe_load(resources.files("providers.sim").joinpath("seed.yaml").read_text())
    if hostile:
        rules = [{"host": "up.example.com", "paths": [{"path": "/UPLOADS2024", "pathType": "Prefix"}]}]
        seed["clusters"]["demo-cluster"]["ingresses"][:0] = [
            {"namespace": "legacy", "name": "uploads", "ingress_class": "nginx", "rules": rules},
            {"namespace": "legacy", "name": "uploads-beta", "ingress_class": "nginx", "rules": rules,
             "annotations": {"nginx.ingress.kubernetes.io/canary": "true",
                             "nginx.ingress.kubernetes.io/canary-by-header-value": "<!channel>(?=x)"}}]
        seed["gateways"]["gw-demo"]["missing_routes"] = ["up.example.com/UPLOADS2024"]
    if snippet:
        seed["clusters"]["demo-cluster"]["config_maps"]["ingress-nginx/ingress-nginx-controller"]["server-snippet"] = \
            snippet
    seed["clusters"]["demo-cluster"]["ingresses"] += [
        {"namespace": "legacy", "name": f"app-{n:02d}", "ingress_class": "nginx", "annotations": {UNSUPPORTED: "on"},
         "rules": [{"host": f"app-{n:02d}.example.com", "paths": [{"path": "/", "pathType": "Prefix"}]}]}
        for n in range(1, noisy + 1)
    ]
    path.write_text(yaml.safe_dump(seed))
    return path


@pytest.fixture
def bot(slack: SlackStandIn, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        request: pytest.FixtureRequest) -> Iterator[Bot]:
    param = getattr(request, "param", {})
    seed = noisy_seed(tmp_path / "seed.yaml", param.get("noisy", NOISY), snippet=param.get("snippet", ""),
                      hostile=param.get("hostile", False))
    monkeypatch.setattr(bot_server, "CONFIG", bot_server.CONFIG + f"sim:\n  seed: '{seed}'\n")
    with running_bot(slack, redis_url, tmp_path) as url:
        yield Bot(url, slack, SlackSender(url, slack))


def run_check(bot: Bot, noisy: int = NOISY) -> dict[str, str]:
    """Alice starts a migration and checks its routes; the card, as she sees it afterwards."""
    bot.command(ALICE, "start cluster=demo-cluster gateway=gw-demo")
    card = bot.card_says("*Phase:* listening")
    bot.command(ALICE, "check")
    bot.thread_says(f"{noisy} blocking")
    return card


def test_check_uploads_the_full_report_into_the_thread(bot: Bot) -> None:
    card = run_check(bot)
    files: list[Upload] = bot.slack.wait_for(lambda: bot.slack.uploaded_files(card["ts"]), "the report file")
    assert [(f.filename, f.title, f.channel_id) for f in files] == [("route-check.md", "route-check.md", CHANNEL)]
    report = files[0].text
    assert len(report) > MAX_SNIPPET, "the file holds more than a code block in the thread could"
    assert report.startswith("# Route check") and f"{NOISY} blocking" in report
    for n in range(1, NOISY + 1):
        section = report.split(f"## Ingress `legacy/app-{n:02d}`")[1].split("\n## ")[0]
        assert f"blocking** `{UNSUPPORTED}` = `on` (unsupported)" in section and "Source: No parser" in section
    assert "## Test before switching" in report and "--resolve app-01.example.com:80:" in report

    shared = bot.thread_says("Full report attached: route-check.md")
    assert [f["id"] for f in shared.get("files", [])] == [files[0].file_id]
    summary = bot.thread_says("Route check:")
    assert len(summary["text"].splitlines()) <= 10
    assert "legacy/app-01" in summary["text"] and f"and {NOISY - 3} more blocking" in summary["text"]
    assert "curl -sS" not in summary["text"], "the curl lines are in the file"
    assert not any("```" in m["text"] for m in bot.thread()), "no truncated copy when the file went up"
    assert "*Phase:* listening" in shown(bot.card()), "blocking findings keep the migration where it is"


@pytest.mark.parametrize("bot", [{"noisy": 10}], indirect=True)
def test_ten_blocking_findings_post_ten_lines_at_most_and_a_file(bot: Bot) -> None:
    card = run_check(bot, 10)
    bot.slack.wait_for(lambda: bot.slack.uploaded_files(card["ts"]), "the report file")
    bot.thread_says("Full report attached: route-check.md")
    said = [m["text"] for m in bot.thread() if "Route check" in m["text"] or "route-check.md" in m["text"]]
    summary = next(t for t in said if t.startswith("Route check:"))
    assert len(summary.splitlines()) <= 10, summary
    assert summary.splitlines()[0] == "Route check: 14 Ingresses: 10 blocking, 4 warnings, 3 info."
    assert sum(line.startswith("• ") for line in summary.splitlines()) == 3
    assert "accept=F" in summary and "`accept=all`" in summary
    assert said == [summary, "Full report attached: route-check.md"], "the reply and the file, nothing more"


@pytest.mark.parametrize("bot", [{"snippet": "set $x \"<!channel> & <@U0BOSS>\";\n# ```done```"}], indirect=True)
def test_a_refused_upload_falls_back_to_a_truncated_block(bot: Bot, tmp_path: Path) -> None:
    bot.slack.refuse("files.getUploadURLExternal", "missing_scope", needed="files:write",
                     provided="commands,chat:write,usergroups:read")
    run_check(bot, NOISY + 1)
    block = bot.thread_says("*route-check.md*")
    assert "```# Route check" in block["text"] and "more characters)" in block["text"]
    assert "&lt;!channel&gt; &amp; &lt;@U0BOSS&gt;" in block["text"] and "<!channel>" not in block["text"]
    assert block["text"].count("```") == 2, "the snippet's own fences cannot end the code block"
    assert "legacy/app-01" in block["text"] and f"## Ingress `legacy/app-{NOISY:02d}`" not in block["text"]
    assert bot.slack.uploaded_files() == []
    log = (tmp_path / "serve.log").read_text()
    assert "missing_scope" in log and BOT_TOKEN not in log


@pytest.mark.parametrize("bot", [{"noisy": 1, "hostile": True}], indirect=True)
def test_cluster_text_never_becomes_a_mention_in_the_thread(bot: Bot) -> None:
    """A path `/UPLOADS2024` looks like a Slack user id and a header value holds `<!channel>`: the
    reply shows both as plain text, while the people the bot names itself stay mentions."""
    bot.command(ALICE, "start cluster=demo-cluster gateway=gw-demo")
    bot.thread_says("started by <@U0ALICE01>")
    bot.command(ALICE, "check")
    reply = bot.thread_says("Route check:")["text"]
    assert "missing routes: up.example.com/UPLOADS2024" in reply
    assert "compares the header with &lt;!channel&gt;(?=x) exactly" in reply
    said = "\n".join(m["text"] for m in bot.thread())
    assert "<@UPLOADS2024>" not in said and "<!channel>" not in said
