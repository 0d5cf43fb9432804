"""The procedure's three FAQ errors, explained in its own terms, for every place the bot meets them."""

INGRESS_CLASS_CONFLICT = (
    "mse.backend.gw.MIGRATE_INGRESS_CLASS_CONFLICT: gateway {gateway} already listens to cluster {cluster} with "
    "Ingress class `{theirs}`, not `{ours}`. The class must match the one set for the attached cluster: start "
    "with `class={theirs}`, or change the gateway's Ingress listening settings in the MSE console (or the "
    "MseIngressConfig resource, if you manage MSE Ingress with it)."
)
SERVICE_ANNOTATION_NOT_MATCH = (
    "mse.backend.gw.MIGRATE_SERVICE_ANNOTATION_NOT_MATCH: the NGINX Service's annotations are not the ones "
    "step 4b sets. Run `/migrate switch` again to rewrite them, or `/migrate abort` to restore the originals."
)
SERVICE_NOT_MATCH = (
    "mse.backend.gw.MIGRATE_SERVICE_NOT_MATCH: the Service's "
    "`service.beta.kubernetes.io/alibaba-cloud-loadbalancer-weight` is not 0 and the Service still exists, so "
    "NGINX still takes traffic. Run `/migrate cutover` again (it sets the annotation to 0)."
)
