"""The one place where SDK, transport and HTTP error answers become hi_async errors.

Two questions are asked of every failed call: how should the retry loop treat it
(:func:`classify`), and what should the user read when retries are over
(:func:`translate`). Both accept botocore's exceptions (every SDK call) and
:class:`ApiError` (an error answer read by the lean frame client, parsed by the same
rules botocore applies), so that neither path needs to imitate the other.
"""

from __future__ import annotations

import asyncio
import enum
import json
import sys
from collections.abc import Mapping
from urllib.parse import urlsplit

import botocore.exceptions as bx

from ..errors import (
    AccessDenied,
    ConfigurationError,
    CredentialsError,
    EndpointUnreachable,
    HiAsyncError,
    NotFound,
    ServiceError,
    UsageError,
)
from ..settings import Settings


class ErrorKind(enum.StrEnum):
    """What a failed attempt means for the retry loop."""

    THROTTLE = "throttle"  # the service asks to slow down: back off and cut the send rate
    RETRY = "retry"  # transient (5xx, a dropped connection, a body cut short)
    CONNECT = "connect"  # nobody answers at the endpoint: likely a wrong URL, give up soon
    FATAL = "fatal"  # the same answer would come again


class ApiError(Exception):
    """An HTTP error answer of an AWS service, as the lean frame client reads it."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status = status
        self.code = code
        self.message = message
        super().__init__(f"{code or status}: {message}")

    @classmethod
    def from_answer(cls, status: int, headers: Mapping[str, str], body: bytes) -> ApiError:
        """Code and message by botocore's rest-json rules: the ``x-amzn-ErrorType``
        header (text before ``:``), else the body's ``code``/``Code``/``__type``
        (namespace after ``#`` dropped); the message from the body's ``message``."""
        lower = {name.lower(): value for name, value in headers.items()}
        code = (lower.get("x-amzn-errortype") or "").split(":", 1)[0]
        message = ""
        try:
            doc = json.loads(body) if body else {}
        except ValueError:
            doc = {}
        if isinstance(doc, dict):
            code = code or str(doc.get("code") or doc.get("Code") or doc.get("__type") or "")
            message = str(doc.get("message") or doc.get("Message") or "")
        return cls(status, code.rsplit("#", 1)[-1] or str(status), message)


class BodyError(Exception):
    """A response body that cannot be used as it arrived (an unknown Content-Encoding)."""


class Unreachable(Exception):
    """Nobody answers at ``url`` (connection refused, no route, DNS failure)."""

    def __init__(self, url: str) -> None:
        self.url = url
        super().__init__(f"cannot connect to {url}")


_THROTTLE_CODES = {"ThrottlingException", "Throttling", "TooManyRequestsException",
                   "RequestLimitExceeded", "SlowDown", "ProvisionedThroughputExceededException"}
_SERVER_CODES = {"InternalServerException", "ServiceUnavailable", "InternalError",
                 "RequestTimeout"}
_CREDENTIAL_CODES = {"UnrecognizedClientException", "InvalidSignatureException",
                     "InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken",
                     "ExpiredTokenException", "InvalidAccessKeyId", "IncompleteSignature",
                     "MissingAuthenticationToken"}
_NOT_FOUND_CODES = {"ResourceNotFoundException", "NoSuchKey", "NoSuchBucket", "NotFound"}

#: Failures of the credential chain itself (expired SSO tokens, a failing
#: credential_process, an assume-role that was refused): the same for every request.
_CREDENTIAL_FAILURES: tuple[type[BaseException], ...] = tuple(
    cls for cls in (getattr(bx, name, None) for name in (
        "CredentialRetrievalError", "TokenRetrievalError", "SSOTokenLoadError",
        "UnauthorizedSSOTokenError", "SSOError", "RefreshWithMFAUnsupportedError",
        "InvalidConfigError"))
    if isinstance(cls, type))

_TRANSIENT: tuple[type[BaseException], ...] = (
    bx.ConnectionError, bx.ReadTimeoutError, bx.ResponseStreamingError, bx.IncompleteReadError,
    bx.HTTPClientError, asyncio.TimeoutError, ConnectionError, BodyError)


def _aiohttp_error(exc: BaseException) -> bool:
    """An aiohttp client error (under aiobotocore's clients). aiohttp is looked up, not
    imported: if it was never imported, no such error can exist."""
    aiohttp = sys.modules.get("aiohttp")
    return aiohttp is not None and isinstance(exc, aiohttp.ClientError)


def error_code(exc: BaseException) -> tuple[str, int]:
    """(service error code, HTTP status) of an error answer; ("", 0) for anything else."""
    if isinstance(exc, ApiError):
        return exc.code, exc.status
    if isinstance(exc, bx.ClientError):
        err = exc.response.get("Error", {})
        meta = exc.response.get("ResponseMetadata", {})
        return str(err.get("Code", "")), int(meta.get("HTTPStatusCode") or 0)
    return "", 0


def _message(exc: BaseException) -> str:
    if isinstance(exc, ApiError):
        return exc.message
    if isinstance(exc, bx.ClientError):
        return str(exc.response.get("Error", {}).get("Message") or "")
    return ""


def is_stack_not_found(exc: BaseException) -> bool:
    """CloudFormation answers a stack it does not know with a ValidationError whose message
    says so ("Stack with id X does not exist"): it has no error code of its own."""
    code, _ = error_code(exc)
    return code == "ValidationError" and "does not exist" in _message(exc)


def classify(exc: BaseException) -> ErrorKind:
    """How the retry loop should treat ``exc``."""
    code, status = error_code(exc)
    if status or code:
        if code in _THROTTLE_CODES or status == 429:
            return ErrorKind.THROTTLE
        if status >= 500 or code in _SERVER_CODES:
            return ErrorKind.RETRY
        return ErrorKind.FATAL
    if isinstance(exc, Unreachable) or (
            isinstance(exc, (bx.EndpointConnectionError, bx.ConnectTimeoutError))
            and not isinstance(exc, bx.ConnectionClosedError)):
        return ErrorKind.CONNECT
    if isinstance(exc, _TRANSIENT) or _aiohttp_error(exc):
        return ErrorKind.RETRY
    return ErrorKind.FATAL


def translate(exc: BaseException, what: str, settings: Settings | None = None) -> HiAsyncError:
    """A user-facing error for a failed call while doing ``what`` ("... while trying to")."""
    if isinstance(exc, HiAsyncError):
        return exc
    code, status = error_code(exc)
    if code or status:
        return _translate_answer(code, status, _message(exc) or code or f"HTTP {status}",
                                 what, exc, settings)
    if isinstance(exc, bx.ProfileNotFound):
        return ConfigurationError(
            f"AWS profile {getattr(exc, 'kwargs', {}).get('profile', '')!r} is not configured "
            f"(while trying to {what})",
            hint="check --profile against ~/.aws/config and ~/.aws/credentials",
        )
    if isinstance(exc, _CREDENTIAL_FAILURES):
        return CredentialsError(
            f"AWS credentials could not be obtained while trying to {what}: "
            f"{type(exc).__name__}",
            hint="refresh them (for SSO: 'aws sso login'), check the profile's "
            "credential_process or role, or pass --profile",
        )
    if isinstance(exc, (bx.NoCredentialsError, bx.PartialCredentialsError)):
        return CredentialsError(
            f"no AWS credentials were found while trying to {what}",
            hint="run 'aws configure', set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "or pass --profile",
        )
    if isinstance(exc, bx.NoRegionError):
        return ConfigurationError("no AWS region is configured", hint="pass --region")
    if isinstance(exc, (bx.EndpointConnectionError, bx.ConnectTimeoutError, Unreachable)):
        return EndpointUnreachable(
            f"the endpoint {_endpoint_of(exc, settings)} does not answer "
            f"(while trying to {what})",
            hint="check --endpoint-url and the network; for the local stack, start it with "
            "'python -m hi_async local serve'",
        )
    kind = type(exc).__name__
    return ServiceError(f"connection failed while trying to {what} ({kind})",
                        hint="the network is unreliable; transient errors were already retried")


def _translate_answer(code: str, status: int, message: str, what: str, exc: BaseException,
                      settings: Settings | None) -> HiAsyncError:
    if code in _CREDENTIAL_CODES:
        return CredentialsError(
            f"the service refused the credentials while trying to {what}: {message}",
            hint="check the access key and secret (or --profile) and the clock",
        )
    if code in {"AccessDeniedException", "AccessDenied"} or status == 403:
        return AccessDenied(
            f"access denied while trying to {what}: {message}",
            hint="the caller's IAM policy must allow this medical-imaging action",
        )
    if code in _NOT_FOUND_CODES or status == 404 or is_stack_not_found(exc):
        region = f" in region {settings.region}" if settings and settings.region else ""
        return NotFound(
            f"not found while trying to {what}{region}: {message}",
            hint="check the ID and that --region is the data store's region",
        )
    if code in {"ValidationException", "BadRequestException"} or status == 400:
        return UsageError(f"the service rejected the request to {what}: {message}")
    if code in _THROTTLE_CODES or status == 429:
        return ServiceError(
            f"still throttled after retries while trying to {what}",
            hint="lower --fetchers or ask for a higher HealthImaging quota",
        )
    return ServiceError(f"the service failed to {what}: {code or status} {message}",
                        hint="try again later; transient errors were already retried")


def _endpoint_of(exc: BaseException, settings: Settings | None) -> str:
    """The endpoint a connection failed to: botocore's URL (scheme and host) if it says."""
    url = exc.url if isinstance(exc, Unreachable) else (
        (getattr(exc, "kwargs", None) or {}).get("endpoint_url"))
    if isinstance(url, str) and "://" in url:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}"
    return settings.endpoint_url if settings and settings.endpoint_url else "AWS"


def is_fatal_for_run(error: HiAsyncError) -> bool:
    """Errors that will hit every other request too: stop the run instead of each frame."""
    return isinstance(error, (ConfigurationError, AccessDenied, UsageError))
