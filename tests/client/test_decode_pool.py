"""A process pool survives a worker that dies: the frames in flight are run again, a frame
that kills its worker twice is reported on its own, and the others are verified."""

from __future__ import annotations

import anyio
import numpy as np
import pytest

from hi_async import decodepool
from hi_async.decodepool import DecodePool
from hi_async.errors import DecodePoolBroken
from hi_async.model import Outcome

from .helpers import crc, encoded_frame
from .pool_work import POISON, always_die, die_on_poison


async def _run(pool: DecodePool, n: int, content_type: str = "application/octet-stream"
               ) -> Outcome:
    pixels = np.full((8, 8), n, dtype="<u2")
    frame = encoded_frame(pixels.tobytes(), content_type, 8, 8, 1, "<u2", crc(pixels))
    return await pool.run(frame, path=None, fmt="none")


async def test_a_frame_that_kills_its_worker_is_reported_and_the_rest_verified() -> None:
    pool = DecodePool("process", 2, work=die_on_poison)
    try:
        assert (await _run(pool, 0)).check.value == "verified"  # the pool has started
        outcomes: dict[int, str] = {}

        async def one(n: int) -> None:
            outcome = await _run(pool, n, POISON if n == 7 else "application/octet-stream")
            outcomes[n] = outcome.check.value
            if n == 7:
                assert outcome.error is not None and "died on this frame" in outcome.error

        async with anyio.create_task_group() as tg:
            for n in range(1, 25):
                tg.start_soon(one, n)
        assert outcomes.pop(7) == "mismatch"  # fetched again by the pipeline, then reported
        assert set(outcomes.values()) == {"verified"} and len(outcomes) == 23
        assert 1 <= pool.restarts <= 2
    finally:
        await pool.aclose()


async def test_a_pool_that_dies_before_any_frame_says_why() -> None:
    pool = DecodePool("process", 1, work=always_die)
    try:
        with pytest.raises(DecodePoolBroken, match="before it decoded anything") as err:
            await _run(pool, 1)
        assert "__main__" in (err.value.hint or "")
    finally:
        await pool.aclose()


async def test_workers_that_keep_dying_stop_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decodepool, "MAX_RESTARTS", 2)
    pool = DecodePool("process", 1, work=die_on_poison)
    try:
        assert (await _run(pool, 0)).check.value == "verified"
        for _ in range(2):
            assert (await _run(pool, 1, POISON)).check.value == "mismatch"
        with pytest.raises(DecodePoolBroken, match="keep dying"):
            await _run(pool, 1, POISON)
    finally:
        await pool.aclose()
