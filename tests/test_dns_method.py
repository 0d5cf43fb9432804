"""The DNS method on a realistic zone (issue 12), judged on what the simulated DNS holds and serves.

The default seed's example.com has the apex and www on NGINX's two addresses, an AAAA that is not
NGINX's, TXT (SPF), MX, CAA and a CNAME host, all at TTL 600; app.example.org is hosted at another
provider. Every test reads the world back (records, flags, TTLs, what a resolver gets), never the
bot's record alone.
"""

from __future__ import annotations

import json
from typing import Any

from bot.blocks import status_blocks
from bot.home import home_view
from bot.keys import BotKeys
from bot.timed import TimedWork
from commands.phases import Phase
from commands.policy import Policy
from providers.sim.world import SimWorld
from tests.engine_helpers import Harness, make_harness

GW, MSE_IP = "gw-demo", "47.100.0.20"
NGINX_IPS = {"47.100.0.10", "47.100.0.11"}
HOSTED = ["shop.example.com", "api.example.com", "example.com", "www.example.com"]


def _to_method(h: Harness, method: str = "/migrate method dns") -> Any:
    h.ok("alice", "/migrate start cluster=demo-cluster gateway=gw-demo")
    h.ok("alice", "/migrate check")
    return h.say("alice", method)


def _approve(h: Harness, *lines: str) -> Any:
    out = None
    for line in lines:
        h.ok("alice", line)
        out = h.ok("bob", "/migrate approve")
    return out


def switched_at(redis_url: str, weight: int | None = None) -> tuple[SimWorld, Harness]:
    """A DNS migration on the seed, switched, and (given `weight`) shifted to it; no dwell."""
    world = SimWorld.from_seed()
    h = make_harness(redis_url, world=world, dwell_seconds=0)
    _to_method(h)
    h.ok("alice", "/migrate switch")
    if weight is not None:
        h.ok("alice", f"/migrate weight {weight}")
    return world, h


def verified_at(redis_url: str, weight: int) -> tuple[SimWorld, Harness]:
    """A DNS migration switched, at `weight`, MSE's records seen, and verification approved."""
    world, h = switched_at(redis_url, weight)
    _mse_side_seen(world)
    _approve(h, "/migrate verify")
    return world, h


def _records(world: SimWorld) -> dict[str, dict[str, Any]]:
    return world.raw()["dns"]["records"]  # type: ignore[no-any-return]


def _untouchable(world: SimWorld) -> str:
    """Every record that is neither NGINX's A record nor MSE's, byte for byte."""
    keep = {rid: r for rid, r in _records(world).items()
            if not (r["type"] == "A" and r.get("line", "default") == "default" and r["value"] in NGINX_IPS | {MSE_IP})}
    assert any(r["type"] != "A" for r in keep.values())
    return json.dumps(keep, sort_keys=True)


def _by(world: SimWorld, domain: str, value: str, type: str = "A") -> dict[str, Any]:
    return next(r for r in _records(world).values() if r["domain"] == domain and r["value"] == value
                and r["type"] == type)


def _mse_side_seen(world: SimWorld) -> None:
    """The team creates MSE's record at the other provider (a resolver then returns it)."""
    with world.state._mutate() as data:
        data["dns"]["elsewhere"]["app.example.org"] = sorted(NGINX_IPS | {MSE_IP})


def _nginx_side_gone(world: SimWorld) -> None:
    """After the cutover the team disables NGINX's records at the other provider too."""
    with world.state._mutate() as data:
        data["dns"]["elsewhere"]["app.example.org"] = [MSE_IP]


def _rolled_back_one_ttl_ago(h: Harness) -> None:
    """Abort waits until no resolver can hold MSE's address: rollback, then one TTL (600 s)."""
    h.ok("bob", "/migrate rollback")
    h.clock.advance(600)


# ---- 1. only NGINX's address records ------------------------------------------------------------


