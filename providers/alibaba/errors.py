"""Every way an Alibaba Cloud SDK call can fail, turned into one `ProviderError`.

    SDK raises                               becomes ProviderError with
    ThrottlingException (x-acs-retry-after)  temporary=True, "wait and retry"
    ServerException (5xx)                    temporary=True
    ClientException (4xx)                    temporary only for throttling codes; known codes explained
    UnretryableException(RetryError)         code "NetworkError": no answer within the timeout
    UnretryableException(CredentialException), CredentialException
                                             code "InvalidCredentials": how to give the bot credentials
    MSE body with Success: false             the body's code (FAQ codes explained by commands.faq)

The SDK has already retried by the time an exception reaches here (see `config.retry_options`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from alibabacloud_credentials.exceptions import CredentialException
from alibabacloud_tea_openapi.exceptions import (
    AlibabaCloudException,
    ClientException,
    ServerException,
    ThrottlingException,
)
from Tea.exceptions import TeaException, UnretryableException

from commands.errors import ProviderError
from commands.faq import explain

T = TypeVar("T")

_MSE_CODE = re.compile(r"mse\.backend\.gw\.[A-Z_]+")
_THROTTLED = ("Throttling", "ServiceUnavailable", "SystemBusy")

#: Codes the adapters can meet, with a one-line meaning and the next step.
KNOWN: dict[str, tuple[str, str]] = {
    "InvalidAccessKeyId.NotFound": ("the AccessKey ID is not known to Alibaba Cloud",
                                    "check the bot's AccessKey or RAM role settings"),
    "InvalidAccessKeyId.Inactive": ("the AccessKey is disabled", "enable it, or give the bot another AccessKey"),
    "SignatureDoesNotMatch": ("the request signature was rejected: the AccessKey secret does not match its ID",
                              "check the AccessKey secret the bot uses"),
    "IncompleteSignature": ("the request signature was rejected as malformed", "check the bot's credentials"),
    "InvalidCredentials": ("the bot has no usable Alibaba Cloud credentials",
                           "set ALIBABA_CLOUD_ACCESS_KEY_ID/_SECRET, configure RRSA on ACK, or attach a RAM role"),
    "Forbidden.RAM": ("the RAM identity the bot uses lacks permission for this action",
                      "grant the action to the bot's RAM user or role"),
    "NoPermission": ("the RAM identity the bot uses lacks permission for this action",
                     "grant the action to the bot's RAM user or role"),
    "InvalidAction.NotFound": ("the cloud does not know this action (wrong endpoint or API version)",
                               "check the endpoint configured for this product"),
    "InvalidParameter": ("the cloud rejected a parameter", "check the ids and values in the request"),
    "InvalidLoadBalancerId.NotFound": ("the SLB does not exist in this region",
                                       "check the SLB id (lb-...) and the configured region"),
    "VServerGroupId.NotFound": ("the vServer group does not exist", "choose the listener again"),
    "BackendServer.NotExist": ("a server is not in the vServer group",
                               "re-read the vServer group; someone may have removed the server"),
    "InvalidDomainName.NoExist": ("the domain is not hosted in this Alibaba Cloud DNS account",
                                  "create the records at the domain's DNS provider by hand"),
    "DomainRecordNotBelongToUser": ("the DNS record does not exist (any more) in this account",
                                    "re-read the domain's records"),
    "DomainRecordDuplicate": ("an identical DNS record already exists", "re-read the domain's records"),
    "GatewayNotFound": ("the MSE gateway does not exist in this region",
                        "check the gateway id (gw-...) and the configured region"),
    "NetworkError": ("no answer from the cloud API within the timeout", "retry; if it persists, check the network"),
}


def _meaning(code: str, message: str, temporary: bool) -> tuple[str, str]:
    faq = explain(code)
    if faq:
        return f"{faq.meaning} ({faq.step})", faq.next_step
    if code in KNOWN:
        return KNOWN[code]
    if temporary:
        return (message or "the cloud is busy or throttling calls"), "wait a minute and retry"
    return (message or "the cloud refused the call"), "read the message, fix the request and retry"


def from_sdk(exc: BaseException, operation: str) -> ProviderError:
    """The ProviderError for an exception raised by a tea-openapi client call."""
    if isinstance(exc, UnretryableException):
        inner = getattr(exc, "inner_exception", None)
        if isinstance(inner, CredentialException):
            return from_sdk(inner, operation)
        meaning, step = KNOWN["NetworkError"]
        return ProviderError(f"{meaning} ({_one_line(str(inner or exc))})", code="NetworkError", temporary=True,
                             next_step=step, operation=operation)
    if isinstance(exc, CredentialException):
        meaning, step = KNOWN["InvalidCredentials"]
        return ProviderError(meaning, code="InvalidCredentials", next_step=step, operation=operation)
    if isinstance(exc, AlibabaCloudException):
        code = str(exc.code or "")
        data = exc.data if isinstance(exc.data, dict) else {}
        message = _one_line(str(data.get("Message") or exc.message or ""))
        temporary = isinstance(exc, ThrottlingException | ServerException) or code.startswith(_THROTTLED)
        meaning, step = _meaning(code, message, temporary)
        if isinstance(exc, ClientException) and code == "InvalidCredentials":
            meaning, step = KNOWN["InvalidCredentials"]
        return ProviderError(meaning, code=code, request_id=str(exc.request_id or ""), temporary=temporary,
                             next_step=step, operation=operation)
    if isinstance(exc, TeaException):  # validation of a request model, before anything was sent
        return ProviderError(_one_line(str(exc)), code=str(getattr(exc, "code", "") or "InvalidRequest"),
                             operation=operation, next_step="this is a bug in migrate-bot; report it")
    raise exc


def mse_failure(body: Any, operation: str) -> ProviderError | None:
    """MSE answers some failures with HTTP 200 and `Success: false`; the SDK does not raise."""
    if body is None or getattr(body, "success", True) is not False:
        return None
    message = _one_line(str(getattr(body, "message", "") or ""))
    found = _MSE_CODE.search(message)
    code = found.group(0) if found else str(getattr(body, "code", "") or "MseError")
    status = getattr(body, "http_status_code", None) or getattr(body, "code", None)
    temporary = isinstance(status, int) and status >= 500
    meaning, step = _meaning(code, message, temporary)
    return ProviderError(meaning, code=code, request_id=str(getattr(body, "request_id", "") or ""),
                         temporary=temporary, next_step=step, operation=operation)


@contextmanager
def translated(operation: str) -> Iterator[None]:
    """Run SDK calls; anything they raise leaves as a ProviderError naming `operation`."""
    try:
        yield
    except ProviderError:
        raise
    except (TeaException, CredentialException) as exc:
        raise from_sdk(exc, operation) from exc


def call(operation: str, fn: Callable[[], T]) -> T:
    """Call one SDK method; for MSE, also turn a `Success: false` body into an error."""
    with translated(operation):
        response = fn()
    failure = mse_failure(getattr(response, "body", None), operation)
    if failure:
        raise failure
    return response


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]
