"""Metadata stage: each image set's metadata → its frames, or their resumed results.

The gzip JSON is inflated and parsed in a thread: tens of MB of it would stall every
fetch on the event loop.
"""

from __future__ import annotations

import contextlib
import functools
import time

import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream
from anyio.streams.memory import MemoryObjectSendStream

from ..metadata import parse_metadata
from ..model import FrameRef, FrameResult, FrameStatus, ImageSetRef
from .context import RunContext


async def frames_of(ctx: RunContext, image_set: ImageSetRef) -> list[FrameRef]:
    """Every frame of ``image_set``, in series / instance / frame order."""
    blob = await ctx.hi.metadata_blob(image_set.datastore_id, image_set.image_set_id)
    if ctx.volumes is not None:  # the same parse also plans the image set's volumes
        return await ctx.volumes.open(image_set, blob)
    parse = functools.partial(parse_metadata, blob, image_set.datastore_id,
                              image_set.image_set_id, label=image_set.label,
                              limit=ctx.settings.metadata_max_bytes)
    return await anyio.to_thread.run_sync(parse)


async def run(image_sets: ObjectReceiveStream[ImageSetRef],
              frames: MemoryObjectSendStream[FrameRef],
              results: ObjectSendStream[list[FrameResult]], ctx: RunContext) -> None:
    """Send each frame on to be fetched, or its resumed result straight to the sink.

    Stops quietly when the stages after it stopped (an error there ends the run).
    """
    with contextlib.suppress(anyio.BrokenResourceError):
        await _run(image_sets, frames, results, ctx)


async def _run(image_sets: ObjectReceiveStream[ImageSetRef],
               frames: MemoryObjectSendStream[FrameRef],
               results: ObjectSendStream[list[FrameResult]], ctx: RunContext) -> None:
    async with image_sets, frames, results:
        async for image_set in image_sets:
            t0 = time.perf_counter()
            refs = await frames_of(ctx, image_set)
            ctx.stats.busy["metadata"] += time.perf_counter() - t0
            if ctx.progress is not None:
                ctx.progress.add_total(len(refs))
            resumed: list[FrameResult] = []
            for ref in refs:
                entry = ctx.resumable.get((ref.image_set_id, ref.image_frame_id))
                if entry is None or ctx.out_dir is None:
                    # Straight into the queue while it has room: an awaited send yields
                    # to the event loop for every frame.
                    try:
                        frames.send_nowait(ref)
                    except anyio.WouldBlock:
                        await frames.send(ref)
                    continue
                path = ctx.out_dir / entry.path if entry.path else None
                resumed.append(FrameResult(
                    ref=ref, status=FrameStatus.VERIFIED, content_type=entry.content_type,
                    actual_crc32=entry.actual_crc32, path=path, resumed=True))
            if resumed and ctx.volumes is not None:
                # Their volumes need their pixels: read back, or fetched again.
                resumed, again = await ctx.volumes.restore(resumed)
                for ref in again:
                    await frames.send(ref)
            if resumed:
                await results.send(resumed)
