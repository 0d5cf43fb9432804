"""`AlibabaCloud`: the real MSE, SLB and DNS ports, built from the `alibaba:` config section.

One credential client is shared by the three SDK clients, so the default chain (environment,
RRSA on ACK, profiles, ECS RAM role) is resolved once and refreshed in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alibabacloud_alidns20150109.client import Client as DnsClient
from alibabacloud_credentials.client import Client as CredentialClient
from alibabacloud_mse20190531.client import Client as MseClient
from alibabacloud_slb20140515.client import Client as SlbClient

from providers.alibaba.config import AlibabaSettings, sdk_config
from providers.alibaba.dns import AliDns
from providers.alibaba.mse import MseGateway
from providers.alibaba.slb import Slb


class AlibabaCloud:
    """The gateway, SLB and DNS ports on the real SDKs; clusters come from the Kubernetes provider."""

    def __init__(self, settings: AlibabaSettings, *, mse: MseClient, slb: SlbClient, dns: DnsClient) -> None:
        self.settings = settings
        self.slb = Slb(slb, settings.region)
        self.gateway = MseGateway(mse, self.slb)
        self.dns = AliDns(dns)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> AlibabaCloud:
        settings = AlibabaSettings.from_dict(cfg)
        credential = None if settings.access_key_id and settings.access_key_secret else CredentialClient()
        return cls(settings,
                   mse=MseClient(sdk_config(settings, "mse", credential)),
                   slb=SlbClient(sdk_config(settings, "slb", credential)),
                   dns=DnsClient(sdk_config(settings, "dns", credential)))
