"""The procedure's FAQ error codes, explained in the procedure's own terms.

MSE's migration pre-checks answer with `mse.backend.gw.MIGRATE_*` codes that mean nothing to
someone holding the bot's status card. The provider layer puts these meanings on the errors
it raises, and the engine can use the same table (and the two local checks below) to refuse a
step before the cloud does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from commands.ccm import HOSTNAME, WEIGHT

PREFIX = "mse.backend.gw."
INGRESS_CLASS_CONFLICT = PREFIX + "MIGRATE_INGRESS_CLASS_CONFLICT"
SERVICE_ANNOTATION_NOT_MATCH = PREFIX + "MIGRATE_SERVICE_ANNOTATION_NOT_MATCH"
SERVICE_NOT_MATCH = PREFIX + "MIGRATE_SERVICE_NOT_MATCH"


@dataclass(frozen=True)
class FaqEntry:
    """What a FAQ code means, which step it belongs to, and how to get past it."""

    code: str
    step: str
    meaning: str
    next_step: str


FAQ: Mapping[str, FaqEntry] = {
    INGRESS_CLASS_CONFLICT: FaqEntry(
        INGRESS_CLASS_CONFLICT,
        "step 1 (migrate routing rules)",
        "the gateway is already associated with this cluster with Ingress listening on, "
        "but for a different Ingress class than the one being migrated",
        "migrate that class instead, or change the cluster's Ingress listening settings on the gateway "
        "(in the MSE console, or in the MseIngressConfig resource if one manages the gateway)",
    ),
    SERVICE_ANNOTATION_NOT_MATCH: FaqEntry(
        SERVICE_ANNOTATION_NOT_MATCH,
        "step 4b (update service annotations)",
        "the NGINX Ingress Service's annotations are not the ones generated for reusing the SLB",
        "go back to step 4b: replace the Service's annotations with exactly the generated set",
    ),
    SERVICE_NOT_MATCH: FaqEntry(
        SERVICE_NOT_MATCH,
        "step 4d (route all traffic to MSE)",
        "the NGINX Ingress Service still takes traffic: its weight annotation is not 0 and it was not deleted",
        f"set {WEIGHT} to 0 on the Service, or delete the Service",
    ),
}


def explain(code: str) -> FaqEntry | None:
    """The FAQ entry for `code`, accepting the code with or without the `mse.backend.gw.` prefix."""
    if not code:
        return None
    return FAQ.get(code) or FAQ.get(PREFIX + code)


def annotation_mismatches(actual: Mapping[str, str], generated: Mapping[str, str]) -> list[str]:
    """The annotation keys that make the 4b pre-check fail (`SERVICE_ANNOTATION_NOT_MATCH`).

    Every generated annotation must be present with its value; the optional `-hostname`
    annotation may be absent, since the procedure adds it only for in-cluster clients.
    """
    wrong = []
    for key, value in generated.items():
        if key == HOSTNAME and key not in actual:
            continue
        if actual.get(key) != value:
            wrong.append(key)
    return sorted(wrong)


def nginx_still_weighted(annotations: Mapping[str, str] | None) -> bool:
    """True when the Service would fail the 4d check (`SERVICE_NOT_MATCH`); None means deleted."""
    if annotations is None:
        return False
    return annotations.get(WEIGHT, "").strip() != "0"


def sentence(code: str, *, detail: str = "") -> str:
    """One line for a user: the code, what it means in the procedure's terms, and what to do."""
    entry = explain(code)
    if entry is None:
        return code
    extra = f" ({detail})" if detail else ""
    return f"{entry.code}: at {entry.step}, {entry.meaning}{extra}. Next: {entry.next_step}."
