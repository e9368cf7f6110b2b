"""Sustained throttling: the fetch concurrency adapts down, recovers, and does not storm."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio

from hi_async import Downloader
from hi_async.model import FrameResult
from hi_async.settings import Settings
from tests.local.helpers import seed_image_set

from .conftest import injected


class _RaiseThrottleAfter:
    """A progress listener that lifts the server's throttle once ``n`` frames are done."""

    def __init__(self, n: int, lift: Any) -> None:
        self.n = n
        self.done = 0
        self.lift = lift

    def add_total(self, frames: int) -> None:
        pass

    def on_result(self, result: FrameResult) -> None:
        self.done += 1
        if self.done == self.n:
            self.lift()


async def test_concurrency_is_cut_under_throttling_and_recovers_after(
        settings: Settings, backend: Any, local_stack: Any, faults: Any,
        tmp_path: Path) -> None:
    seeded = seed_image_set(backend, instances=40, frames=3)
    faults(throttle_rps=15.0)
    before = injected(local_stack).get("throttle", 0)
    seen: dict[str, float] = {}
    lifted = anyio.Event()

    async with Downloader(settings.replace(fetchers=16, backoff_base=0.05,
                                           backoff_cap=1.0)) as dl:
        def lift() -> None:
            seen["limit_when_lifted"] = dl.limiter.limit
            seen["rate_when_lifted"] = dl.retrier.rate.rate or float("inf")
            lifted.set()

        async with anyio.create_task_group() as tg:
            async def raise_throttle() -> None:
                await lifted.wait()
                await anyio.to_thread.run_sync(lambda: faults(throttle_rps=0.0))

            tg.start_soon(raise_throttle)
            summary = await dl.download(seeded.datastore_id,
                                        image_set_ids=[seeded.image_set_id], out_dir=tmp_path,
                                        progress=_RaiseThrottleAfter(30, lift))
        limiter, rate = dl.limiter, dl.retrier.rate
    throttled = injected(local_stack).get("throttle", 0) - before
    assert summary.verified == summary.frames == 120
    # Cut: the send rate was capped near the service's 15 requests/s, and sixteen
    # fetchers were brought down to fewer requests in flight.
    assert rate.lowest is not None and rate.lowest <= 30
    assert limiter.lowest <= 8
    # Recovered: once the throttle was lifted, successes raised both again.
    assert rate.rate is None or rate.rate > seen["rate_when_lifted"]
    assert limiter.limit > seen["limit_when_lifted"] or limiter.limit == limiter.maximum
    # No storm: few 429 answers (a client that backs off outside its limiter slot and
    # keeps its send rate gets about 100 here), and each one was counted as a retry.
    assert 0 < throttled < 40 and summary.retries >= throttled
