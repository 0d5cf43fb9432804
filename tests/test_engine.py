"""The engine against a real Redis and the simulated world: what users would see and what changes."""

from __future__ import annotations

import threading

from commands.ccm import WEIGHT
from commands.phases import Phase
from tests.engine_helpers import make_harness


def test_full_slb_migration_ends_with_all_traffic_on_mse(redis_url: str) -> None:
    h = make_harness(redis_url, dwell_seconds=0)
    h.to_shifting()
    for w in ["50", "100", "75%"]:
        h.ok("alice", f"/migrate weight {w}")
    m = h.migration()
    assert (m.mse_weight, m.nginx_weight) == (100, 33)
    svc = h.world.cluster("demo-cluster").get_service(namespace="ingress-nginx", name="nginx-ingress-lb")
    assert svc is not None and svc.annotations[WEIGHT] == "33"
    assert round(h.world.slb_split("lb-demo", "rsp-demo-80", "gw-demo")) == 75
    asked = h.ok("alice", "/migrate verify")
    assert asked.approval is not None and asked.approval.pending
    h.ok("bob", "/migrate approve")
    h.ok("alice", "/migrate cutover")
    h.ok("bob", "/migrate approve")
    h.ok("alice", "/migrate complete")
    done = h.ok("bob", "/migrate approve")
    assert done.migration is not None and done.migration.phase is Phase.COMPLETED
    assert h.world.slb_split("lb-demo", "rsp-demo-80", "gw-demo") == 100
    verbs = [e.verb for e in h.store.events(done.migration.id, limit=200)]
    assert verbs.count("verify") >= 2 and "complete" in verbs


def test_bad_input_changes_nothing(redis_url: str) -> None:
    h = make_harness(redis_url)
    h.to_shifting()
    before = h.migration()
    for text in ["/migrate weight abc", "/migrate weight 101", "/migrate frobnicate", "", "/migrate weight 2.5"]:
        out = h.say("alice", text)
        assert not out.ok and out.ephemeral and "\n" not in out.text
    assert h.migration().version == before.version


def test_second_start_for_the_cluster_names_the_first(redis_url: str) -> None:
    h = make_harness(redis_url)
    first = h.ok("alice", "/migrate start cluster=demo-cluster gateway=gw-demo").migration
    h.channel = "C-other"
    out = h.say("alice", "/migrate start cluster=demo-cluster gateway=gw-demo")
    assert not out.ok and first is not None and first.id in out.text


def test_dwell_holds_increases_but_never_decreases_or_rollback(redis_url: str) -> None:
    h = make_harness(redis_url)
    h.to_shifting()
    early = h.say("alice", "/migrate weight 20")
    assert not early.ok and "Too soon to increase: wait 3m" in early.text
    assert h.say("alice", "/migrate weight 5").ok
    assert h.say("alice", "/migrate rollback").ok
    h.clock.advance(179)
    assert "wait 1s" in h.say("alice", "/migrate weight 20").text
    h.clock.advance(1)
    assert h.say("alice", "/migrate weight 20").ok


def test_same_delivery_twice_acts_once(redis_url: str) -> None:
    h = make_harness(redis_url, dwell_seconds=0)
    h.to_shifting()
    first = h.say("alice", "/migrate weight 30", key="trigger-1")
    version = h.migration().version
    again = h.say("alice", "/migrate weight 30", key="trigger-1")
    # A replay redraws the record it drew (read fresh); its text is not kept (tests/test_idempotency_size.py).
    assert again.replayed and again.verb == first.verb and again.migration == h.migration()
    assert h.migration().version == version


def test_self_approval_refused_and_double_approval_counted_once(redis_url: str) -> None:
    h = make_harness(redis_url, required_approvals=2)
    h.to_shifting()
    h.ok("alice", "/migrate verify")
    own = h.say("alice", "/migrate approve")
    assert not own.ok and "someone else must approve" in own.text
    assert "1 of 2" in h.ok("bob", "/migrate approve").text
    twice = h.say("bob", "/migrate approve")
    assert "already approved" in twice.text
    assert h.migration().phase is Phase.SHIFTING
    h.ok("carol", "/migrate approve")
    assert h.migration().phase is Phase.VERIFIED


