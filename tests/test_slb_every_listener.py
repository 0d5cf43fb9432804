"""The SLB method on a world shaped like a real cluster (issue 10), judged on what the world holds.

The default seed is a typical NGINX Service of type LoadBalancer: listeners 80 and 443, each on
a vServer group the cloud controller created and named with its key. Every test reads the
simulated world back (weights per backend and port, names, annotations, tags), never the
bot's record alone; the autouse fixture in conftest fails any test whose writes left a serving
group with no backend above weight 0.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from commands import ccm
from commands.phases import Phase
from providers.sim.cluster import _ccm_reconcile
from providers.sim.world import SimWorld
from tests.engine_helpers import Harness, make_harness

NS, SVC, SLB, GW, CLUSTER = "ingress-nginx", "nginx-ingress-lb", "lb-demo", "gw-demo", "demo-cluster"
MSE_IPS = {"10.0.1.21", "10.0.1.22", "10.0.1.23"}


def _to_method(h: Harness, method: str = "/migrate method slb service=ingress-nginx/nginx-ingress-lb") -> Any:
    h.ok("alice", "/migrate start cluster=demo-cluster gateway=gw-demo")
    h.ok("alice", "/migrate check")
    return h.say("alice", method)


def _group(world: SimWorld, vgroup_id: str) -> list[dict[str, Any]]:
    return world.raw()["slbs"][SLB]["vgroups"][vgroup_id]  # type: ignore[no-any-return]


def _mse(world: SimWorld, vgroup_id: str) -> list[dict[str, Any]]:
    return [b for b in _group(world, vgroup_id) if b["ip"] in MSE_IPS or b["ip"].startswith("10.0.1.")]


def _service(world: SimWorld) -> dict[str, str]:
    svc = world.cluster(CLUSTER).get_service(namespace=NS, name=SVC)
    assert svc is not None
    return dict(svc.annotations)


def _world_with(vgroup_id: str, **backend: Any) -> SimWorld:
    """The default world with one more backend in a group (left by someone else, or another Service)."""
    world = SimWorld.from_seed()
    with world.state._mutate() as data:
        data["slbs"][SLB]["vgroups"][vgroup_id].append(backend)
    return world


def _approve(h: Harness, *verbs: str) -> None:
    for verb in verbs:
        h.ok("alice", f"/migrate {verb}")
        h.ok("bob", "/migrate approve")


def _cut_over(redis_url: str, world: SimWorld | None = None) -> Harness:
    """A migration at 50% verified and cut over: all traffic on MSE, the Service still there."""
    h = make_harness(redis_url, world=world, dwell_seconds=0)
    _to_method(h)
    h.ok("alice", "/migrate switch")
    h.ok("alice", "/migrate weight 100")
    _approve(h, "verify", "cutover")
    return h


# ---- 1. every listener ------------------------------------------------------------------------


def test_method_moves_both_listeners_and_shows_them_as_a_table(redis_url: str) -> None:
    h = make_harness(redis_url)
    out = _to_method(h)
    assert out.ok, out.text
    assert "`80/TCP` → `rsp-demo-80` (k8s/30080/nginx-ingress-lb/ingress-nginx/demo-cluster) → NGINX :30080, " \
           "MSE :80" in out.text
    assert "`443/TCP` → `rsp-demo-443` (k8s/30443/nginx-ingress-lb/ingress-nginx/demo-cluster) → NGINX :30443, " \
           "MSE :443" in out.text
    status = h.ok("alice", "/migrate status").text
    assert "listeners 80/TCP, 443/TCP" in status


def test_a_whole_migration_moves_both_listeners_and_leaves_no_group_empty(redis_url: str) -> None:
    h = make_harness(redis_url, dwell_seconds=0)
    _to_method(h)
    h.ok("alice", "/migrate switch")
    h.ok("alice", "/migrate weight 10")
    assert round(h.world.slb_split(SLB, "rsp-demo-80", GW)) == 9
    assert round(h.world.slb_split(SLB, "rsp-demo-443", GW)) == 9  # HTTPS moves too, not only the first listener
    h.ok("alice", "/migrate weight 100")
    _approve(h, "verify", "cutover", "complete delete-service=yes")
    assert h.migration().phase is Phase.COMPLETED
    for vgroup_id in ("rsp-demo-80", "rsp-demo-443"):
        assert h.world.slb_split(SLB, vgroup_id, GW) == 100
        assert sum(b["weight"] for b in _group(h.world, vgroup_id)) > 0  # no HTTPS outage after the delete


def test_narrowing_to_one_listener_says_what_stays_on_nginx_and_refuses_deleting_the_service(redis_url: str) -> None:
    h = make_harness(redis_url, dwell_seconds=0)
    out = _to_method(h, "/migrate method slb service=ingress-nginx/nginx-ingress-lb listener=80/TCP")
    assert out.ok, out.text
    assert "Stays on NGINX as asked: 443/TCP (rsp-demo-443)" in out.text
    h.ok("alice", "/migrate switch")
    assert [b for b in _mse(h.world, "rsp-demo-443")] == []  # the kept group gets no MSE node
    assert ccm.is_ccm_name(h.world.slb.vgroup(vgroup_id="rsp-demo-443").name)  # and keeps its name
    h.ok("alice", "/migrate weight 100")
    _approve(h, "verify", "cutover")
    refused = h.say("alice", "/migrate complete delete-service=yes")
    assert not refused.ok and "443/TCP (rsp-demo-443) (left on NGINX)" in refused.text
    assert h.world.slb_split(SLB, "rsp-demo-443", GW) == 0 and sum(b["weight"] for b in _group(h.world, "rsp-demo-443"))


# ---- 2. right ports ---------------------------------------------------------------------------------


def test_mse_joins_each_group_on_the_matching_gateway_port(redis_url: str) -> None:
    h = make_harness(redis_url)
    _to_method(h)
    h.ok("alice", "/migrate switch")
    assert {b["port"] for b in _mse(h.world, "rsp-demo-80")} == {80}
    assert {b["port"] for b in _mse(h.world, "rsp-demo-443")} == {443}  # TLS reaches MSE's HTTPS port
    joined = h.world.gateway.joined(gateway_id=GW, slb_id=SLB)
    assert sorted((j.vgroup_id, j.port, j.protocol) for j in joined) == [
        ("rsp-demo-443", 443, "HTTPS"), ("rsp-demo-80", 80, "HTTP")]
    assert h.world.state.calls("mse.join_slb") == 1  # one association for both groups


def test_an_https_listener_terminates_tls_so_mse_takes_it_on_its_http_port(redis_url: str) -> None:
    world = SimWorld.from_seed()
    with world.state._mutate() as data:
        data["slbs"][SLB]["listeners"][1]["protocol"] = "HTTPS"
    h = make_harness(redis_url, world=world)
    line = next(li for li in _to_method(h).text.splitlines() if "`443/HTTPS`" in li)
    assert "→ `rsp-demo-443`" in line and line.endswith("NGINX :30443, MSE :80")
    h.ok("alice", "/migrate switch")
    assert {b["port"] for b in _mse(world, "rsp-demo-443")} == {80}


def test_a_gateway_node_on_the_wrong_port_is_refused_at_method_time_naming_it(redis_url: str) -> None:
    world = _world_with("rsp-demo-443", server_id="eni-gw-demo-1", ip="10.0.1.21", port=80, weight=0, type="eni",
                        description="mse/gw-demo")  # left by an earlier join on port 80 (the old bug)
    before = world.raw()["slbs"]
    h = make_harness(redis_url, world=world)
    out = _to_method(h)
    assert not out.ok and "rsp-demo-443 holds eni-gw-demo-1:80" in out.text and "port 443" in out.text
    assert world.raw()["slbs"] == before and h.migration().phase is Phase.CHECKED


def test_a_stranger_in_a_moved_group_is_refused_before_anything_changes(redis_url: str) -> None:
    world = _world_with("rsp-demo-80", server_id="i-canary", ip="10.0.0.50", port=8080, weight=10,
                        description="manual canary")
    before = world.raw()["slbs"]
    h = make_harness(redis_url, world=world)
    out = _to_method(h)
    assert not out.ok and "rsp-demo-80 holds i-canary:8080, neither NGINX's backend nor the gateway's" in out.text
    assert world.raw()["slbs"] == before


def test_a_failed_join_leaves_the_slb_attached(redis_url: str) -> None:
    h = make_harness(redis_url)
    _to_method(h)
    tags = h.world.raw()["slbs"][SLB]["tags"]
    h.world.state.fail_next("mse.join_slb", times=3, code="ServiceUnavailable")
    assert not h.say("alice", "/migrate switch").ok
    slb = h.world.raw()["slbs"][SLB]
    assert slb["tags"] == tags and all(ccm.is_ccm_name(n) for n in slb["vgroup_names"].values())  # nothing detached
    assert h.ok("alice", "/migrate switch").ok  # the retry finishes it


def test_method_is_refused_while_a_failed_switch_is_queued(redis_url: str) -> None:
    h = make_harness(redis_url)
    _to_method(h)
    h.world.state.fail_next("k8s.patch_service_annotations", times=3, code="Forbidden", temporary=False)
    assert not h.say("alice", "/migrate switch").ok
    out = h.say("alice", "/migrate method slb service=ingress-nginx/nginx-ingress-lb listener=80/TCP")
    assert not out.ok and "`/migrate switch` retries it" in out.text and "abort" in out.text
    assert h.migration().slb is not None and len(h.migration().slb.groups) == 2  # type: ignore[union-attr]


# ---- 3. backends keyed by (server id, port) -----------------------------------------------------------


def test_a_server_on_two_ports_gets_each_weight_it_is_given(redis_url: str) -> None:
    world = _world_with("rsp-demo-80", server_id="i-nginx-1", ip="10.0.0.11", port=30081, weight=50,
                        description="k8s/30081/nginx-ingress-lb/ingress-nginx/demo-cluster")
    one = next(b for b in world.slb.backends(vgroup_id="rsp-demo-80") if b.key == ("i-nginx-1", 30080))
    world.slb.set_weights(vgroup_id="rsp-demo-80", backends=[dataclasses.replace(one, weight=7)])
    held = {b.key: b.weight for b in world.slb.backends(vgroup_id="rsp-demo-80")}
    assert held[("i-nginx-1", 30080)] == 7 and held[("i-nginx-1", 30081)] == 50


def test_weight_read_back_equals_what_was_asked_in_every_group(redis_url: str) -> None:
    h = make_harness(redis_url)
    _to_method(h)
    h.ok("alice", "/migrate switch")
    out = h.ok("alice", "/migrate weight 10")
    assert "rsp-demo-80 (80/TCP) MSE 10 / NGINX 100; rsp-demo-443 (443/TCP) MSE 10 / NGINX 100" in out.text
    for vgroup_id in ("rsp-demo-80", "rsp-demo-443"):
        assert sum(b["weight"] for b in _mse(h.world, vgroup_id)) == 10


# ---- 4. groups the controller accepts ----------------------------------------------------------------


def test_switch_renames_controller_groups_and_abort_restores_them(redis_url: str) -> None:
    h = make_harness(redis_url)
    before = h.world.raw()["slbs"][SLB]["vgroup_names"]
    _to_method(h)
    h.ok("alice", "/migrate switch")
    names = h.world.raw()["slbs"][SLB]["vgroup_names"]
    assert not any(ccm.is_ccm_name(n) for n in names.values())
    assert h.world.controller_events(CLUSTER, NS, SVC) == []  # nothing refused: `-weight` applies
    h.ok("alice", "/migrate weight 75%")
    assert sum(b["weight"] for b in _group(h.world, "rsp-demo-443") if b["ip"].startswith("10.0.0.")) == 33
    h.ok("alice", "/migrate abort")
    h.ok("bob", "/migrate approve")
    assert h.world.raw()["slbs"][SLB]["vgroup_names"] == before


def test_the_simulated_controller_refuses_a_controller_named_group_and_a_tagged_slb() -> None:
    world = SimWorld.from_seed()
    cluster = world.cluster(CLUSTER)
    target = ccm.generated_annotations(slb_id=SLB, vgroup_ports=[("rsp-demo-80", 80)], nginx_weight=0,
                                       in_cluster=False)
    cluster.patch_service_annotations(namespace=NS, name=SVC, changes=target)
    assert "can not reuse loadbalancer created by kubernetes" in world.controller_events(CLUSTER, NS, SVC)[-1]
    world.slb.set_tags(slb_id=SLB, tags={}, remove=ccm.CCM_TAGS)
    cluster.patch_service_annotations(namespace=NS, name=SVC, changes={ccm.WEIGHT: "1"})
    assert "cannot reuse a ccm created vgroup" in world.controller_events(CLUSTER, NS, SVC)[-1]
    assert [b["weight"] for b in _group(world, "rsp-demo-80")] == [50, 50]  # refused: nothing applied
    world.slb.rename_vgroup(vgroup_id="rsp-demo-80", name="ours")
    cluster.patch_service_annotations(namespace=NS, name=SVC, changes={ccm.WEIGHT: "0"})
    assert [b["weight"] for b in _group(world, "rsp-demo-80")] == [0, 0]  # accepted: -weight 0 sets all to 0
    cluster.patch_service_annotations(namespace=NS, name=SVC, changes={ccm.WEIGHT: "3"})
    assert [b["weight"] for b in _group(world, "rsp-demo-80")] == [2, 1]  # the total spread, each at least 1
    world.state.take_violations()  # -weight 0 on a group with no MSE emptied it: that was the point here


def test_a_group_of_another_service_is_refused_at_method_time_before_anything_changes(redis_url: str) -> None:
    world = _world_with("rsp-demo-443", server_id="i-other", ip="10.0.0.99", port=31000, weight=100,
                        description="k8s/31000/other-lb/other/demo-cluster")
    before = world.raw()
    h = make_harness(redis_url, world=world)
    out = _to_method(h)
    assert not out.ok and "rsp-demo-443 also holds backends of k8s/31000/other-lb/other/demo-cluster" in out.text
    assert world.raw()["slbs"] == before["slbs"] and h.migration().phase is Phase.CHECKED


# ---- 5. annotations kept --------------------------------------------------------------------------------


def test_switch_replaces_only_load_balancer_annotations_and_abort_restores_exactly(redis_url: str) -> None:
    h = make_harness(redis_url)
    original = _service(h.world)
    _to_method(h)
    h.ok("alice", "/migrate switch")
    after = _service(h.world)
    others = {k: v for k, v in original.items() if not ccm.is_lb_annotation(k)}
    assert others and {k: v for k, v in after.items() if not ccm.is_lb_annotation(k)} == others  # helm, external-dns
    assert ccm.lb_annotations(after) == {ccm.ID: SLB, ccm.VGROUP_PORT: "rsp-demo-80:80,rsp-demo-443:443",
                                         ccm.FORCE_OVERRIDE: "false", ccm.WEIGHT: "100"}
    h.ok("alice", "/migrate abort")
    h.ok("bob", "/migrate approve")
    assert _service(h.world) == original


def test_legacy_spelled_load_balancer_annotations_are_replaced_too(redis_url: str) -> None:
    world = SimWorld.from_seed()
    with world.state._mutate() as data:
        data["clusters"][CLUSTER]["services"][f"{NS}/{SVC}"]["annotations"][
            "service.beta.kubernetes.io/alicloud-loadbalancer-address-type"] = "intranet"
    h = make_harness(redis_url, world=world)
    _to_method(h)
    h.ok("alice", "/migrate switch")
    assert "service.beta.kubernetes.io/alicloud-loadbalancer-address-type" not in _service(world)


# ---- 6. rollback reaches every MSE backend -------------------------------------------------------------


def test_rollback_zeroes_nodes_the_gateway_added_after_the_switch_and_restores_nginx(redis_url: str) -> None:
    h = make_harness(redis_url, dwell_seconds=0)
    _to_method(h)
    h.ok("alice", "/migrate switch")
    h.ok("alice", "/migrate weight 75%")
    h.world.gateway.add_node(gateway_id=GW, ip="10.0.1.24")  # scale-out while MSE takes traffic
    assert any(b["ip"] == "10.0.1.24" and b["weight"] > 0 for b in _group(h.world, "rsp-demo-443"))
    out = h.ok("bob", "/migrate rollback")
    for vgroup_id in ("rsp-demo-80", "rsp-demo-443"):
        assert h.world.slb_split(SLB, vgroup_id, GW) == 0  # the new node too: all traffic really on NGINX
        assert {b["ip"] for b in _mse(h.world, vgroup_id)} >= {"10.0.1.24"}
    assert _service(h.world)[ccm.WEIGHT] == "100"  # NGINX's side comes back where it was lowered
    assert "MSE 0 / NGINX 100" in out.text


# ---- 7. rollback until complete ----------------------------------------------------------------------


def test_rollback_after_cutover_brings_nginx_back_first_and_cancels_the_pending_complete(redis_url: str) -> None:
    h = _cut_over(redis_url)
    assert h.world.slb_split(SLB, "rsp-demo-443", GW) == 100
    asked = h.ok("alice", "/migrate complete")
    assert asked.approval is not None
    out = h.ok("carol", "/migrate rollback")
    assert "cutover is undone" in out.text or "so is the cutover" in out.text
    assert f"Request {asked.approval.id} (complete) is cancelled" in out.text
    m = h.migration()
    assert m.phase is Phase.SHIFTING and m.pending_approval == ""
    for vgroup_id in ("rsp-demo-80", "rsp-demo-443"):
        assert h.world.slb_split(SLB, vgroup_id, GW) == 0
    assert _service(h.world)[ccm.WEIGHT] == "100"
    assert not h.say("bob", "/migrate approve").ok  # the cancelled complete cannot be approved any more


class LazyController:
    """A cluster whose cloud controller has not applied `-weight` yet (it works on its own time)."""

    def __init__(self, world: SimWorld) -> None:
        self.world, self.inner = world, world.cluster(CLUSTER)
        self.lazy = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def catch_up(self) -> None:
        """The controller gets round to the Service: `-weight` applies."""
        self.lazy = False
        with self.world.state._mutate() as data:
            _ccm_reconcile(data, CLUSTER, NS, SVC)

    def patch_service_annotations(self, **kw: Any) -> Any:
        if not self.lazy:
            return self.inner.patch_service_annotations(**kw)
        with self.world.state._mutate() as data:
            data["clusters"][CLUSTER]["services"][f"{NS}/{SVC}"]["annotations"].update(kw["changes"])
        return self.inner.get_service(namespace=NS, name=SVC)


def test_after_cutover_mse_keeps_the_traffic_until_nginx_really_has_weight_again(redis_url: str) -> None:
    world = SimWorld.from_seed()
    lazy = LazyController(world)
    world.cluster = lambda cluster_id: lazy  # type: ignore[method-assign]
    h = _cut_over(redis_url, world)
    h.engine.sleep = lambda s: None
    lazy.lazy = True
    out = h.say("carol", "/migrate rollback")
    assert not out.ok and "NGINX's backends in rsp-demo-80 have no weight yet" in out.text
    assert h.world.slb_split(SLB, "rsp-demo-80", GW) == 100  # MSE did not let go: the group never emptied
    lazy.catch_up()
    assert h.ok("carol", "/migrate rollback").ok
    assert h.world.slb_split(SLB, "rsp-demo-80", GW) == 0


# ---- 8 and 9. true share, no empty group ----------------------------------------------------------------


def test_the_answer_shows_what_the_slb_holds_not_what_was_asked(redis_url: str) -> None:
    h = make_harness(redis_url)
    _to_method(h)
    h.ok("alice", "/migrate switch")
    h.ok("alice", "/migrate weight 10")
    eni = next(b for b in h.world.slb.backends(vgroup_id="rsp-demo-443") if b.ip == "10.0.1.21")
    h.world.slb.set_weights(vgroup_id="rsp-demo-443", backends=[dataclasses.replace(eni, weight=0)])
    status = h.ok("alice", "/migrate status").text
    assert "MSE weight 6 / NGINX weight 100" in status and "6%" in status  # the lower group, as read back
    assert f"Drift: rsp-demo-443: {eni.server_id}:443 at 0, expected 4" in status


def test_the_invariant_checker_catches_an_emptied_group() -> None:
    world = SimWorld.from_seed()
    nginx = world.slb.backends(vgroup_id="rsp-demo-80")
    world.slb.set_weights(vgroup_id="rsp-demo-80", backends=[dataclasses.replace(b, weight=0) for b in nginx])
    assert world.state.take_violations() == [{"op": "slb.set_weights", "slb": SLB, "vgroup": "rsp-demo-80"}]


def test_complete_refuses_deleting_the_service_while_a_group_would_be_left_empty(redis_url: str) -> None:
    h = _cut_over(redis_url)
    mse = [b for b in h.world.slb.backends(vgroup_id="rsp-demo-443") if b.ip.startswith("10.0.1.")]
    h.world.slb.set_weights(vgroup_id="rsp-demo-443", backends=[dataclasses.replace(b, weight=0) for b in mse])
    h.world.state.take_violations()  # someone zeroed MSE by hand after the cutover: the test's own doing
    out = h.say("alice", "/migrate complete delete-service=yes")
    assert not out.ok and "rsp-demo-443 (443/TCP) would be left with no backend" in out.text
    assert h.world.cluster(CLUSTER).get_service(namespace=NS, name=SVC) is not None


# ---- 10. pre-flight ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("other_class", ["internal", "nginx"])
def test_a_gateway_source_with_ingress_listening_off_is_no_conflict(redis_url: str, other_class: str) -> None:
    world = SimWorld.from_seed()
    with world.state._mutate() as data:
        data["gateways"][GW]["sources"][CLUSTER] = {"id": "src-1", "ingress_class": other_class,
                                                    "enable_ingress": False}
    h = make_harness(redis_url, world=world)
    out = h.ok("alice", "/migrate start cluster=demo-cluster gateway=gw-demo")
    assert "Ingress listening off: step 1 switches it on" in out.text
    [source] = world.gateway.ingress_sources(gateway_id=GW)
    assert (source.ingress_class, source.enable_ingress, source.enable_status) == ("nginx", True, False)


def test_a_record_from_the_one_listener_version_still_rolls_back(redis_url: str) -> None:
    from commands.model import Migration

    h = make_harness(redis_url, dwell_seconds=0)
    _to_method(h)
    h.ok("alice", "/migrate switch")
    h.ok("alice", "/migrate weight 10")
    m = h.migration()
    old = m.to_dict()
    old["slb"] = {"namespace": NS, "service": SVC, "slb_id": SLB, "port": 80, "protocol": "TCP",
                  "vgroup_id": "rsp-demo-80"}
    old["observed"] = {"mse": 10, "nginx": 100, "share": 9.09}
    legacy = Migration.from_dict(old)
    assert legacy.slb is not None and legacy.slb.vgroup_ids == ["rsp-demo-80"]
    h.store.commit(expected_version=m.version, migration=legacy,
                   event=h.engine.event("test", "upgrade", {}, m, m.phase, "record from the previous version"))
    assert "9%" in h.ok("alice", "/migrate status").text
    h.ok("alice", "/migrate rollback")
    assert h.world.slb_split(SLB, "rsp-demo-80", GW) == 0


def test_a_one_listener_record_not_yet_switched_asks_for_method_again(redis_url: str) -> None:
    from commands.model import Migration

    h = make_harness(redis_url)
    _to_method(h)
    m = h.migration()
    old = m.to_dict()
    old["slb"] = {"namespace": NS, "service": SVC, "slb_id": SLB, "port": 443, "protocol": "TCP",
                  "vgroup_id": "rsp-demo-443"}
    h.store.commit(expected_version=m.version, migration=Migration.from_dict(old),
                   event=h.engine.event("test", "upgrade", {}, m, m.phase, "record from the previous version"))
    out = h.say("alice", "/migrate switch")
    assert not out.ok and "moved one listener only" in out.text and "/migrate method slb service=" in out.text
    assert h.world.raw()["slbs"][SLB]["tags"]  # nothing was detached
    h.ok("alice", "/migrate method slb service=ingress-nginx/nginx-ingress-lb")
    h.ok("alice", "/migrate switch")
    assert {b["port"] for b in _mse(h.world, "rsp-demo-443")} == {443}


def test_abort_of_a_record_switched_by_the_one_listener_version_brings_every_annotation_back(redis_url: str) -> None:
    from commands.model import Migration

    h = make_harness(redis_url)
    original = _service(h.world)
    _to_method(h)
    h.ok("alice", "/migrate switch")
    m = h.migration()
    old = m.to_dict()
    old["saved"] = {k: v for k, v in old["saved"].items() if k not in ("schedulers", "annotations")}
    old["saved"].update(annotations=original, scheduler="rr")
    # what that version's 4b left: every annotation replaced by the generated set
    h.world.cluster(CLUSTER).patch_service_annotations(
        namespace=NS, name=SVC, changes={k: None for k in original if not ccm.is_lb_annotation(k)})
    h.store.commit(expected_version=m.version, migration=Migration.from_dict(old),
                   event=h.engine.event("test", "upgrade", {}, m, m.phase, "record from the previous version"))
    h.ok("alice", "/migrate abort")
    h.ok("bob", "/migrate approve")
    assert _service(h.world) == original  # Helm's and external-dns's annotations too
    assert {li["port"]: li["scheduler"] for li in h.world.raw()["slbs"][SLB]["listeners"]}[80] == "rr"


def test_abort_keeps_a_gateway_source_that_was_there_before_with_listening_off(redis_url: str) -> None:
    world = SimWorld.from_seed()
    with world.state._mutate() as data:
        data["gateways"][GW]["sources"][CLUSTER] = {"id": "src-pre", "ingress_class": "mse", "enable_ingress": False}
    h = make_harness(redis_url, world=world)
    h.ok("alice", "/migrate start cluster=demo-cluster gateway=gw-demo")
    h.ok("alice", "/migrate abort")
    assert [s.id for s in world.gateway.ingress_sources(gateway_id=GW)] == ["src-pre"]


def test_cutover_gives_every_gateway_node_weight_even_when_verified_at_one(redis_url: str) -> None:
    h = make_harness(redis_url, dwell_seconds=0)
    _to_method(h)
    h.ok("alice", "/migrate switch")
    h.ok("alice", "/migrate weight 1")
    _approve(h, "verify", "cutover")
    for vgroup_id in ("rsp-demo-80", "rsp-demo-443"):
        assert all(b["weight"] > 0 for b in _mse(h.world, vgroup_id))  # not 1, 0, 0


def test_a_rollback_before_the_cutovers_check_stops_its_write(redis_url: str) -> None:
    import threading

    h = _cut_over_ready(redis_url)
    patches = h.world.state.calls("k8s.patch_service_annotations")
    arrived, release = h.world.state.hold("slb.backends")  # the cutover reads the groups before its check
    cut: list[Any] = []
    thread = threading.Thread(target=lambda: cut.append(h.say("bob", "/migrate approve")))
    thread.start()
    assert arrived.wait(5)
    back = h.say("carol", "/migrate rollback")
    assert back.ok and "all traffic on NGINX" in back.text
    release.set()
    thread.join(10)
    assert "overtaken" in cut[0].text and "Next: raise the weight" in cut[0].text
    assert _service(h.world)[ccm.WEIGHT] == "100" and h.migration().phase is Phase.SHIFTING
    for vgroup_id in ("rsp-demo-80", "rsp-demo-443"):
        assert h.world.slb_split(SLB, vgroup_id, GW) == 0
    assert h.world.state.calls("k8s.patch_service_annotations") == patches  # `-weight: 0` was never written


def test_a_rollback_during_the_cutovers_write_has_it_undone_at_once(redis_url: str) -> None:
    import threading

    h = _cut_over_ready(redis_url)
    arrived, release = h.world.state.hold("k8s.patch_service_annotations")  # past the check, the write held
    cut: list[Any] = []
    thread = threading.Thread(target=lambda: cut.append(h.say("bob", "/migrate approve")))
    thread.start()
    assert arrived.wait(5)
    assert h.say("carol", "/migrate rollback").ok
    release.set()
    thread.join(10)
    # The late `-weight: 0` emptied the groups for the one write it took to undo it; nothing more.
    assert [v["op"] for v in h.world.state.take_violations()] == ["k8s.patch_service_annotations"] * 2
    assert "overtaken" in cut[0].text
    assert _service(h.world)[ccm.WEIGHT] == "100" and h.migration().phase is Phase.SHIFTING
    for vgroup_id in ("rsp-demo-80", "rsp-demo-443"):
        assert h.world.slb_split(SLB, vgroup_id, GW) == 0
        assert sum(b["weight"] for b in _group(h.world, vgroup_id)) == 100


def _cut_over_ready(redis_url: str) -> Harness:
    """Verified at 50%, with a cutover asked for and waiting for its approval."""
    h = make_harness(redis_url, dwell_seconds=0)
    _to_method(h)
    h.ok("alice", "/migrate switch")
    h.ok("alice", "/migrate weight 100")
    _approve(h, "verify")
    h.ok("alice", "/migrate cutover")
    return h


def _at_ten(redis_url: str) -> Harness:
    """Switched, with MSE at weight 10 in both groups."""
    h = make_harness(redis_url)
    _to_method(h)
    h.ok("alice", "/migrate switch")
    h.ok("alice", "/migrate weight 10")
    return h


def test_a_second_rollback_writes_nothing_and_says_so(redis_url: str) -> None:
    h = _at_ten(redis_url)
    h.ok("alice", "/migrate rollback")
    writes, events = h.world.state.calls("slb.set_weights"), len(h.store.events(h.migration().id, limit=500))
    again = h.ok("alice", "/migrate rollback")
    assert again.text.startswith("Already rolled back: the SLB holds rsp-demo-80 (80/TCP) MSE 0 / NGINX 100")
    assert h.world.state.calls("slb.set_weights") == writes
    assert len(h.store.events(h.migration().id, limit=500)) == events


def test_after_abort_the_card_shows_no_drift(redis_url: str) -> None:
    h = _at_ten(redis_url)
    h.ok("alice", "/migrate abort")
    h.ok("bob", "/migrate approve")
    status = h.ok("alice", "/migrate status").text
    assert h.migration().phase is Phase.ABORTED and "Drift" not in status and h.migration().observed == {}
