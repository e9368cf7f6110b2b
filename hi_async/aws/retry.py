"""Retries with exponential backoff and full jitter, a retry budget, adaptive concurrency.

Full jitter (sleep uniformly in [0, min(cap, base * 2**attempt)]) spreads retries of
many concurrent tasks out instead of synchronising them. The budget (a token bucket
refilled by successes, as in botocore's "standard" mode) stops a retry storm when the
service is down. The AIMD limiter halves the number of requests in flight on throttling
and adds one per window of successes, so sustained throttling lowers concurrency and it
recovers when the throttling stops; the send rate (:class:`SendRate`) is capped the same
way, since fewer requests in flight do not mean fewer per second when each one is quick.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

import anyio

from ..errors import HiAsyncError
from ..settings import Settings
from .errors import ErrorKind, classify, error_code, translate
from .sendrate import SendRate

T = TypeVar("T")


class _Throttled(Exception):
    """An attempt that was throttled and has waited out its backoff: send it again."""

#: Connection refused / DNS failures: the endpoint is likely wrong; give up sooner.
_CONNECT_ATTEMPTS = 3


class RetryBudget:
    """Tokens spent by retries, earned back by successes."""

    def __init__(self, capacity: float = 500.0, refund: float = 0.2) -> None:
        self.capacity = capacity
        self.tokens = capacity
        self.refund = refund

    def withdraw(self) -> bool:
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True

    def success(self) -> None:
        self.tokens = min(self.capacity, self.tokens + self.refund)


class AimdLimiter:
    """At most ``limit`` callers inside; the limit adapts to throttling (AIMD)."""

    def __init__(self, maximum: int, *, cooldown: float = 0.2) -> None:
        self.maximum = maximum
        self.limit = float(maximum)
        self.in_flight = 0
        self.lowest = float(maximum)
        self._cooldown = cooldown
        self._last_cut = 0.0
        self._cond = anyio.Condition()
        #: Callers waiting for a slot (counted here: asking the condition costs more).
        self._waiting = 0

    async def __aenter__(self) -> None:
        if self.in_flight < int(self.limit):
            self.in_flight += 1
            return
        self._waiting += 1
        try:
            async with self._cond:
                while self.in_flight >= int(self.limit):
                    await self._cond.wait()
                self.in_flight += 1
        finally:
            self._waiting -= 1

    async def __aexit__(self, *exc: object) -> None:
        self.in_flight -= 1
        if self._waiting:
            async with self._cond:
                self._cond.notify(max(1, int(self.limit) - self.in_flight))

    def on_success(self) -> None:
        if self.limit < self.maximum:
            self.limit = min(float(self.maximum), self.limit + 1.0 / self.limit)

    def on_throttle(self) -> None:
        now = time.monotonic()
        # One cut per burst: many requests in flight see the same throttling episode.
        if now - self._last_cut >= self._cooldown:
            self._last_cut = now
            self.limit = max(1.0, self.limit / 2)
            self.lowest = min(self.lowest, self.limit)


class Retrier:
    """Runs a request with retries; the one place where re-sent requests are counted."""

    def __init__(self, settings: Settings, limiter: AimdLimiter | None = None,
                 budget: RetryBudget | None = None, rate: SendRate | None = None) -> None:
        self.settings = settings
        self.limiter = limiter
        self.rate = rate or SendRate()
        self.budget = budget or RetryBudget()
        #: Requests sent again, whatever the cause (summary.json's ``retries``).
        self.retries = 0
        self.throttled = 0
        #: Re-sent requests by cause: throttle, server (5xx), broken (a dropped connection
        #: or a body cut short), connect, mismatch (a frame fetched again after its CRC32
        #: or its decode failed).
        self.by_kind: Counter[str] = Counter()

    def count_retry(self, cause: str) -> None:
        """One request sent again because of ``cause`` (see :attr:`by_kind`)."""
        self.retries += 1
        self.by_kind[cause] += 1

    def absorb(self, by_kind: Mapping[str, int], throttled: int) -> None:
        """Requests another process (a worker) sent again for this run, and its 429s."""
        for cause, n in by_kind.items():
            self.retries += n
            self.by_kind[cause] += n
        self.throttled += throttled

    def backoff(self, attempt: int) -> float:
        s = self.settings
        return random.uniform(0.0, min(s.backoff_cap, s.backoff_base * (2 ** attempt)))

    async def call(self, op: Callable[[], Awaitable[T]], what: str) -> T:
        """``await op()`` until it succeeds, or raise the translated hi_async error.

        ``what`` reads after "while trying to" in the error a user sees.
        """
        attempt = 0
        while True:
            attempt += 1
            epoch = await self.rate.acquire()
            try:
                if self.limiter is None:
                    result = await op()
                else:
                    result = await self._limited(op, attempt, what, epoch)
                    self.limiter.on_success()
            except _Throttled:
                continue
            except Exception as exc:
                delay = self._retry_delay(exc, attempt, what, epoch)
            else:
                self.budget.success()
                return result
            await anyio.sleep(delay)

    async def _limited(self, op: Callable[[], Awaitable[T]], attempt: int,
                       what: str, epoch: int) -> T:
        """One attempt inside the limiter; a throttled attempt backs off *holding its slot*.

        Waiting inside the slot makes the limit bound the requests in flight and those
        waiting to be re-sent: when requests are quick (a nearby endpoint), a cut limit
        alone would not slow the sender down, and the retries would storm the service.
        """
        assert self.limiter is not None
        async with self.limiter:
            try:
                return await op()
            except Exception as exc:
                if classify(exc) is not ErrorKind.THROTTLE:
                    raise
                delay = self._retry_delay(exc, attempt, what, epoch)
                await anyio.sleep(delay)
                raise _Throttled from None

    def _retry_delay(self, exc: Exception, attempt: int, what: str, epoch: int) -> float:
        """Seconds to wait before re-sending; raises the translated error to give up.

        ``epoch`` is the send rate's epoch the failed attempt was sent in.
        """
        if isinstance(exc, HiAsyncError):
            raise exc
        kind = classify(exc)
        limit = _CONNECT_ATTEMPTS if kind is ErrorKind.CONNECT else self.settings.max_attempts
        if kind is ErrorKind.FATAL or attempt >= limit or not self.budget.withdraw():
            raise translate(exc, what, self.settings) from exc
        if kind is ErrorKind.THROTTLE:
            self.throttled += 1
            self.rate.on_throttle(epoch)
            if self.limiter is not None:
                self.limiter.on_throttle()
        self.count_retry(_cause(exc, kind))
        return self.backoff(attempt)


def _cause(exc: Exception, kind: ErrorKind) -> str:
    if kind is ErrorKind.RETRY:
        return "server" if error_code(exc)[1] >= 500 else "broken"
    return kind.value
