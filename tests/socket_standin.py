"""A local stand-in for Slack's Socket Mode server, served with the `websockets` library.

The Web API stand-in's `apps.connections.open` hands out `ws://` URLs of this server. On each
connection it says `hello`, then sends envelopes (`slash_commands`, `interactive`, `events_api`)
and takes acknowledgements (`{"envelope_id": ...}`), as Slack's Socket Mode protocol describes
(https://api.slack.com/apis/socket-mode): an envelope not acknowledged is sent again, with
`retry_attempt` raised, on the next connection. `drop_after_next()` cuts the connection right
after the next envelope is sent, as a network drop would (no close frame), so its
acknowledgement can never arrive.

`SocketSender` speaks to the bot as SlackSender does over HTTP (same bodies), through envelopes.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import urllib.parse
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

from tests.slack_standin import Reply, SlackSender, SlackStandIn


class SocketStandIn:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.live: list[ServerConnection] = []
        self.connections = 0
        self.unacked: dict[str, dict[str, Any]] = {}
        self.sent: list[str] = []  # envelope ids, once per time sent
        self.acked: list[str] = []
        self._drop_next = False
        self.server: Server = serve(self._session, "127.0.0.1", 0)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> SocketStandIn:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()

    def url(self) -> str:
        """A fresh connection URL, as apps.connections.open returns (a ticket per call)."""
        port = self.server.socket.getsockname()[1]
        return f"ws://127.0.0.1:{port}/link/?ticket={next(self._ids)}&app_id=A0APP0001"

    def drop_after_next(self) -> None:
        self._drop_next = True

    def deliver(self, kind: str, payload: dict[str, Any]) -> str:
        """Send an envelope on the newest live connection (or keep it for the next); its id."""
        envelope = {"envelope_id": f"env-{next(self._ids)}", "type": kind, "payload": payload,
                    "accepts_response_payload": kind != "events_api", "retry_attempt": 0, "retry_reason": ""}
        with self._lock:
            self.unacked[envelope["envelope_id"]] = envelope
            conn = self.live[-1] if self.live else None
            drop, self._drop_next = self._drop_next and conn is not None, False
            if drop:
                self.live.remove(conn)  # type: ignore[arg-type]  # its acknowledgements no longer count
        if conn is not None:
            self._send(conn, envelope)
            if drop:
                conn.socket.shutdown(socket.SHUT_RDWR)
        return str(envelope["envelope_id"])

    def _send(self, conn: ServerConnection, envelope: dict[str, Any]) -> None:
        try:
            conn.send(json.dumps(envelope))
            with self._lock:
                self.sent.append(envelope["envelope_id"])
        except ConnectionClosed:
            pass

    def _session(self, conn: ServerConnection) -> None:
        conn.send(json.dumps({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0APP0001"},
                              "debug_info": {"host": "standin", "approximate_connection_time": 3600}}))
        with self._lock:
            self.connections += 1
            self.live.append(conn)
            again = list(self.unacked.values())
        for envelope in again:
            envelope["retry_attempt"] += 1
            envelope["retry_reason"] = "timeout"
            self._send(conn, envelope)
        try:
            for message in conn:
                data = json.loads(message)
                with self._lock:
                    eid = data.get("envelope_id") if isinstance(data, dict) else None
                    if eid in self.unacked and conn in self.live:
                        del self.unacked[eid]
                        self.acked.append(eid)
        except (ConnectionClosed, OSError, ValueError):
            pass
        finally:
            with self._lock:
                if conn in self.live:
                    self.live.remove(conn)


class SocketSender:
    """Slash commands and taps as Socket Mode envelopes; a Reply of 200 once handed to the socket."""

    def __init__(self, socket_standin: SocketStandIn, standin: SlackStandIn, *, channel: str = "C0MIGRATE1") -> None:
        self.socket, self.http = socket_standin, SlackSender("", standin, channel=channel)

    def command(self, user: str, text: str, **_: Any) -> Reply:
        form = {k: v[0] for k, v in urllib.parse.parse_qs(self.http.command_body(user, text)).items()}
        return Reply(200, self.socket.deliver("slash_commands", form), {})

    def tap(self, user: str, message: dict[str, Any], action_id: str, **_: Any) -> Reply:
        payload = json.loads(urllib.parse.parse_qs(self.http.tap_body(user, message, action_id))["payload"][0])
        return Reply(200, self.socket.deliver("interactive", payload), {})
