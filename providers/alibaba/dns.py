"""Weighted records in Alibaba Cloud DNS behind `DnsPort`, on the Alidns 2015-01-09 SDK.

The DNS method puts MSE's SLB address next to NGINX's under each name and shifts traffic by
record weight (1..100; there is no 0, so draining is disabling). The API speaks zone + RR;
the port speaks full names, so every call first finds the hosted zone of the name.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from alibabacloud_alidns20150109 import models as m
from alibabacloud_alidns20150109.client import Client as DnsClient

from commands.errors import ProviderError
from commands.ports import DnsRecord
from providers.alibaba.errors import call

PAGE = 100
_GONE = "DomainRecordNotBelongToUser"


class AliDns:
    """DnsPort on Alibaba Cloud DNS; zones are listed once per instance and kept."""

    def __init__(self, client: DnsClient) -> None:
        self.client = client
        self._zones: list[str] | None = None

    def zone_for(self, *, domain: str) -> str | None:
        matches = [z for z in self._hosted_zones() if domain == z or domain.endswith("." + z)]
        return max(matches, key=len) if matches else None

    def _hosted_zones(self) -> list[str]:
        if self._zones is None:
            zones: list[str] = []
            page = 1
            while True:
                req = m.DescribeDomainsRequest(page_number=page, page_size=PAGE)
                body = call("dns.DescribeDomains", partial(self.client.describe_domains, req)).body
                rows = (body.domains.domain if body.domains else None) or []
                zones += [d.domain_name for d in rows if d.domain_name]
                if len(rows) < PAGE or page * PAGE >= int(body.total_count or 0):
                    break
                page += 1
            self._zones = zones
        return self._zones

    def records(self, *, domain: str) -> list[DnsRecord]:
        return [_record(r, domain) for r in self._raw(domain)]

    def _raw(self, domain: str) -> list[Any]:
        out: list[Any] = []
        page = 1
        while True:
            req = m.DescribeSubDomainRecordsRequest(sub_domain=domain, page_number=page, page_size=PAGE)
            body = call("dns.DescribeSubDomainRecords",
                        partial(self.client.describe_sub_domain_records, req)).body
            rows = (body.domain_records.record if body.domain_records else None) or []
            out += rows
            if len(rows) < PAGE or page * PAGE >= int(body.total_count or 0):
                return out
            page += 1

    def add_record(self, *, domain: str, type: str, value: str, enabled: bool, ttl: int = 600,
                   line: str = "default") -> DnsRecord:
        zone = self.zone_for(domain=domain)
        if zone is None:
            raise ProviderError(f"{domain} is not hosted in this Alibaba Cloud DNS account",
                                code="InvalidDomainName.NoExist", operation="dns.AddDomainRecord",
                                next_step="create the record at your DNS provider by hand")
        existing = self._find(domain, type, value, line)
        if existing is not None:
            return existing
        req = m.AddDomainRecordRequest(domain_name=zone, rr=_rr(domain, zone), type=type, value=value, ttl=ttl,
                                       line=line)
        try:
            record_id = call("dns.AddDomainRecord", lambda: self.client.add_domain_record(req)).body.record_id
        except ProviderError as err:
            if err.code != "DomainRecordDuplicate":  # a retried add that had landed
                raise
            record_id = None
        if not enabled and record_id:
            self.set_enabled(record_id=record_id, enabled=False)
        found = self._find(domain, type, value, line)
        if found is None:
            raise ProviderError(f"the record {domain} {type} {value} was added but is not listed",
                                code="RecordNotListed", temporary=True, next_step="retry in a minute",
                                operation="dns.AddDomainRecord")
        return found

    def _find(self, domain: str, type: str, value: str, line: str) -> DnsRecord | None:
        for r in self.records(domain=domain):
            if r.type == type and r.value == value and r.line == line:
                return r
        return None

    def weighted(self, *, domain: str, type: str = "A", line: str = "default") -> bool:
        """The name's weighted-round-robin flag for one type and line (DescribeDNSSLBSubDomains)."""
        zone = self.zone_for(domain=domain)
        if zone is None:
            return False
        req = m.DescribeDNSSLBSubDomainsRequest(domain_name=zone, rr=_rr(domain, zone), page_number=1,
                                                page_size=PAGE)
        body = call("dns.DescribeDNSSLBSubDomains", partial(self.client.describe_dnsslbsub_domains, req)).body
        rows = (body.slb_sub_domains.slb_sub_domain if body.slb_sub_domains else None) or []
        names = {domain, f"@.{domain}"}
        for row in rows:
            if row.sub_domain not in names or (row.type or "A").upper() != type.upper():
                continue
            if line == "default":
                return bool(row.open)
            per_line = (row.line_algorithms.line_algorithm if row.line_algorithms else None) or []
            return any(a.line == line and bool(a.open) for a in per_line)
        return False

    def set_weighted(self, *, domain: str, on: bool, type: str = "A", line: str = "default") -> None:
        zone = self.zone_for(domain=domain)
        sub = f"@.{domain}" if domain == zone else domain
        req = m.SetDNSSLBStatusRequest(sub_domain=sub, domain_name=zone, open=on, type=type, line=line)
        call("dns.SetDNSSLBStatus", lambda: self.client.set_dnsslbstatus(req))

    def set_ttl(self, *, record: DnsRecord, ttl: int) -> None:
        """UpdateDomainRecord rewrites the whole record: RR, type, value and line go again, unchanged."""
        zone = self.zone_for(domain=record.domain)
        if zone is None:
            raise ProviderError(f"{record.domain} is not hosted in this Alibaba Cloud DNS account",
                                code="InvalidDomainName.NoExist", operation="dns.UpdateDomainRecord")
        req = m.UpdateDomainRecordRequest(record_id=record.id, rr=_rr(record.domain, zone), type=record.type,
                                          value=record.value, ttl=ttl, line=record.line)
        try:
            call("dns.UpdateDomainRecord", lambda: self.client.update_domain_record(req))
        except ProviderError as err:
            if err.code != "DomainRecordDuplicate":  # the record already holds this TTL: what we wanted
                raise

    def set_weight(self, *, record_id: str, weight: int) -> None:
        if not 1 <= weight <= 100:
            raise ProviderError("DNS record weights are 1..100", code="InvalidParameter.Weight",
                                next_step="disable the record instead of weighting it 0")
        req = m.UpdateDNSSLBWeightRequest(record_id=record_id, weight=weight)
        call("dns.UpdateDNSSLBWeight", lambda: self.client.update_dnsslbweight(req))

    def set_enabled(self, *, record_id: str, enabled: bool) -> None:
        req = m.SetDomainRecordStatusRequest(record_id=record_id, status="Enable" if enabled else "Disable")
        call("dns.SetDomainRecordStatus", lambda: self.client.set_domain_record_status(req))

    def delete_record(self, *, record_id: str) -> None:
        req = m.DeleteDomainRecordRequest(record_id=record_id)
        try:
            call("dns.DeleteDomainRecord", lambda: self.client.delete_domain_record(req))
        except ProviderError as err:
            if err.code != _GONE:  # already gone is what we wanted
                raise


def _rr(domain: str, zone: str) -> str:
    return "@" if domain == zone else domain[: -len(zone) - 1]


def _record(r: Any, domain: str) -> DnsRecord:
    return DnsRecord(str(r.record_id), domain, r.type or "", r.value or "", int(r.weight or 1),
                     (r.status or "ENABLE").upper() == "ENABLE", int(r.ttl or 600), r.line or "default")
