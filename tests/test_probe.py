"""`check probe=yes`: two local HTTP servers stand in for MSE and NGINX; only differing paths are listed."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from commands.ports import Route
from providers.kube import probe


@contextmanager
def gateway(answer: Callable[[str, str], int]) -> Iterator[str]:
    """An HTTP server answering `answer(host, path)`; yields its `ip:port`."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(answer(self.headers.get("Host", ""), self.path))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def nginx(host: str, path: str) -> int:
    return 200 if host.endswith("example.com") else 404


def mse(host: str, path: str) -> int:
    if host == "shop.example.com" and path == "/":
        return 308  # an Ingress that relied on NGINX's default redirect the other way round
    return 404 if path.startswith("/legacy") else 200


def test_lists_only_the_paths_whose_status_differs() -> None:
    routes = [Route("shop.example.com", "/"), Route("api.example.com", "/v1"), Route("api.example.com", "/legacy"),
              Route("api.example.com", "/v1")]
    with gateway(mse) as mse_ip, gateway(nginx) as nginx_ip:
        diffs = probe(routes, mse_ip=mse_ip, nginx_ip=nginx_ip, concurrency=2, timeout=2)
    assert [d.line() for d in diffs] == ["shop.example.com/: MSE 308, NGINX 200",
                                         "api.example.com/legacy: MSE 404, NGINX 200"]


def test_an_address_that_does_not_answer_is_reported_not_raised() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"  # closed again: nothing listens there
    with gateway(nginx) as nginx_ip:
        (diff,) = probe([Route("a.example.com", "/")], mse_ip=dead, nginx_ip=nginx_ip, timeout=1)
    assert diff.mse.startswith("error:") and diff.nginx == "200"