def test_approval_expires(redis_url: str) -> None:
    h = make_harness(redis_url)
    h.to_shifting()
    req = h.ok("alice", "/migrate verify").approval
    assert req is not None
    h.clock.advance(30 * 60 + 1)
    expired = h.engine.expire_due()
    assert [o.approval.state for o in expired if o.approval] == ["expired"]
    late = h.say("bob", f"/migrate approve {req.id}")
    assert "already expired" in late.text
    assert h.migration().phase is Phase.SHIFTING and not h.migration().pending_approval


def test_deny_keeps_everything(redis_url: str) -> None:
    h = make_harness(redis_url)
    h.to_shifting()
    h.ok("alice", "/migrate verify")
    out = h.ok("bob", '/migrate deny reason="p99 latency up"')
    assert "p99 latency up" in out.text
    assert h.migration().phase is Phase.SHIFTING


def test_after_verification_weights_are_refused_but_rollback_undoes_it(redis_url: str) -> None:
    h = make_harness(redis_url)
    h.to_shifting()
    h.ok("alice", "/migrate verify")
    h.ok("bob", "/migrate approve")
    for text in ["/migrate weight 5", "/migrate weight 50"]:
        out = h.say("alice", text)
        assert not out.ok and "locked" in out.text and "cutover" in out.text and "rollback" in out.text
    back = h.ok("alice", "/migrate rollback")
    assert "verification is undone" in back.text
    m = h.migration()
    assert m.phase is Phase.SHIFTING and m.observed["share"] == 0
    assert h.world.slb_split("lb-demo", "rsp-demo-80", "gw-demo") == 0
    assert h.world.slb_split("lb-demo", "rsp-demo-443", "gw-demo") == 0


