"""Kubernetes API failures as ProviderErrors, and the bounded retry every call goes through.

429 and 5xx (and a connection that fails or times out) are temporary: retried with jittered
exponential backoff, honouring Retry-After, a bounded number of times. 401 and 403 are not:
the message names the verb and resource the bot's identity lacks, which is what RBAC needs.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import urllib3
from kubernetes.client.exceptions import ApiException

from commands.errors import ProviderError

T = TypeVar("T")
MAX_DELAY = 10.0


@dataclass(frozen=True)
class Op:
    """One API call, described the way RBAC and `kubectl auth can-i` speak."""

    verb: str  # list | get | update | patch | delete
    resource: str  # e.g. "ingresses.networking.k8s.io", "services"
    namespace: str = ""  # "" for all namespaces or cluster-scoped
    name: str = ""

    def where(self) -> str:
        target = f"{self.resource}/{self.name}" if self.name else self.resource
        return f"{target} in namespace {self.namespace}" if self.namespace else f"{target} (cluster-wide)"

    def can_i(self) -> str:
        scope = f"-n {self.namespace}" if self.namespace else "-A"
        return f"kubectl auth can-i {self.verb} {self.resource} {scope}"


def _message(err: ApiException) -> str:
    try:
        return str(json.loads(err.body or "{}").get("message") or err.reason or "")
    except ValueError:
        return str(err.reason or "")


def translate(err: ApiException, op: Op, cluster: str) -> ProviderError:
    status = int(err.status or 0)
    operation = f"{op.verb} {op.where()} on cluster {cluster}"
    if status == 401:
        return ProviderError("the cluster did not accept the bot's credentials (401 Unauthorized)",
                             code="Unauthorized", operation=operation,
                             next_step="renew the token or certificate in the kubeconfig for this cluster")
    if status == 403:
        user = re.search(r'User "([^"]+)"', _message(err))
        who = f" ({user.group(1)})" if user else ""
        return ProviderError(f"the bot's identity{who} may not {op.verb} {op.where()} (403 Forbidden)",
                             code="Forbidden", operation=operation,
                             next_step=f"grant '{op.verb}' on {op.resource} in a Role or ClusterRole; "
                                       f"check with `{op.can_i()}`")
    if status == 404:
        return ProviderError(f"{op.where()} does not exist", code="NotFound", operation=operation,
                             next_step="check the namespace and name")
    if status == 409:
        return ProviderError(f"{op.where()} changed since it was read (409 Conflict)", code="Conflict",
                             operation=operation, temporary=True, next_step="read it again and retry")
    if status == 410:
        return ProviderError("the list expired between pages (410 Gone)", code="Expired", operation=operation,
                             temporary=True, next_step="run the check again")
    temporary = status == 429 or status >= 500 or status == 0
    return ProviderError(f"the API server answered {status} {err.reason or ''}: {_message(err)}".strip(),
                         code=str(status), operation=operation, temporary=temporary)


def retry_after(err: ApiException) -> float | None:
    value = (err.headers or {}).get("Retry-After") if err.headers else None
    try:
        return min(float(value), MAX_DELAY) if value is not None else None
    except ValueError:
        return None


def call(fn: Callable[[], T], op: Op, *, cluster: str, retries: int, backoff: float) -> T:
    """`fn()` with retries on temporary failures; anything else, or the last failure, raises ProviderError."""
    attempt = 0
    while True:
        try:
            return fn()
        except ApiException as err:
            status = int(err.status or 0)
            if not (status == 429 or status >= 500) or attempt >= retries:
                raise translate(err, op, cluster) from None
            delay = retry_after(err)
        except urllib3.exceptions.HTTPError as err:
            if attempt >= retries:
                raise ProviderError(f"the API server did not answer ({type(err).__name__})", code="Unreachable",
                                    operation=f"{op.verb} {op.where()} on cluster {cluster}", temporary=True,
                                    next_step="check the API server address and network, then retry") from None
            delay = None
        if delay is None:
            delay = min(MAX_DELAY, backoff * 2 ** attempt) * random.uniform(0.5, 1.0)
        time.sleep(delay)
        attempt += 1


def load(response: Any) -> Any:
    """The JSON body of a raw (`_preload_content=False`) response."""
    try:
        return json.loads(response.data)
    finally:
        response.release_conn()
