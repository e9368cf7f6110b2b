"""A worker with one decode thread decodes common frames on its event loop, and sends
frames too large to hold the loop up for to its thread."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from hi_async.decodepool import DecodePool
from hi_async.model import Check, EncodedFrame, Outcome
from hi_async.verify import verify_frame
from hi_async.workers import worker

from .helpers import crc, encode, encoded_frame


def _frame(rows: int, columns: int) -> EncodedFrame:
    pixels = (np.arange(rows * columns, dtype="<u2") % 4093).reshape(rows, columns)
    return encoded_frame(encode(pixels, "image/jph"), "image/jph", rows, columns, 1, "<u2",
                         crc(pixels))


async def test_small_frames_decode_on_the_calling_thread_and_large_ones_in_the_pool() -> None:
    threads: dict[int, str] = {}

    def work(frame: EncodedFrame, **kw: Any) -> Outcome:
        threads[frame.ref.rows] = threading.current_thread().name
        return verify_frame(frame, **kw)

    # 64 x 64 x 2 bytes = 8 KiB decoded, at the limit; 128 x 128 x 2 = 32 KiB, over it.
    pool = DecodePool("thread", 1, work=work, inline_max_bytes=64 * 64 * 2)
    try:
        for rows in (64, 128):
            outcome = await pool.run(_frame(rows, 64 if rows == 64 else 128), path=None,
                                     fmt="none")
            assert outcome.check is Check.VERIFIED
    finally:
        await pool.aclose()
    assert threads[64] == threading.current_thread().name
    assert threads[128].startswith("hi_async-decode")


async def test_a_frame_that_fails_inline_is_a_mismatch_like_in_a_thread(tmp_path: Any) -> None:
    frame = _frame(64, 64)
    broken = EncodedFrame(frame.ref, frame.data[: len(frame.data) // 2], frame.content_type)
    for limit in (0, 1 << 20):
        pool = DecodePool("thread", 1, inline_max_bytes=limit)
        try:
            outcome = await pool.run(broken, path=str(tmp_path / f"{limit}.jph"), fmt="jph")
        finally:
            await pool.aclose()
        assert outcome.check is Check.MISMATCH
        assert not (tmp_path / f"{limit}.jph").exists()


def test_a_worker_decodes_inline_only_when_it_has_one_decode_thread() -> None:
    one, two = worker._decode_pool(1), worker._decode_pool(2)
    try:
        assert one.inline_max_bytes == worker.INLINE_MAX_BYTES >= 512 * 512 * 2
        assert two.inline_max_bytes == 0
    finally:
        one.close_now()
        two.close_now()


def test_process_pools_never_decode_inline() -> None:
    pool = DecodePool("process", 1, inline_max_bytes=1 << 20)
    try:
        assert pool.inline_max_bytes == 0
    finally:
        pool.close_now()
