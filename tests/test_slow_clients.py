"""Slow clients cannot starve the edge: 50 connections trickling a byte every 2 s, and still
`/healthz` answers and a signed rollback is carried out (bot/edge_worker.py).

The attackers are real sockets against the real `serve` process tree; each one that is cut off
(408 at the read deadline) connects again at once, so the pressure lasts the whole test.
"""

from __future__ import annotations

import socket
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from bot.actions import ActionId
from tests.test_bot_http import ALICE, BOB, Bot, bot, start_switched, step  # noqa: F401 (fixture)

SLOW_CLIENTS = 50
BYTE_EVERY_S = 2.0
SERVED_AT_ALL_S = 30


#: What each slow client sends at once, then what it trickles a byte at a time.
ATTACKS = {
    "new-connection": (b"", b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nX-Pad: " + b"a" * 99),
    "behind-a-whole-request": (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nP", b"OST /slack/events HTTP/1.1\r\n"),
    "big-bodies-never-sent": (b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n",
                              b"a" * 100),
}


@contextmanager
def slow_clients(url: str, count: int, attack: str) -> Iterator[list[int]]:
    """`count` connections, each sending the attack's head at once, then a byte every BYTE_EVERY_S;
    yields the count of connections made so far (a list, so the caller sees it grow)."""
    parsed = urllib.parse.urlsplit(url)
    stop = threading.Event()
    made = [0]
    head, request = ATTACKS[attack]

    def one() -> None:
        while not stop.is_set():
            try:
                with socket.create_connection((parsed.hostname, parsed.port), timeout=30) as sock:
                    made[0] += 1
                    sock.sendall(head)
                    for byte in request:
                        sock.sendall(bytes([byte]))
                        if stop.wait(BYTE_EVERY_S):
                            return
            except OSError:
                stop.wait(0.2)  # cut off: connect again

    threads = [threading.Thread(target=one, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    try:
        yield made
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_fifty_slow_clients_do_not_stop_healthz_or_a_signed_rollback(bot: Bot, attack: str) -> None:  # noqa: F811
    card = start_switched(bot)
    bot.tap(ALICE, card, step(card, 5))
    bot.card_says("MSE weight 5 ·")
    with slow_clients(bot.url, SLOW_CLIENTS, attack) as made:
        bot.slack.wait_for(lambda: made[0] >= SLOW_CLIENTS, "every slow client to be connected")
        time.sleep(3 * BYTE_EVERY_S)  # each has sent a few bytes and holds on
        assert health(bot.url) == 200
        bot.tap(BOB, bot.card(), ActionId.ROLLBACK)
        bot.card_says("MSE weight 0 ·")
        assert health(bot.url) == 200


def health(url: str) -> int:
    """/healthz's status, waiting as long as it takes up to a generous deadline ("served at all")."""
    with urllib.request.urlopen(url + "/healthz", timeout=SERVED_AT_ALL_S) as resp:
        return int(resp.status)


def raw_exchange(url: str, data: bytes, *, timeout: float = SERVED_AT_ALL_S) -> bytes:
    """Send `data` on a fresh connection and read whatever comes back until the server closes it."""
    parsed = urllib.parse.urlsplit(url)
    with socket.create_connection((parsed.hostname, parsed.port), timeout=timeout) as sock:
        sock.sendall(data)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass  # closed while bytes we sent were unread: what came before still counts
        return answer


def test_a_request_that_never_finishes_is_cut_off_at_the_read_deadline(bot: Bot) -> None:  # noqa: F811
    half = b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"a" * 10
    assert raw_exchange(bot.url, half).startswith(b"HTTP/1.1 408 ")
    assert health(bot.url) == 200


@pytest.mark.parametrize(("head", "status"), [
    (b"Content-Length: 5\r\nContent-Length: 6", b"400"), (b"Transfer-Encoding: chunked", b"411"),
    (b"Content-Length: -1", b"400"), (b"Content-Length: 99999999999999999999", b"413"),
    (b"X-Pad: " + b"a" * 20_000, b"431"),
    # a digit str.isdigit takes and int() refuses, and more digits than int() converts: each was a
    # ValueError in the worker's event loop, which ended the web worker process and all it held
    (b"Content-Length: \xb2", b"400"), (b"Content-Length: " + b"9" * 5000, b"413"),
])
def test_odd_request_heads_are_refused_at_the_edge_not_with_a_5xx(bot: Bot, head: bytes,  # noqa: F811
                                                                  status: bytes) -> None:
    answer = raw_exchange(bot.url, b"POST /slack/events HTTP/1.1\r\nHost: x\r\n" + head + b"\r\n\r\nhello")
    assert answer.split(b" ")[1] == status, answer[:200]
    assert health(bot.url) == 200