def test_a_whole_migration_leaves_every_other_record_byte_identical(redis_url: str) -> None:
    world = SimWorld.from_seed()
    with world.state._mutate() as data:  # NGINX's address on another line: not the chosen line's
        data["dns"]["records"]["rec-tel"] = {"id": "rec-tel", "domain": "www.example.com", "type": "A",
                                             "value": "47.100.0.10", "weight": 1, "enabled": True, "ttl": 600,
                                             "line": "telecom"}
        # a TXT that holds NGINX's address as text (an origin hint for a monitor): not an address record
        data["dns"]["records"]["rec-hint"] = {"id": "rec-hint", "domain": "www.example.com", "type": "TXT",
                                              "value": "47.100.0.10", "weight": 1, "enabled": True, "ttl": 600,
                                              "line": "default"}
    start = _untouchable(world)
    h = make_harness(redis_url, world=world, dwell_seconds=0)
    assert _to_method(h).ok
    h.ok("alice", "/migrate switch")
    h.ok("alice", "/migrate weight 50")
    assert _untouchable(world) == start
    h.clock.advance(600)  # one TTL of the records changed
    h.ok("alice", "/migrate weight 90%")
    _mse_side_seen(world)
    _approve(h, "/migrate verify", "/migrate cutover")
    _nginx_side_gone(world)
    _approve(h, "/migrate complete")
    assert h.migration().phase is Phase.COMPLETED
    assert _untouchable(world) == start  # TXT, MX, CAA, AAAA, the CNAME host, the telecom line: as found
    for host in HOSTED:
        assert world.resolver.addresses(domain=host) == [MSE_IP]
    assert not _by(world, "example.com", "47.100.0.11")["enabled"]


def test_line_names_the_records_that_move(redis_url: str) -> None:
    world = SimWorld.from_seed()
    with world.state._mutate() as data:
        for rid, value in (("rec-t1", "47.100.0.10"), ("rec-t2", "47.100.0.11")):
            data["dns"]["records"][rid] = {"id": rid, "domain": "www.example.com", "type": "A", "value": value,
                                           "weight": 1, "enabled": True, "ttl": 600, "line": "telecom"}
    default_line = {rid: r for rid, r in _records(world).items() if r.get("line", "default") == "default"}
    h = make_harness(redis_url, world=world, dwell_seconds=0)
    out = _to_method(h, "/migrate method dns domains=www.example.com partial=yes line=telecom")
    assert out.ok, out.text
    h.ok("alice", "/migrate switch")
    h.ok("alice", "/migrate weight 100")
    after = _records(world)
    assert {rid: r for rid, r in after.items() if rid in default_line} == default_line
    mse = [r for r in after.values() if r["value"] == MSE_IP]
    assert [(r["line"], r["weight"], r["enabled"]) for r in mse] == [("telecom", 100, True)]
    assert [after["rec-t1"]["weight"], after["rec-t2"]["weight"]] == [50, 50]


def test_a_name_on_nginx_by_cname_is_refused_with_the_reason(redis_url: str) -> None:
    world = SimWorld.from_seed()
    with world.state._mutate() as data:
        data["dns"]["records"] = {k: v for k, v in data["dns"]["records"].items() if v["domain"] != "api.example.com"}
        data["dns"]["records"]["rec-c"] = {"id": "rec-c", "domain": "api.example.com", "type": "CNAME",
                                           "value": "nginx.lb.example.net", "weight": 1, "enabled": True, "ttl": 600,
                                           "line": "default"}
    h = make_harness(redis_url, world=world)
    out = _to_method(h, "/migrate method dns nginx=47.100.0.10,47.100.0.11,nginx.lb.example.net")
    assert not out.ok
    assert "api.example.com points at NGINX with CNAME records" in out.text and "keeps a CNAME" in out.text
    assert h.migration().phase is Phase.CHECKED


# ---- 2. hosts from the Ingresses ------------------------------------------------------------------


def test_without_domains_the_ingress_hosts_move_grouped_by_zone(redis_url: str) -> None:
    h = make_harness(redis_url)
    out = _to_method(h)
    assert out.ok, out.text
    assert "Zone `example.com` (Alibaba Cloud DNS): shop.example.com, api.example.com, example.com, " \
           "www.example.com" in out.text
    assert "• example.com: NGINX A 47.100.0.10, A 47.100.0.11 (TTL 600s); left alone: AAAA 2408:4005:3ff:1::10, " \
           "TXT v=spf1" in out.text
    assert "• app.example.org: NOT hosted in Alibaba Cloud DNS" in out.text
    assert h.migration().domains == ("shop.example.com", "api.example.com", "example.com", "www.example.com",
                                     "app.example.org")


