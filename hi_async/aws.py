"""Session and client factory, and the ONE place botocore/aiohttp errors become ours.

Clients use the standard AWS configuration (credential chain, ``--profile``,
``--region``, ``--endpoint-url``). botocore's own retries are switched off: every
request goes through :mod:`hi_async.retry`, which retries streaming-body failures that
botocore cannot (it reads the body after the call returned), adapts concurrency to
throttling and counts every re-sent request for summary.json.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp
import botocore.exceptions as bx
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession

from .errors import (
    AccessDenied,
    ConfigurationError,
    CredentialsError,
    EndpointUnreachable,
    HiAsyncError,
    NotFound,
    ServiceError,
    UsageError,
)
from .settings import Settings

ErrorKind = Literal["throttle", "retry", "connect", "fatal"]

_THROTTLE_CODES = {"ThrottlingException", "Throttling", "TooManyRequestsException",
                   "RequestLimitExceeded", "SlowDown", "ProvisionedThroughputExceededException"}
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


def _session(settings: Settings) -> AioSession:
    try:
        return AioSession(profile=settings.profile)
    except bx.ProfileNotFound as exc:
        raise ConfigurationError(
            f"AWS profile {settings.profile!r} is not configured",
            hint="check --profile against ~/.aws/config",
        ) from exc


def resolve_region(session: AioSession, settings: Settings) -> str:
    region = settings.region or session.get_config_variable("region")
    if region:
        return str(region)
    if settings.endpoint_url:
        return "us-east-1"  # the local stack's default
    raise ConfigurationError(
        "no AWS region is configured",
        hint="pass --region (for example --region us-east-1) or set AWS_REGION",
    )


def _config(settings: Settings, pool: int) -> AioConfig:
    return AioConfig(
        max_pool_connections=pool,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        retries={"total_max_attempts": 1, "mode": "standard"},
        # With a custom endpoint botocore would prepend "runtime-" to its host name.
        inject_host_prefix=settings.endpoint_url is None,
        tcp_keepalive=True,
    )


def explicit_credentials(settings: Settings) -> dict[str, str]:
    """Keyword arguments for ``create_client`` when Settings carries credentials, else {}.

    Explicit credentials let a caller (the local stack's workflow, a test) sign requests
    without putting keys into the process environment, where child processes and crash
    reports would inherit them.
    """
    key, secret = settings.access_key_id, settings.secret_access_key
    if key is None and secret is None:
        if settings.session_token is not None:
            raise ConfigurationError(
                "a session token was given without an access key ID and secret",
                hint="pass access_key_id and secret_access_key with session_token",
            )
        return {}
    if not key or not secret:
        raise ConfigurationError(
            "explicit credentials need both an access key ID and a secret access key",
            hint="set both access_key_id and secret_access_key, or neither to use the "
            "standard credential chain",
        )
    kwargs = {"aws_access_key_id": key, "aws_secret_access_key": secret}
    if settings.session_token:
        kwargs["aws_session_token"] = settings.session_token
    return kwargs


@contextlib.asynccontextmanager
async def open_client(settings: Settings, service: str, pool: int | None = None
                      ) -> AsyncIterator[Any]:
    """One aiobotocore client for ``service`` whose connection pool fits ``pool`` tasks."""
    try:
        session = _session(settings)
        region = resolve_region(session, settings)
    except bx.BotoCoreError as exc:
        raise translate(exc, f"open a {service} client", settings) from None
    size = pool or settings.fetchers + settings.metadata_fetchers
    async with contextlib.AsyncExitStack() as stack:
        try:
            # Creating the client resolves credentials: an unknown profile or a failing
            # credential provider surfaces here.
            client = await stack.enter_async_context(session.create_client(
                service,  # type: ignore[call-overload]
                region_name=region,
                endpoint_url=settings.endpoint_url,
                config=_config(settings, size),
                **explicit_credentials(settings),
            ))
        except bx.BotoCoreError as exc:
            raise translate(exc, f"open a {service} client", settings) from None
        yield client


def error_code(exc: BaseException) -> tuple[str, int]:
    if isinstance(exc, bx.ClientError):
        err = exc.response.get("Error", {})
        meta = exc.response.get("ResponseMetadata", {})
        return str(err.get("Code", "")), int(meta.get("HTTPStatusCode") or 0)
    return "", 0


def classify(exc: BaseException) -> ErrorKind:
    """How the retry loop should treat ``exc``."""
    if isinstance(exc, bx.ClientError):
        code, status = error_code(exc)
        if code in _THROTTLE_CODES or status == 429:
            return "throttle"
        if status >= 500 or code in {"InternalServerException", "ServiceUnavailable",
                                     "InternalError", "RequestTimeout"}:
            return "retry"
        return "fatal"
    if isinstance(exc, (bx.EndpointConnectionError, bx.ConnectTimeoutError)) and not isinstance(
        exc, bx.ConnectionClosedError
    ):
        return "connect"
    if isinstance(exc, (bx.ConnectionError, bx.ReadTimeoutError, bx.ResponseStreamingError,
                        bx.IncompleteReadError, bx.HTTPClientError, aiohttp.ClientError,
                        asyncio.TimeoutError, ConnectionError)):
        return "retry"
    return "fatal"


def translate(exc: BaseException, what: str, settings: Settings | None = None) -> HiAsyncError:
    """A user-facing error for a botocore/aiohttp failure while doing ``what``."""
    if isinstance(exc, HiAsyncError):
        return exc
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
    if isinstance(exc, bx.ClientError):
        code, status = error_code(exc)
        message = exc.response.get("Error", {}).get("Message") or code or f"HTTP {status}"
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
        if code in _NOT_FOUND_CODES or status == 404:
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
    if isinstance(exc, (bx.EndpointConnectionError, bx.ConnectTimeoutError)):
        return EndpointUnreachable(
            f"the endpoint {_endpoint_of(exc, settings)} does not answer "
            f"(while trying to {what})",
            hint="check --endpoint-url and the network; for the local stack, start it with "
            "'python -m hi_async local serve'",
        )
    kind = type(exc).__name__
    return ServiceError(f"connection failed while trying to {what} ({kind})",
                        hint="the network is unreliable; transient errors were already retried")


def _endpoint_of(exc: Exception, settings: Settings | None) -> str:
    """The endpoint a connection failed to: botocore's URL (scheme and host) if it says."""
    url = (getattr(exc, "kwargs", None) or {}).get("endpoint_url")
    if isinstance(url, str) and "://" in url:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}"
    return settings.endpoint_url if settings and settings.endpoint_url else "AWS"


def is_fatal_for_run(error: HiAsyncError) -> bool:
    """Errors that will hit every other request too: stop the run instead of each frame."""
    return isinstance(error, (ConfigurationError, AccessDenied, UsageError))
