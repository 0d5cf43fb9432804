"""gunicorn's threaded worker, with a front buffer: a request reaches a thread only once all of it is here.

Plain gthread hands a connection to a thread as soon as its first byte arrives, and the thread
then blocks reading the rest; 16 clients sending a byte every 2 s held every thread, and
`/healthz` and a signed rollback waited behind them. Here the worker's own event loop (the one
that already accepts and keeps connections alive) reads each request without blocking, headers
and a body of the announced Content-Length, within READ_DEADLINE_S, and only a complete request
goes to a thread. A slow client costs a socket and a small buffer, never a thread.

Refused before any of it reaches the app: headers over MAX_HEADER (431), a body announced over
bot.web.MAX_BODY (413) or chunked (411, Slack always announces a length), a body over SMALL_BODY
while BUFFER_BUDGET bytes of bodies are held (503), a request not complete in time (408).
Written against gunicorn 27's gthread worker (pinned in pyproject.toml).
"""

from __future__ import annotations

import errno
import logging
import selectors
import time
from collections import deque
from functools import partial
from typing import Any

from gunicorn import http
from gunicorn.workers.gthread import TConn, ThreadWorker

from bot.web import MAX_BODY

log = logging.getLogger("migrate.bot.edge")
#: Seconds a client has to send one whole request (Slack sends it in one go, well under a second).
READ_DEADLINE_S = 10.0
MAX_HEADER = 16 * 1024
#: Bytes of large request bodies one worker process takes on at once, complete or still arriving.
BUFFER_BUDGET = 8 * MAX_BODY
#: A body this small is never refused for the budget: Slack's own payloads are tens of kilobytes,
#: so clients announcing big bodies they never send cannot crowd out a signed rollback.
SMALL_BODY = 64 * 1024
RECV_BYTES = 64 * 1024


class Pending:
    """One request being read: its bytes so far, its deadline, the body bytes it reserved."""

    def __init__(self, conn: TConn, deadline: float) -> None:
        self.conn, self.deadline = conn, deadline
        self.data = bytearray()
        self.header_end = -1
        self.length = 0

    def complete(self) -> bool:
        return self.header_end >= 0 and len(self.data) >= self.header_end + self.length


def announced(head: bytes) -> tuple[str, int]:
    """('', Content-Length) for a head we accept, or (status, 0) for one refused on its face."""
    length, chunked = "", False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            if length and length != value.strip().decode("latin-1"):
                return "400 Bad Request", 0
            length = value.strip().decode("latin-1")
        elif name == b"transfer-encoding":
            chunked = True
    if chunked:
        return "411 Length Required", 0
    if not length:
        return "", 0
    if not (length.isascii() and length.isdigit()):  # str.isdigit also takes '²', which int() refuses
        return "400 Bad Request", 0
    if len(length.lstrip("0")) > len(str(MAX_BODY)) or int(length) > MAX_BODY:  # int() refuses 4,300+ digits
        return "413 Content Too Large", 0
    return "", int(length)


class BufferedThreadWorker(ThreadWorker):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.buffering: deque[Pending] = deque()
        self.reserved = 0

    # ---- where a connection would go to a thread, it is buffered first --------------------------

    def accept(self, listener: Any) -> None:
        if self.cfg.is_ssl:
            super().accept(listener)
            return
        try:
            client_sock, client_addr = listener.accept()
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        self.read_request(TConn(self.cfg, client_sock, client_addr, listener.getsockname()))

    def on_client_socket_readable(self, conn: TConn, client: Any) -> None:
        """A kept-alive connection's next request: buffered like a new one."""
        if self.cfg.is_ssl:
            super().on_client_socket_readable(conn, client)
            return
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self.read_request(conn)

    def enqueue_req(self, conn: TConn) -> None:
        """gthread calls this for a request to serve; ours arrive whole (`hand_over`). It also calls it
        for a kept-alive connection whose client sent more behind its last request (pipelined):
        those bytes are buffered like any others, so a slow second request holds no thread either."""
        if getattr(conn, "whole", False) or self.cfg.is_ssl:
            conn.whole = False
            super().enqueue_req(conn)
            return
        self.read_request(conn, conn.parser.unreader.take_buffered() if conn.parser is not None else b"")

    def read_request(self, conn: TConn, already: bytes = b"") -> None:
        pending = Pending(conn, time.monotonic() + READ_DEADLINE_S)
        conn.sock.setblocking(False)
        self.buffering.append(pending)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_bytes, pending))
        if already:
            self.feed(pending, already)

    def on_bytes(self, pending: Pending, sock: Any) -> None:
        try:
            data = sock.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.drop(pending)
            return
        self.feed(pending, data)

    def feed(self, pending: Pending, data: bytes) -> None:
        pending.data += data
        if pending.header_end < 0:
            end = pending.data.find(b"\r\n\r\n")
            if end < 0:
                if len(pending.data) > MAX_HEADER:
                    self.refuse(pending, "431 Request Header Fields Too Large")
                return
            try:
                refusal, length = announced(bytes(pending.data[:end]))
            except Exception:  # in the worker's event loop, an error would end the process and all it holds
                log.exception("could not read a request head")
                refusal, length = "400 Bad Request", 0
            if refusal:
                self.refuse(pending, refusal)
                return
            if length > SMALL_BODY and self.reserved + length > BUFFER_BUDGET:
                self.refuse(pending, "503 Service Unavailable")
                return
            pending.header_end, pending.length = end + 4, length
            self.reserved += length
        if pending.complete():
            self.hand_over(pending)

    def hand_over(self, pending: Pending) -> None:
        """The whole request is here: a thread parses it from memory and never waits on the client."""
        self.forget(pending, release=False)  # its body stays reserved until the request is finished
        conn = pending.conn
        conn.sock.setblocking(True)
        conn.parser = http.get_parser(self.cfg, conn.sock, conn.client)
        conn.parser.unreader.unread(bytes(pending.data))
        conn.initialized = conn.data_ready = conn.whole = True
        conn.reserved = pending.length
        self.enqueue_req(conn)

    def finish_request(self, conn: TConn, fs: Any) -> None:
        self.reserved -= getattr(conn, "reserved", 0)
        conn.reserved = 0
        super().finish_request(conn, fs)

    # ---- endings ---------------------------------------------------------------------------------

    def forget(self, pending: Pending, *, release: bool = True) -> None:
        self.buffering.remove(pending)
        try:
            self.poller.unregister(pending.conn.sock)
        except (KeyError, ValueError, OSError):
            pass
        if release and pending.header_end >= 0:
            self.reserved -= pending.length

    def drop(self, pending: Pending) -> None:
        self.forget(pending)
        self.nr_conns -= 1
        pending.conn.close()

    def refuse(self, pending: Pending, status: str) -> None:
        """Answer on the spot and close; best effort, the socket is not waited on."""
        if status.startswith(("413", "431")):
            log.warning("refused a request at the edge", extra={"status": status[:3]})
        body = status.partition(" ")[2].lower().encode() + b"\n"
        head = (f"HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
        try:
            pending.conn.sock.send(head + body)
        except OSError:
            pass
        self.drop(pending)

    def murder_pending(self) -> None:
        """Each turn of the loop: also end the requests past their deadline."""
        super().murder_pending()
        now = time.monotonic()
        for pending in [p for p in self.buffering if p.deadline <= now]:
            self.refuse(pending, "408 Request Timeout")
