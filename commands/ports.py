"""What the domain needs from the outside world, as small Protocols.

The domain owns these ports (hexagonal style) so that `commands/` depends on nothing outside
itself; `providers/` implements each one twice: for real (Kubernetes, Alibaba Cloud SDKs,
Redis) and simulated. Every method is keyword-only and every write says the state to reach,
never a delta, so a retried or repeated call is harmless.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from commands.model import Approval, Event, Migration

# ---- plain data the ports exchange ------------------------------------------------------


@dataclass(frozen=True)
class Ingress:
    namespace: str
    name: str
    ingress_class: str  # spec.ingressClassName, or the legacy annotation, or "" for none
    annotations: Mapping[str, str] = field(default_factory=dict)
    hosts: tuple[str, ...] = ()
    paths: tuple[tuple[str, str, str], ...] = ()  # (host, path, pathType)
    tls_hosts: tuple[str, ...] = ()
    class_source: str = "spec"  # spec | annotation | default
    addresses: tuple[str, ...] = ()  # status.loadBalancer.ingress: where the controller serves it (ip or hostname)
    backends: tuple[str, ...] = ()  # the Service each path sends to, in `paths` order ("" for a resource backend)


@dataclass(frozen=True)
class ConfigMap:
    namespace: str
    name: str
    data: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Deployment:
    """What the route check needs of a controller Deployment: where it is and its containers' arguments."""

    namespace: str
    name: str
    args: tuple[str, ...] = ()  # every container's command and args, in order
    images: tuple[str, ...] = ()  # every container's image, in order (the controller's tells its version)


@dataclass(frozen=True)
class ServicePort:
    port: int
    protocol: str = "TCP"
    name: str = ""
    node_port: int = 0
    target_port: str = ""


@dataclass(frozen=True)
class Service:
    namespace: str
    name: str
    annotations: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    ports: tuple[ServicePort, ...] = ()
    resource_version: str = ""
    load_balancer_ip: str = ""


@dataclass(frozen=True)
class ClusterInfo:
    id: str
    vpc_id: str
    default_ingress_class: str = ""


@dataclass(frozen=True)
class IngressSource:
    """The gateway's view of a cluster it watches (MSE service source with Ingress options)."""

    id: str
    cluster: str
    ingress_class: str
    enable_ingress: bool = True
    enable_status: bool = False


@dataclass(frozen=True)
class Gateway:
    id: str
    name: str
    status: str  # "running" when usable
    version: str
    vpc_id: str
    slb_address: str  # the gateway's own SLB (DNS method points here)
    node_ips: tuple[str, ...] = ()


@dataclass(frozen=True)
class Route:
    host: str
    path: str


@dataclass(frozen=True)
class Listener:
    port: int
    protocol: str  # TCP | HTTP | HTTPS | UDP
    scheduler: str
    acl_on: bool
    vgroup_id: str


