"""The AWS clients one workflow run uses; their errors are translated by hi_async.aws.

The same code serves AWS and the local stack: only ``endpoint_url`` differs. With a custom
endpoint botocore would prepend the data-plane host prefix (``runtime-``) to the host, so
host-prefix injection is turned off there.
"""

from __future__ import annotations

from collections.abc import Awaitable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, TypeVar

import aioboto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .. import aws
from ..settings import configured_endpoint_url

T = TypeVar("T")


def error_code(exc: BaseException) -> str:
    """The service's error code of a ClientError ("" for anything else)."""
    return aws.error_code(exc)[0]


async def call(what: str, awaitable: Awaitable[T]) -> T:
    """Await one API call; botocore errors become hi_async errors at the one boundary
    (:func:`hi_async.aws.translate`). ``what`` reads after "while trying to"."""
    try:
        return await awaitable
    except (ClientError, BotoCoreError) as exc:
        raise aws.translate(exc, what) from exc


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and as whom to call: AWS (endpoint_url None) or a local stack."""

    region: str
    endpoint_url: str | None = None
    profile: str | None = None

    @property
    def is_local(self) -> bool:
        return self.endpoint_url is not None


class Clients:
    """``async with Clients(endpoint) as c``: c.s3, c.cfn, c.mi (medical-imaging)."""

    s3: Any
    cfn: Any
    mi: Any

    def __init__(self, endpoint: Endpoint, *, max_pool_connections: int = 64) -> None:
        self.endpoint = endpoint
        self._pool = max_pool_connections
        self._stack = AsyncExitStack()

    async def __aenter__(self) -> Clients:
        ep = self.endpoint
        kwargs: dict[str, Any] = {"region_name": ep.region}
        if ep.endpoint_url:
            kwargs["endpoint_url"] = ep.endpoint_url
        if ep.profile:
            session = aioboto3.Session(profile_name=ep.profile, region_name=ep.region)
        elif ep.is_local:
            # Any key works on the local stack; never reach for the user's real credentials.
            session = aioboto3.Session(aws_access_key_id="testing",
                                       aws_secret_access_key="testing",
                                       region_name=ep.region)
        else:
            session = aioboto3.Session(region_name=ep.region)
        config = Config(
            retries={"mode": "adaptive", "max_attempts": 8},
            max_pool_connections=self._pool,
            inject_host_prefix=not ep.is_local,
            s3={"addressing_style": "path"} if ep.is_local else None,
        )
        if configured_endpoint_url("medical-imaging"):
            # An endpoint from AWS_ENDPOINT_URL[_MEDICAL_IMAGING] is a custom one too.
            mi_config = config.merge(Config(inject_host_prefix=False))
        else:
            mi_config = config
        try:
            self.s3 = await self._stack.enter_async_context(
                session.client("s3", config=config, **kwargs))
            self.cfn = await self._stack.enter_async_context(
                session.client("cloudformation", config=config, **kwargs))
            self.mi = await self._stack.enter_async_context(
                session.client("medical-imaging", config=mi_config, **kwargs))
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()
