"""The client's send rate: unlimited until the service throttles, then adaptive."""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio


def grown_cap(cut_rate: float, seconds: float) -> float | None:
    """The cap ``seconds`` after a cut to ``cut_rate``: it grows with the square of the
    time (x2 after 1 s, x10 after 3 s); None once it is far above anything sent."""
    cap = cut_rate * (1.0 + seconds * seconds)
    return None if cap > SendRate.MAX_RATE else cap


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

    Several processes share one rate (the account's quota is one budget): each sends at
    its share, a process that cuts tells the others through ``on_cut`` (epoch, what it
    was sending), and whoever coordinates them hands every one its new share with
    :meth:`impose`. See :class:`RateShare`.
    """

    MIN_RATE = 1.0
    MAX_RATE = 100_000.0

    def __init__(self, *, cooldown: float = 0.1, clock: Callable[[], float] = time.monotonic,
                 on_cut: Callable[[int, float], None] | None = None) -> None:
        self.lowest: float | None = None
        self._on_cut = on_cut
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
        cap = grown_cap(self._cut_rate, self._clock() - self._last_cut)
        if cap is None:
            self._cut_rate = None
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

    @property
    def sending(self) -> float:
        """Requests per second sent lately."""
        return self._sending(self._clock())

    @property
    def epoch(self) -> int:
        return self._epoch

    def impose(self, rate: float, epoch: int) -> None:
        """Cap the rate at ``rate`` from now, as decided for ``epoch`` by whoever shares
        the rate among processes; an older decision than the one in force is ignored."""
        if epoch < self._epoch:
            return
        now = self._clock()
        self._cut_rate = max(self.MIN_RATE, rate)
        self._last_cut = now
        self._epoch = epoch
        self._tokens, self._filled = 0.0, now
        self.lowest = self._cut_rate if self.lowest is None else min(self.lowest,
                                                                     self._cut_rate)

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
        if self._on_cut is not None:
            self._on_cut(sent_epoch if sent_epoch is not None else self._epoch - 1, sending)


class RateShare:
    """One send rate for several processes (the account's GetImageFrame quota is one
    budget): the coordinator of the worker processes keeps one of these.

    Each member sends at its share. A member that meets a 429 cuts its own rate at once
    and reports (epoch, its sending rate); the first report of an epoch cuts the shared
    rate to half of what all members were sending together, starts the next epoch, and
    gives every member its share of it (:meth:`throttled` returns it). Later reports of
    the same epoch say nothing new. Members report what they send with their results.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.epoch = 0
        self.lowest: float | None = None
        self._sending: dict[int, float] = {}
        self._clock = clock
        #: The share each member was given at the last cut, and when.
        self._share: float | None = None
        self._cut_at = 0.0

    def _member_cap(self, now: float) -> float | None:
        """The cap each member is under now: its share, grown as SendRate grows it."""
        return None if self._share is None else grown_cap(self._share, now - self._cut_at)

    def join(self, member: int) -> None:
        self._sending[member] = 0.0

    def leave(self, member: int) -> None:
        self._sending.pop(member, None)

    def report(self, member: int, sending: float) -> None:
        if member in self._sending:
            self._sending[member] = sending

    def throttled(self, member: int, epoch: int, sending: float) -> float | None:
        """A member cut after a 429 in ``epoch``: each member's new share, or None."""
        self.report(member, sending)
        if epoch < self.epoch or not self._sending:
            return None
        now = self._clock()
        # What a member reported may predate the last cut (it reports with its results):
        # it cannot be sending more than the cap it is under, as SendRate counts too.
        cap = self._member_cap(now)
        total = sum(rate if cap is None else min(rate, cap)
                    for rate in self._sending.values()) or sending or SendRate.MIN_RATE
        self.epoch = epoch + 1
        cut = max(SendRate.MIN_RATE, 0.5 * total)
        self.lowest = cut if self.lowest is None else min(self.lowest, cut)
        self._share, self._cut_at = cut / len(self._sending), now
        return self._share
