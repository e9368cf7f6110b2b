"""Decode stage: each fetched frame is decoded, verified and written in the decode pool.

A frame whose CRC32 does not match, or whose bytes do not decode, was most likely
damaged in transit: it is fetched again (``Settings.mismatch_refetches`` times) before
it is reported failed. A full disk stops the run.
"""

from __future__ import annotations

import time
from pathlib import Path

from anyio.abc import ObjectReceiveStream, ObjectSendStream

from ..aws import is_fatal_for_run
from ..errors import HiAsyncError, OutputError
from ..model import EncodedFrame, FrameResult, FrameStatus
from ..paths import frame_path
from ..verify import Check, Outcome
from .context import RunContext
from .fetch import fetch

#: Decode tasks per pool worker, so that a worker has its next frame ready while the
#: event loop is busy elsewhere (the best of 2, 4, 8 and 16: benchmarks/NOTES.md).
TASKS_PER_DECODER = 8

_STATUS = {Check.VERIFIED: FrameStatus.VERIFIED, Check.UNVERIFIABLE: FrameStatus.UNVERIFIABLE,
           Check.MISMATCH: FrameStatus.FAILED, Check.FAILED: FrameStatus.FAILED}


async def _verify(ctx: RunContext, item: EncodedFrame) -> Outcome:
    path = None
    if ctx.out_dir is not None:
        target = frame_path(ctx.out_dir, item.ref.image_set_id, item.ref.image_frame_id,
                            ctx.fmt)
        path = str(target) if target is not None else None
    return await ctx.pool.run(item, path=path, fmt=ctx.fmt, want_pixels=ctx.want_pixels)


async def decode_and_verify(ctx: RunContext, item: EncodedFrame) -> FrameResult:
    """The frame's result after up to ``mismatch_refetches`` fetches again."""
    outcome = await _verify(ctx, item)
    refetches = 0
    while outcome.check is Check.MISMATCH and refetches < ctx.settings.mismatch_refetches:
        refetches += 1
        ctx.hi.aws.retrier.count_retry("mismatch")
        try:
            item = await fetch(ctx, item.ref)
        except HiAsyncError as exc:
            if is_fatal_for_run(exc):
                raise
            break
        outcome = await _verify(ctx, item)
    if outcome.check is Check.DISK_FULL:
        raise OutputError(
            f"the disk is full: {outcome.error}",
            hint="free some space and run again; frames already verified are kept and "
            "will not be downloaded again",
        )
    return FrameResult(ref=item.ref, status=_STATUS[outcome.check],
                       content_type=item.content_type, actual_crc32=outcome.actual_crc32,
                       path=Path(outcome.path) if outcome.path else None, error=outcome.error,
                       encoded_bytes=len(item.data), pixels=outcome.pixels)


async def run(encoded: ObjectReceiveStream[EncodedFrame],
              results: ObjectSendStream[FrameResult], ctx: RunContext) -> None:
    async with encoded, results:
        async for item in encoded:
            t0 = time.perf_counter()
            result = await decode_and_verify(ctx, item)
            ctx.stats.busy["decode"] += time.perf_counter() - t0
            await results.send(result)
