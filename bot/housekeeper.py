"""Timed work: expire approvals every ~10 s and, once, reconcile interrupted steps.

Only one replica does it: each round first takes or renews a lease in Redis (SET NX PX, renewed
by its holder only). The replica that first holds the lease reconciles; every expiry is then
drawn in Slack like any other outcome (approval message edited, card redrawn, a thread line).
"""

from __future__ import annotations

import logging
import secrets
import socket
import threading
from collections.abc import Callable

import redis
from slack_sdk import WebClient

from bot.boundary import guarded
from bot.deps import Deps
from bot.logging import bound
from bot.publish import Publisher, log_reply
from commands.outcome import Outcome

log = logging.getLogger("migrate.bot.housekeeper")
INTERVAL_S = 10.0
LEASE_MS = 30_000

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
    def __init__(self, deps: Deps, client: WebClient, *, interval_s: float = INTERVAL_S) -> None:
        self.deps, self.client, self.interval_s = deps, client, interval_s
        self.holder = f"{socket.gethostname()}:{secrets.token_hex(4)}"
        self.reconciled = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="migrate-housekeeper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def leader(self) -> bool:
        try:
            return bool(self.deps.redis.eval(_TAKE_OR_RENEW, 1, self.deps.keys.lease(), self.holder, LEASE_MS))
        except redis.RedisError:
            log.warning("could not take the housekeeping lease: Redis did not answer")
            return False

    def round(self) -> None:
        """One pass: reconcile (first time as leader), then expire what is due."""
        if not self.leader():
            return
        if not self.reconciled:
            self._draw(self.deps.engine.reconcile, "reconcile")
            self.reconciled = True
        self._draw(self.deps.engine.expire_due, "expire")

    def _draw(self, work: Callable[[], list[Outcome]], verb: str) -> None:
        def run() -> None:
            outcomes = work()
            publisher = Publisher(self.client, self.deps)
            for outcome in outcomes:
                with bound(migration=outcome.migration.id if outcome.migration else ""):
                    log.info("timed work", extra={"text": outcome.text[:200]})
                    self.deps.metrics.command(outcome.verb or verb, "ok" if outcome.ok else "refused")
                    guarded(self.deps, log_reply, lambda o=outcome: publisher.publish(o, reply=log_reply), verb=verb)

        with bound(verb=verb, user="bot"):
            guarded(self.deps, log_reply, run, verb=verb)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.round()
            self._stop.wait(self.interval_s)
