"""The MSE cloud-native gateway behind `GatewayPort`, on the MSE 2019-05-31 SDK.

The console's migration wizard has no API, so step 1 is the primitive it wraps: a K8s service
source with Ingress options (listen to one class, never write Ingress status while NGINX owns
it). The SLB step is one `AddGatewaySlb` at weight 0 into the NGINX SLB's vServer groups (the
HTTP group on 80, the HTTPS one on 443). MSE reports no node addresses, so the gateway's nodes
are the backends it added to the vServer groups it joined (read through the SLB port).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from alibabacloud_mse20190531 import models as m
from alibabacloud_mse20190531.client import Client as MseClient

from commands.errors import ProviderError
from commands.faq import INGRESS_CLASS_CONFLICT, explain
from commands.ports import Gateway, GatewayJoin, IngressSource, LoadBalancerPort, Route
from providers.alibaba.errors import call

#: GetGateway/ListGateway `Status` codes; 2 is the only usable one.
STATUS = {0: "creating", 1: "create failed", 2: "running", 3: "changing", 4: "scaling in", 6: "scaling out",
          8: "deleting", 10: "restarting", 11: "rebuilding", 12: "updating", 13: "update failed"}
PAGE = 100


class MseGateway:
    """GatewayPort on MSE; `slb` (optional) lets `get_gateway` report the gateway's node addresses."""

    def __init__(self, client: MseClient, slb: LoadBalancerPort | None = None) -> None:
        self.client = client
        self.slb = slb

    # ---- facts -------------------------------------------------------------------------------

    def get_gateway(self, *, gateway_id: str) -> Gateway | None:
        req = m.ListGatewayRequest(page_number=1, page_size=10,
                                   filter_params=m.ListGatewayRequestFilterParams(gateway_unique_id=gateway_id))
        resp = call("mse.ListGateway", lambda: self.client.list_gateway(req))
        found = [g for g in (resp.body.data.result or []) if g.gateway_unique_id == gateway_id]
        if not found:
            return None
        g = found[0]
        return Gateway(gateway_id, g.name or gateway_id, STATUS.get(_int(g.status), str(g.status_desc or g.status)),
                       str(g.gateway_version or ""), g.vpc_id or "", _own_slb_ip(g), self._node_ips(gateway_id))

    def _node_ips(self, gateway_id: str) -> tuple[str, ...]:
        """Addresses of the backends the gateway put into the vServer groups it joined."""
        if self.slb is None:
            return ()
        ips: list[str] = []
        groups = dict.fromkeys(vg for entry in self._slb_entries(gateway_id) for vg in sorted(_vgroups(entry)))
        for vgroup_id in groups:
            for b in self.slb.backends(vgroup_id=vgroup_id):
                if not b.description.startswith("k8s/") and b.ip not in ips:
                    ips.append(b.ip)
        return tuple(ips)

    def routes(self, *, gateway_id: str) -> list[Route]:
        out: list[Route] = []
        page = 1
        while True:
            req = m.ListGatewayRouteRequest(page_number=page, page_size=PAGE,
                                            filter_params=m.ListGatewayRouteRequestFilterParams(
                                                gateway_unique_id=gateway_id))
            data = call("mse.ListGatewayRoute", partial(self.client.list_gateway_route, req)).body.data
            results = (data.result if data else None) or []
            for r in results:
                path = "/"
                if r.route_predicates and r.route_predicates.path_predicates:
                    path = r.route_predicates.path_predicates.path or "/"
                hosts = r.domain_name_list or ([r.domain_name] if r.domain_name else [])
                out += [Route(h, path) for h in hosts]
            if len(results) < PAGE or page * PAGE >= _int(data.total_size):
                return out
            page += 1

    # ---- step 1: listening to the Ingress class ----------------------------------------------

    def ingress_sources(self, *, gateway_id: str) -> list[IngressSource]:
        return [_source(s) for s in self._k8s_sources(gateway_id) if s.ingress_options]

    def listen(self, *, gateway_id: str, cluster: str, ingress_class: str) -> IngressSource:
        current = self._source_for(gateway_id, cluster)
        options = m.AddServiceSourceRequestIngressOptionsRequest(enable_ingress=True, ingress_class=ingress_class,
                                                                 enable_status=False)
        if current is not None:
            have = current.ingress_options
            if have and have.enable_ingress and (have.ingress_class or "") != ingress_class:
                raise _class_conflict(cluster, have.ingress_class or "(all classes)")
            if have and have.enable_ingress and not have.enable_status:
                return _source(current)
            upd = m.UpdateServiceSourceRequest(
                gateway_unique_id=gateway_id, id=current.id, name=current.name, address=current.address,
                source=current.source or "K8s", type=current.type or "K8s",
                ingress_options_request=m.UpdateServiceSourceRequestIngressOptionsRequest(
                    enable_ingress=True, ingress_class=ingress_class, enable_status=False))
            call("mse.UpdateServiceSource", lambda: self.client.update_service_source(upd))
        else:
            add = m.AddServiceSourceRequest(gateway_unique_id=gateway_id, source="K8s", type="K8s", name=cluster,
                                            address=cluster, ingress_options_request=options)
            try:
                call("mse.AddServiceSource", lambda: self.client.add_service_source(add))
            except ProviderError as err:
                if self._source_for(gateway_id, cluster) is None:  # a retried add may have landed twice
                    raise err from None
        after = self._source_for(gateway_id, cluster)
        if after is None:
            raise ProviderError(f"the gateway accepted the service source but does not list cluster {cluster}",
                                code="SourceNotListed", temporary=True, next_step="retry in a minute",
                                operation="mse.AddServiceSource")
        return _source(after)

    def unlisten(self, *, gateway_id: str, cluster: str) -> bool:
        current = self._source_for(gateway_id, cluster)
        if current is None:
            return False
        req = m.DeleteServiceSourceRequest(gateway_unique_id=gateway_id, source_id=current.id)
        call("mse.DeleteServiceSource", lambda: self.client.delete_service_source(req))
        return True

    def _k8s_sources(self, gateway_id: str) -> list[Any]:
        req = m.ListServiceSourceRequest(gateway_unique_id=gateway_id, source="K8s")
        return list(call("mse.ListServiceSource", lambda: self.client.list_service_source(req)).body.data or [])

    def _source_for(self, gateway_id: str, cluster: str) -> Any | None:
        for s in self._k8s_sources(gateway_id):
            if cluster in (s.address, s.name):
                return s
        return None

    # ---- step 4: the gateway in the NGINX SLB's vServer group ----------------------------------

    def join_slb(self, *, gateway_id: str, slb_id: str, groups: Sequence[GatewayJoin]) -> None:
        """One association for every group: MSE allows one per SLB, so all groups go in one call."""
        if not groups:
            raise ProviderError("joining an SLB needs at least one vServer group", code="InvalidParameter",
                                next_step="choose the listeners again")
        wanted = {(g.vgroup_id, g.port) for g in groups}
        if wanted <= self._joined_keys(gateway_id, slb_id):
            return
        http = next((g for g in groups if g.protocol.upper() == "HTTP"), None)
        https = next((g for g in groups if g.protocol.upper() == "HTTPS"), None)
        req = m.AddGatewaySlbRequest(
            gateway_unique_id=gateway_id, slb_id=slb_id, service_weight=0,
            vserver_group_id=http.vgroup_id if http else None, http_port=http.port if http else None,
            https_vserver_group_id=https.vgroup_id if https else None, https_port=https.port if https else None,
            vservice_list=[m.AddGatewaySlbRequestVServiceList(vserver_group_id=g.vgroup_id,
                                                              vserver_group_name=g.vgroup_name or None,
                                                              port=g.port, protocol=g.protocol.upper())
                           for g in groups])
        try:
            call("mse.AddGatewaySlb", lambda: self.client.add_gateway_slb(req))
        except ProviderError as err:
            if not wanted <= self._joined_keys(gateway_id, slb_id):  # a retried add may have landed
                raise err from None

    def joined(self, *, gateway_id: str, slb_id: str) -> list[GatewayJoin]:
        out: dict[tuple[str, int], GatewayJoin] = {}
        for entry in self._slb_entries(gateway_id):
            if entry.slb_id == slb_id:
                for j in _joins(entry):
                    out.setdefault((j.vgroup_id, j.port), j)
        return list(out.values())

    def _joined_keys(self, gateway_id: str, slb_id: str) -> set[tuple[str, int]]:
        return {(j.vgroup_id, j.port) for j in self.joined(gateway_id=gateway_id, slb_id=slb_id)}

    def leave_slb(self, *, gateway_id: str, slb_id: str) -> None:
        for entry in self._slb_entries(gateway_id):
            if entry.slb_id == slb_id and _vgroups(entry):
                req = m.DeleteGatewaySlbRequest(gateway_unique_id=gateway_id, slb_id=slb_id, id=entry.id,
                                                delete_slb=False)
                call("mse.DeleteGatewaySlb", partial(self.client.delete_gateway_slb, req))

    def _slb_entries(self, gateway_id: str) -> list[Any]:
        req = m.ListGatewaySlbRequest(gateway_unique_id=gateway_id)
        return list(call("mse.ListGatewaySlb", lambda: self.client.list_gateway_slb(req)).body.data or [])


