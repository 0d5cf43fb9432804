"""A real Prometheus for tests, a fake app it scrapes, and a stand-in for what Prometheus cannot show.

`GatewayExporter` plays both gateways at once: MSE's Envoy metrics and the NGINX Ingress
Controller's, advanced on every scrape by the time since the last one at a request rate, error
rate and latency the test sets, so `rate()` and `histogram_quantile()` see live traffic.
`running_prometheus` starts the `prometheus` binary (Debian package) on a free port with a
throwaway config and TSDB, scraping every second; `make_prometheus_fixture` wraps both as a
pytest fixture. `PrometheusStandIn` records request headers and answers whatever a test sets
(a token check, a slow or hostile server), which a real Prometheus cannot be made to do.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import pytest

Scope = Literal["session", "package", "module", "class", "function"]
SKIP_REASON = "prometheus is not installed: apt-get install prometheus (Debian) — .ci/run installs it"
#: Envoy's request-time histogram is in milliseconds, NGINX's request duration in seconds.
MS_BUCKETS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class _Side:
    """One gateway's traffic: what the test set, and the counters scraped so far."""

    rps: float = 50.0
    error_rate: float = 0.0
    p99_ms: float = 180.0
    total: float = 0.0
    errors: float = 0.0
    buckets: dict[float, float] = field(default_factory=lambda: dict.fromkeys(MS_BUCKETS, 0.0))
    latency_sum_ms: float = 0.0

    def advance(self, seconds: float) -> None:
        # Every request of the interval takes p99_ms, so the p99 lands in the bucket holding p99_ms.
        added = self.rps * seconds
        self.total += added
        self.errors += added * self.error_rate
        self.latency_sum_ms += added * self.p99_ms
        for le in self.buckets:
            if self.p99_ms <= le:
                self.buckets[le] += added


class GatewayExporter:
    """The fake app Prometheus scrapes: `/metrics` in the text exposition format, written by hand."""

    def __init__(self) -> None:
        self.mse, self.nginx = _Side(), _Side()
        self.scrapes = 0
        self._last: float | None = None
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.address = f"127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def set_mse(self, *, error_rate: float = 0.0, p99_ms: float = 180.0, rps: float = 50.0) -> None:
        with self._lock:
            self.mse.error_rate, self.mse.p99_ms, self.mse.rps = error_rate, p99_ms, rps

    def set_nginx(self, *, error_rate: float = 0.0, p99_ms: float = 180.0, rps: float = 50.0) -> None:
        with self._lock:
            self.nginx.error_rate, self.nginx.p99_ms, self.nginx.rps = error_rate, p99_ms, rps

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def render(self) -> str:
        with self._lock:
            now = time.monotonic()
            for side in (self.mse, self.nginx):
                side.advance(0.0 if self._last is None else now - self._last)
            self._last, self.scrapes = now, self.scrapes + 1
            return "\n".join([*_envoy(self.mse), *_nginx(self.nginx)]) + "\n"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = exporter.render().encode() if self.path.startswith("/metrics") else b"not found\n"
                self.send_response(200 if self.path.startswith("/metrics") else 404)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


def _envoy(s: _Side) -> list[str]:
    lines = ["# TYPE envoy_http_downstream_rq_total counter", f"envoy_http_downstream_rq_total {s.total}",
             "# TYPE envoy_http_downstream_rq_xx counter",
             f'envoy_http_downstream_rq_xx{{envoy_response_code_class="2"}} {s.total - s.errors}',
             f'envoy_http_downstream_rq_xx{{envoy_response_code_class="5"}} {s.errors}',
             "# TYPE envoy_http_downstream_rq_time histogram"]
    lines += [f'envoy_http_downstream_rq_time_bucket{{le="{le}"}} {n}' for le, n in s.buckets.items()]
    return [*lines, f'envoy_http_downstream_rq_time_bucket{{le="+Inf"}} {s.total}',
            f"envoy_http_downstream_rq_time_sum {s.latency_sum_ms}", f"envoy_http_downstream_rq_time_count {s.total}"]


def _nginx(s: _Side) -> list[str]:
    name = "nginx_ingress_controller_request_duration_seconds"
    lines = ["# TYPE nginx_ingress_controller_requests counter",
             f'nginx_ingress_controller_requests{{ingress="demo",status="200"}} {s.total - s.errors}',
             f'nginx_ingress_controller_requests{{ingress="demo",status="503"}} {s.errors}',
             f"# TYPE {name} histogram"]
    lines += [f'{name}_bucket{{ingress="demo",le="{le / 1000:g}"}} {n}' for le, n in s.buckets.items()]
    return [*lines, f'{name}_bucket{{ingress="demo",le="+Inf"}} {s.total}',
            f'{name}_sum{{ingress="demo"}} {s.latency_sum_ms / 1000}', f'{name}_count{{ingress="demo"}} {s.total}']


def prometheus_binary() -> str | None:
    found = os.environ.get("PROMETHEUS_BIN") or shutil.which("prometheus")
    return found or ("/usr/bin/prometheus" if os.access("/usr/bin/prometheus", os.X_OK) else None)


@contextmanager
def running_prometheus(targets: list[str], *, seconds: float = 20.0) -> Iterator[str]:
    """A private Prometheus scraping `targets` every second; yields its base URL. Skips without the binary."""
    binary = prometheus_binary()
    if not binary:
        pytest.skip(SKIP_REASON)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="migrate-prometheus-") as workdir:
        config = os.path.join(workdir, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}\n"
                    f"scrape_configs:\n- job_name: gateways\n  static_configs:\n  - targets: {json.dumps(targets)}\n")
        log = open(os.path.join(workdir, "prometheus.log"), "w+")  # noqa: SIM115 (closed below, read on failure)
        proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir}/data",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(url, proc, log, seconds)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            log.seek(0)
            raise RuntimeError(f"prometheus did not become ready at {url}: {log.read()[-2000:]}")
        time.sleep(0.05)


@dataclass
class LivePrometheus:
    url: str
    exporter: GatewayExporter


def make_prometheus_fixture(scope: Scope = "module") -> Any:
    """A fixture: one exporter and one Prometheus scraping it, shared at `scope`, stopped after."""

    @pytest.fixture(scope=scope)
    def live_prometheus() -> Iterator[LivePrometheus]:
        exporter = GatewayExporter()
        try:
            with running_prometheus([exporter.address]) as url:
                yield LivePrometheus(url, exporter)
        finally:
            exporter.close()

    return live_prometheus


class PrometheusStandIn:
    """Answers /api/v1/query with `status` and `body` after `delay` seconds; records each request's headers."""

    def __init__(self, *, status: int = 200, body: Any = None, delay: float = 0.0) -> None:
        self.status, self.delay = status, delay
        self.body = body if body is not None else {"status": "success", "data": {
            "resultType": "vector", "result": [{"metric": {}, "value": [time.time(), "42.5"]}]}}
        self.headers: list[dict[str, str]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                standin.headers.append(dict(self.headers.items()))
                time.sleep(standin.delay)
                raw = standin.body if isinstance(standin.body, str) else json.dumps(standin.body)
                body = raw.replace("{authorization}", self.headers.get("Authorization", "")).encode()
                try:
                    self.send_response(standin.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up waiting (the timeout test)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler
