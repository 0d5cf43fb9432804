"""Signed requests as prepared bytes on a raw socket: the cheapest client Python can be.

Under a burst of hundreds of requests, urllib's per-request work (and the GIL it holds)
would show up as the bot's latency. Here the request is built and signed before the clock
starts; the timed part is connect, send and read until the server closes the connection.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from tests.slack_standin import SIGNING_SECRET, sign

EVENTS = "/slack/events"
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Prepared:
    host: str
    port: int
    data: bytes


def prepare(url: str, body: str, *, timestamp: int | None = None, secret: str = SIGNING_SECRET) -> Prepared:
    """A signed POST of `body` (a form: a slash command or a block_actions payload) to /slack/events."""
    parts = urlsplit(url)
    ts = int(time.time()) if timestamp is None else timestamp
    raw = body.encode()
    head = (f"POST {EVENTS} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: {FORM}\r\n"
            f"Content-Length: {len(raw)}\r\nX-Slack-Request-Timestamp: {ts}\r\n"
            f"X-Slack-Signature: {sign(body, timestamp=ts, secret=secret)}\r\nConnection: close\r\n\r\n")
    return Prepared(parts.hostname or "127.0.0.1", parts.port or 80, head.encode() + raw)


def prepare_get(url: str, path: str) -> Prepared:
    """An unsigned GET (a probe): the server's own floor, with no Slack handling at all."""
    parts = urlsplit(url)
    head = f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n"
    return Prepared(parts.hostname or "127.0.0.1", parts.port or 80, head.encode())


def send(req: Prepared, timeout: float = 30.0) -> int:
    """Send and read the whole answer; its HTTP status (0 when none came)."""
    with socket.create_connection((req.host, req.port), timeout=timeout) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(req.data)
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    first = b"".join(chunks).split(b"\r\n", 1)[0].split()
    return int(first[1]) if len(first) > 1 and first[1].isdigit() else 0


def timed(req: Prepared) -> tuple[float, float, int]:
    """(start, seconds, status) of one request; start is time.perf_counter() just before connecting."""
    t0 = time.perf_counter()
    status = send(req)
    return t0, time.perf_counter() - t0, status


def burst(reqs: list[Prepared], *, timeout: float = 60.0) -> tuple[float, list[tuple[float, int]]]:
    """Send every request at once (one thread each, released together): the release time and
    (seconds, status) per request; a request that failed counts as status 0."""
    results: list[tuple[float, int]] = [(float("nan"), 0)] * len(reqs)
    gate = threading.Barrier(len(reqs) + 1)

    def one(i: int) -> None:
        try:
            gate.wait(timeout)
            t0 = time.perf_counter()
            status = send(reqs[i], timeout=timeout)
            results[i] = (time.perf_counter() - t0, status)
        except (OSError, threading.BrokenBarrierError):
            results[i] = (float("nan"), 0)

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(len(reqs))]
    for t in threads:
        t.start()
    gate.wait(timeout)
    released = time.perf_counter()
    deadline = released + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.perf_counter()))
    return released, results
