"""The DNS method's provider work, name by name, over NGINX's address records only.

A record is NGINX's when it is an A record on the chosen line whose value is one of NGINX's
addresses (`DnsChoice.is_nginx`); MSE's is the A record with the gateway's address on that line.
Nothing else under a name is ever written. Every write is ordered so that no name is left without
an enabled address record: the side that arrives goes first, the side that leaves goes last.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from commands.dns_plan import MSE_TYPE, DnsChoice, same_value
from commands.errors import Overtaken, ProviderError
from commands.model import Migration
from commands.ports import DnsRecord, World
from commands.traffic import format_share, mse_share, spread

MAX_HOST_LINES = 5


def choice(m: Migration) -> DnsChoice:
    if not m.dns:  # a record from before the DNS plan: its domains, every A record of them NGINX's
        manual = {line.split(" ")[0] for line in m.saved.get("dns_manual", [])}
        return DnsChoice(m.domains, {d: "" if d in manual else d for d in m.domains}, ())
    return DnsChoice.from_dict(m.dns)


def mse_address(world: World, m: Migration) -> str:
    gw = world.gateway.get_gateway(gateway_id=m.gateway)
    if gw is None:
        raise ProviderError(f"gateway {m.gateway} no longer exists", code="GatewayNotFound")
    return gw.slb_address


def address_if_any(world: World, m: Migration) -> str:
    """The gateway's address, or "" once the gateway is gone: an abort then works from the record ids it kept."""
    gw = world.gateway.get_gateway(gateway_id=m.gateway)
    return gw.slb_address if gw is not None else ""


def is_mse(rec: DnsRecord, c: DnsChoice, address: str) -> bool:
    return rec.line == c.line and rec.type == MSE_TYPE and same_value(rec.value, address)


def _nginx(rec: DnsRecord, c: DnsChoice) -> bool:
    return c.is_nginx(rec) if c.nginx else rec.type == MSE_TYPE  # an old record's choice: every other A record


def split(world: World, m: Migration, host: str, address: str) -> tuple[list[DnsRecord], list[DnsRecord]]:
    """(MSE's records, NGINX's records) under one name, as read now."""
    c = choice(m)
    recs = world.dns.records(domain=host)
    ours = [r for r in recs if is_mse(r, c, address)]
    theirs = [r for r in recs if not is_mse(r, c, address) and _nginx(r, c)]
    return ours, theirs


# ---- reading back ------------------------------------------------------------------------------


def observe(world: World, m: Migration, *, ttl: int = 0) -> dict[str, Any]:
    """What DNS serves for each hosted name: MSE's weight over all enabled A records' weight there.

    With weighted round robin off every record counts the same (Alibaba Cloud DNS then returns them
    all). The migration's share is the lowest name's, so nobody reads 50% where a name is at 33%.
    `ttl` is the largest TTL of the records the step changed (the dwell is at least that);
    `highest` the highest name's share (any share above 0 means MSE answers somewhere).
    """
    c = choice(m)
    address = mse_address(world, m)
    hosts: dict[str, dict[str, Any]] = {}
    mse_ttl = 0
    for host in c.hosted():
        weighted = world.dns.weighted(domain=host, type=MSE_TYPE, line=c.line)
        live = [r for r in world.dns.records(domain=host) if r.enabled and r.line == c.line and r.type == MSE_TYPE]

        def weight(r: DnsRecord, on: bool = weighted) -> int:
            return r.weight if on else 1

        mse = sum(weight(r) for r in live if is_mse(r, c, address))
        other = sum(weight(r) for r in live if not is_mse(r, c, address))
        hosts[host] = {"mse": mse, "other": other, "share": round(mse_share(mse, other), 2)}
        if mse:  # how long a resolver may keep MSE's address once it stops answering
            mse_ttl = max(mse_ttl, *(r.ttl for r in live if is_mse(r, c, address)))
    lowest = min(hosts.values(), key=lambda v: v["share"]) if hosts else {"mse": 0, "other": 0, "share": 0.0}
    highest = max((v["share"] for v in hosts.values()), default=0.0)
    return {"hosts": hosts, "share": lowest["share"], "mse": lowest["mse"], "nginx": lowest["other"], "ttl": ttl,
            "highest": highest, **({"mse_ttl": mse_ttl} if mse_ttl else {})}


