"""DNS method: what resolvers still hold (abort, cutover, complete), a weight step that fails halfway,
and TTLs lowered by an earlier `method dns`. Judged on the simulated world and on what the team sees."""

from __future__ import annotations

from bot.actions import ActionId
from bot.blocks import card_buttons
from commands.phases import Phase
from providers.sim.world import SimWorld
from tests.engine_helpers import make_harness
from tests.test_dns_method import GW, MSE_IP, NGINX_IPS, _approve, _to_method, switched_at, verified_at

# ---- abort waits until no resolver can still send clients to MSE -----------------------------------


def test_abort_is_refused_while_mse_answers_and_until_one_ttl_after_rollback(redis_url: str) -> None:
    """Abort stops the gateway serving the Ingress hosts: with MSE's records answering (TTL 600),
    every resolver that cached MSE's address would send its clients to a gateway that answers 404."""
    world, h = switched_at(redis_url, 50)
    refused = h.say("alice", "/migrate abort")
    assert not refused.ok and "Roll back first" in refused.text and h.migration().pending_approval == ""
    h.ok("bob", "/migrate rollback")
    h.clock.advance(300)
    early = h.say("alice", "/migrate abort")
    assert not early.ok and "Abort is possible after 08:10:00 UTC" in early.text, early.text
    assert world.gateway.ingress_sources(gateway_id=GW)  # still serving
    h.clock.advance(301)
    done = _approve(h, "/migrate abort")
    assert done is not None and done.ok and h.migration().phase is Phase.ABORTED, done.text
    assert not world.gateway.ingress_sources(gateway_id=GW)


def test_an_abort_approved_after_mse_answers_again_is_refused(redis_url: str) -> None:
    """Asked while MSE's records were off; by approval time someone enabled one by hand."""
    world, h = switched_at(redis_url)
    h.ok("alice", "/migrate abort")
    with world.state._mutate() as data:
        rec = next(r for r in data["dns"]["records"].values() if r["value"] == MSE_IP and r["domain"] == "example.com")
        rec["enabled"] = True
    late = h.say("bob", "/migrate approve")
    assert not late.ok and "example.com" in late.text and "Roll back first" in late.text, late.text
    assert world.gateway.ingress_sources(gateway_id=GW)


# ---- the cutover's resolver check under weighted round robin ----------------------------------------


def test_a_weighted_name_answers_one_record_per_query_picked_by_weight(redis_url: str) -> None:
    world, _ = switched_at(redis_url, 50)
    answers = [world.resolver.addresses(domain="www.example.com") for _ in range(60)]
    assert all(len(a) == 1 for a in answers)
    assert {a[0] for a in answers} == NGINX_IPS | {MSE_IP}


def test_cutover_at_a_small_share_is_not_refused_for_names_the_zone_serves(redis_url: str) -> None:
    """At 1% a handful of queries rarely shows MSE's record: hosted names are judged on the API's
    read plus resolver answers that come from the zone; the name hosted elsewhere on the resolver."""
    _, h = verified_at(redis_url, 1)
    asked = h.say("alice", "/migrate cutover")
    assert asked.ok and asked.approval is not None, asked.text
    h.ok("bob", "/migrate approve")
    assert h.migration().phase is Phase.CUT_OVER


def test_cutover_is_refused_for_a_hosted_name_whose_mse_record_was_disabled(redis_url: str) -> None:
    world, h = verified_at(redis_url, 50)
    with world.state._mutate() as data:  # disabled by hand in the console
        rec = next(r for r in data["dns"]["records"].values()
                   if r["value"] == MSE_IP and r["domain"] == "api.example.com")
        rec["enabled"] = False
    refused = h.say("alice", "/migrate cutover")
    assert not refused.ok and "api.example.com" in refused.text and "20 resolver queries" in refused.text


# ---- a weight step that fails halfway ---------------------------------------------------------------


def test_a_weight_step_that_fails_halfway_offers_rollback_and_says_what_dns_serves(redis_url: str) -> None:
    """shop.example.com got MSE's record enabled at 10 before the step failed on the next name: MSE
    answers for it, so the card offers Rollback and the error says where each name was left."""
    world, h = switched_at(redis_url)
    real = world.dns.set_enabled
    calls: list[str] = []

    def second_name_fails(*, record_id, enabled):  # type: ignore[no-untyped-def]
        calls.append(record_id)
        if len(calls) == 2:
            world.state.fail_next("dns.set_enabled", times=1, code="Forbidden", temporary=False)
        real(record_id=record_id, enabled=enabled)

    world.dns.set_enabled = second_name_fails  # type: ignore[method-assign]
    out = h.say("alice", "/migrate weight 10")
    world.dns.set_enabled = real  # type: ignore[method-assign]
    assert not out.ok
    assert world.dns_split("shop.example.com", GW) > 0
    assert "shop.example.com: 9%" in out.text, out.text
    assert ActionId.ROLLBACK in [b["action_id"] for b in card_buttons(h.migration())]
    assert "shop.example.com: 9%" in h.ok("alice", "/migrate status").text
    back = h.ok("bob", "/migrate rollback")
    assert world.dns_split("shop.example.com", GW) == 0
    assert "may still send clients there until 08:10:00 UTC" in back.text, back.text


