"""Signed requests only: Slack's v0 signature, a 5-minute window, and no second use of a signature.

Bolt's own RequestVerification checks the HMAC and the window; it is replaced by this subclass
because the built-in one logs the request body (which carries tokens) on failure, and because a
replayed request (same signature and timestamp within the window) must be refused as well:
each accepted signature is remembered in Redis for the length of the window.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis
from slack_bolt.middleware.request_verification import RequestVerification
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse

from bot.keys import BotKeys

log = logging.getLogger("migrate.bot.verify")
WINDOW_SECONDS = 5 * 60
#: A timestamp is accepted from 5 minutes in the past to 5 minutes in the future, so a signature
#: stays usable for 10 minutes: it is remembered for all of them, and a little more.
SEEN_TTL = 2 * WINDOW_SECONDS + 60


class SignedOnly(RequestVerification):
    """401 for unsigned, forged, stale or replayed requests; 503 if Redis cannot say."""

    def __init__(self, signing_secret: str, redis_client: redis.Redis, keys: BotKeys) -> None:
        super().__init__(signing_secret)
        self.redis, self.keys = redis_client, keys

    def process(self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]) -> BoltResponse:
        if req.mode == "socket_mode":
            return next()
        timestamp = req.headers.get("x-slack-request-timestamp", ["0"])[0]
        signature = req.headers.get("x-slack-signature", [""])[0]
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):  # `abc`, `1e9`, empty
            log.warning("refused a request whose timestamp is not a number")
            return self._build_error_response()
        if not self.verifier.is_valid(req.raw_body, timestamp, signature):
            log.warning("refused a request with a missing, wrong or stale signature", extra={"timestamp": timestamp})
            return self._build_error_response()
        try:
            first = self.redis.set(self.keys.seen(signature), timestamp, nx=True, ex=SEEN_TTL)
        except redis.RedisError:
            log.error("could not check the replay guard: Redis did not answer")
            return BoltResponse(status=503, body={"error": "unavailable"})
        if not first:
            log.warning("refused a replayed request (signature seen before)", extra={"timestamp": timestamp})
            return self._build_error_response()
        return next()
