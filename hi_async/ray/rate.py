"""One send rate for every task of a cluster run: the account's quota is one budget.

A small Ray actor (:class:`RateBroker`, no CPU of its own) is the one place that hears
every task: a task that meets a 429 cuts its own rate at once and reports (epoch, what it
was sending); the broker cuts the cluster's rate to half of what all tasks were sending
together (:class:`~hi_async.aws.sendrate.RateShare`, as the local worker pool does), and
every task picks up its share at its next report, a fraction of a second later.

Why an actor rather than a fixed rate divided among tasks: nobody knows the account's
quota in advance (other clients use it too), so the rate has to be found from 429s, and
a 429 met by one task must slow all of them. Tasks come and go (shards end, nodes die),
so members hold a lease: one not heard from for ``LEASE`` seconds no longer counts, and a
task that joins after a cut gets its share of the rate in force, grown as every member's
has grown since (:class:`~hi_async.aws.sendrate.SendRate`'s cap grows with the square of
the time since the cut).
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio

from ..aws.sendrate import RateShare, SendRate

#: Seconds a member may stay silent before it no longer counts (it died with its node).
LEASE = 10.0
#: Seconds between a task's reports (what it sends; it learns its share in the answer).
REPORT_EVERY = 0.5

#: (each member's share in requests per second, or None while no cap is in force; epoch)
Share = tuple[float | None, int]


class RateBroker:
    """The cluster's send rate; runs as a Ray actor (also usable as a plain object)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._share = RateShare()
        self._seen: dict[int, float] = {}
        self._ids = itertools.count()
        #: The cluster's rate at the last cut, when, and the epoch it started.
        self._cut: tuple[float, float, int] | None = None

    def join(self) -> tuple[int, Share]:
        member = next(self._ids)
        self._share.join(member)
        self._seen[member] = self._clock()
        return member, self._current()

    def report(self, member: int, sending: float) -> Share:
        self._touch(member)
        self._share.report(member, sending)
        return self._current()

    def throttled(self, member: int, epoch: int, sending: float) -> Share:
        self._touch(member)
        share = self._share.throttled(member, epoch, sending)
        if share is not None:
            self._cut = (share * len(self._seen), self._clock(), self._share.epoch)
        return self._current()

    def leave(self, member: int) -> None:
        self._seen.pop(member, None)
        self._share.leave(member)

    def lowest(self) -> float | None:
        """The lowest rate the cluster was cut to (None: never throttled)."""
        return self._share.lowest

    def members(self) -> int:
        self._expire()
        return len(self._seen)

    def _touch(self, member: int) -> None:
        self._expire()
        if member not in self._seen:  # its lease ran out, yet it is alive: back in
            self._share.join(member)
        self._seen[member] = self._clock()

    def _expire(self) -> None:
        now = self._clock()
        for member, seen in list(self._seen.items()):
            if now - seen > LEASE:
                self.leave(member)

    def _current(self) -> Share:
        if self._cut is None:
            return None, self._share.epoch
        total, when, epoch = self._cut
        t = self._clock() - when
        grown = total * (1.0 + t * t)
        if grown > SendRate.MAX_RATE:
            return None, epoch
        return grown / max(1, len(self._seen)), epoch


class RateMember:
    """A task's side of the broker: reports, cuts, and the share it is told to use.

    ``broker`` is the actor's handle; its methods are awaited on the task's event loop.
    The broker only advises: a call that fails (its node died and Ray is restarting it
    elsewhere) leaves this task on its own rate until a later call gets through, and never
    fails the task's frames.
    """

    def __init__(self, broker: Any, rate: SendRate) -> None:
        self._broker = broker
        self._rate = rate
        self._member: int | None = None
        self._applied = -1
        self._cuts: list[tuple[int, float]] = []
        self._wake = anyio.Event()

    def on_cut(self, epoch: int, sending: float) -> None:
        """SendRate's hook: this task cut its rate after a 429 sent in ``epoch``."""
        self._cuts.append((epoch, sending))
        self._wake.set()

    def _apply(self, share: Share | None, *, after_cut: bool = False) -> None:
        if share is None:
            return
        rate, epoch = share
        if rate is None:
            return
        if after_cut or epoch > self._applied:
            self._rate.impose(rate, epoch)
            self._applied = max(self._applied, epoch)

    async def _call(self, method: str, *args: Any) -> Any:
        try:
            return await getattr(self._broker, method).remote(*args)
        except Exception:
            return None

    async def join(self) -> None:
        joined = await self._call("join")
        if joined is not None:
            self._member, share = joined
            self._apply(share)

    async def run(self) -> None:
        """Report every ``REPORT_EVERY`` seconds, and at once after a cut; until cancelled."""
        while True:
            with anyio.move_on_after(REPORT_EVERY):
                await self._wake.wait()
            self._wake = anyio.Event()
            if self._member is None:
                await self.join()
                if self._member is None:
                    continue
            cuts, self._cuts = self._cuts, []
            for epoch, sending in cuts:
                self._apply(await self._call("throttled", self._member, epoch, sending),
                            after_cut=True)
            self._apply(await self._call("report", self._member, self._rate.sending))

    def leave(self) -> None:
        """Stop counting this task (the call is not waited for)."""
        if self._member is not None:
            with contextlib.suppress(Exception):
                self._broker.leave.remote(self._member)


def start_broker(ray: Any) -> Any:
    """The broker actor for one run or Dataset, with no CPU of its own, on the driver's
    node (Ray Client's: the head's): it lives as long as the driver, and no other node's
    loss takes it along. (A soft affinity was measured to place it elsewhere half the
    time.) Elsewhere it may restart, its calls retried meanwhile."""
    options: dict[str, Any] = {"num_cpus": 0, "max_restarts": -1, "max_task_retries": -1}
    with contextlib.suppress(Exception):
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        here = ray.get_runtime_context().get_node_id()
        options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(here, soft=False)
    return ray.remote(RateBroker).options(**options).remote()


@contextlib.asynccontextmanager
async def shared_rate(broker: Any) -> AsyncIterator[SendRate]:
    """A task's send rate, a member of ``broker``'s for the block (None: a rate of its own)."""
    if broker is None:
        yield SendRate()
        return
    rate = SendRate(on_cut=lambda epoch, sending: member.on_cut(epoch, sending))
    member = RateMember(broker, rate)
    await member.join()
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(member.run)
            yield rate
            tg.cancel_scope.cancel()
    finally:
        member.leave()
