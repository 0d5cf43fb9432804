"""The RAM policy in docs/ram-policy.json grants exactly the OpenAPI actions the adapters call:
one missing breaks a migration halfway on a real account, one extra grants more than needed."""

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