def _source(s: Any) -> IngressSource:
    opts = s.ingress_options
    return IngressSource(str(s.id), s.address or s.name or "", (opts.ingress_class if opts else "") or "",
                         bool(opts.enable_ingress) if opts else False, bool(opts.enable_status) if opts else False)


def _class_conflict(cluster: str, current: str) -> ProviderError:
    faq = explain(INGRESS_CLASS_CONFLICT)
    assert faq is not None
    return ProviderError(f"{faq.meaning}: cluster {cluster} is watched for class {current}",
                         code=INGRESS_CLASS_CONFLICT, next_step=faq.next_step, operation="mse.AddServiceSource")


def _joins(entry: Any) -> list[GatewayJoin]:
    """What one ListGatewaySlb entry joined: its VServiceList, plus the HTTP and HTTPS groups the
    entry names on their own (ports 80 and 443 when it gives none) when the list does not have them."""
    out = [GatewayJoin(v.vserver_group_id, _port(v.port, 443 if (v.protocol or "").upper() == "HTTPS" else 80),
                       (v.protocol or "HTTP").upper(), v.vserver_group_name or "")
           for v in entry.vservice_list or [] if v.vserver_group_id]
    for vgroup_id, port, protocol in ((entry.vserver_group_id, _port(entry.http_port, 80), "HTTP"),
                                      (entry.https_vserver_group_id, _port(entry.https_port, 443), "HTTPS")):
        if vgroup_id and not any((j.vgroup_id, j.port) == (vgroup_id, port) for j in out):
            out.append(GatewayJoin(vgroup_id, port, protocol))
    return out


def _port(value: Any, default: int) -> int:
    port = _int(value)
    return port if port > 0 else default


def _vgroups(entry: Any) -> set[str]:
    ids = {entry.vserver_group_id, entry.https_vserver_group_id}
    ids |= {v.vserver_group_id for v in (entry.vservice_list or [])}
    return {i for i in ids if i}


def _own_slb_ip(g: Any) -> str:
    """The address of the gateway's own SLB (the DNS method's target): public first."""
    for slbs in (g.internet_slb or [], g.slb or []):
        for s in slbs:
            if s.slb_ip and s.gateway_slb_mode != "UserSelect":
                return str(s.slb_ip)
    return ""


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1
