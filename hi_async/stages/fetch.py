"""Fetch stage: GetImageFrame for each frame, its body read whole inside the retry.

A frame whose fetch fails after its retries becomes a ``failed`` result; an error that
every other request would meet too (credentials, access, a bad request) stops the run.
"""

from __future__ import annotations

import time

from anyio.abc import ObjectReceiveStream, ObjectSendStream

from ..aws import is_fatal_for_run
from ..errors import HiAsyncError
from ..model import EncodedFrame, FrameRef, FrameResult, FrameStatus
from .context import RunContext


async def fetch(ctx: RunContext, ref: FrameRef) -> EncodedFrame:
    """The frame as served; raises a hi_async error when retries could not get it."""
    data, content_type = await ctx.hi.get_frame(ref.datastore_id, ref.image_set_id,
                                                ref.image_frame_id)
    return EncodedFrame(ref, data, content_type)


async def run(frames: ObjectReceiveStream[FrameRef], encoded: ObjectSendStream[EncodedFrame],
              results: ObjectSendStream[FrameResult], ctx: RunContext) -> None:
    async with frames, encoded, results:
        async for ref in frames:
            t0 = time.perf_counter()
            try:
                item = await fetch(ctx, ref)
            except HiAsyncError as exc:
                if is_fatal_for_run(exc):
                    raise
                await results.send(FrameResult(ref=ref, status=FrameStatus.FAILED,
                                               error=exc.message))
                continue
            finally:
                ctx.stats.busy["fetch"] += time.perf_counter() - t0
            await encoded.send(item)
