"""Frame stage: each frame is fetched, decoded, verified and written, in lanes.

A lane takes the next frame, fetches it (GetImageFrame, the body read whole inside the
retry), has the decode pool decode it, check its CRC32 and write its file, and hands the
result on; ``lanes`` of them run at once. Keeping a frame in one lane from request to
result costs no hand-off between fetch and decode, and bounds the frames in flight (and
their memory) by the number of lanes.

A frame whose CRC32 does not match, or whose bytes do not decode, was most likely damaged
in transit: it is fetched again (``Settings.mismatch_refetches`` times) before it is
reported failed. An error that every other request would meet too (credentials, access,
a bad request) and a full disk stop the run; any other failure is that frame's result.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio

from ..aws import is_fatal_for_run
from ..errors import HiAsyncError, OutputError
from ..model import Check, EncodedFrame, FrameRef, FrameResult, FrameStatus, Outcome
from ..paths import frame_file
from .context import FrameWork

_STATUS = {Check.VERIFIED: FrameStatus.VERIFIED, Check.UNVERIFIABLE: FrameStatus.UNVERIFIABLE,
           Check.MISMATCH: FrameStatus.FAILED, Check.FAILED: FrameStatus.FAILED}

NextFrame = Callable[[], Awaitable[FrameRef | None]]
Emit = Callable[[FrameResult], Awaitable[None]]


async def fetch(work: FrameWork, ref: FrameRef) -> EncodedFrame:
    """The frame as served; raises a hi_async error when retries could not get it."""
    t0 = time.perf_counter()
    try:
        data, content_type = await work.get_frame(ref)
    finally:
        work.stats.busy["fetch"] += time.perf_counter() - t0
    return EncodedFrame(ref, data, content_type)


async def _verify(work: FrameWork, item: EncodedFrame) -> Outcome:
    path = None
    if work.out_dir is not None:
        path = frame_file(work.out_text, item.ref.image_set_id, item.ref.image_frame_id,
                          work.fmt)
    pool = work.pool
    assert pool is not None, "frames done in this process need its decode pool"
    target = work.targets(item.ref) if work.targets is not None else None
    t0 = time.perf_counter()
    try:
        return await pool.run(item, path=path, fmt=work.fmt, want_pixels=work.want_pixels,
                              target=target)
    finally:
        work.stats.busy["decode"] += time.perf_counter() - t0


async def checked(work: FrameWork, item: EncodedFrame) -> tuple[EncodedFrame, Outcome]:
    """The frame checked, fetched again while it mismatches (``mismatch_refetches``
    times at most): the bytes checked last, and what checking them found."""
    outcome = await _verify(work, item)
    refetches = 0
    while outcome.check is Check.MISMATCH and refetches < work.settings.mismatch_refetches:
        refetches += 1
        work.count_retry("mismatch")
        try:
            item = await fetch(work, item.ref)
        except HiAsyncError as exc:
            if is_fatal_for_run(exc):
                raise
            break
        outcome = await _verify(work, item)
    return item, outcome


async def decode_and_verify(work: FrameWork, item: EncodedFrame) -> FrameResult:
    """The frame's result after up to ``mismatch_refetches`` fetches again."""
    item, outcome = await checked(work, item)
    if outcome.check is Check.DISK_FULL:
        raise OutputError(
            f"the disk is full: {outcome.error}",
            hint="free some space and run again; frames already verified are kept and "
            "will not be downloaded again",
        )
    return FrameResult(ref=item.ref, status=_STATUS[outcome.check],
                       content_type=item.content_type, actual_crc32=outcome.actual_crc32,
                       path=Path(outcome.path) if outcome.path else None, error=outcome.error,
                       encoded_bytes=len(item.data), pixels=outcome.pixels,
                       file_bytes=outcome.file_bytes, file_crc32=outcome.file_crc32)


async def process(work: FrameWork, ref: FrameRef) -> FrameResult:
    """One frame from request to result."""
    try:
        item = await fetch(work, ref)
    except HiAsyncError as exc:
        if is_fatal_for_run(exc):
            raise
        return FrameResult(ref=ref, status=FrameStatus.FAILED, error=exc.message)
    return await decode_and_verify(work, item)


async def run(work: FrameWork, next_frame: NextFrame, emit: Emit, *, lanes: int) -> None:
    """Process frames from ``next_frame`` (None: no more) in ``lanes`` lanes."""

    async def lane() -> None:
        while (ref := await next_frame()) is not None:
            await emit(await process(work, ref))

    async with anyio.create_task_group() as tg:
        for _ in range(lanes):
            tg.start_soon(lane)
