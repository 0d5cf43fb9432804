"""The NGINX SLB (CLB) behind `LoadBalancerPort`, on the SLB 2014-05-15 SDK.

Step 4a (detach from cluster management, weighted round robin) is tags and the listener's
scheduler; step 4c is backend weights in the vServer group, written absolutely, at most 20
servers a call (the API's limit), and read back so the bot reports what the SLB really holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import partial
from typing import Any

from alibabacloud_slb20140515 import models as m
from alibabacloud_slb20140515.client import Client as SlbClient

from commands.errors import ProviderError
from commands.ports import Backend, Listener, LoadBalancer
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
        # What each vServer group held at the last read: a server's port, type and address do not
        # change while it stays in the group, so a weight write right after a read (the rollback
        # path) need not read again. A failed write forgets it.
        self._held: dict[str, dict[str, Any]] = {}

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

    def backends(self, *, vgroup_id: str) -> list[Backend]:
        return [_backend(b) for b in self._raw_backends(vgroup_id)]

    def _raw_backends(self, vgroup_id: str) -> list[Any]:
        req = m.DescribeVServerGroupAttributeRequest(region_id=self.region, vserver_group_id=vgroup_id)
        body = call("slb.DescribeVServerGroupAttribute", lambda: self.client.describe_vserver_group_attribute(req)).body
        servers = list((body.backend_servers.backend_server if body.backend_servers else None) or [])
        self._held[vgroup_id] = {b.server_id: b for b in servers}
        return servers

    def set_weights(self, *, vgroup_id: str, weights: Mapping[str, int]) -> None:
        """Weights are absolute; each server is sent with the port and type the group holds it with."""
        held = self._held.get(vgroup_id, {})
        if not set(weights) <= set(held):
            held = {b.server_id: b for b in self._raw_backends(vgroup_id)}
        entries: list[dict[str, Any]] = []
        for server_id, weight in weights.items():
            if not 0 <= int(weight) <= 100:
                raise ProviderError("SLB backend weights are 0..100", code="InvalidParameter.Weight")
            b = held.get(server_id)
            if b is None:
                raise ProviderError(f"backend {server_id} is not in vServer group {vgroup_id}",
                                    code="BackendServer.NotExist", next_step="re-read the vServer group")
            entry = {"ServerId": server_id, "Weight": str(int(weight)), "Port": str(b.port), "Type": b.type or "ecs"}
            if (b.type or "ecs") in ("eni", "eci"):
                entry["ServerIp"] = b.server_ip
            entries.append(entry)
        for start in range(0, len(entries), CHUNK):
            req = m.SetVServerGroupAttributeRequest(region_id=self.region, vserver_group_id=vgroup_id,
                                                    backend_servers=json.dumps(entries[start:start + CHUNK]))
            try:
                call("slb.SetVServerGroupAttribute", partial(self.client.set_vserver_group_attribute, req))
            except ProviderError:
                self._held.pop(vgroup_id, None)
                raise


def _backend(b: Any) -> Backend:
    return Backend(b.server_id, b.server_ip or "", int(b.port or 0), int(b.weight or 0), b.type or "ecs",
                   b.description or "")