def test_domains_that_leave_out_ingress_hosts_are_refused_unless_partial(redis_url: str) -> None:
    h = make_harness(redis_url)
    out = _to_method(h, "/migrate method dns domains=shop.example.com")
    assert not out.ok
    assert "also serve api.example.com, example.com, www.example.com, app.example.org, left out" in out.text
    assert "`partial=yes`" in out.text and h.migration().phase is Phase.CHECKED
    out = h.ok("alice", "/migrate method dns domains=shop.example.com partial=yes")
    assert "Left on NGINX as asked (`partial=yes`): api.example.com, example.com" in out.text
    assert h.migration().domains == ("shop.example.com",)


def test_a_name_no_ingress_serves_is_refused(redis_url: str) -> None:
    h = make_harness(redis_url)
    out = _to_method(h, "/migrate method dns domains=mail.example.com partial=yes")
    assert not out.ok and "mail.example.com is not a host of any Ingress of class nginx" in out.text


def test_wildcard_hosts_are_explained_not_guessed(redis_url: str) -> None:
    world = SimWorld.from_seed()
    with world.state._mutate() as data:
        data["clusters"]["demo-cluster"]["ingresses"].append(
            {"namespace": "preview", "name": "previews", "ingress_class": "nginx", "addresses": ["47.100.0.10"],
             "annotations": {}, "rules": [{"host": "*.preview.example.com", "paths": [{"path": "/"}]}]})
    h = make_harness(redis_url, world=world)
    out = _to_method(h)
    assert out.ok, out.text
    assert "Wildcard host `*.preview.example.com` (preview/previews): not moved" in out.text
    assert "does not weight wildcard records" in out.text
    assert not any("preview" in d for d in h.migration().domains)
    with world.state._mutate() as data:  # a name clients use under the wildcard, listed by hand
        data["dns"]["records"]["rec-pr"] = {"id": "rec-pr", "domain": "pr1.preview.example.com", "type": "A",
                                            "value": "47.100.0.10", "weight": 1, "enabled": True, "ttl": 600,
                                            "line": "default"}
    out = h.ok("alice", "/migrate method dns domains=pr1.preview.example.com partial=yes")
    assert "• pr1.preview.example.com: NGINX A 47.100.0.10 (TTL 600s)" in out.text


def test_without_an_address_in_the_ingress_status_nginx_must_be_named(redis_url: str) -> None:
    world = SimWorld.from_seed()
    with world.state._mutate() as data:
        for ing in data["clusters"]["demo-cluster"]["ingresses"]:
            ing.pop("addresses", None)
    h = make_harness(redis_url, world=world)
    out = _to_method(h)
    assert not out.ok and "give NGINX's address with `nginx=IP`" in out.text
    out = h.ok("alice", "/migrate method dns nginx=47.100.0.10,47.100.0.11")
    assert "NGINX's records are A records for 47.100.0.10, 47.100.0.11" in out.text


# ---- 3. the share DNS serves -------------------------------------------------------------------


