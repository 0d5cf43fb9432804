"""`/migrate check probe=yes`: the same requests through MSE and NGINX (two local servers here)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from providers.kube.probe import probe
from tests.engine_helpers import make_harness


def _server(missing: set[str]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(404 if self.path in missing else 200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def gateways() -> Iterator[tuple[str, str]]:
    mse, nginx = _server({"/v2"}), _server(set())
    yield f"127.0.0.1:{mse.server_address[1]}", f"127.0.0.1:{nginx.server_address[1]}"
    mse.shutdown()
    nginx.shutdown()


def test_probe_lists_the_paths_that_answer_differently(redis_url: str, gateways: tuple[str, str]) -> None:
    mse, nginx = gateways
    h = make_harness(redis_url)
    with h.world.state._mutate() as data:
        data["gateways"]["gw-demo"]["slb_address"] = mse  # the MSE gateway answers on loopback in this test
    h.engine.prober = probe
    h.ok("alice", "/migrate start cluster=demo-cluster gateway=gw-demo")
    out = h.ok("alice", f"/migrate check probe=yes nginx={nginx}")
    assert "Probe: 1 of 6 paths answer differently through MSE and NGINX: api.example.com/v2: MSE 404, NGINX 200" \
        in out.text
    assert "api.example.com/v1" not in out.text
    report = out.files["route-check.md"]
    assert "api.example.com/v2: MSE 404, NGINX 200" in report.split("## Probe")[1]
    assert "--resolve api.example.com:80:" in report.split("## Test before switching")[1]


def test_probe_without_nginx_address_says_how(redis_url: str) -> None:
    h = make_harness(redis_url)
    h.engine.prober = probe
    h.ok("alice", "/migrate start cluster=demo-cluster gateway=gw-demo")
    out = h.ok("alice", "/migrate check probe=yes")
    assert "nginx=" in out.text