def host_lines(observed: dict[str, Any], limit: int = MAX_HOST_LINES) -> list[str]:
    """`www.example.com 33% (MSE 50 / others 100)`, lowest share first, `limit` of them and a count."""
    hosts = sorted(observed.get("hosts", {}).items(), key=lambda kv: (kv[1]["share"], kv[0]))
    lines = [f"{h}: {format_share(v['share'])} (MSE {v['mse']} / others {v['other']})" for h, v in hosts[:limit]]
    if len(hosts) > limit:
        lines.append(f"and {len(hosts) - limit} more")
    return lines


def describe(observed: dict[str, Any]) -> str:
    return "; ".join(host_lines(observed)) or "no name hosted here"


# ---- writing ------------------------------------------------------------------------------------


def switch(world: World, m: Migration) -> tuple[dict[str, str], int]:
    """Next to NGINX's records of each hosted name, MSE's record (disabled), then weighted round robin
    on: the answers do not change yet. Returns MSE's record per name and the largest TTL written."""
    c = choice(m)
    address = mse_address(world, m)
    added: dict[str, str] = {}
    ttl = 0
    for host in c.hosted():
        ours, theirs = split(world, m, host, address)
        if not theirs:
            raise ProviderError(f"{host} has no A record for NGINX any more", code="NginxRecordMissing",
                                next_step="`/migrate status`; choose again with `/migrate method dns`")
        rec = ours[0] if ours else None
        if rec is None:
            want = max(r.ttl for r in theirs)
            rec = world.dns.add_record(domain=host, type=MSE_TYPE, value=address, enabled=False, ttl=want, line=c.line)
            ttl = max(ttl, rec.ttl)
        if rec.enabled and not m.saved.get("dns_found", {}).get(host, {}).get("mse_existed"):
            world.dns.set_enabled(record_id=rec.id, enabled=False)  # ours, left enabled by a switch that failed
        added[host] = rec.id
        if not world.dns.weighted(domain=host, type=MSE_TYPE, line=c.line):
            world.dns.set_weighted(domain=host, on=True, type=MSE_TYPE, line=c.line)
    return added, ttl


def disable_known(world: World, m: Migration) -> None:
    """Rollback's first writes: MSE's records known since the switch are disabled, with no read first."""
    for record_id in m.saved.get("dns_added", {}).values():
        try:
            world.dns.set_enabled(record_id=record_id, enabled=False)
        except ProviderError as exc:
            if exc.code != "DomainRecordNotBelongToUser":  # deleted meanwhile: the read-back pass sees it
                raise


def shift(world: World, m: Migration, *, mse: int, nginx: int, nginx_first: bool = False) -> dict[str, Any]:
    """Every hosted name's MSE record at `mse`, NGINX's records sharing `nginx` (0 disables: DNS
    weights start at 1). Back from a cutover NGINX returns first; then the side that leaves goes last."""
    if mse == 0 and not nginx_first:
        disable_known(world, m)  # before any read: a failing read cannot keep MSE answering
    c = choice(m)
    address = mse_address(world, m)
    ttl = cached = nginx_cached = 0
    for host in c.hosted():
        ours, theirs = split(world, m, host, address)
        if mse and not ours:
            raise ProviderError(f"MSE's record under {host} is gone", code="MseRecordMissing",
                                next_step="`/migrate abort` and switch again, or add it back by hand")
        if mse == 0 and ours:  # MSE leaves: resolvers may hold its address for its records' TTL
            cached = max(cached, *(r.ttl for r in ours))
        if nginx == 0 and theirs:  # NGINX leaves (cutover): the same for NGINX's address
            nginx_cached = max(nginx_cached, *(r.ttl for r in theirs))
        targets = dict(zip((r.id for r in theirs), [max(1, w) for w in spread(nginx, len(theirs))], strict=True))
        arriving = nginx_first or mse == 0
        first, last = (theirs, ours) if arriving else (ours, theirs)
        for rec in first + last:
            want = (targets[rec.id] if nginx else 0) if rec in theirs else mse
            if _reach(world, rec, want):
                ttl = max(ttl, rec.ttl)
    if mse == 0:  # `disable_known` wrote MSE's records before this loop read them: they changed too
        ttl = max(ttl, cached)
    return {**observe(world, m, ttl=ttl), **({"mse_cached_ttl": cached} if cached else {}),
            **({"nginx_cached_ttl": nginx_cached} if nginx_cached else {})}


