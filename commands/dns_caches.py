"""What resolvers return and may still hold for the DNS method's names, and the refusals that follow.

A resolver keeps an answer for its record's TTL, so MSE must serve the Ingress hosts one TTL after
its records last answered (abort stops the gateway listening), and NGINX one TTL after its records
stopped answering (complete says when it can go). With weighted round robin Alibaba Cloud DNS
answers ONE record per query, picked by weight (its "Weight configuration" page), so one query
proves nothing: the resolver is asked `SAMPLES` times.
"""

from __future__ import annotations

import dataclasses

from commands import dns
from commands.dns_plan import MSE_TYPE, same_value
from commands.model import Migration
from commands.ports import DnsRecord, World
from commands.render import clock_time

#: Queries per name when looking for an address through the resolver.
SAMPLES = 20
#: Below this many expected MSE answers in `SAMPLES` queries (share x SAMPLES), not seeing MSE's
#: address proves nothing: the API's read of the zone decides, if the resolver answers from that zone.
EXPECTED_SIGHTINGS = 3
MSE_UNTIL = "dns_mse_cached_until"
NGINX_UNTIL = "dns_nginx_cached_until"


def stamped(m: Migration, now: float) -> Migration:
    """`m` with the times until which resolvers may hold MSE's and NGINX's addresses, from what its
    last step read back (`observe`/`shift`: MSE's live TTL, or the TTL of the side that left)."""
    if m.method != "dns":
        return m
    seen, saved = m.observed, dict(m.saved)
    mse = max(int(seen.get("mse_ttl", 0)), int(seen.get("mse_cached_ttl", 0)))
    if mse:
        saved[MSE_UNTIL] = max(float(saved.get(MSE_UNTIL, 0.0)), now + mse)
    if seen.get("nginx_cached_ttl"):  # the latest cutover counts (a rollback brought NGINX back before it)
        saved[NGINX_UNTIL] = now + int(seen["nginx_cached_ttl"])
    return dataclasses.replace(m, saved=saved) if saved != m.saved else m


def sample(world: World, host: str, n: int = SAMPLES) -> list[str]:
    """Every address a resolver returned for `host` over `n` queries, in the order first seen; an
    empty answer ends the sample (a resolver that fails would fail `n` times, each after its timeout)."""
    out: list[str] = []
    for _ in range(n):
        got = world.resolver.addresses(domain=host)
        if not got:
            break
        out += [a for a in got if a not in out]
    return out


# ---- cutover: is MSE's record seen? -------------------------------------------------------------


def unseen(world: World, m: Migration) -> list[str]:
    """Names whose MSE record is not seen: not once in `SAMPLES` resolver queries (names hosted
    elsewhere, or a hosted name where MSE's share is large enough to show); for a hosted name, also
    when the API shows no enabled MSE record, or the resolver answers with records not in the zone."""
    c = dns.choice(m)
    address = dns.mse_address(world, m)
    out = []
    for host in c.hosts:
        got = sample(world, host)
        if address in got:
            if c.zones.get(host) and not _mse_enabled(world, m, host, address):
                out.append(host)  # a cache still holds it, but the zone no longer answers with it
            continue
        if not c.zones.get(host) or not _zone_answers_quietly(world, m, host, address, got):
            out.append(host)
    return out


def _mse_enabled(world: World, m: Migration, host: str, address: str) -> list[DnsRecord]:
    c = dns.choice(m)
    return [r for r in world.dns.records(domain=host) if dns.is_mse(r, c, address) and r.enabled and r.weight > 0]


def _zone_answers_quietly(world: World, m: Migration, host: str, address: str, got: list[str]) -> bool:
    """MSE's record is enabled in the zone, the resolver's answers all come from that zone's enabled
    records, and MSE's share there is too small to be expected in `SAMPLES` queries."""
    c = dns.choice(m)
    recs = world.dns.records(domain=host)
    live = [r for r in recs if r.enabled and r.type == MSE_TYPE and r.line == c.line]
    ours = [r for r in live if dns.is_mse(r, c, address) and r.weight > 0]
    if not ours or not got or any(not any(same_value(a, r.value) for r in live) for a in got):
        return False
    weighted = world.dns.weighted(domain=host, type=MSE_TYPE, line=c.line)
    share = sum(r.weight for r in ours) / sum(r.weight for r in live) if weighted else 1.0
    return share * SAMPLES < EXPECTED_SIGHTINGS


