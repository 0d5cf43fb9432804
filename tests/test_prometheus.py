"""`PrometheusMetrics` against a real Prometheus scraping a fake app that plays both gateways.

The gate templates are read as a migration would read them; injected errors must show up as a
lower success rate within a few scrapes. What a real Prometheus cannot be made to do (check a
token, hang, echo a secret) is played by a local stand-in.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from commands.errors import ProviderError
from commands.gates import TEMPLATES
from providers.prometheus import PrometheusMetrics, from_config
from tests.prometheus_server import LivePrometheus, PrometheusStandIn, free_port, make_prometheus_fixture

live_prometheus = make_prometheus_fixture("module")
MSE, NGINX = 0, 1
TOKEN = "s3cret-token-value"


def query(name: str, side: int) -> str:
    return TEMPLATES[name][side].replace("{window}", "1m")


def poll(read: Callable[[], float | None], ok: Callable[[float | None], bool], seconds: float = 15.0) -> float | None:
    """Read until `ok` holds or the deadline passes; returns the last reading either way."""
    deadline = time.monotonic() + seconds
    while True:
        got = read()
        if ok(got) or time.monotonic() > deadline:
            return got
        time.sleep(0.25)


@pytest.fixture(scope="module")
def warm(live_prometheus: LivePrometheus) -> Iterator[LivePrometheus]:
    """The shared Prometheus once it holds three scrapes of traffic, so rate() has data."""
    metrics = PrometheusMetrics(live_prometheus.url)
    samples = poll(lambda: metrics.value(promql="count_over_time(envoy_http_downstream_rq_total[1m])"),
                   lambda v: v is not None and v >= 3)
    assert samples is not None and samples >= 3, f"Prometheus never held 3 scrapes (got {samples})"
    yield live_prometheus


@pytest.mark.parametrize("side", [MSE, NGINX], ids=["mse", "nginx"])
def test_default_gate_queries_read_the_gateways_traffic(warm: LivePrometheus, side: int) -> None:
    metrics = PrometheusMetrics(warm.url)
    assert metrics.value(promql=query("success_rate", side)) == pytest.approx(100.0)
    # Every request takes 180 ms: the p99 falls inside the (100, 250] ms bucket.
    p99 = metrics.value(promql=query("p99_latency", side))
    assert p99 is not None and 100 < p99 <= 250


def test_injected_mse_errors_lower_its_success_rate_only(warm: LivePrometheus) -> None:
    metrics = PrometheusMetrics(warm.url)
    warm.exporter.set_mse(error_rate=0.2)
    try:
        mse = poll(lambda: metrics.value(promql=query("success_rate", MSE)), lambda v: v is not None and v < 99, 8)
        assert mse is not None and 80 <= mse < 99
        assert metrics.value(promql=query("success_rate", NGINX)) == pytest.approx(100.0)
    finally:
        warm.exporter.set_mse()


def test_instant_query_shapes(warm: LivePrometheus) -> None:
    metrics = PrometheusMetrics(warm.url)
    assert metrics.value(promql='envoy_http_downstream_rq_total{job="no-such-job"}') is None
    assert metrics.value(promql="1 + 1") == 2.0  # a scalar result
    assert metrics.value(promql="0 / 0") is None  # NaN: no reading, not a number to compare
    with pytest.raises(ProviderError) as err:
        metrics.value(promql="envoy_http_downstream_rq_total[1m]")
    assert err.value.code == "PrometheusBadQuery" and "range vector" in err.value.meaning


def test_a_bad_query_says_what_prometheus_said(live_prometheus: LivePrometheus) -> None:
    promql = "sum(rate(envoy_http_downstream_rq_total[1m])" + " " * 200 + "+ 1"
    with pytest.raises(ProviderError) as err:
        PrometheusMetrics(live_prometheus.url).value(promql=promql)
    e = err.value
    assert (e.code, e.temporary) == ("PrometheusBadQuery", False)
    assert "parse error" in e.meaning and "sum(rate(envoy_http_downstream_rq_total[1m])" in e.meaning
    assert len(str(e)) < 600, "the query is clipped, not pasted whole"


def test_an_unreachable_server_is_temporary_and_quick() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(ProviderError) as err:
        PrometheusMetrics(url, timeout=1.0).value(promql="up")
    assert time.monotonic() - started < 2
    e = err.value
    assert (e.code, e.temporary) == ("PrometheusUnreachable", True)
    assert url in e.meaning and "prometheus.url" in e.next_step


def test_a_hanging_server_is_cut_off_by_the_timeout() -> None:
    standin = PrometheusStandIn(delay=3.0)
    try:
        started = time.monotonic()
        with pytest.raises(ProviderError) as err:
            PrometheusMetrics(standin.url, timeout=0.5).value(promql="up")
        assert time.monotonic() - started < 2
        assert (err.value.code, err.value.temporary) == ("PrometheusUnreachable", True)
        assert "0.5s" in err.value.meaning
    finally:
        standin.close()


def test_the_token_is_a_bearer_header() -> None:
    standin = PrometheusStandIn()
    try:
        assert PrometheusMetrics(standin.url, token=TOKEN).value(promql="up") == 42.5
        assert standin.headers[-1]["Authorization"] == f"Bearer {TOKEN}"
        assert PrometheusMetrics(standin.url).value(promql="up") == 42.5
        assert "Authorization" not in standin.headers[-1]
    finally:
        standin.close()


@pytest.mark.parametrize(("status", "code"), [(401, "PrometheusUnauthorized"), (400, "PrometheusBadQuery"),
                                              (503, "PrometheusUnavailable")])
def test_the_token_never_reaches_an_error(status: int, code: str) -> None:
    # A hostile or careless server echoes the header it was sent.
    standin = PrometheusStandIn(status=status, body='{"status":"error","error":"bad auth {authorization}"}')
    try:
        metrics = PrometheusMetrics(standin.url, token=TOKEN)
        with pytest.raises(ProviderError) as err:
            metrics.value(promql="up")
        assert err.value.code == code
        assert err.value.temporary is (status == 503)
        assert TOKEN not in str(err.value) and TOKEN not in repr(metrics)
        if status == 401:
            assert "prometheus.token" in err.value.next_step
    finally:
        standin.close()


def test_an_answer_that_is_not_prometheus_is_named() -> None:
    standin = PrometheusStandIn(body="<html>login</html>")
    try:
        with pytest.raises(ProviderError) as err:
            PrometheusMetrics(standin.url).value(promql="up")
        assert (err.value.code, err.value.temporary) == ("PrometheusBadAnswer", False)
    finally:
        standin.close()


def test_from_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMETHEUS_TOKEN", TOKEN)
    assert from_config({}) is None and from_config({"token": "x"}) is None
    metrics = from_config({"url": "https://prom.example:9090/", "timeout_seconds": 2, "verify_tls": False})
    assert metrics is not None and metrics.url == "https://prom.example:9090" and metrics.timeout == 2.0
    assert metrics._client._session.verify is False
    assert metrics._client.headers == {"Authorization": f"Bearer {TOKEN}"}
    assert from_config({"url": "http://p:9090", "token": "own"})._client.headers == {"Authorization": "Bearer own"}
    with pytest.raises(ValueError, match=r"prometheus\.url"):
        from_config({"url": "prometheus:9090"})
