"""The loop behind timed work: every few seconds, the replica holding the lease does one round.

Only one replica does it: each round first takes or renews a lease in Redis (SET NX PX, renewed
by its holder only); a replica that dies stops renewing, and another takes the lease once it
expires. What a round does lives in bot/timed.py, where each event is also claimed once, so
the lease is about not wasting work and the once-keys about never doing it twice. Everything
is drawn in Slack like any other outcome (approval message edited, card redrawn, a thread line).
"""

from __future__ import annotations

import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable
from functools import partial

import redis
from slack_sdk import WebClient

from bot.boundary import guarded
from bot.deps import Deps
from bot.logging import bound
from bot.publish import Publisher, log_reply
from bot.timed import Notice, TimedWork
from commands.outcome import Outcome

log = logging.getLogger("migrate.bot.housekeeper")
INTERVAL_S = 10.0
#: Plans are ticked this often between full rounds: a gate check falls due at its own interval,
#: and a breach should not wait up to a whole round for its rollback.
PLAN_TICK_S = 1.0
#: How often every replica re-reads the user groups of its roles (not only the lease holder: any
#: replica's job worker may carry out a command).
ROLES_REFRESH_S = 60.0
LEASE_ROUNDS = 3  # the lease outlives two missed rounds before another replica takes over

# KEYS[1] = lease key; ARGV[1] = holder; ARGV[2] = ttl ms. Takes a free lease or renews our own.
_TAKE_OR_RENEW = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""


class Housekeeper:
    def __init__(self, deps: Deps, client: WebClient, work: TimedWork, *, interval_s: float = INTERVAL_S,
                 refresh_roles: Callable[[], None] | None = None,
                 groups_changed: Callable[[], bool] = lambda: False) -> None:
        """`groups_changed` says a user-group event came in (bot/group_events.py): roles are re-read then too."""
        self.deps, self.client, self.work, self.interval_s = deps, client, work, interval_s
        self.refresh_roles, self.groups_changed = refresh_roles, groups_changed
        self.lease_ms = max(1000, int(interval_s * LEASE_ROUNDS * 1000))
        self.holder = f"{socket.gethostname()}:{secrets.token_hex(4)}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="migrate-housekeeper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def leader(self) -> bool:
        try:
            return bool(self.deps.redis.eval(_TAKE_OR_RENEW, 1, self.deps.keys.lease(), self.holder, self.lease_ms))
        except redis.RedisError:
            log.warning("could not take the housekeeping lease: Redis did not answer")
            return False

    def round(self) -> None:
        """One pass as lease holder: expire approvals, tick the plans, post notices, then finish steps a
        dead replica left."""
        if not self.leader():
            return
        self._draw(self.work.expire, "expire")
        self._draw(self.work.plans, "auto")
        self._notify()
        self._draw(self.work.resume_stale, "reconcile")

    def _draw(self, work: Callable[[], list[Outcome]], verb: str) -> None:
        def run() -> None:
            publisher = Publisher(self.client, self.deps)
            for outcome in work():
                with bound(migration=outcome.migration.id if outcome.migration else ""):
                    self.deps.metrics.command(outcome.verb or verb, "ok" if outcome.ok else "refused")
                    guarded(self.deps, log_reply, partial(publisher.publish, outcome, reply=log_reply), verb=verb)

        with bound(verb=verb, user="bot"):
            guarded(self.deps, log_reply, run, verb=verb)

    def _notify(self) -> None:
        def run() -> None:
            publisher = Publisher(self.client, self.deps)
            for notice in self.work.notices():
                with bound(migration=notice.migration.id):
                    guarded(self.deps, log_reply, partial(self._post, publisher, notice), verb="notice")

        with bound(verb="notice", user="bot"):
            guarded(self.deps, log_reply, run, verb="notice")

    def _post(self, publisher: Publisher, notice: Notice) -> None:
        card_ts = publisher.ensure_card(notice.migration)  # also redraws the card ("next increase: now")
        publisher.thread(notice.migration, card_ts, notice.text)
        log.info("notice posted", extra={"text": notice.text[:200]})

    def tick_plans(self) -> None:
        """Between rounds: only the plans (a read of the active migrations when nothing is due)."""
        if self.leader():
            self._draw(self.work.plans, "auto")

    def _loop(self) -> None:
        last_round, last_roles = 0.0, time.monotonic()
        while not self._stop.is_set():
            if self.work.engine.unrecorded:  # our own steps, lease or not: recorded within a tick of Redis
                self._draw(self.work.catch_up, "reconcile")
            due = time.monotonic() - last_roles >= ROLES_REFRESH_S
            if self.refresh_roles is not None and (self.groups_changed() or due):
                self.refresh_roles()
                last_roles = time.monotonic()
            if time.monotonic() - last_round >= self.interval_s:
                self.round()
                last_round = time.monotonic()
            else:
                self.tick_plans()
            self._stop.wait(min(PLAN_TICK_S, self.interval_s))
