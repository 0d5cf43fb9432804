"""The NGINX SLB (CLB) behind `LoadBalancerPort`, on the SLB 2014-05-15 SDK.

Step 4a (detach from cluster management, weighted round robin) is tags and the listener's
scheduler; step 4c is backend weights in the vServer group, written absolutely, at most 20
servers a call (the API's limit), and read back so the bot reports what the SLB really holds.
A backend is a server id *and* a port: MSE puts one ENI into a group on 80 and on 443.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import Any

from alibabacloud_slb20140515 import models as m
from alibabacloud_slb20140515.client import Client as SlbClient

from commands.errors import ProviderError
from commands.ports import Backend, BackendHealth, Listener, LoadBalancer, VServerGroup
from providers.alibaba.errors import call

CHUNK = 20  # servers per SetVServerGroupAttribute, tags per Tag/UntagResources
#: Listener protocol -> (cloud action, SDK method, request model) that sets its scheduler.
SET_LISTENER = {
    "TCP": ("SetLoadBalancerTCPListenerAttribute", "set_load_balancer_tcplistener_attribute",
            m.SetLoadBalancerTCPListenerAttributeRequest),
    "HTTP": ("SetLoadBalancerHTTPListenerAttribute", "set_load_balancer_httplistener_attribute",
             m.SetLoadBalancerHTTPListenerAttributeRequest),
    "HTTPS": ("SetLoadBalancerHTTPSListenerAttribute", "set_load_balancer_httpslistener_attribute",
              m.SetLoadBalancerHTTPSListenerAttributeRequest),
}


class Slb:
    """LoadBalancerPort on Alibaba Cloud CLB in one region."""

    def __init__(self, client: SlbClient, region: str) -> None:
        self.client = client
        self.region = region

    def describe(self, *, slb_id: str) -> LoadBalancer | None:
        req = m.DescribeLoadBalancerAttributeRequest(region_id=self.region, load_balancer_id=slb_id)
        try:
            body = call("slb.DescribeLoadBalancerAttribute",
                        lambda: self.client.describe_load_balancer_attribute(req)).body
        except ProviderError as err:
            if err.code == "InvalidLoadBalancerId.NotFound":
                return None
            raise
        tags = {t.tag_key: t.tag_value or "" for t in ((body.tags.tag if body.tags else None) or [])}
        return LoadBalancer(slb_id, body.address or "", body.vpc_id or "", tuple(self._listeners(slb_id)), tags)

    def _listeners(self, slb_id: str) -> list[Listener]:
        out: list[Listener] = []
        token: str | None = None
        while True:
            req = m.DescribeLoadBalancerListenersRequest(region_id=self.region, load_balancer_id=[slb_id],
                                                         max_results=100, next_token=token)
            body = call("slb.DescribeLoadBalancerListeners",
                        partial(self.client.describe_load_balancer_listeners, req)).body
            out += [Listener(int(li.listener_port), (li.listener_protocol or "").upper(), li.scheduler or "",
                             (li.acl_status or "off") == "on", li.vserver_group_id or "")
                    for li in body.listeners or []]
            token = body.next_token or None
            if not token:
                return out

    def set_tags(self, *, slb_id: str, tags: Mapping[str, str], remove: Iterable[str] = ()) -> None:
        keys = [k for k in remove if k not in tags]
        for start in range(0, len(keys), CHUNK):
            untag = m.UntagResourcesRequest(region_id=self.region, resource_type="instance", resource_id=[slb_id],
                                            tag_key=keys[start:start + CHUNK])
            call("slb.UntagResources", partial(self.client.untag_resources, untag))
        items = list(tags.items())
        for start in range(0, len(items), CHUNK):
            tag = m.TagResourcesRequest(region_id=self.region, resource_type="instance", resource_id=[slb_id],
                                        tag=[m.TagResourcesRequestTag(key=k, value=v)
                                             for k, v in items[start:start + CHUNK]])
            call("slb.TagResources", partial(self.client.tag_resources, tag))

    def set_scheduler(self, *, slb_id: str, port: int, protocol: str, scheduler: str) -> None:
        if protocol.upper() not in SET_LISTENER:
            raise ProviderError(f"listener {port}/{protocol} cannot be weighted (only TCP, HTTP, HTTPS)",
                                code="InvalidParameter", next_step="choose a TCP, HTTP or HTTPS listener")
        action, method_name, request_type = SET_LISTENER[protocol.upper()]
        req = request_type(region_id=self.region, load_balancer_id=slb_id, listener_port=port, scheduler=scheduler)
        method = getattr(self.client, method_name)
        call(f"slb.{action}", lambda: method(req))

    def vgroup(self, *, vgroup_id: str) -> VServerGroup:
        req = m.DescribeVServerGroupAttributeRequest(region_id=self.region, vserver_group_id=vgroup_id)
        body = call("slb.DescribeVServerGroupAttribute", lambda: self.client.describe_vserver_group_attribute(req)).body
        servers = (body.backend_servers.backend_server if body.backend_servers else None) or []
        return VServerGroup(vgroup_id, body.vserver_group_name or "", tuple(_backend(b) for b in servers))

    def backends(self, *, vgroup_id: str) -> list[Backend]:
        return list(self.vgroup(vgroup_id=vgroup_id).backends)

    def rename_vgroup(self, *, vgroup_id: str, name: str) -> None:
        """Only the name: the cloud controller will not reuse a group named with its `k8s/...` key."""
        req = m.SetVServerGroupAttributeRequest(region_id=self.region, vserver_group_id=vgroup_id,
                                                vserver_group_name=name)
        call("slb.SetVServerGroupAttribute", partial(self.client.set_vserver_group_attribute, req))

    def set_weights(self, *, vgroup_id: str, backends: Sequence[Backend]) -> None:
        """Each backend's `.weight` is its target. No read first: this is the rollback's critical
        path, and the caller's Backend already carries what names the server (id, port, type, ip)."""
        entries: dict[tuple[str, int], dict[str, str]] = {}
        for b in backends:
            if not 0 <= int(b.weight) <= 100:
                raise ProviderError("SLB backend weights are 0..100", code="InvalidParameter.Weight")
            if b.port <= 0:  # without its port the cloud cannot tell which of a server's backends is meant
                raise ProviderError(f"backend {b.server_id} has no port", code="InvalidParameter",
                                    next_step="re-read the vServer group")
            entry = {"ServerId": b.server_id, "Port": str(b.port), "Weight": str(int(b.weight)),
                     "Type": b.type or "ecs"}
            if entry["Type"] in ("eni", "eci"):  # the API tells an ENI's addresses apart by ServerIp
                entry["ServerIp"] = b.ip
            entries[b.key] = entry  # the last word on a backend wins
        batch = list(entries.values())
        for start in range(0, len(batch), CHUNK):
            req = m.SetVServerGroupAttributeRequest(region_id=self.region, vserver_group_id=vgroup_id,
                                                    backend_servers=json.dumps(batch[start:start + CHUNK]))
            call("slb.SetVServerGroupAttribute", partial(self.client.set_vserver_group_attribute, req))


    def health(self, *, slb_id: str, port: int, protocol: str) -> list[BackendHealth]:
        """DescribeHealthStatus for one listener: each backend's health check result."""
        req = m.DescribeHealthStatusRequest(region_id=self.region, load_balancer_id=slb_id, listener_port=port,
                                            listener_protocol=protocol.lower())
        body = call("slb.DescribeHealthStatus", partial(self.client.describe_health_status, req)).body
        servers = (body.backend_servers.backend_server if body.backend_servers else None) or []
        return [BackendHealth(b.server_id or "", int(b.port or 0), (b.server_health_status or "unavailable").lower())
                for b in servers if b.listener_port in (None, port)]

def _backend(b: Any) -> Backend:
    return Backend(b.server_id, b.server_ip or "", int(b.port or 0), int(b.weight or 0), b.type or "ecs",
                   b.description or "")
