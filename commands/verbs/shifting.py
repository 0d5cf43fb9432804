"""`weight` and `rollback`: step 4c. Increases wait for the dwell; decreases and rollback never wait."""

from __future__ import annotations

from typing import TYPE_CHECKING

from commands import grammar
from commands.errors import NotAllowed, UserError
from commands.grammar import Command
from commands.model import Migration
from commands.outcome import Outcome, Request
from commands.phases import transition_for
from commands.policy import dwell_left, format_duration
from commands.render import clock_time, weights_line
from commands.traffic import Weights, is_increase, weights_for_share

if TYPE_CHECKING:
    from commands.engine import Engine

NGINX_FLOOR = 1  # below this the NGINX side is gone: that is the cutover, not a weight step


def target_weights(m: Migration, cmd: Command) -> Weights:
    value, is_share = grammar.parse_weight(cmd.positional)
    if is_share:
        if value >= 100:
            raise UserError("100% is the cutover, not a weight step: `/migrate verify`, then `/migrate cutover`.")
        return weights_for_share(value, nginx_floor=NGINX_FLOOR)
    return Weights(mse=value, nginx=m.nginx_weight if m.nginx_weight >= NGINX_FLOOR else 100)


def weight(eng: Engine, m: Migration, request: Request, cmd: Command) -> Outcome:
    t = transition_for("weight", m.phase)
    target = target_weights(m, cmd)
    if target == m.weights and m.intent is None:
        return eng.reply(m, f"Nothing to change: {weights_line(m)}.", verb="weight")
    if is_increase(m.weights, target):
        left = dwell_left(last_change_at=m.last_weight_change_at, now=eng.now(), dwell_seconds=eng.policy.dwell_seconds)
        if left > 0:
            raise NotAllowed(
                f"Too soon to increase: wait {format_duration(left)} (until {clock_time(eng.now() + left)}) so the "
                "last change can take effect and be watched. Decreases and `/migrate rollback` are never delayed.")
    action = f"set {target.describe()}"
    m2, summary = eng.run_step(m, op="weights", verb="weight", user=request.user, then=t.target,
                               args={"mse": target.mse, "nginx": target.nginx, "action": action})
    return eng.reply(m2, f"{request.user} {action}. {summary}.", verb="weight")


def rollback(eng: Engine, m: Migration, request: Request, cmd: Command) -> Outcome:
    """MSE weight 0 at once; it takes over from any weight step still running."""
    t = transition_for("rollback", m.phase)
    superseding = m.intent is not None and m.intent.op == "weights"
    m2, summary = eng.run_step(m, op="weights", verb="rollback", user=request.user, then=t.target,
                               args={"mse": 0, "nginx": 100, "action": "rolled back: MSE weight 0"},
                               supersede=superseding)
    return eng.reply(m2, f"Rolled back by {request.user}: all traffic on NGINX. {summary}. "
                         "Shifting may resume with `/migrate weight N`.", verb="rollback")
