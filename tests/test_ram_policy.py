"""What the bot is granted matches what it uses: the RAM policy in docs/ram-policy.json grants exactly
the OpenAPI actions the adapters call (one missing breaks a migration halfway on a real account, one
extra grants more than needed), and the Slack scopes read the same everywhere."""

from __future__ import annotations

import json
import re
from pathlib import Path

from providers.alibaba.slb import SET_LISTENER

ROOT = Path(__file__).resolve().parents[1]
#: RAM's service prefix for each product the adapters name in `call("product.Action", ...)`.
RAM_PREFIX = {"mse": "mse", "slb": "slb", "dns": "alidns"}


def called() -> set[str]:
    found = set()
    for source in (ROOT / "providers" / "alibaba").glob("*.py"):
        for product, action in re.findall(r'call\("(mse|slb|dns)\.([A-Za-z]+)', source.read_text()):
            found.add(f"{RAM_PREFIX[product]}:{action}")
    found |= {f"slb:{action}" for action, _method, _model in SET_LISTENER.values()}  # call(f"slb.{action}")
    return found


def test_the_ram_policy_grants_exactly_what_the_code_calls() -> None:
    policy = json.loads((ROOT / "docs" / "ram-policy.json").read_text())
    granted = {a for statement in policy["Statement"] if statement["Effect"] == "Allow" for a in statement["Action"]}
    assert granted == called()
    assert {"slb:TagResources", "slb:UntagResources", "slb:DescribeHealthStatus", "mse:AddGatewaySlb"} <= granted


def test_the_slack_scopes_agree_everywhere() -> None:
    import yaml

    scopes = set(yaml.safe_load((ROOT / "slack-manifest.yaml").read_text())["oauth_config"]["scopes"]["bot"])
    assert scopes == {"commands", "chat:write", "files:write", "usergroups:read"}
    for doc in ("README.md", "docs/slack.md", "docs/deploy.md"):
        text = (ROOT / doc).read_text()
        assert all(f"`{scope}`" in text for scope in scopes), doc