def test_the_share_is_what_dns_serves_and_the_lowest_name_counts(redis_url: str) -> None:
    world = SimWorld.from_seed()
    with world.state._mutate() as data:  # www also answers with an address that is neither NGINX's nor MSE's
        data["dns"]["records"]["rec-legacy"] = {"id": "rec-legacy", "domain": "www.example.com", "type": "A",
                                                "value": "47.100.0.99", "weight": 50, "enabled": True, "ttl": 600,
                                                "line": "default"}
    h = make_harness(redis_url, world=world, dwell_seconds=0)
    _to_method(h)
    h.ok("alice", "/migrate switch")
    out = h.ok("alice", "/migrate weight 100")
    assert round(world.dns_split("example.com", GW)) == 50  # two NGINX records share NGINX's 100: 50 each
    assert round(world.dns_split("www.example.com", GW)) == 40  # 100 / (100 + 50 + 50 + 50)
    m = h.migration()
    assert m.observed["hosts"]["example.com"]["share"] == 50.0
    assert m.observed["share"] == 40.0  # the lowest name, not the weights asked for
    assert "www.example.com: 40% (MSE 100 / others 150)" in out.text
    card = json.dumps(status_blocks(m, now=h.clock(), policy=Policy()))
    assert "40%" in card and "www.example.com: 40%" in card
    home = json.dumps(home_view([m], [], now=h.clock()), ensure_ascii=False)  # App Home: the lowest name, read back
    assert "40%` read back" in home and "not read back" not in home


def test_status_reads_what_dns_serves_now(redis_url: str) -> None:
    world, h = switched_at(redis_url, 100)
    with world.state._mutate() as data:  # someone sets www's MSE record to weight 20 in the DNS console
        next(r for r in data["dns"]["records"].values()
             if r["domain"] == "www.example.com" and r["value"] == MSE_IP)["weight"] = 20
    out = h.ok("alice", "/migrate status")
    assert "www.example.com: 17% (MSE 20 / others 100)" in out.text and "MSE ██░░░░░░░░ 17%" in out.text


def test_the_card_shows_five_names_and_a_count(redis_url: str) -> None:
    world = SimWorld.from_seed()
    with world.state._mutate() as data:
        for i in range(3):
            host = f"m{i}.example.com"
            data["clusters"]["demo-cluster"]["ingresses"].append(
                {"namespace": "more", "name": f"m{i}", "ingress_class": "nginx", "addresses": ["47.100.0.10"],
                 "annotations": {}, "rules": [{"host": host, "paths": [{"path": "/"}]}]})
            data["dns"]["records"][f"rec-m{i}"] = {"id": f"rec-m{i}", "domain": host, "type": "A",
                                                   "value": "47.100.0.10", "weight": 1, "enabled": True, "ttl": 600,
                                                   "line": "default"}
    h = make_harness(redis_url, world=world, dwell_seconds=0)
    _to_method(h)
    h.ok("alice", "/migrate switch")
    h.ok("alice", "/migrate weight 10")
    card = json.dumps(status_blocks(h.migration(), now=h.clock(), policy=Policy()))
    assert card.count("(MSE 10 / others 100)") == 5 and "and 2 more" in card


# ---- 4. TTLs ------------------------------------------------------------------------------------


def test_the_dwell_is_at_least_the_ttl_of_the_records_changed(redis_url: str) -> None:
    h = make_harness(redis_url, dwell_seconds=180)
    _to_method(h)
    h.ok("alice", "/migrate switch")
    out = h.ok("alice", "/migrate weight 1")
    assert "TTL of 600s, longer than the 3m dwell: the next increase waits 10m" in out.text
    h.clock.advance(200)
    early = h.say("alice", "/migrate weight 5")
    assert not early.ok and "Too soon to increase" in early.text
    h.clock.advance(400)
    h.ok("alice", "/migrate weight 5")


def test_the_dwell_over_notice_waits_for_the_ttl_too(redis_url: str) -> None:
    h = make_harness(redis_url, dwell_seconds=180)
    work = TimedWork(engine=h.engine, store=h.store, client=h.store.r, keys=BotKeys(), dwell_seconds=180,
                     clock=h.clock)
    _to_method(h)
    h.ok("alice", "/migrate switch")
    h.ok("alice", "/migrate weight 1")
    h.clock.advance(200)
    assert not any("Dwell over" in n.text for n in work.notices())
    h.clock.advance(400)
    assert any("Dwell over" in n.text for n in work.notices())


