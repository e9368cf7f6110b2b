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
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from . import aws
from .errors import HiAsyncError
from .settings import Settings

T = TypeVar("T")

#: What :meth:`Retrier._limited` returns for an attempt that was throttled and waited.
_THROTTLED = object()

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

    async def __aenter__(self) -> None:
        if self.in_flight < int(self.limit):
            self.in_flight += 1
            return
        async with self._cond:
            while self.in_flight >= int(self.limit):
                await self._cond.wait()
            self.in_flight += 1

    async def __aexit__(self, *exc: object) -> None:
        self.in_flight -= 1
        if self._cond.statistics().tasks_waiting:
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


class SendRate:
    """The client's send rate: unlimited until the service throttles, then adaptive.

    Cutting the requests in flight does not slow a sender whose requests are quick (a
    nearby endpoint): six in flight can still send a thousand a second. So a 429 caps the
    send rate at half of what was being sent, and the cap then grows with the square of
    the time since that cut (x2 after 1 s, x10 after 3 s, as CUBIC probes for bandwidth),
    so that a lifted throttle is found again in seconds, until the cap is far above
    anything sent and is dropped.

    A throttling episode is told apart by *when the refused request was sent*, not by
    the clock: every cut starts a new epoch, and only a 429 for a request sent in the
    current epoch (at the cap now in force) cuts again. Requests already in flight at a
    cut were sent at the old rate, so their 429s say nothing new; one refused request
    sent at the new cap proves it is still too high, and halving again at once finds the
    service's rate in a few requests rather than a few cooldown periods. That makes the
    number of 429s a run draws depend on the requests it sends, not on how busy the
    machine is. A 429 whose send epoch is unknown falls back to a time cooldown.
    """

    MIN_RATE = 1.0
    MAX_RATE = 100_000.0

    def __init__(self, *, cooldown: float = 0.1, clock: Callable[[], float] = time.monotonic,
                 ) -> None:
        self.lowest: float | None = None
        self._clock = clock
        self._cooldown = cooldown
        self._cut_rate: float | None = None
        self._last_cut = -cooldown
        self._tokens = 0.0
        self._filled = clock()
        self._window_start = clock()
        self._window_sent = 0
        self._measured = 0.0
        self._epoch = 0

    @property
    def rate(self) -> float | None:
        """The cap now, in requests per second; None while there is none."""
        if self._cut_rate is None:
            return None
        t = self._clock() - self._last_cut
        cap = self._cut_rate * (1.0 + t * t)
        if cap > self.MAX_RATE:
            self._cut_rate = None
            return None
        return cap

    async def acquire(self) -> int:
        """Wait for this request's turn (no wait while no cap is in force).

        A token bucket re-read on every wake-up: when the cap grows, waiting requests
        speed up with it instead of keeping turns booked at the old, lower rate.
        Returns the epoch the request is sent in, for :meth:`on_throttle`.
        """
        while (cap := self.rate) is not None:
            now = self._clock()
            self._tokens = min(max(1.0, cap * 0.05),
                               self._tokens + (now - self._filled) * cap)
            self._filled = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                break
            await anyio.sleep(min(0.05, (1.0 - self._tokens) / cap))
        now = self._clock()
        self._window_sent += 1
        elapsed = now - self._window_start
        if elapsed >= 0.25:
            self._measured = self._window_sent / elapsed
            self._window_start, self._window_sent = now, 0
        return self._epoch

    def _sending(self, now: float) -> float:
        """Requests per second sent lately: the last full window or the current one."""
        elapsed = now - self._window_start
        partial = self._window_sent / max(elapsed, 0.05)
        return max(self._measured, partial)

    def on_throttle(self, sent_epoch: int | None = None) -> None:
        """A request sent in epoch ``sent_epoch`` (from :meth:`acquire`) was refused."""
        now = self._clock()
        if sent_epoch is not None:
            if sent_epoch < self._epoch:
                return  # sent before the latest cut: the same throttling episode
        elif now - self._last_cut < self._cooldown:
            return
        cap = self.rate
        sending = self._sending(now) or cap or self.MIN_RATE
        base = sending if cap is None else min(cap, sending)
        self._cut_rate = max(self.MIN_RATE, 0.5 * base)
        self._last_cut = now
        self._epoch += 1
        self._tokens, self._filled = 0.0, now
        self.lowest = self._cut_rate if self.lowest is None else min(self.lowest,
                                                                     self._cut_rate)


class Retrier:
    """Runs a request with retries; counts every request sent again."""

    def __init__(self, settings: Settings, limiter: AimdLimiter | None = None,
                 budget: RetryBudget | None = None, rate: SendRate | None = None) -> None:
        self.settings = settings
        self.limiter = limiter
        self.rate = rate or SendRate()
        self.budget = budget or RetryBudget()
        self.retries = 0
        self.throttled = 0
        #: Re-sent requests by cause: throttle, server (5xx), broken (a dropped connection
        #: or a body cut short), connect. Re-fetches after a CRC mismatch are counted by
        #: the pipeline in ``retries`` only.
        self.by_kind: Counter[str] = Counter()

    def backoff(self, attempt: int) -> float:
        s = self.settings
        return random.uniform(0.0, min(s.backoff_cap, s.backoff_base * (2 ** attempt)))

    async def call(self, op: Callable[[], Awaitable[T]], what: str) -> T:
        """``await op()`` until it succeeds, or raise the translated hi_async error."""
        attempt = 0
        while True:
            attempt += 1
            epoch = await self.rate.acquire()
            try:
                if self.limiter is None:
                    result = await op()
                else:
                    result = await self._limited(op, attempt, what, epoch)
                    if result is _THROTTLED:
                        continue
                    self.limiter.on_success()
            except Exception as exc:
                delay = self._retry_delay(exc, attempt, what, epoch)
            else:
                self.budget.success()
                return result  # type: ignore[return-value]
            await anyio.sleep(delay)

    async def _limited(self, op: Callable[[], Awaitable[T]], attempt: int,
                       what: str, epoch: int) -> T | object:
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
                if aws.classify(exc) != "throttle":
                    raise
                delay = self._retry_delay(exc, attempt, what, epoch)
                await anyio.sleep(delay)
                return _THROTTLED

    def _retry_delay(self, exc: Exception, attempt: int, what: str, epoch: int) -> float:
        """Seconds to wait before re-sending; raises the translated error to give up.

        ``epoch`` is the send rate's epoch the failed attempt was sent in.
        """
        if isinstance(exc, HiAsyncError):
            raise exc
        kind = aws.classify(exc)
        limit = _CONNECT_ATTEMPTS if kind == "connect" else self.settings.max_attempts
        if kind == "fatal" or attempt >= limit or not self.budget.withdraw():
            raise aws.translate(exc, what, self.settings) from exc
        if kind == "throttle":
            self.throttled += 1
            self.rate.on_throttle(epoch)
            if self.limiter is not None:
                self.limiter.on_throttle()
        self.by_kind[_cause(exc, kind)] += 1
        self.retries += 1
        return self.backoff(attempt)


def _cause(exc: Exception, kind: str) -> str:
    if kind == "retry":
        return "server" if aws.error_code(exc)[1] >= 500 else "broken"
    return kind
