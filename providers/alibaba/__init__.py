"""The real Alibaba Cloud providers: MSE gateway, SLB and DNS ports on the official SDKs."""

from providers.alibaba.world import AlibabaCloud

__all__ = ["AlibabaCloud"]
