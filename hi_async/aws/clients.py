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
from typing import TYPE_CHECKING, Any

import botocore.exceptions as bx

from ..errors import ConfigurationError
from ..settings import Settings
from .credentials import custom_endpoint, explicit_credentials, region_of
from .errors import translate

if TYPE_CHECKING:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import AioSession


def aws_session(settings: Settings) -> AioSession:
    """An aiobotocore session for ``settings.profile`` (the default chain when None).

    aiobotocore is imported here, on first use: a download of image sets by ID never
    needs it, and importing it costs a noticeable share of a short run's start-up.
    """
    from aiobotocore.session import AioSession

    try:
        return AioSession(profile=settings.profile)
    except bx.ProfileNotFound as exc:
        raise ConfigurationError(
            f"AWS profile {settings.profile!r} is not configured",
            hint="check --profile against ~/.aws/config",
        ) from exc


def client_config(settings: Settings, service: str, pool: int) -> AioConfig:
    """botocore's configuration for one client of ``service``."""
    from aiobotocore.config import AioConfig

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
    region = region_of(settings, session)
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
