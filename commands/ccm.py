"""The ACK cloud controller's Service annotations, and the set step 4b writes.

After step 4b the NGINX Service reuses the SLB (`-id`) and manages only its own backends in the
vServer groups it names (`-vgroup-port`) without touching listeners, and `-weight` is the NGINX
side's total weight in each: the only way to give MSE more than half the traffic, and 0 at cutover.
Only the load-balancer annotations are the controller's; every other annotation is left alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

LB_PREFIX = "service.beta.kubernetes.io/alibaba-cloud-loadbalancer-"
#: The controller still reads the old spelling (cloud-api.md §4: "legacy `alicloud-` still read").
LEGACY_PREFIX = "service.beta.kubernetes.io/alicloud-loadbalancer-"
LB_ID_LABEL = "service.k8s.alibaba/loadbalancer-id"
ID = LB_PREFIX + "id"
VGROUP_PORT = LB_PREFIX + "vgroup-port"
FORCE_OVERRIDE = LB_PREFIX + "force-override-listeners"
WEIGHT = LB_PREFIX + "weight"
HOSTNAME = LB_PREFIX + "hostname"
HOSTNAME_VALUE = "mse-ingress-migration"
#: Tags the controller puts on an SLB it created; while present the SLB cannot be reused.
CCM_TAGS = ("kubernetes.do.not.delete", "ack.aliyun.com")


#: A group name the controller made: `k8s/<port>/<service>/<namespace>/<cluster>` (cloud-api.md §2).
CCM_KEY_PARTS = 5


def generated_annotations(*, slb_id: str, vgroup_ports: Sequence[tuple[str, int]], nginx_weight: int,
                          in_cluster: bool) -> dict[str, str]:
    """The load-balancer annotations step 4b writes (every other annotation stays).

    `-vgroup-port` names every moved group with the Service port it serves (`rsp-a:80,rsp-b:443`).
    The `-hostname` annotation sends in-cluster clients through the SLB too; it is written only
    when asked, since an SLB with IP access control would then see pod addresses it may refuse.
    """
    annotations = {
        ID: slb_id,
        VGROUP_PORT: ",".join(f"{vgroup_id}:{port}" for vgroup_id, port in vgroup_ports),
        FORCE_OVERRIDE: "false",
        WEIGHT: str(nginx_weight),
    }
    if in_cluster:
        annotations[HOSTNAME] = HOSTNAME_VALUE
    return annotations


def is_lb_annotation(key: str) -> bool:
    """The annotations the cloud controller reads for the SLB: the only ones 4b may replace."""
    return key.startswith(LB_PREFIX) or key.startswith(LEGACY_PREFIX)


def lb_annotations(annotations: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in annotations.items() if is_lb_annotation(k)}


def annotation_changes(current: Mapping[str, str], lb_target: Mapping[str, str]) -> dict[str, str | None]:
    """A patch that makes the Service's load-balancer annotations exactly `lb_target`.

    Keys outside the load-balancer prefixes (Helm's `meta.helm.sh/*`, external-dns, anything
    else) are never in the patch, so they stay as they are. None deletes a key.
    """
    changes: dict[str, str | None] = {k: None for k in current if is_lb_annotation(k) and k not in lb_target}
    changes.update({k: v for k, v in lb_target.items() if current.get(k) != v})
    return changes


def parse_ccm_key(name: str) -> tuple[str, str, str, str, str] | None:
    """(prefix, port, service, namespace, cluster) when `name` is the controller's key, else None.

    The controller treats a group or backend as its own exactly when its name or description
    parses this way (cloud-api.md §2 and §4: `LoadVGroupNamedKey`, `isBackendManagedByMyService`).
    """
    parts = name.split("/")
    if len(parts) != CCM_KEY_PARTS or parts[0] != "k8s" or not all(parts[1:]):
        return None
    return parts[0], parts[1], parts[2], parts[3], parts[4]


def is_ccm_name(name: str) -> bool:
    """Whether the controller would call a vServer group with this name its own, and refuse to reuse it."""
    return parse_ccm_key(name) is not None


def serves(description: str, *, namespace: str, service: str) -> bool:
    """Whether a backend (by its description) is one of this Service's NGINX backends."""
    key = parse_ccm_key(description)
    return key is not None and key[2] == service and key[3] == namespace


def slb_of_service(annotations: dict[str, str], labels: dict[str, str]) -> str:
    """The SLB id a Service uses: the reuse annotation, else the label the controller sets."""
    return annotations.get(ID) or labels.get(LB_ID_LABEL, "")
