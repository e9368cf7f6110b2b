"""Network realism and fault injection: latency, bandwidth, throttling, broken answers.

Everything is off by default and can change at run time (``POST /_hi_async/faults``).
Faults are drawn from one seeded generator so a run with ``fault_seed`` set injects the
same sequence of faults for the same sequence of requests. Every injected fault is
counted by kind for ``GET /_hi_async/stats``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass

from .config import Knobs

#: Bytes written per bandwidth slice; small enough for smooth pacing, large enough to be cheap.
_SLICE = 64 * 1024


class TokenBucket:
    """Rate ``rate`` per second, burst ``rate`` (at least 1), shared by all callers."""

    def __init__(self, rate: float, clock=time.monotonic) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.clock = clock
        self.stamp = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass(frozen=True, slots=True)
class Fault:
    """What to do to one answer: ``kind`` is error, drop, truncate, corrupt or drip."""

    kind: str
    status: int = 0


class Realism:
    """The live knobs plus the state they need (bucket, generator, fault counts)."""

    def __init__(self, knobs: Knobs) -> None:
        self.faults: Counter[str] = Counter()
        self.apply(knobs)

    def apply(self, knobs: Knobs) -> None:
        self.knobs = knobs
        self.rng = random.Random(knobs.fault_seed)
        self.bucket = TokenBucket(knobs.throttle_rps) if knobs.throttle_rps > 0 else None
        k = knobs
        self.any_fault = any((k.error_rate, k.drop_rate, k.truncate_rate, k.corrupt_rate,
                              k.drip_rate))
        self.any_delay = bool(k.latency_ms or k.jitter_ms)

    def throttled(self) -> bool:
        """True when this data-plane request is over the token bucket's rate."""
        if self.bucket is None or self.bucket.take():
            return False
        self.faults["throttle"] += 1
        return True

    async def delay(self) -> None:
        if not self.any_delay:
            return
        ms = self.knobs.latency_ms + (self.rng.random() * self.knobs.jitter_ms
                                      if self.knobs.jitter_ms else 0.0)
        await asyncio.sleep(ms / 1000.0)

    def draw(self, *, frame: bool) -> Fault | None:
        """The fault to inject into this answer, if any (one draw per knob in order)."""
        if not self.any_fault:
            return None
        k, r = self.knobs, self.rng.random()
        edge = k.error_rate
        if r < edge:
            status = 503 if self.rng.random() < 0.5 else 500
            self.faults["error"] += 1
            return Fault("error", status)
        edge += k.drop_rate
        if r < edge:
            self.faults["drop"] += 1
            return Fault("drop")
        edge += k.truncate_rate
        if r < edge:
            self.faults["truncate"] += 1
            return Fault("truncate")
        edge += k.corrupt_rate
        if frame and r < edge:
            self.faults["corrupt"] += 1
            return Fault("corrupt")
        edge += k.drip_rate
        if frame and r < edge:
            self.faults["drip"] += 1
            return Fault("drip")
        return None

    def corrupt(self, data: bytes) -> bytes:
        """``data`` with a few bytes flipped in its second half (past the headers).

        The last two bytes are spared: in a JPEG 2000 family codestream they are the EOC
        marker, which decoders do not need, so flipping them could leave the pixels intact
        and the "corruption" unobservable.
        """
        if len(data) < 8:
            return bytes(b ^ 0xFF for b in data)
        buf = bytearray(data)
        for _ in range(1 + len(buf) // 65536):
            i = self.rng.randrange(len(buf) // 2, len(buf) - 2)
            buf[i] ^= 1 << self.rng.randrange(8)
        return bytes(buf)

    def slices(self, size: int) -> tuple[int, float]:
        """Slice size and seconds per slice that pace ``size`` bytes at the bandwidth cap."""
        mbps = self.knobs.bandwidth_mbps
        if mbps <= 0 or size == 0:
            return size, 0.0
        return _SLICE, _SLICE * 8 / (mbps * 1_000_000)