def unseen_rule() -> str:
    return (f"not once in {SAMPLES} resolver queries (weighted round robin answers one record per query; at a share "
            f"too small to show in {SAMPLES}, a hosted name counts as seen when the resolver answers from the zone "
            "and the API shows MSE's record enabled)")


# ---- complete: who still resolves to NGINX? -------------------------------------------------------


def still_on_nginx(world: World, m: Migration) -> list[str]:
    """Moved names that still send clients to NGINX: an enabled NGINX record in the zone (API), or
    NGINX's address seen in `SAMPLES` resolver queries (any name, hosted here or elsewhere)."""
    c = dns.choice(m)
    out = []
    for host in c.hosts:
        if c.zones.get(host) and any(r.enabled and c.is_nginx(r) for r in world.dns.records(domain=host)):
            out.append(host)
            continue
        if any(same_value(a, v) for a in sample(world, host) for v in c.nginx):
            out.append(host)
    return out


def complete_refusal(names: list[str]) -> str:
    return (f"Can't complete yet: {', '.join(names)} still resolve to NGINX's address, so NGINX cannot go. Disable "
            "NGINX's records there (names hosted elsewhere: at your DNS provider) and wait one TTL, or "
            "`/migrate complete force=yes` to ask an approver to complete anyway.")


def nginx_free_from(m: Migration) -> str:
    """` NGINX can go, not before HH:MM` when resolvers may still hold NGINX's address after the cutover."""
    until = float(m.saved.get(NGINX_UNTIL, 0.0))
    return f"not before {clock_time(until)} (one TTL after the cutover disabled NGINX's records)" if until else ""


# ---- abort: does anyone still hold MSE's address? ---------------------------------------------------


def answering(world: World, m: Migration) -> tuple[list[str], int]:
    """Hosted names where one of the bot's MSE records is enabled now, and the largest TTL among them."""
    c = dns.choice(m)
    address = dns.address_if_any(world, m)
    known = set(m.saved.get("dns_added", {}).values())
    found = m.saved.get("dns_found", {})
    names, ttl = [], 0
    for host in c.hosted():
        if found.get(host, {}).get("mse_existed"):
            continue  # answered before the migration, and abort keeps it
        ours = [r for r in world.dns.records(domain=host)
                if r.enabled and (r.id in known or (bool(address) and dns.is_mse(r, c, address)))]
        if ours:
            names.append(host)
            ttl = max(ttl, *(r.ttl for r in ours))
    return names, ttl


def abort_refusal(world: World, m: Migration, now: float) -> str:
    """Why abort must wait: it stops the gateway serving the Ingress hosts, so no resolver may still
    send clients to MSE (MSE's records off, and one TTL passed since they last answered)."""
    if m.method != "dns" or not m.saved.get("dns_added"):
        return ""
    names, ttl = answering(world, m)
    if names:
        return (f"Can't abort while MSE's record answers for {', '.join(names)}: abort stops the gateway serving the "
                "Ingress hosts, and resolvers keep MSE's address for the record's TTL. Roll back first "
                f"(`/migrate rollback`); abort is possible one TTL ({ttl}s) after MSE's records stopped answering.")
    address = dns.address_if_any(world, m)
    by_hand = [h for h in dns.choice(m).elsewhere() if address and address in sample(world, h)]
    if by_hand:  # made at the other provider as the bot asked; only the team can take it away
        records = ", ".join(f"`{h} A {address}`" for h in by_hand)
        return (f"Can't abort yet: a resolver still returns MSE's address for {', '.join(by_hand)}, and abort stops "
                f"the gateway serving the Ingress hosts. At your DNS provider, delete {records} (or disable it), then "
                "abort once one TTL has passed.")
    until = float(m.saved.get(MSE_UNTIL, 0.0))
    if now < until:
        return (f"Can't abort yet: MSE's records no longer answer, but resolvers may hold MSE's address until "
                f"{clock_time(until)}, and abort stops the gateway serving the Ingress hosts. Abort is possible after "
                f"{clock_time(until)}, one TTL after MSE's records stopped answering.")
    return ""
