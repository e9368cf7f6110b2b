"""The AWS access of one run: its SDK clients and the one Retrier every call goes through.

The retry policy, per kind of call (botocore's own retries are off for all of them):

- GetImageFrame: full-jitter backoff, the retry budget, the AIMD limit on requests in
  flight and the adaptive send rate (a throttled request waits holding its slot), given
  by a Downloader's :class:`~hi_async.aws.retry.AimdLimiter`.
- Every other call (metadata, search, import jobs, S3, CloudFormation): the same backoff,
  budget and send rate, without the in-flight limit.
- Polling for a state to change (an import job ending, a manifest appearing, a stack or a
  data store being deleted): :func:`poll_delays`, exponential from 50 ms to 5 s.

A body cut short is retried like a dropped connection, which botocore cannot do for the
streaming bodies of GetImageFrame and GetImageSetMetadata (it reads them after the call
returned).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import anyio

from ..settings import Settings
from .clients import open_client
from .retry import AimdLimiter, Retrier

T = TypeVar("T")

#: Short names of the services a run talks to.
SERVICES = {"mi": "medical-imaging", "s3": "s3", "cfn": "cloudformation"}


def poll_delays(first: float = 0.05, cap: float = 5.0) -> Iterator[float]:
    """Seconds to wait between polls of something that changes state on its own: doubling
    from ``first`` up to ``cap``, each drawn from its upper half so that many pollers do
    not keep step."""
    delay = first
    while True:
        yield random.uniform(delay / 2, delay)
        delay = min(delay * 2, cap)


class AwsSession:
    """``async with AwsSession(settings) as aws``: clients opened on first use, one Retrier.

    ``pool`` sizes the connection pool of the HealthImaging client; ``limiter`` bounds the
    requests in flight of frame fetches (see the module's policy).
    """

    def __init__(self, settings: Settings, *, pool: int = 16,
                 limiter: AimdLimiter | None = None) -> None:
        self.settings = settings
        self.retrier = Retrier(settings, limiter)
        self._pool = pool
        self._clients: dict[str, Any] = {}
        self._lock = anyio.Lock()
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> AwsSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._clients.clear()
        await self._stack.aclose()

    async def client(self, name: str) -> Any:
        """The client of ``name`` ("mi", "s3" or "cfn"), opened on first use."""
        if name not in self._clients:
            async with self._lock:
                if name not in self._clients:
                    pool = self._pool if name == "mi" else 16
                    self._clients[name] = await self._stack.enter_async_context(
                        open_client(self.settings, SERVICES[name], pool))
        return self._clients[name]

    async def call(self, what: str, op: Callable[[], Awaitable[T]]) -> T:
        """``await op()`` with the retry policy; ``what`` reads after "while trying to"."""
        return await self.retrier.call(op, what)
