"""The real Kubernetes side of ClusterPort, on the official `kubernetes` client, and the A/B probe."""

from providers.kube.cluster import KubeCluster
from providers.kube.probe import Difference, probe

__all__ = ["Difference", "KubeCluster", "probe"]
