"""The ACK cloud controller's Service annotations, and the set step 4b writes.

After step 4b the NGINX Service reuses the SLB (`-id`) and manages only its own vServer group
(`-vgroup-port`) without touching listeners, and `-weight` is the NGINX side's total weight:
the only way to give MSE more than half the traffic, and 0 at cutover.
"""

from __future__ import annotations

LB_PREFIX = "service.beta.kubernetes.io/alibaba-cloud-loadbalancer-"
LB_ID_LABEL = "service.k8s.alibaba/loadbalancer-id"
ID = LB_PREFIX + "id"
VGROUP_PORT = LB_PREFIX + "vgroup-port"
FORCE_OVERRIDE = LB_PREFIX + "force-override-listeners"
WEIGHT = LB_PREFIX + "weight"
HOSTNAME = LB_PREFIX + "hostname"
HOSTNAME_VALUE = "mse-ingress-migration"
#: Tags the controller puts on an SLB it created; while present the SLB cannot be reused.
CCM_TAGS = ("kubernetes.do.not.delete", "ack.aliyun.com")


def generated_annotations(*, slb_id: str, vgroup_id: str, service_port: int, nginx_weight: int,
                          acl_on: bool) -> dict[str, str]:
    """The annotations that replace the Service's own at step 4b.

    The `-hostname` annotation sends in-cluster clients through the SLB too; the procedure
    allows it only when the listener's IP access control is off, since the SLB would then see
    pod addresses it may not admit.
    """
    annotations = {
        ID: slb_id,
        VGROUP_PORT: f"{vgroup_id}:{service_port}",
        FORCE_OVERRIDE: "false",
        WEIGHT: str(nginx_weight),
    }
    if not acl_on:
        annotations[HOSTNAME] = HOSTNAME_VALUE
    return annotations


def slb_of_service(annotations: dict[str, str], labels: dict[str, str]) -> str:
    """The SLB id a Service uses: the reuse annotation, else the label the controller sets."""
    return annotations.get(ID) or labels.get(LB_ID_LABEL, "")