def test_ttl_lowers_nginx_records_first_switch_waits_and_complete_restores(redis_url: str) -> None:
    world = SimWorld.from_seed()
    start = _untouchable(world)
    h = make_harness(redis_url, world=world, dwell_seconds=0)
    out = _to_method(h, "/migrate method dns ttl=60")
    assert out.ok, out.text
    assert "TTL of 6 NGINX record(s) lowered to 60s (was up to 600s)" in out.text
    assert _by(world, "www.example.com", "47.100.0.11")["ttl"] == 60
    assert _by(world, "www.example.com", "site-verification=4f2a9c", "TXT")["ttl"] == 600
    early = h.say("alice", "/migrate switch")
    assert not early.ok and "Too soon to switch" in early.text
    h.clock.advance(600)
    h.ok("alice", "/migrate switch")
    assert _by(world, "www.example.com", MSE_IP)["ttl"] == 60
    out = h.ok("alice", "/migrate weight 90%")
    assert "The records changed have a TTL of 60s, longer than the 0s dwell: the next increase waits 1m" in out.text
    _mse_side_seen(world)
    _approve(h, "/migrate verify", "/migrate cutover")
    _nginx_side_gone(world)
    _approve(h, "/migrate complete")
    ttls = {r["ttl"] for r in _records(world).values() if r["type"] == "A"}
    assert ttls == {600} and _untouchable(world) == start


def test_a_lowering_that_fails_halfway_is_retried_or_given_back_by_abort(redis_url: str) -> None:
    world = SimWorld.from_seed()
    before = world.raw()["dns"]["records"]
    h = make_harness(redis_url, world=world)
    real = world.dns.set_ttl
    done: list[str] = []

    def second_fails(*, record, ttl):  # type: ignore[no-untyped-def]  # the cloud refuses from the second on
        if done:
            world.state.fail_next("dns.set_ttl", times=1, code="Forbidden", temporary=False)
        done.append(record.id)
        real(record=record, ttl=ttl)

    world.dns.set_ttl = second_fails  # type: ignore[method-assign]
    out = _to_method(h, "/migrate method dns ttl=60")
    assert not out.ok and "`/migrate abort` gives them back" in out.text
    assert sum(r["ttl"] == 60 for r in _records(world).values()) == 1
    world.dns.set_ttl = real  # type: ignore[method-assign]
    blocked = h.say("alice", "/migrate switch")
    assert not blocked.ok
    assert "TTLs restored" in h.ok("alice", "/migrate abort").text
    assert world.raw()["dns"]["records"] == before


# ---- 5. cutover and the resolver --------------------------------------------------------------------


def test_cutover_is_refused_while_a_name_is_not_seen_and_force_names_them(redis_url: str) -> None:
    h = make_harness(redis_url, dwell_seconds=0)
    _to_method(h)
    h.ok("alice", "/migrate switch")
    h.ok("alice", "/migrate weight 50")
    _approve(h, "/migrate verify")
    refused = h.say("alice", "/migrate cutover")
    assert not refused.ok and "MSE's record is not seen for app.example.org" in refused.text
    assert "`/migrate cutover force=yes`" in refused.text and h.migration().pending_approval == ""
    asked = h.ok("alice", "/migrate cutover force=yes")
    assert asked.approval is not None and "not yet seen through the resolver for app.example.org" in asked.text
    h.ok("bob", "/migrate approve")
    assert h.migration().phase is Phase.CUT_OVER


def test_an_approved_cutover_looks_again_before_it_runs(redis_url: str) -> None:
    world, h = verified_at(redis_url, 50)
    h.ok("alice", "/migrate cutover")
    with world.state._mutate() as data:  # the record at the other provider was removed meanwhile
        data["dns"]["elsewhere"]["app.example.org"] = sorted(NGINX_IPS)
    late = h.say("bob", "/migrate approve")
    assert not late.ok and "app.example.org" in late.text
    assert h.migration().phase is Phase.VERIFIED
    assert all(_by(world, "example.com", ip)["enabled"] for ip in NGINX_IPS)


# ---- 6. rollback and abort ------------------------------------------------------------------------


def test_rollback_disables_mse_records_before_reading_anything(redis_url: str) -> None:
    world, h = switched_at(redis_url, 50)
    world.state.fail_next("dns.records", times=1000, code="ServiceUnavailable", temporary=False)
    h.say("bob", "/migrate rollback")  # every read fails: the answer says so, the writes already landed
    world.state.clear_faults()
    assert all(world.dns_split(host, GW) == 0 for host in HOSTED)
    assert not any(r["enabled"] for r in _records(world).values() if r["value"] == MSE_IP)


