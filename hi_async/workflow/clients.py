"""The workflow's AWS access: S3, CloudFormation and HealthImaging on one AwsSession.

The same code serves AWS and the local stack; only the Settings differ (endpoint,
region, profile, explicit keys for the local stack).
"""

from __future__ import annotations

from typing import Any

from ..aws.healthimaging import HealthImaging
from ..aws.session import AwsSession
from ..settings import Settings


class Clients(AwsSession):
    """``async with Clients(settings) as c``: ``c.s3``, ``c.cfn``, ``c.mi`` (the SDK
    clients), ``c.hi`` (HealthImaging as hi_async uses it) and ``await c.call(what, op)``."""

    s3: Any
    cfn: Any
    mi: Any
    hi: HealthImaging

    def __init__(self, settings: Settings, *, pool: int = 64) -> None:
        super().__init__(settings, pool=pool)

    async def __aenter__(self) -> Clients:
        await super().__aenter__()
        try:
            self.s3 = await self.client("s3")
            self.cfn = await self.client("cfn")
            self.mi = await self.client("mi")
            self.hi = HealthImaging(self)
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self