@dataclass(frozen=True)
class LoadBalancer:
    id: str
    address: str
    vpc_id: str
    listeners: tuple[Listener, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Backend:
    """One server in a vServer group. A server may sit in one group on several ports, so
    (server id, port) is what names a backend (`key`), never the server id alone."""

    server_id: str
    ip: str
    port: int
    weight: int
    type: str = "ecs"
    description: str = ""

    @property
    def key(self) -> tuple[str, int]:
        return (self.server_id, self.port)


@dataclass(frozen=True)
class VServerGroup:
    """A vServer group as `DescribeVServerGroupAttribute` shows it: its name matters, since the
    cloud controller refuses to reuse a group named with its own `k8s/...` key."""

    id: str
    name: str
    backends: tuple[Backend, ...] = ()


@dataclass(frozen=True)
class GatewayJoin:
    """One vServer group the gateway's nodes join, and the gateway port they receive on there:
    80 for an HTTP-side group, 443 for a group whose clients speak TLS to the backends."""

    vgroup_id: str
    port: int
    protocol: str  # HTTP | HTTPS (AddGatewaySlb's VServiceList protocol)
    vgroup_name: str = ""


@dataclass(frozen=True)
class BackendHealth:
    """One backend's health check as the SLB sees it (`DescribeHealthStatus`)."""

    server_id: str
    port: int
    status: str  # normal | abnormal | unavailable

    @property
    def key(self) -> tuple[str, int]:
        return (self.server_id, self.port)


@dataclass(frozen=True)
class DnsRecord:
    id: str
    domain: str  # the full name, e.g. shop.example.com
    type: str
    value: str
    weight: int = 1
    enabled: bool = True
    ttl: int = 600
    line: str = "default"  # the resolution line (answers by the client's network); weights are per line


# ---- ports --------------------------------------------------------------------------------


class ClusterPort(Protocol):
    """Reads Ingresses and reads or writes the NGINX Service of one Kubernetes cluster; reads the
    controller's ConfigMap and Deployments (the route check compares the controller's own settings).

    Promises: lists arrive page by page; writes carry the resourceVersion they read and
    retry on a conflict, so nothing someone else wrote meanwhile is lost.
    """

    def describe(self) -> ClusterInfo: ...

    def list_ingresses(self, *, ingress_class: str) -> Iterator[Ingress]: ...

    def get_service(self, *, namespace: str, name: str) -> Service | None: ...

    def patch_service_annotations(self, *, namespace: str, name: str, changes: Mapping[str, str | None]) -> Service: ...

    def delete_service(self, *, namespace: str, name: str) -> bool: ...

    def get_config_map(self, *, namespace: str, name: str) -> ConfigMap | None: ...

    def list_deployments(self, *, label_selector: str) -> list[Deployment]: ...


class GatewayPort(Protocol):
    """The MSE cloud-native gateway: its facts, which Ingress class it listens to, its routes.

    Promises: `listen` and `unlisten` reach a state and may be repeated; `join_slb` puts the
    gateway's nodes into every group it names at weight 0, each on its gateway port, in one
    association; `joined` reads back what the gateway says it joined (ListGatewaySlb).
    """

    def get_gateway(self, *, gateway_id: str) -> Gateway | None: ...

    def ingress_sources(self, *, gateway_id: str) -> list[IngressSource]: ...

    def listen(self, *, gateway_id: str, cluster: str, ingress_class: str) -> IngressSource: ...

    def unlisten(self, *, gateway_id: str, cluster: str) -> bool: ...

    def routes(self, *, gateway_id: str) -> list[Route]: ...

    def join_slb(self, *, gateway_id: str, slb_id: str, groups: Sequence[GatewayJoin]) -> None: ...

    def joined(self, *, gateway_id: str, slb_id: str) -> list[GatewayJoin]: ...

    def leave_slb(self, *, gateway_id: str, slb_id: str) -> None: ...


class LoadBalancerPort(Protocol):
    """The SLB (CLB) in front of NGINX: listeners, tags, vServer group backends and weights.

    Promises: weights are set absolutely, at most 20 servers a call, each backend named by
    server id and port; `set_weights` writes what it is given without reading first (the
    rollback path), and `vgroup`/`backends` read back what the SLB really holds.
    """

    def describe(self, *, slb_id: str) -> LoadBalancer | None: ...

    def set_tags(self, *, slb_id: str, tags: Mapping[str, str], remove: Iterable[str] = ()) -> None: ...

    def set_scheduler(self, *, slb_id: str, port: int, protocol: str, scheduler: str) -> None: ...

    def vgroup(self, *, vgroup_id: str) -> VServerGroup: ...

    def backends(self, *, vgroup_id: str) -> list[Backend]: ...

    def rename_vgroup(self, *, vgroup_id: str, name: str) -> None: ...

    def set_weights(self, *, vgroup_id: str, backends: Sequence[Backend]) -> None: ...

    def health(self, *, slb_id: str, port: int, protocol: str) -> list[BackendHealth]: ...


class DnsPort(Protocol):
    """Weighted DNS records (Alibaba Cloud DNS): one name, several A records, each with a weight.

    Promises: `records` lists every record of the name (all types, all lines); `add_record`
    returns the existing record when one with that type, value and line exists; `weighted`
    reads the name's weighted-round-robin flag for one type and line, `set_weighted` sets it;
    `set_ttl` changes a record's TTL only (UpdateDomainRecord, which needs the record's RR,
    type and value again).
    """

    def zone_for(self, *, domain: str) -> str | None: ...

    def records(self, *, domain: str) -> list[DnsRecord]: ...

    def add_record(self, *, domain: str, type: str, value: str, enabled: bool, ttl: int = 600,
                   line: str = "default") -> DnsRecord: ...

    def weighted(self, *, domain: str, type: str = "A", line: str = "default") -> bool: ...

    def set_weighted(self, *, domain: str, on: bool, type: str = "A", line: str = "default") -> None: ...

    def set_ttl(self, *, record: DnsRecord, ttl: int) -> None: ...

    def set_weight(self, *, record_id: str, weight: int) -> None: ...

    def set_enabled(self, *, record_id: str, enabled: bool) -> None: ...

    def delete_record(self, *, record_id: str) -> None: ...


class ResolverPort(Protocol):
    """What a client on the internet gets for a name: its A-record addresses, [] if none.

    Promises: never raises for a name that does not resolve; answers within a few seconds.
    The only way to see records at a DNS provider the bot cannot manage.
    """

    def addresses(self, *, domain: str) -> list[str]: ...


class MetricsPort(Protocol):
    """A Prometheus-compatible HTTP API (self-hosted Prometheus, or Managed Service for Prometheus).

    Promises: `value` runs one instant query and returns the first sample's value, or None when
    the query matched no series; a server that cannot be reached, or refuses the query, raises
    ProviderError with what went wrong (a bad query is not temporary, an unreachable server is).
    """

    def value(self, *, promql: str) -> float | None: ...


class World(Protocol):
    """Everything the bot acts on; one per process, real or simulated. `metrics` is None when no
    Prometheus is configured (the gates that need it then fail safe)."""

    gateway: GatewayPort
    slb: LoadBalancerPort
    dns: DnsPort
    resolver: ResolverPort
    metrics: MetricsPort | None
    controller_configmap: str  # "NAMESPACE/NAME" from the config, or "" to find it from the controller Deployment

    def cluster(self, cluster_id: str) -> ClusterPort: ...


class Store(Protocol):
    """Migration records, approvals, audit events and idempotency keys.

    Promises: `create` and `commit` are atomic compare-and-sets that append their audit event
    in the same step; `commit` raises Conflict when the record's version moved on.
    """

    def load(self, migration_id: str) -> Migration | None: ...

    def active_in_channel(self, channel: str) -> Migration | None: ...

    def latest_in_channel(self, channel: str) -> Migration | None: ...

    def active_migrations(self) -> list[Migration]: ...

    def create(self, migration: Migration, event: Event) -> Migration: ...

    def commit(self, *, expected_version: int, migration: Migration, event: Event,
               approval: Approval | None = None) -> Migration: ...

    def approval(self, migration_id: str, approval_id: str) -> Approval | None: ...

    def pending_approvals(self) -> list[Approval]: ...

    def events(self, migration_id: str, *, limit: int = 50) -> list[Event]: ...

    def claim(self, key: str, *, ttl_seconds: int, attempt: str = "") -> bool: ...

    def remember(self, key: str, value: Mapping[str, Any], *, ttl_seconds: int) -> None: ...

    def recall(self, key: str) -> dict[str, Any] | None: ...