def _reach(world: World, rec: DnsRecord, weight: int) -> bool:
    """One record to a weight (0: disabled); True when something was written."""
    if weight == 0:
        if rec.enabled:
            world.dns.set_enabled(record_id=rec.id, enabled=False)
            return True
        return False
    wrote = False
    if rec.weight != weight:
        world.dns.set_weight(record_id=rec.id, weight=weight)
        wrote = True
    if not rec.enabled:
        world.dns.set_enabled(record_id=rec.id, enabled=True)
        wrote = True
    return wrote


def cutover(world: World, m: Migration, *, mse: int, guard: Callable[[], None]) -> dict[str, Any]:
    """4d: MSE's record enabled at full weight under every name first; only then NGINX's are disabled.
    `guard` is asked before that write and after it: a rollback that took over has its NGINX back."""
    before = shift(world, m, mse=mse, nginx=m.nginx_weight or 1)
    empty = [h for h, v in before["hosts"].items() if v["mse"] <= 0]
    if empty:
        raise ProviderError(f"MSE's record answers for none of {', '.join(empty)}: NGINX cannot leave",
                            code="MseRecordMissing", next_step="`/migrate status`")
    guard()
    after = shift(world, m, mse=mse, nginx=0)
    try:
        guard()
    except Overtaken:
        shift(world, m, mse=mse, nginx=100, nginx_first=True)
        raise
    return {**after, "ttl": max(before["ttl"], after["ttl"])}


# ---- TTLs -----------------------------------------------------------------------------------------


def ttls_found(m: Migration, records: dict[str, list[DnsRecord]], ttl: int) -> dict[str, int]:
    """The TTLs `lower_ttls` will change, as read before it writes (kept in its intent)."""
    c = choice(m)
    return {r.id: r.ttl for host in c.hosted() for r in records.get(host, []) if c.is_nginx(r) and r.ttl > ttl}


def lower_ttls(world: World, m: Migration, ttl: int) -> dict[str, int]:
    """NGINX's records above `ttl` lowered to it; returns the TTL each record the bot lowered had
    before the first lowering (`m.saved["dns_ttls"]` holds those already known, kept even when
    this choice no longer names their host)."""
    c = choice(m)
    known: dict[str, int] = {str(k): int(v) for k, v in m.saved.get("dns_ttls", {}).items()}
    lowered: dict[str, int] = dict(known)  # a name an earlier choice lowered keeps its TTL to give back
    for host in c.hosted():
        for rec in world.dns.records(domain=host):
            if not c.is_nginx(rec):
                continue
            if rec.ttl > ttl:
                world.dns.set_ttl(record=rec, ttl=ttl)
            if rec.ttl > ttl or rec.id in known:
                lowered[rec.id] = known.get(rec.id, rec.ttl)
    return lowered


def ttl_hosts(m: Migration) -> list[str]:
    """The hosted names of this choice and of every earlier one whose TTLs the bot lowered."""
    return list(dict.fromkeys([*choice(m).hosted(), *m.saved.get("dns_ttl_hosts", [])]))


def restore_ttls(world: World, m: Migration) -> list[str]:
    """Every record whose TTL the bot lowered gets it back; MSE's record takes its name's old TTL."""
    c = choice(m)
    old: dict[str, int] = {str(k): int(v) for k, v in m.saved.get("dns_ttls", {}).items()}
    if not old:
        return []
    address = address_if_any(world, m)
    done = []
    for host in ttl_hosts(m):
        recs = world.dns.records(domain=host)
        host_old = max((old[r.id] for r in recs if r.id in old), default=0)
        for rec in recs:
            want = old.get(rec.id) or (host_old if address and is_mse(rec, c, address) else 0)
            if want and rec.ttl != want:
                world.dns.set_ttl(record=rec, ttl=want)
                done.append(rec.id)
    return done


