"""A process pool survives a worker that dies: the frames in flight are run again, a frame
that kills its worker twice is reported on its own, and the others are verified."""

from __future__ import annotations

import anyio
import numpy as np
import pytest

from hi_async.errors import DecodePoolBroken
from hi_async.stages import decode
from hi_async.stages.decode import DecodePool
from hi_async.stages.work import Job

from .helpers import crc
from .pool_work import POISON, always_die, die_on_poison


def _job(n: int, content_type: str = "application/octet-stream") -> Job:
    pixels = np.full((8, 8), n, dtype="<u2")
    return Job(pixels.tobytes(), content_type, 8, 8, 1, "<u2", crc(pixels), "none", None)


async def test_a_frame_that_kills_its_worker_is_reported_and_the_rest_verified() -> None:
    pool = DecodePool("process", 2, work=die_on_poison)
    try:
        assert (await pool.run(_job(0))).status == "verified"  # the pool has started
        outcomes: dict[int, str] = {}

        async def one(n: int) -> None:
            job = _job(n, POISON if n == 7 else "application/octet-stream")
            outcome = await pool.run(job)
            outcomes[n] = outcome.status
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
            await pool.run(_job(1))
        assert "__main__" in (err.value.hint or "")
    finally:
        await pool.aclose()


async def test_workers_that_keep_dying_stop_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decode, "MAX_RESTARTS", 2)
    pool = DecodePool("process", 1, work=die_on_poison)
    try:
        assert (await pool.run(_job(0))).status == "verified"
        for _ in range(2):
            assert (await pool.run(_job(1, POISON))).status == "mismatch"
        with pytest.raises(DecodePoolBroken, match="keep dying"):
            await pool.run(_job(1, POISON))
    finally:
        await pool.aclose()
