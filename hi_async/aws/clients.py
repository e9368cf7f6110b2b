"""The one way hi_async builds AWS SDK clients: credentials, region, endpoint, pools.

Clients use the standard AWS configuration (credential chain, ``--profile``,
``--region``, ``--endpoint-url``, botocore's ``AWS_ENDPOINT_URL*`` variables). botocore's
own retries are off for every client: each call goes through one
:class:`~hi_async.aws.retry.Retrier`, which also retries what botocore cannot (a
streaming body that breaks after the call returned), shares one send rate and counts
every re-sent request (see :mod:`hi_async.aws.session` for the policy per kind of call).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import botocore.exceptions as bx
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession

from ..errors import ConfigurationError
from ..settings import Settings, configured_endpoint_url
from .errors import translate

#: The region the local stack answers in when none is configured.
LOCAL_DEFAULT_REGION = "us-east-1"


def aws_session(settings: Settings) -> AioSession:
    """A botocore session for ``settings.profile`` (the default chain when None)."""
    try:
        return AioSession(profile=settings.profile)
    except bx.ProfileNotFound as exc:
        raise ConfigurationError(
            f"AWS profile {settings.profile!r} is not configured",
            hint="check --profile against ~/.aws/config",
        ) from exc


def resolve_region(session: AioSession, settings: Settings) -> str:
    """``settings.region``, else the profile's or environment's; the local stack's default
    when an endpoint URL is given; else a ConfigurationError."""
    try:
        region = settings.region or session.get_config_variable("region")
    except bx.BotoCoreError as exc:
        raise translate(exc, "read the AWS configuration", settings) from None
    if region:
        return str(region)
    if settings.endpoint_url:
        return LOCAL_DEFAULT_REGION
    raise ConfigurationError(
        "no AWS region is configured",
        hint="pass --region (for example --region us-east-1) or set AWS_REGION",
    )


def custom_endpoint(settings: Settings, service: str) -> str | None:
    """The endpoint a client of ``service`` is pointed at when it is not AWS's own:
    ``settings.endpoint_url`` or botocore's ``AWS_ENDPOINT_URL[_<SERVICE>]``.

    botocore prepends the data-plane host prefix (``runtime-``) even to a custom
    endpoint, which the local stack, a proxy or a VPC endpoint does not answer to: every
    client with a custom endpoint turns host-prefix injection off.
    """
    return settings.endpoint_url or configured_endpoint_url(service)


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


def client_config(settings: Settings, service: str, pool: int) -> AioConfig:
    """botocore's configuration for one client of ``service``."""
    custom = custom_endpoint(settings, service) is not None
    return AioConfig(
        max_pool_connections=pool,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        retries={"total_max_attempts": 1, "mode": "standard"},
        inject_host_prefix=not custom,
        # A local endpoint has no bucket host names (bucket.127.0.0.1 does not resolve).
        s3={"addressing_style": "path"} if settings.endpoint_url else None,
        tcp_keepalive=True,
    )


@contextlib.asynccontextmanager
async def open_client(settings: Settings, service: str, pool: int) -> AsyncIterator[Any]:
    """One aiobotocore client for ``service`` whose connection pool fits ``pool`` tasks."""
    session = aws_session(settings)
    region = resolve_region(session, settings)
    async with contextlib.AsyncExitStack() as stack:
        try:
            # Creating the client resolves credentials: an unknown profile or a failing
            # credential provider surfaces here.
            client = await stack.enter_async_context(session.create_client(
                service,
                region_name=region,
                endpoint_url=settings.endpoint_url,
                config=client_config(settings, service, pool),
                **explicit_credentials(settings),
            ))
        except bx.BotoCoreError as exc:
            raise translate(exc, f"open a {service} client", settings) from None
        yield client