# ---- complete while a name still resolves to NGINX --------------------------------------------------


def _cut_over(h, world: SimWorld, elsewhere: list[str]) -> None:  # type: ignore[no-untyped-def]
    _to_method(h)
    h.ok("alice", "/migrate switch")
    h.ok("alice", "/migrate weight 100")
    with world.state._mutate() as data:
        data["dns"]["elsewhere"]["app.example.org"] = elsewhere
    _approve(h, "/migrate verify", "/migrate cutover")


def test_complete_is_refused_while_a_name_still_resolves_to_nginx_and_force_names_it(redis_url: str) -> None:
    """app.example.org (hosted elsewhere) got MSE's record by hand, but NGINX's were not disabled there."""
    world = SimWorld.from_seed()
    h = make_harness(redis_url, world=world, dwell_seconds=0)
    _cut_over(h, world, sorted(NGINX_IPS | {MSE_IP}))
    refused = h.say("alice", "/migrate complete")
    assert not refused.ok and "app.example.org still resolve to NGINX" in refused.text, refused.text
    h.ok("alice", "/migrate complete force=yes")
    done = h.ok("bob", "/migrate approve")
    assert "app.example.org still resolve to NGINX" in done.text and "can go" not in done.text, done.text


def test_complete_says_nginx_can_go_not_before_one_ttl_after_cutover(redis_url: str) -> None:
    world = SimWorld.from_seed()
    h = make_harness(redis_url, world=world, dwell_seconds=0)
    _cut_over(h, world, [MSE_IP])
    done = _approve(h, "/migrate complete")
    assert done is not None and "can go; not before 08:10:00 UTC" in done.text, done.text


# ---- TTLs lowered by an earlier choice ----------------------------------------------------------------


def test_ttls_lowered_for_names_a_later_method_leaves_out_are_restored_by_abort(redis_url: str) -> None:
    """`method dns ttl=60` lowers every name's NGINX records; choosing again with fewer names, then
    `abort`, still gives www.example.com (and the others) their 600 s back."""
    world = SimWorld.from_seed()
    before = world.raw()["dns"]["records"]
    h = make_harness(redis_url, world=world)
    assert _to_method(h, "/migrate method dns ttl=60").ok
    chose = h.say("alice", "/migrate method dns domains=shop.example.com partial=yes")
    assert chose.ok, chose.text
    h.ok("alice", "/migrate abort")
    after = world.raw()["dns"]["records"]
    assert {rid: r["ttl"] for rid, r in after.items()} == {rid: r["ttl"] for rid, r in before.items()}


# ---- smaller things a user sees ------------------------------------------------------------------------


def test_after_a_rollback_the_next_increase_waits_the_ttl_of_mses_records(redis_url: str) -> None:
    """`weight 10` leaves NGINX's records as they were; the rollback only disables MSE's (TTL 600)."""
    h = make_harness(redis_url, dwell_seconds=180)
    _to_method(h)
    h.ok("alice", "/migrate switch")
    h.ok("alice", "/migrate weight 10")
    h.clock.advance(600)
    h.ok("bob", "/migrate rollback")
    h.clock.advance(200)
    early = h.say("alice", "/migrate weight 10")
    assert not early.ok and "Too soon to increase" in early.text, early.text
    h.clock.advance(400)
    h.ok("alice", "/migrate weight 10")


def test_after_switch_the_card_shows_the_weights_as_set_not_a_record_weight(redis_url: str) -> None:
    from bot.blocks import traffic_text

    h = make_harness(redis_url, dwell_seconds=0)
    _to_method(h)
    h.ok("alice", "/migrate switch")
    assert "MSE weight 0 · NGINX weight 100 as set" in traffic_text(h.migration())


def test_complete_delete_service_is_refused_on_the_dns_method(redis_url: str) -> None:
    world = SimWorld.from_seed()
    h = make_harness(redis_url, world=world, dwell_seconds=0)
    _cut_over(h, world, [MSE_IP])
    out = h.say("alice", "/migrate complete delete-service=yes")
    assert not out.ok and "option of the SLB method" in out.text and h.migration().pending_approval == ""


def test_complete_force_is_refused_on_the_slb_method(redis_url: str) -> None:
    h = make_harness(redis_url, dwell_seconds=0)
    h.to_shifting()
    h.ok("alice", "/migrate weight 100")
    _approve(h, "/migrate verify", "/migrate cutover")
    out = h.say("alice", "/migrate complete force=yes")
    assert not out.ok and "for the DNS method" in out.text and h.migration().pending_approval == ""
