"""DNS method: a retried switch, zones of three labels, what abort and rollback tell the team."""

from __future__ import annotations

from tests.engine_helpers import make_harness
from tests.test_dns_method import MSE_IP, _approve, _rolled_back_one_ttl_ago, _to_method, switched_at


def test_abort_tells_what_to_remove_at_the_other_dns_provider(redis_url: str) -> None:
    """app.example.org is hosted elsewhere: the bot told the team to create `A 47.100.0.20` by hand;
    abort must tell them to delete it (the gateway stops serving the name)."""
    world, h = switched_at(redis_url, 10)
    with world.state._mutate() as data:  # the team followed the bot's instructions
        data["dns"]["elsewhere"]["app.example.org"] = ["47.100.0.10", "47.100.0.11", MSE_IP]
    _rolled_back_one_ttl_ago(h)
    refused = h.say("alice", "/migrate abort")  # the gateway would stop serving a name clients still reach it by
    assert not refused.ok and "delete `app.example.org A 47.100.0.20`" in refused.text, refused.text
    with world.state._mutate() as data:  # the team disabled it there; the bot still reminds at abort
        data["dns"]["elsewhere"]["app.example.org"] = ["47.100.0.10", "47.100.0.11"]
    out = _approve(h, "/migrate abort")
    assert "app.example.org" in out.text, out.text


def test_a_switch_retried_after_the_disable_failed_leaves_mses_record_disabled(redis_url: str) -> None:
    """AddDomainRecord makes MSE's record enabled; the adapter disables it in a second call. When
    that call fails, the retried switch finds the record and never disables it: MSE answers at once
    (shop.example.com: weight 1 vs NGINX's 1, i.e. 50%) while the answer says "added (disabled)"."""
    from providers.alibaba import AlibabaCloud
    from providers.factory import CloudWorld
    from tests.openapi_emulator import Emulator, PublicResolver

    with Emulator(retry_after_ms=5, rng_seed=11) as emu:
        cloud = AlibabaCloud.from_config(emu.config(max_attempts=2, backoff_ms=2, max_backoff_ms=10))
        world = CloudWorld(gateway=cloud.gateway, slb=cloud.slb, dns=cloud.dns, resolver=PublicResolver(emu),
                           clusters={"demo-cluster": {"sim_seed": ""}})
        h = make_harness(redis_url, world=world, dwell_seconds=0)
        h.ok("alice", "/migrate start cluster=demo-cluster gateway=gw-demo")
        h.ok("alice", "/migrate check")
        h.ok("alice", "/migrate method dns")
        emu.fail("SetDomainRecordStatus", times=1, status=400, code="Forbidden.RAM")
        first = h.say("alice", "/migrate switch")
        assert not first.ok, first.text
        emu.clear_faults()
        again = h.ok("alice", "/migrate switch")
        assert "added (disabled)" in again.text
        assert MSE_IP not in PublicResolver(emu).addresses(domain="shop.example.com"), again.text


def test_records_of_a_name_in_a_zone_of_three_labels_are_read() -> None:
    """A hosted zone like prod.example.net (or example.com.cn): DescribeSubDomainRecords must be
    told the zone, or Alidns reads the name as RR "www.prod" of example.net and finds nothing."""
    from providers.alibaba import AlibabaCloud
    from tests.openapi_emulator import Emulator

    with Emulator() as emu:
        emu.state.zones.append("prod.example.net")
        emu.state.records["9001"] = {"id": "9001", "domain": "www.prod.example.net", "type": "A",
                                     "value": "47.100.0.10", "weight": 1, "enabled": True, "ttl": 600,
                                     "line": "default"}
        cloud = AlibabaCloud.from_config(emu.config())
        assert [r.value for r in cloud.dns.records(domain="www.prod.example.net")] == ["47.100.0.10"]


def test_a_dns_rollback_does_not_claim_all_traffic_is_back_while_caches_hold_mse(redis_url: str) -> None:
    h = make_harness(redis_url, dwell_seconds=0)
    _to_method(h)
    h.ok("alice", "/migrate switch")
    h.ok("alice", "/migrate weight 50")
    back = h.ok("bob", "/migrate rollback")
    assert "all traffic on NGINX" not in back.text and "TTL 600s" in back.text, back.text
