"""Wires the stages with bounded anyio streams in one task group.

    image sets -> [metadata x M] -> frames -> [fetch x N] -> encoded
               -> [decode x D*8] -> results -> [sink]

Every hand-off is a bounded stream, so a slow stage slows the ones before it and memory
does not grow with the study. The first fatal error (bad credentials, a full disk, ...)
cancels every task; errors that concern one frame become a ``failed`` result instead.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterable

import anyio
from anyio.abc import ObjectSendStream

from .errors import first_error
from .journal import Journal, read_verified, remove_leftover_tmp
from .model import EncodedFrame, FrameRef, FrameResult, ImageSetRef, Summary
from .stages import decode, fetch, metadata, sink
from .stages.context import RunContext


async def _feed(source: AsyncIterable[ImageSetRef], send: ObjectSendStream[ImageSetRef]) -> None:
    async with send:
        async for ref in source:
            await send.send(ref)


async def run_pipeline(ctx: RunContext, source: AsyncIterable[ImageSetRef]) -> Summary:
    """Download every frame of the image sets ``source`` yields; the run's Summary."""
    started = time.perf_counter()
    retrier = ctx.hi.aws.retrier
    retries_before = retrier.retries
    s = ctx.settings
    if ctx.out_dir is not None:
        resume = s.resume and not ctx.want_pixels
        if resume:
            remove_leftover_tmp(ctx.out_dir)
            ctx.resumable = read_verified(ctx.out_dir, ctx.fmt)
        ctx.journal = Journal(ctx.out_dir, resume=resume)
    sets_tx, sets_rx = anyio.create_memory_object_stream[ImageSetRef](s.metadata_fetchers)
    frames_tx, frames_rx = anyio.create_memory_object_stream[FrameRef](s.queue_size)
    enc_tx, enc_rx = anyio.create_memory_object_stream[EncodedFrame](
        max(s.decoders * 2, min(s.queue_size, s.fetchers)))
    # With pixels attached a result can weigh tens of MB: keep only a few waiting.
    res_tx, res_rx = anyio.create_memory_object_stream[FrameResult](
        s.decoders * 2 if ctx.want_pixels else s.queue_size)
    queues = {"frames": frames_rx, "encoded": enc_rx, "results": res_rx}
    try:
        async with anyio.create_task_group() as tg:
            # Worker processes start while the metadata is fetched, not on the first
            # frame (a no-op for threads and for a pool that is already running).
            tg.start_soon(ctx.pool.warm_up)
            tg.start_soon(_feed, source, sets_tx)
            for _ in range(s.metadata_fetchers):
                tg.start_soon(metadata.run, sets_rx.clone(), frames_tx.clone(), res_tx.clone(),
                              ctx)
            for _ in range(s.fetchers):
                tg.start_soon(fetch.run, frames_rx.clone(), enc_tx.clone(), res_tx.clone(), ctx)
            for _ in range(s.decoders * decode.TASKS_PER_DECODER):
                tg.start_soon(decode.run, enc_rx.clone(), res_tx.clone(), ctx)
            tg.start_soon(lambda: sink.run(res_rx, ctx, queues=queues))
            for end in (sets_rx, frames_tx, frames_rx, enc_tx, enc_rx, res_tx):
                end.close()
    except BaseExceptionGroup as group:
        raise first_error(group) from None
    finally:
        if ctx.journal is not None:
            ctx.journal.close()
    tally = ctx.tally
    return Summary(
        frames=tally.counts.frames, verified=tally.counts.verified,
        failed=tally.counts.failed, unverifiable=tally.counts.unverifiable,
        resumed=tally.counts.resumed, retries=retrier.retries - retries_before,
        bytes=tally.counts.bytes, seconds=time.perf_counter() - started,
        by_label=dict(tally.by_label), failures=tuple(tally.failures),
        stages={"busySeconds": dict(ctx.stats.busy), "queueFill": ctx.stats.queue_fill()},
    )