def test_fifty_approvers_racing_make_one_transition(redis_url: str) -> None:
    approvers = frozenset({f"u{i}" for i in range(50)}) | {"alice"}
    h = make_harness(redis_url, approvers=approvers)
    h.to_shifting()
    req = h.ok("alice", "/migrate verify").approval
    assert req is not None
    results = []
    barrier = threading.Barrier(50)

    def tap(user: str) -> None:
        barrier.wait()
        results.append(h.engine.decide(migration_id=req.migration_id, approval_id=req.id, user=user,
                                       channel=h.channel, approve=True))

    threads = [threading.Thread(target=tap, args=(f"u{i}",)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [r for r in results if r.ok and r.migration and r.migration.phase is Phase.VERIFIED and not r.ephemeral]
    assert len(winners) == 1
    assert all("already approved" in r.text for r in results if r not in winners)
    locks = [e for e in h.store.events(req.migration_id, limit=500) if e.result == "weights locked"]
    assert len(locks) == 1


def test_fifty_threads_racing_one_compare_and_set(redis_url: str) -> None:
    import dataclasses

    from commands.errors import Conflict
    from commands.model import Event

    h = make_harness(redis_url)
    m = h.ok("alice", "/migrate start cluster=demo-cluster gateway=gw-demo").migration
    assert m is not None
    wins, conflicts = [], []
    barrier = threading.Barrier(50)

    def race(i: int) -> None:
        barrier.wait()
        try:
            wins.append(h.store.commit(expected_version=m.version, migration=dataclasses.replace(m, last_action=str(i)),
                                       event=Event(0, "t", "race", {}, "a", "a", str(i))))
        except Conflict as exc:
            conflicts.append(str(exc))

    threads = [threading.Thread(target=race, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(conflicts) == 49
    assert "changed while this request was handled" in conflicts[0]


def test_abort_after_switch_restores_service_slb_and_listening(redis_url: str) -> None:
    h = make_harness(redis_url)
    before = h.world.raw()
    h.to_shifting()
    asked = h.ok("alice", "/migrate abort")
    assert asked.approval is not None
    h.ok("bob", "/migrate approve")
    after = h.world.raw()
    svc = "ingress-nginx/nginx-ingress-lb"
    assert after["clusters"]["demo-cluster"]["services"][svc]["annotations"] == \
        before["clusters"]["demo-cluster"]["services"][svc]["annotations"]
    assert after["slbs"]["lb-demo"]["tags"] == before["slbs"]["lb-demo"]["tags"]
    assert after["slbs"]["lb-demo"]["listeners"] == before["slbs"]["lb-demo"]["listeners"]
    assert [b["ip"] for b in after["slbs"]["lb-demo"]["vgroups"]["rsp-demo-80"]] == ["10.0.0.11", "10.0.0.12"]
    assert after["gateways"]["gw-demo"]["sources"] == {}
    assert h.migration().phase is Phase.ABORTED
    assert h.say("alice", "/migrate start cluster=demo-cluster gateway=gw-demo").ok  # the cluster is free again


def test_abort_before_switch_needs_no_approval(redis_url: str) -> None:
    h = make_harness(redis_url)
    h.ok("alice", "/migrate start cluster=demo-cluster gateway=gw-demo")
    out = h.ok("alice", "/migrate abort")
    assert out.approval is None and h.migration().phase is Phase.ABORTED


def test_dns_migration(redis_url: str) -> None:
    h = make_harness(redis_url, dwell_seconds=0)
    h.ok("alice", "/migrate start cluster=demo-cluster gateway=gw-demo")
    h.ok("alice", "/migrate check")
    h.ok("alice", "/migrate method dns domains=shop.example.com,api.example.com partial=yes")
    h.ok("alice", "/migrate switch")
    assert h.world.dns_split("shop.example.com", "gw-demo") == 0
    h.ok("alice", "/migrate weight 50")
    assert round(h.world.dns_split("shop.example.com", "gw-demo")) == 33
    h.ok("alice", "/migrate rollback")
    assert h.world.dns_split("api.example.com", "gw-demo") == 0
    h.clock.advance(600)  # the rollback changed records with a TTL of 600 s: the next increase waits that long
    h.ok("alice", "/migrate weight 90%")
    h.ok("alice", "/migrate verify")
    h.ok("bob", "/migrate approve")
    h.ok("alice", "/migrate cutover")
    h.ok("bob", "/migrate approve")
    assert h.world.dns_split("shop.example.com", "gw-demo") == 100


def test_preflight_refusals_say_what_to_fix(redis_url: str) -> None:
    h = make_harness(redis_url)
    state = h.world.state
    with state._mutate() as data:
        data["gateways"]["gw-old"] = {**data["gateways"]["gw-demo"], "version": "1.2.21", "sources": {}, "slbs": {}}
        data["gateways"]["gw-far"] = {**data["gateways"]["gw-demo"], "vpc_id": "vpc-other", "sources": {}, "slbs": {}}
        data["gateways"]["gw-taken"] = {**data["gateways"]["gw-demo"], "slbs": {},
                                        "sources": {"demo-cluster": {"id": "s1", "ingress_class": "mse"}}}
    cases = {
        "gw-none": "does not exist",
        "gw-old": "1.2.22 or later",
        "gw-far": "must share a VPC",
        "gw-taken": "MIGRATE_INGRESS_CLASS_CONFLICT",
    }
    for gw, expected in cases.items():
        out = h.say("alice", f"/migrate start cluster=demo-cluster gateway={gw}")
        assert not out.ok and expected in out.text, out.text
    typo = h.say("alice", "/migrate start cluster=demo-cluster gateway=gw-demo class=ngnix")
    assert not typo.ok and "No Ingress of class `ngnix` in demo-cluster" in typo.text
    assert h.store.active_in_channel(h.channel) is None  # nothing was recorded


def test_wrong_listener_is_refused_with_the_right_one(redis_url: str) -> None:
    h = make_harness(redis_url)
    h.ok("alice", "/migrate start cluster=demo-cluster gateway=gw-demo")
    h.ok("alice", "/migrate check")
    out = h.say("alice", "/migrate method slb service=ingress-nginx/nginx-ingress-lb listener=8080/TCP")
    assert not out.ok and "8080/TCP does not carry" in out.text and "The right choice: 443/TCP, 80/TCP" in out.text
    found = h.ok("alice", "/migrate method slb service=ingress-nginx/nginx-ingress-lb")
    assert "Found SLB lb-demo" in found.text
    assert "`80/TCP` → `rsp-demo-80`" in found.text and "`443/TCP` → `rsp-demo-443`" in found.text


def test_unauthorized_user_changes_nothing(redis_url: str) -> None:
    h = make_harness(redis_url)
    h.to_shifting()
    version = h.migration().version
    out = h.say("mallory", "/migrate weight 5")
    assert not out.ok and "not allowed" in out.text
    out = h.say("mallory", "/migrate rollback")
    assert not out.ok
    assert h.migration().version == version


def test_status_with_nothing_running_says_how_to_start(redis_url: str) -> None:
    h = make_harness(redis_url)
    out = h.say("anyone", "/migrate status")
    assert "/migrate start cluster=" in out.text


def test_status_shows_drift_made_outside_the_bot(redis_url: str) -> None:
    h = make_harness(redis_url)
    h.to_shifting()
    import dataclasses

    mse = sorted((b for b in h.world.slb.backends(vgroup_id="rsp-demo-443") if b.ip.startswith("10.0.1.")),
                 key=lambda b: b.key)
    h.world.slb.set_weights(vgroup_id="rsp-demo-443", backends=[dataclasses.replace(mse[0], weight=40)])
    out = h.say("alice", "/migrate status")
    assert f"Drift: rsp-demo-443: {mse[0].server_id}:443 at 40, expected 4" in out.text


class _StubbornService:
    """A cluster where something else (a webhook, another controller) undoes part of the bot's Service writes."""

    def __init__(self, inner, *, drop: str) -> None:  # type: ignore[no-untyped-def]
        self.inner, self.drop, self.active = inner, drop, True

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)

    def patch_service_annotations(self, **kw):  # type: ignore[no-untyped-def]
        svc = self.inner.patch_service_annotations(**kw)
        if self.drop in kw["changes"] and self.active:
            return self.inner.patch_service_annotations(namespace=svc.namespace, name=svc.name,
                                                        changes={self.drop: "100"})
        return svc


def _stubborn_world(drop: str):  # type: ignore[no-untyped-def]
    from providers.sim.world import SimWorld

    world = SimWorld.from_seed()
    stubborn = _StubbornService(world.cluster("demo-cluster"), drop=drop)
    world.cluster = lambda cluster_id: stubborn  # type: ignore[method-assign]
    return world, stubborn


def test_service_annotations_undone_after_4b_explain_the_faq_code(redis_url: str) -> None:
    from commands.ccm import VGROUP_PORT

    world, stubborn = _stubborn_world(VGROUP_PORT)
    h = make_harness(redis_url, world=world)
    h.ok("alice", "/migrate start cluster=demo-cluster gateway=gw-demo")
    h.ok("alice", "/migrate check")
    h.ok("alice", "/migrate method slb service=ingress-nginx/nginx-ingress-lb")
    out = h.say("alice", "/migrate switch")
    assert not out.ok and "MIGRATE_SERVICE_ANNOTATION_NOT_MATCH" in out.text and "step 4b" in out.text
    assert "vgroup-port" in out.text and h.migration().phase is Phase.METHOD_CHOSEN
    stubborn.active = False
    assert h.say("alice", "/migrate switch").ok


def test_service_weight_not_zero_after_cutover_explains_the_faq_code(redis_url: str) -> None:
    world, stubborn = _stubborn_world(WEIGHT)
    stubborn.active = False
    h = make_harness(redis_url, world=world)
    h.to_shifting()
    h.ok("alice", "/migrate verify")
    h.ok("bob", "/migrate approve")
    h.ok("alice", "/migrate cutover")
    stubborn.active = True
    out = h.say("bob", "/migrate approve")
    assert not out.ok and "MIGRATE_SERVICE_NOT_MATCH" in out.text and "step 4d" in out.text
    assert "stays queued" in out.text and h.migration().phase is Phase.VERIFIED
    stubborn.active = False
    assert h.say("alice", "/migrate cutover").ok  # retried without a second approval
    assert h.migration().phase is Phase.CUT_OVER


def test_hostname_annotation_only_when_asked_and_refused_with_access_control(redis_url: str) -> None:
    from commands.ccm import HOSTNAME, ID

    h = make_harness(redis_url)
    with h.world.state._mutate() as data:
        data["slbs"]["lb-demo"]["listeners"][1]["acl_on"] = True  # access control on the listener NOT first in line
    h.ok("alice", "/migrate start cluster=demo-cluster gateway=gw-demo")
    h.ok("alice", "/migrate check")
    h.ok("alice", "/migrate method slb service=ingress-nginx/nginx-ingress-lb")
    refused = h.say("alice", "/migrate switch in-cluster=yes")
    assert not refused.ok and "listener 443/TCP" in refused.text and "access control on" in refused.text
    assert h.migration().phase is Phase.METHOD_CHOSEN
    h.ok("alice", "/migrate switch")
    svc = h.world.cluster("demo-cluster").get_service(namespace="ingress-nginx", name="nginx-ingress-lb")
    assert svc is not None and svc.annotations[ID] == "lb-demo" and HOSTNAME not in svc.annotations


def test_hostname_annotation_written_with_in_cluster(redis_url: str) -> None:
    from commands.ccm import HOSTNAME, HOSTNAME_VALUE

    h = make_harness(redis_url)
    h.ok("alice", "/migrate start cluster=demo-cluster gateway=gw-demo")
    h.ok("alice", "/migrate check")
    h.ok("alice", "/migrate method slb service=ingress-nginx/nginx-ingress-lb")
    out = h.ok("alice", "/migrate switch in-cluster=yes")
    assert "`-hostname` was added" in out.text
    svc = h.world.cluster("demo-cluster").get_service(namespace="ingress-nginx", name="nginx-ingress-lb")
    assert svc is not None and svc.annotations[HOSTNAME] == HOSTNAME_VALUE


def test_deleting_the_service_is_an_approved_step(redis_url: str) -> None:
    h = make_harness(redis_url)
    h.to_shifting()
    for user, text in [("alice", "/migrate verify"), ("bob", "/migrate approve"), ("alice", "/migrate cutover"),
                       ("bob", "/migrate approve")]:
        h.ok(user, text)
    asked = h.ok("alice", "/migrate complete delete-service=yes")
    assert asked.approval is not None and "DELETE Service ingress-nginx/nginx-ingress-lb" in asked.text
    cluster = h.world.cluster("demo-cluster")
    assert cluster.get_service(namespace="ingress-nginx", name="nginx-ingress-lb") is not None
    done = h.ok("bob", "/migrate approve")
    assert "deleted" in done.text
    assert cluster.get_service(namespace="ingress-nginx", name="nginx-ingress-lb") is None
    assert h.world.slb_split("lb-demo", "rsp-demo-80", "gw-demo") == 100


def test_rollback_cancels_a_pending_verification(redis_url: str) -> None:
    h = make_harness(redis_url)
    h.to_shifting()
    req = h.ok("alice", "/migrate verify").approval
    assert req is not None
    out = h.ok("carol", "/migrate rollback")
    assert f"Request {req.id} (verify) is cancelled" in out.text
    assert out.approval is not None and out.approval.state == "cancelled"  # so Slack edits its message
    assert h.store.approval(req.migration_id, req.id).state == "cancelled"  # type: ignore[union-attr]
    late = h.say("bob", f"/migrate approve {req.id}")
    assert "already cancelled" in late.text and h.migration().phase is Phase.SHIFTING


def test_a_record_that_moves_under_a_command_is_read_again(redis_url: str) -> None:
    h = make_harness(redis_url)
    h.ok("alice", "/migrate start cluster=demo-cluster gateway=gw-demo")
    real = h.store.active_in_channel
    stamped: list[str] = []

    def stale_read(channel: str):  # type: ignore[no-untyped-def]
        m = real(channel)
        if m is not None and not stamped:  # the Slack edge stamps the card right after this read
            stamped.append(h.engine.attach_card(m.id, card_ts="1795000000.000100").card_ts)
        return m

    h.store.active_in_channel = stale_read  # type: ignore[method-assign]
    out = h.say("alice", "/migrate check")
    assert out.ok, out.text
    assert stamped and h.migration().card_ts == "1795000000.000100" and h.migration().phase is Phase.CHECKED


def test_a_domain_hosted_elsewhere_gets_the_exact_record_and_is_checked_by_resolving(redis_url: str) -> None:
    h = make_harness(redis_url, dwell_seconds=0)  # the seed's app.example.org is hosted at another provider
    h.ok("alice", "/migrate start cluster=demo-cluster gateway=gw-demo")
    h.ok("alice", "/migrate check")
    chose = h.ok("alice", "/migrate method dns domains=shop.example.com,app.example.org partial=yes")
    assert "app.example.org: NOT hosted in Alibaba Cloud DNS" in chose.text
    switched = h.ok("alice", "/migrate switch")
    assert "`app.example.org A 47.100.0.20` disabled (or absent)" in switched.text
    assert "MSE record not seen yet, resolves to 47.100.0.10, 47.100.0.11" in switched.text
    with h.world.state._mutate() as data:  # the team adds the record at their provider
        data["dns"]["elsewhere"]["app.example.org"] = ["47.100.0.10", "47.100.0.11", "47.100.0.20"]
    shifted = h.ok("alice", "/migrate weight 10")
    assert ("app.example.org: `app.example.org A 47.100.0.20` weight 10; `app.example.org A 47.100.0.10` weight 50, "
            "`app.example.org A 47.100.0.11` weight 50 → MSE 9%") in shifted.text
    assert "MSE record seen, resolves to 47.100.0.10, 47.100.0.11, 47.100.0.20" in shifted.text


def test_blocking_findings_hold_the_migration_until_fixed_or_accepted(redis_url: str) -> None:
    h = make_harness(redis_url)
    with h.world.state._mutate() as data:
        data["clusters"]["demo-cluster"]["ingresses"][1]["annotations"][
            "nginx.ingress.kubernetes.io/configuration-snippet"] = "more_set_headers 'X-Env: prod';"
    h.ok("alice", "/migrate start cluster=demo-cluster gateway=gw-demo")
    checked = h.ok("alice", "/migrate check")
    assert "1 blocking" in checked.text and "configuration-snippet" in checked.text
    assert "route-check.md" in checked.files and "configuration-snippet" in checked.files["route-check.md"]
    assert h.migration().phase is Phase.LISTENING
    held = h.say("alice", "/migrate method slb service=ingress-nginx/nginx-ingress-lb")
    assert not held.ok and "check" in held.text
    asked = h.ok("alice", "/migrate check accept=yes")
    assert asked.approval is not None and asked.approval.verb == "accept"
    assert not h.say("alice", "/migrate approve").ok  # not by the one who asked
    h.ok("bob", "/migrate approve")
    assert h.migration().phase is Phase.CHECKED and h.migration().check["accepted_by"] == ["bob"]
    assert h.ok("alice", "/migrate method slb service=ingress-nginx/nginx-ingress-lb")


def test_fixing_the_finding_and_checking_again_moves_on(redis_url: str) -> None:
    h = make_harness(redis_url)
    key = "nginx.ingress.kubernetes.io/configuration-snippet"
    with h.world.state._mutate() as data:
        data["clusters"]["demo-cluster"]["ingresses"][1]["annotations"][key] = "return 403;"
    h.ok("alice", "/migrate start cluster=demo-cluster gateway=gw-demo")
    h.ok("alice", "/migrate check")
    assert h.migration().phase is Phase.LISTENING
    with h.world.state._mutate() as data:
        del data["clusters"]["demo-cluster"]["ingresses"][1]["annotations"][key]
    assert "0 blocking" in h.ok("alice", "/migrate check").text
    assert h.migration().phase is Phase.CHECKED


def test_the_same_attempt_goes_on_after_its_process_died_but_other_repeats_do_not(redis_url: str) -> None:
    from commands.outcome import Request

    h = make_harness(redis_url)
    h.ok("alice", "/migrate start cluster=demo-cluster gateway=gw-demo")
    key = "slack:check-1"
    assert h.store.claim(key, ttl_seconds=300, attempt="job-1")  # job-1 claimed it, then its process died
    again = h.engine.handle(Request("/migrate check", "alice", h.channel, idempotency_key=key, attempt="job-1"))
    assert again.ok and not again.replayed and h.migration().phase is Phase.CHECKED  # it went on
    other = h.engine.handle(Request("/migrate check", "alice", h.channel, idempotency_key=key, attempt="job-2"))
    assert other.replayed and other.migration == h.migration()  # a different attempt gets the stored answer
    assert h.store.claim("slack:x", ttl_seconds=300, attempt="job-3")
    blocked = h.engine.handle(Request("/migrate status", "alice", h.channel, idempotency_key="slack:x"))
    assert blocked.replayed and "already being handled" in blocked.text