def test_abort_restores_the_zone_exactly_as_found(redis_url: str) -> None:
    world = SimWorld.from_seed()
    with world.state._mutate() as data:  # the apex was weighted already, www was not
        data["dns"]["weighted"]["example.com|A|default"] = True
        data["dns"]["records"]["rec-1"]["weight"] = 7
    before = world.raw()["dns"]
    h = make_harness(redis_url, world=world, dwell_seconds=0)
    _to_method(h, "/migrate method dns ttl=60")
    h.clock.advance(600)
    h.ok("alice", "/migrate switch")
    assert world.raw()["dns"]["weighted"]["www.example.com|A|default"] is True
    h.ok("alice", "/migrate weight 75%")
    _rolled_back_one_ttl_ago(h)
    _approve(h, "/migrate abort")
    after = world.raw()["dns"]
    assert after["records"] == before["records"]  # weights, states, TTLs; MSE's records gone
    assert after["weighted"] == {**before["weighted"], **{f"{d}|A|default": False for d in HOSTED
                                                           if d != "example.com"}}
    assert all(world.dns_split(d, GW) == 0 for d in HOSTED)


def test_abort_removes_mse_records_by_id_once_the_gateway_address_changed(redis_url: str) -> None:
    world = SimWorld.from_seed()
    before = world.raw()["dns"]["records"]
    h = make_harness(redis_url, world=world, dwell_seconds=0)
    _to_method(h)
    h.ok("alice", "/migrate switch")
    h.ok("alice", "/migrate weight 10")
    _rolled_back_one_ttl_ago(h)
    with world.state._mutate() as data:  # the gateway now reports another address than its records hold
        data["gateways"][GW]["slb_address"] = "0.0.0.0"
    out = _approve(h, "/migrate abort")
    assert "MSE's DNS records removed" in out.text
    assert world.raw()["dns"]["records"] == before


def test_abort_before_switch_gives_the_lowered_ttls_back(redis_url: str) -> None:
    world = SimWorld.from_seed()
    before = world.raw()["dns"]["records"]
    h = make_harness(redis_url, world=world)
    _to_method(h, "/migrate method dns ttl=60")
    out = h.ok("alice", "/migrate abort")
    assert "TTLs restored" in out.text and world.raw()["dns"]["records"] == before


# ---- 7. names hosted elsewhere -----------------------------------------------------------------------


def test_names_hosted_elsewhere_get_exact_records_with_the_share_each_step(redis_url: str) -> None:
    h = make_harness(redis_url, dwell_seconds=0)
    _to_method(h)
    h.ok("alice", "/migrate switch")
    out = h.ok("alice", "/migrate weight 25%")
    assert ("app.example.org: `app.example.org A 47.100.0.20` weight 33; `app.example.org A 47.100.0.10` weight 50, "
            "`app.example.org A 47.100.0.11` weight 50 → MSE 25% (now: MSE record not seen yet") in out.text


# ---- 8. the seed ---------------------------------------------------------------------------------------


def test_the_seed_is_a_realistic_zone() -> None:
    world = SimWorld.from_seed()
    recs = list(_records(world).values())

    def kinds(domain: str) -> list[str]:
        return sorted(r["type"] for r in recs if r["domain"] == domain)

    assert kinds("example.com") == ["A", "A", "AAAA", "CAA", "MX", "TXT"]
    assert kinds("www.example.com") == ["A", "A", "TXT"]
    assert kinds("status.example.com") == ["CNAME"]
    assert {r["ttl"] for r in recs} == {600}
    assert world.dns.zone_for(domain="app.example.org") is None
    assert world.resolver.addresses(domain="app.example.org") == sorted(NGINX_IPS)
    hosts = {h for i in world.cluster("demo-cluster").list_ingresses(ingress_class="nginx") for h in i.hosts}
    assert {"example.com", "www.example.com", "app.example.org", "api.example.com"} <= hosts