# ---- abort ------------------------------------------------------------------------------------------


def restore(world: World, m: Migration) -> list[str]:
    """Everything as found: NGINX's records back (weight, state), then MSE's records deleted, each
    name's weighted-round-robin flag as it was, then the TTLs. Works from what the switch found, so
    a switch that stopped halfway is undone too."""
    c = choice(m)
    found: dict[str, dict[str, Any]] = m.saved.get("dns_found") or {
        d: {"nginx": recs, "weighted": None} for d, recs in m.saved.get("dns_nginx", {}).items()}  # an older switch
    address = address_if_any(world, m)
    known = set(m.saved.get("dns_added", {}).values())
    done: list[str] = []
    for host, was in found.items():
        before = {r["id"]: r for r in was.get("nginx", [])}
        recs = world.dns.records(domain=host)
        for rec in recs:
            if rec.id in before:
                want = before[rec.id]
                if not rec.enabled and want["enabled"]:
                    world.dns.set_enabled(record_id=rec.id, enabled=True)
                if rec.weight != want["weight"]:
                    world.dns.set_weight(record_id=rec.id, weight=int(want["weight"]))
                if rec.enabled and not want["enabled"]:
                    world.dns.set_enabled(record_id=rec.id, enabled=False)
        for rec in recs:
            ours = rec.id in known or (bool(address) and is_mse(rec, c, address))
            if rec.id not in before and ours and not was.get("mse_existed"):
                world.dns.delete_record(record_id=rec.id)
        if was.get("weighted") is not None and \
                world.dns.weighted(domain=host, type=MSE_TYPE, line=c.line) != bool(was["weighted"]):
            world.dns.set_weighted(domain=host, on=bool(was.get("weighted")), type=MSE_TYPE, line=c.line)
    if found:
        done.append(f"MSE's DNS records removed; NGINX's records and weighted round robin as found on "
                    f"{', '.join(found)}")
    if restore_ttls(world, m):
        done.append("TTLs restored")
    by_hand = [f"`{h} A {address}`" for h in c.elsewhere()] if address else []
    if by_hand and found:  # the switch told the team to make these; the gateway stops serving them now
        done.append(f"at your DNS provider, delete by hand: {', '.join(by_hand)}")
    return done


def found_now(world: World, m: Migration) -> dict[str, dict[str, Any]]:
    """The state `abort` restores, read before the switch writes anything: NGINX's records, the
    weighted-round-robin flag, and whether an MSE record was there already (then it is kept)."""
    c = choice(m)
    address = mse_address(world, m)
    out = {}
    for host in c.hosted():
        ours, theirs = split(world, m, host, address)
        out[host] = {"nginx": [{"id": r.id, "weight": r.weight, "enabled": r.enabled, "ttl": r.ttl} for r in theirs],
                     "weighted": world.dns.weighted(domain=host, type=MSE_TYPE, line=c.line),
                     "mse_existed": bool(ours)}
    return out


# ---- names hosted elsewhere and the resolver ------------------------------------------------------


def by_hand(world: World, m: Migration, *, mse: int, nginx: int) -> list[str]:
    """For each name hosted elsewhere: the exact records to make at its DNS provider for these
    weights, the share they give, and what a resolver returns now."""
    c = choice(m)
    address = mse_address(world, m)
    out = []
    for host in c.elsewhere():
        seen = world.resolver.addresses(domain=host)
        theirs = [a for a in seen if any(same_value(a, v) for v in c.nginx)] or list(c.nginx)
        weights = [max(1, w) for w in spread(nginx, len(theirs))] if nginx else [0] * len(theirs)
        nginx_part = ", ".join(f"`{host} A {a}` weight {w}" if w else f"`{host} A {a}` disabled"
                               for a, w in zip(theirs, weights, strict=True))
        mse_part = f"`{host} A {address}` weight {mse}" if mse else f"`{host} A {address}` disabled (or absent)"
        share = format_share(mse_share(mse, sum(weights)))
        state = "MSE record seen" if address in seen else "MSE record not seen yet"
        out.append(f"{host}: {mse_part}; {nginx_part} → MSE {share} (now: {state}, resolves to "
                   f"{', '.join(seen) or 'nothing'})")
    return out
