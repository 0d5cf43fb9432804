"""Settings for the Alibaba Cloud clients, and the SDK `Config` each product gets.

Everything the SDK only honours on its client config lives here: credentials (the default
chain must be passed explicitly, or the SDK does not use it), per-product endpoints (private
endpoints, the test emulator), timeouts, and `retry_options`, the only retry knob tea-openapi
0.4 reads. Retries are bounded and cover throttling, 5xx and lost answers; writes the adapters
make are absolute or reconciled after the fact, so a repeated call does no harm.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from alibabacloud_credentials.client import Client as CredentialClient
from alibabacloud_tea_openapi.utils_models import Config
from darabonba.policy.retry import RetryOptions

PRODUCTS = ("mse", "slb", "dns")
#: The SDK exception names worth another try: throttled, server-side failure, no answer.
RETRYABLE_EXCEPTIONS = ("ThrottlingException", "ServerException", "RetryError")
#: Codes some products send with a 4xx that still mean "try again shortly".
RETRYABLE_CODES = ("Throttling", "Throttling.User", "Throttling.Api", "ServiceUnavailable", "SystemBusy")


@dataclass(frozen=True)
class AlibabaSettings:
    """The `alibaba:` section of the bot's YAML config, with defaults filled in."""

    region: str = "cn-hangzhou"
    protocol: str = "https"
    endpoints: Mapping[str, str] = field(default_factory=dict)
    access_key_id: str = ""
    access_key_secret: str = field(default="", repr=False)
    security_token: str = field(default="", repr=False)
    read_timeout_ms: int = 10000
    connect_timeout_ms: int = 5000
    max_attempts: int = 3
    backoff_ms: int = 500
    max_backoff_ms: int = 10000

    @classmethod
    def from_dict(cls, cfg: Mapping[str, Any] | None) -> AlibabaSettings:
        cfg = dict(cfg or {})
        endpoints = {k: str(v) for k, v in (cfg.get("endpoints") or {}).items() if v}
        unknown = set(endpoints) - set(PRODUCTS)
        if unknown:
            raise ValueError(f"alibaba.endpoints: unknown product(s) {sorted(unknown)}; use {list(PRODUCTS)}")
        return cls(
            region=str(cfg.get("region") or cls.region),
            protocol=str(cfg.get("protocol") or cls.protocol).lower(),
            endpoints=endpoints,
            access_key_id=str(cfg.get("access_key_id") or ""),
            access_key_secret=str(cfg.get("access_key_secret") or ""),
            security_token=str(cfg.get("security_token") or ""),
            read_timeout_ms=int(cfg.get("read_timeout_ms") or cls.read_timeout_ms),
            connect_timeout_ms=int(cfg.get("connect_timeout_ms") or cls.connect_timeout_ms),
            max_attempts=max(1, int(cfg.get("max_attempts") or cls.max_attempts)),
            backoff_ms=int(cfg.get("backoff_ms") or cls.backoff_ms),
            max_backoff_ms=int(cfg.get("max_backoff_ms") or cls.max_backoff_ms),
        )

    def endpoint(self, product: str) -> str | None:
        """The configured endpoint, or the public one; None lets the SDK's own rule decide."""
        if product in self.endpoints:
            return self.endpoints[product]
        if product == "dns":
            return "alidns.aliyuncs.com"  # the SDK maps only a few regions; this one serves all
        return None


def retry_options(settings: AlibabaSettings) -> RetryOptions:
    """Bounded retries with jittered exponential backoff; `x-acs-retry-after` wins when sent."""
    return RetryOptions({
        "retryable": settings.max_attempts > 1,
        "retryCondition": [{
            "maxAttempts": settings.max_attempts,
            "exception": list(RETRYABLE_EXCEPTIONS),
            "errorCode": list(RETRYABLE_CODES),
            "backoff": {"policy": "ExponentialWithEqualJitter", "period": settings.backoff_ms,
                        "cap": settings.max_backoff_ms},
            "maxDelay": settings.max_backoff_ms,
        }],
    })


def sdk_config(settings: AlibabaSettings, product: str, credential: CredentialClient | None = None) -> Config:
    """The tea-openapi `Config` for one product's client."""
    if product not in PRODUCTS:
        raise ValueError(f"unknown product {product!r}")
    common: dict[str, Any] = {
        "region_id": settings.region,
        "endpoint": settings.endpoint(product),
        "protocol": settings.protocol,
        "read_timeout": settings.read_timeout_ms,
        "connect_timeout": settings.connect_timeout_ms,
        "retry_options": retry_options(settings),
    }
    if settings.access_key_id and settings.access_key_secret:
        return Config(access_key_id=settings.access_key_id, access_key_secret=settings.access_key_secret,
                      security_token=settings.security_token or None, **common)
    return Config(credential=credential or CredentialClient(), **common)
