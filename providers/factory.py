"""Build the world the bot acts on from its config: simulated, or Alibaba Cloud + Kubernetes."""

from __future__ import annotations

from typing import Any

from commands.errors import UserError
from commands.ports import ClusterPort, DnsPort, GatewayPort, LoadBalancerPort, MetricsPort, ResolverPort


class CloudWorld:
    """MSE, SLB and DNS on the Alibaba Cloud SDKs; each cluster on its own Kubernetes client."""

    def __init__(self, *, gateway: GatewayPort, slb: LoadBalancerPort, dns: DnsPort,
                 clusters: dict[str, dict[str, Any]], resolver: ResolverPort | None = None,
                 metrics: MetricsPort | None = None, controller_configmap: str = "") -> None:
        from providers.resolver import SystemResolver

        self.gateway, self.slb, self.dns, self.metrics = gateway, slb, dns, metrics
        self.controller_configmap = controller_configmap
        self.resolver: ResolverPort = resolver or SystemResolver()
        self._cluster_config = clusters
        self._clusters: dict[str, ClusterPort] = {}

    def cluster(self, cluster_id: str) -> ClusterPort:
        if cluster_id not in self._clusters:
            cfg = self._cluster_config.get(cluster_id)
            if cfg is None:
                raise UserError(f"Cluster {cluster_id} is not in the bot's config (`clusters:`); known: "
                                f"{', '.join(sorted(self._cluster_config)) or 'none'}.")
            self._clusters[cluster_id] = _cluster(cluster_id, cfg, self.slb)
        return self._clusters[cluster_id]


def _cluster(cluster_id: str, cfg: dict[str, Any], slb: LoadBalancerPort) -> ClusterPort:
    if cfg.get("sim_seed") is not None:  # rehearsal: a simulated cluster next to real or emulated cloud APIs
        from providers.sim.cluster import SimCluster
        from providers.sim.state import SimState

        state = SimState.from_seed(cfg.get("sim_seed") or None, path=cfg.get("sim_state"))
        return SimCluster(state, cluster_id, ccm_slb=slb)
    from providers.kube.cluster import KubeCluster

    return KubeCluster(cluster_id, kubeconfig=cfg.get("kubeconfig"), context=cfg.get("context"),
                       in_cluster=bool(cfg.get("in_cluster", False)), vpc_id=cfg.get("vpc_id", ""))


def build_world(name: str, config: dict[str, Any], *, controller_configmap: str = "") -> Any:
    """`sim` (the default) or `alibaba`; anything else is a configuration error. `controller_configmap`
    (NAMESPACE/NAME, from the bot's config) is the NGINX controller's ConfigMap the route check reads."""
    if name in ("", "sim"):
        from providers.sim.world import SimWorld

        sim = config.get("sim") or {}
        return SimWorld.from_seed(sim.get("seed"), path=sim.get("state_file"),
                                  controller_configmap=controller_configmap)
    if name == "alibaba":
        from providers.alibaba.world import AlibabaCloud
        from providers.prometheus import from_config as prometheus_from_config

        cloud = AlibabaCloud.from_config(config.get("alibaba") or {})
        return CloudWorld(gateway=cloud.gateway, slb=cloud.slb, dns=cloud.dns, clusters=config.get("clusters") or {},
                          metrics=prometheus_from_config(config.get("prometheus") or {}),
                          controller_configmap=controller_configmap)
    raise UserError(f"MIGRATE_PROVIDERS is `{name}`; use `sim` or `alibaba`.")
