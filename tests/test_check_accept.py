"""`check accept=F3,F7`: an approver waives exactly the findings named, and nothing that shows up later."""

from __future__ import annotations

import re

from commands.phases import Phase
from providers.sim.world import SimWorld
from tests.engine_helpers import make_harness

N = "nginx.ingress.kubernetes.io/"


def blocked(redis_url: str, **annotations: str):  # type: ignore[no-untyped-def]
    """The demo world with blocking annotations on api/public-api; alice has started and checked."""
    h = make_harness(redis_url)
    with h.world.state._mutate() as data:
        data["clusters"]["demo-cluster"]["ingresses"][1]["annotations"].update(
            {N + k.replace("_", "-"): v for k, v in annotations.items()})
    h.ok("alice", "/migrate start cluster=demo-cluster gateway=gw-demo")
    return h, h.ok("alice", "/migrate check")


def ids_of(h) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {o["what"].split()[-1]: o["id"] for o in h.migration().check["open"]}


def test_accepting_some_findings_asks_for_exactly_those(redis_url: str) -> None:
    h, checked = blocked(redis_url, auth_tls_verify_client="on", limit_rps="5", configuration_snippet="return 403;")
    ids = ids_of(h)
    assert set(ids) == {"auth-tls-verify-client", "limit-rps", "configuration-snippet"}
    assert f"accept={ids['configuration-snippet']}," in checked.text, "the reply suggests ids to accept"
    asked = h.ok("alice", f"/migrate check accept={ids['limit-rps']},{ids['auth-tls-verify-client']}")
    a = asked.approval
    assert a is not None and a.verb == "accept"
    assert a.args["findings"] == [ids["limit-rps"], ids["auth-tls-verify-client"]]
    assert a.summary.startswith(f"accept 2 blocking route-check findings: {ids['limit-rps']} (api/public-api "
                                "limit-rps)")
    assert a.summary.endswith("; 1 other blocking finding stays open")
    done = h.ok("bob", "/migrate approve")
    assert h.migration().phase is Phase.LISTENING, "one blocking finding is still open"
    assert f"Still blocking: {ids['configuration-snippet']}" in done.text
    h.ok("alice", f"/migrate check accept={ids['configuration-snippet']}")
    h.ok("bob", "/migrate approve")
    assert h.migration().phase is Phase.CHECKED


def test_accept_all_says_how_many_it_waives(redis_url: str) -> None:
    h, _ = blocked(redis_url, auth_tls_verify_client="on", limit_rps="5")
    asked = h.ok("alice", "/migrate check accept=all")
    assert asked.approval is not None and asked.approval.summary.startswith(
        "accept ALL 2 open blocking route-check findings, and move on to step 3: ")
    h.ok("bob", "/migrate approve")
    assert h.migration().phase is Phase.CHECKED and h.migration().check["accepted_by"] == ["bob"]


def test_a_new_blocking_finding_is_not_covered_by_an_earlier_acceptance(redis_url: str) -> None:
    h, _ = blocked(redis_url, auth_tls_verify_client="on")
    first = ids_of(h)["auth-tls-verify-client"]
    h.ok("alice", "/migrate check accept=all")
    h.ok("bob", "/migrate approve")
    again = h.ok("alice", "/migrate check")
    assert h.migration().phase is Phase.CHECKED, "the same finding stays accepted"
    assert "1 of 1 blocking findings were accepted earlier (bob); none is new." in again.text
    with h.world.state._mutate() as data:
        data["clusters"]["demo-cluster"]["ingresses"][1]["annotations"][N + "limit-connections"] = "10"
    later = h.ok("alice", "/migrate check")
    assert h.migration().phase is Phase.LISTENING
    new = ids_of(h)["limit-connections"]
    assert ids_of(h)["auth-tls-verify-client"] == first, "ids stay the same across checks"
    assert f"1 of 2 blocking findings were accepted earlier (bob); not covered: {new}." in later.text
    asked = h.ok("alice", "/migrate check accept=all")
    assert asked.approval is not None and asked.approval.args["findings"] == [new], "only what is not yet accepted"


def test_unknown_or_malformed_ids_are_refused_with_the_open_ones(redis_url: str) -> None:
    h, _ = blocked(redis_url, auth_tls_verify_client="on")
    open_id = ids_of(h)["auth-tls-verify-client"]
    refused = h.say("alice", "/migrate check accept=F99")
    assert not refused.ok and f"F99 is not an open blocking finding of the last check (open: {open_id})" in \
        refused.text
    assert not h.say("alice", "/migrate check accept=everything").ok


def test_nothing_to_accept_without_blocking_findings(redis_url: str) -> None:
    h = make_harness(redis_url)
    h.ok("alice", "/migrate start cluster=demo-cluster gateway=gw-demo")
    h.ok("alice", "/migrate check")
    out = h.say("alice", "/migrate check accept=all")
    assert not out.ok and "Nothing to accept" in out.text


def test_the_configured_controller_configmap_is_the_one_read(redis_url: str) -> None:
    world = SimWorld.from_seed(controller_configmap="ops/nginx-global")
    with world.state._mutate() as data:
        cluster = data["clusters"]["demo-cluster"]
        cluster["deployments"] = {}  # RBAC allows that one ConfigMap only: no Deployment to look at
        cluster["config_maps"] = {"ops/nginx-global": {"http-snippet": "geo $bad { default 0; }"}}
    h = make_harness(redis_url, world=world)
    h.ok("alice", "/migrate start cluster=demo-cluster gateway=gw-demo")
    out = h.ok("alice", "/migrate check")
    assert "• F1 ConfigMap ops/nginx-global `http-snippet`: Raw NGINX configuration in the http block" in out.text
    assert h.migration().phase is Phase.LISTENING
    assert "How it was found: named in the configuration." in out.files["route-check.md"]


def report_ids(text: str) -> dict[tuple[str, str], str]:
    """(section, key) -> id of every finding in the Markdown report, warnings and info included."""
    out: dict[tuple[str, str], str] = {}
    section = ""
    for line in text.splitlines():
        if line.startswith("## "):
            section = line
        elif m := re.match(r"- \*\*(F\d+) (?:blocking|warning|info)\*\* `([^`]+)`", line):
            out[(section, m.group(2))] = m.group(1)
    return out


def test_every_finding_keeps_its_id_across_checks_and_numbers_do_not_grow(redis_url: str) -> None:
    """Warnings and info too: hsts stays F2 on a re-run, and only a new finding takes a new number."""
    h, first = blocked(redis_url, load_balance="ewma", auth_tls_verify_client="on")
    ids = report_ids(first.files["route-check.md"])
    assert len(ids) >= 6 and any(k[1] == "hsts" for k in ids), "warnings and info are numbered too"
    again = report_ids(h.ok("alice", "/migrate check").files["route-check.md"])
    assert again == ids, "a re-run renumbers nothing"
    with h.world.state._mutate() as data:
        data["clusters"]["demo-cluster"]["ingresses"][0]["annotations"][N + "proxy-buffering"] = "on"
    later = report_ids(h.ok("alice", "/migrate check").files["route-check.md"])
    new = {k: v for k, v in later.items() if k not in ids}
    assert [k[1] for k in new] == [N + "proxy-buffering"]
    assert {k: v for k, v in later.items() if k in ids} == ids
    top = max(int(v[1:]) for v in ids.values())
    assert list(new.values()) == [f"F{top + 1}"]
