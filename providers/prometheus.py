"""`MetricsPort` on a real Prometheus HTTP API, through the `prometheus-api-client` library.

Self-hosted Prometheus and Alibaba Cloud Managed Service for Prometheus speak the same API;
the managed one hands out a URL and a token, sent here as a bearer header. Every failure
leaves as one `ProviderError`:

    what happened                         code                     temporary
    refused / reset / timed out           PrometheusUnreachable    yes
    TLS handshake or certificate          PrometheusTLS            no
    HTTP 400 / 422 (the query)            PrometheusBadQuery       no
    HTTP 401 / 403                        PrometheusUnauthorized   no
    HTTP 429 / 5xx                        PrometheusUnavailable    yes
    anything else (404, not JSON, ...)    PrometheusBadAnswer      no

The client does not retry: a gate reads again on its next tick and a temporary error says so,
while retries would multiply the timeout a user waits for. The token never reaches a message.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
import urllib3
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from commands.errors import ProviderError

OPERATION = "Prometheus query"
TOKEN_ENV = "PROMETHEUS_TOKEN"
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")


class PrometheusMetrics:
    """One instant query per `value()`; the first sample's value, None when nothing matched."""

    def __init__(self, url: str, *, token: str = "", timeout: float = 5.0, verify_tls: bool = True) -> None:
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"prometheus.url: `{_safe_url(url)[:80]}` is not an http(s) URL")
        self.url = url.strip().rstrip("/")
        self.timeout = float(timeout)
        self._token = token
        session = requests.Session()
        session.verify = verify_tls
        # The library turns a non-200 answer into a bare message; raising here keeps the response.
        session.hooks["response"].append(lambda response, **_: response.raise_for_status())
        self._client = PrometheusConnect(
            url=self.url, headers={"Authorization": f"Bearer {token}"} if token else None, session=session,
            retry=Retry(total=0, raise_on_status=False), timeout=self.timeout)

    def __repr__(self) -> str:  # no token, ever
        return f"PrometheusMetrics({_safe_url(self.url)!r}, timeout={self.timeout:g})"

    def value(self, *, promql: str) -> float | None:
        try:
            result = self._client.custom_query(query=promql)
        except requests.HTTPError as exc:
            if exc.response is None:
                raise self._not_prometheus("an HTTP error without an answer") from None
            raise self._http_error(exc.response, promql) from None
        except requests.exceptions.SSLError as exc:
            raise self._error(f"the TLS handshake with {_safe_url(self.url)} failed ({self._short(exc)})",
                              "PrometheusTLS", "check `prometheus.url`, or set `prometheus.verify_tls: false` "
                              "for a self-signed certificate") from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            why = f"no answer within {self.timeout:g}s" if _timed_out(exc) else self._short(exc)
            raise self._error(f"Prometheus at {_safe_url(self.url)} could not be reached ({why})",
                              "PrometheusUnreachable", "check `prometheus.url` and that the server is up",
                              temporary=True) from None
        except (requests.RequestException, PrometheusApiClientException, ValueError, KeyError, TypeError) as exc:
            raise self._not_prometheus(type(exc).__name__) from None
        return self._first(result, promql)

    def _first(self, result: Any, promql: str) -> float | None:
        if not isinstance(result, list):
            raise self._not_prometheus("no result list")
        if not result:
            return None
        if len(result) == 2 and not isinstance(result[0], dict):  # a scalar or a string: [time, "value"]
            sample = result
        elif isinstance(result[0], dict) and "value" in result[0]:  # a vector: the first series
            sample = result[0]["value"]
        elif isinstance(result[0], dict) and "values" in result[0]:
            raise self._error(f"`{_clip(promql)}` returns a range vector, not one value per series",
                              "PrometheusBadQuery", "wrap the selector in rate(), avg_over_time() or similar")
        else:
            raise self._not_prometheus("an unknown result shape")
        try:
            number = float(sample[1])
        except (TypeError, ValueError, IndexError):
            raise self._not_prometheus("a sample that is not a number") from None
        return None if math.isnan(number) else number

    def _http_error(self, response: requests.Response, promql: str) -> ProviderError:
        status = response.status_code
        if status in (401, 403):
            return self._error(f"Prometheus refused the bot's credentials (HTTP {status})", "PrometheusUnauthorized",
                               "check `prometheus.token` (or $PROMETHEUS_TOKEN)")
        said = self._server_text(response)
        if status in (400, 422):
            return self._error(f"Prometheus refused the query `{_clip(promql)}`: {said}", "PrometheusBadQuery",
                               "fix the gate's query in the config")
        if status == 429 or status >= 500:
            return self._error(f"Prometheus is busy or failing (HTTP {status}: {said})", "PrometheusUnavailable",
                               "wait a minute and retry", temporary=True)
        return self._not_prometheus(f"HTTP {status}")

    def _not_prometheus(self, what: str) -> ProviderError:
        return self._error(f"{_safe_url(self.url)} did not answer as a Prometheus API ({what})",
                           "PrometheusBadAnswer", "check `prometheus.url`: it ends before /api/v1")

    def _server_text(self, response: requests.Response) -> str:
        try:
            text = str(response.json().get("error") or "")
        except (ValueError, AttributeError):
            text = ""
        return self._scrub(" ".join((text or response.text or response.reason or "").split())[:300])

    def _short(self, exc: BaseException) -> str:
        found = _ERRNO.search(str(exc))
        return self._scrub(found.group(1).strip() if found else type(exc).__name__)

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    def _error(self, meaning: str, code: str, next_step: str, *, temporary: bool = False) -> ProviderError:
        return ProviderError(self._scrub(meaning), code=code, temporary=temporary, next_step=next_step,
                             operation=OPERATION)


def from_config(cfg: Mapping[str, Any] | None) -> PrometheusMetrics | None:
    """The `prometheus:` config section ({url, token, timeout_seconds, verify_tls}); None without a url."""
    cfg = cfg or {}
    url = str(cfg.get("url") or "").strip()
    if not url:
        return None
    token = str(cfg.get("token") or os.environ.get(TOKEN_ENV) or "")
    verify = cfg.get("verify_tls", True)
    verify_tls = verify if isinstance(verify, bool) else str(verify).strip().lower() not in ("false", "no", "0")
    return PrometheusMetrics(url, token=token, timeout=float(cfg.get("timeout_seconds") or 5.0), verify_tls=verify_tls)


def _safe_url(url: str) -> str:
    """The URL without user:password@, so a URL carrying credentials can be shown."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    return urlunsplit(parts._replace(netloc=f"{host}:{parts.port}" if parts.port else host))


def _timed_out(exc: BaseException) -> bool:
    """A read timeout arrives as a ConnectionError around urllib3's MaxRetryError (no retries here)."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(exc, requests.Timeout) or isinstance(reason, urllib3.exceptions.TimeoutError)


def _clip(promql: str) -> str:
    text = " ".join(promql.split())
    return text if len(text) <= 120 else text[:117] + "..."
