"""`help`, `status` and `history`: read-only verbs anyone in the channel may use."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from commands import dns, gates, grammar, health, slb
from commands.errors import ProviderError
from commands.grammar import Command
from commands.model import Migration
from commands.outcome import Outcome, Request
from commands.phases import Phase
from commands.render import history_text

if TYPE_CHECKING:
    from commands.engine import Engine

NOTHING_RUNNING = ("No migration is running in this channel. Start one with "
                   "`/migrate start cluster=ID gateway=ID` "
                   "(e.g. `/migrate start cluster=demo-cluster gateway=gw-demo`).")
READ_BACK_PHASES = frozenset({Phase.SWITCHED, Phase.SHIFTING, Phase.VERIFIED, Phase.CUT_OVER})


def help_(eng: Engine, request: Request, cmd: Command) -> Outcome:
    """`help VERB` or `help all` as asked; plain `help` fits the phase of this channel's migration."""
    if cmd.positional:
        return Outcome(grammar.help_text(cmd.positional), ephemeral=True, verb="help")
    m = eng.store.active_in_channel(request.channel)
    text = grammar.help_now(m.phase if m else None, pending=bool(m and m.pending_approval),
                            plan=str(m.plan.get("state", "")) if m else "")
    return Outcome(text, ephemeral=True, verb="help")


def status(eng: Engine, request: Request, cmd: Command) -> Outcome:
    """The status card; for a running migration the weights are read back (SLB: drift; DNS: what it serves)."""
    m = eng.store.active_in_channel(request.channel) or eng.store.latest_in_channel(request.channel)
    if m is None:
        return Outcome(NOTHING_RUNNING, ephemeral=True, verb="status")
    if m.method == "slb" and m.phase in READ_BACK_PHASES and m.intent is None:
        try:
            m = dataclasses.replace(m, observed=slb.read(eng.world, m, mse=m.mse_weight, nginx=m.nginx_weight))
        except ProviderError:
            pass  # the card then shows what the bot last set
    elif m.method == "dns" and m.phase in READ_BACK_PHASES and m.intent is None:
        try:
            m = dataclasses.replace(m, observed=dns.observe(eng.world, m, ttl=int(m.observed.get("ttl", 0))))
        except ProviderError:
            pass
    if m.phase in READ_BACK_PHASES and m.intent is None:
        m = dataclasses.replace(m, observed={**m.observed, "gates": gate_line(eng, m)})
    return Outcome(eng.status_text(m), migration=m, verb="status")


def gate_line(eng: Engine, m: Migration) -> str:
    """Every gate that applies, read now: `✓ backends 100% healthy (NGINX 100% healthy) · ...`."""
    return gates.summary(health.verdicts(eng.world, m, eng.policy.gates))


def history(eng: Engine, request: Request) -> Outcome:
    m = eng.store.active_in_channel(request.channel) or eng.store.latest_in_channel(request.channel)
    if m is None:
        return Outcome(NOTHING_RUNNING, ephemeral=True, verb="history")
    return Outcome(history_text(m, eng.store.events(m.id, limit=100)), migration=m, verb="history")
