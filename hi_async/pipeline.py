"""Wires the stages with bounded anyio streams in one task group.

    image sets -> [metadata x M] -> frames -> [frames: lanes] ------------> results -> [sink]
                                           -> [dispatch -> worker processes] ->

Frames are fetched, verified and written in this process (lanes) or, with a worker pool,
in worker processes that each run lanes of their own. DICOM files (format ``dcm``) are
written per instance, so whole instances flow after the metadata instead of loose frames
(:func:`_start_instances`). Every hand-off is bounded, so a
slow stage slows the ones before it and memory does not grow with the study. The first
fatal error (bad credentials, a full disk, ...) cancels every task; errors that concern
one frame become a ``failed`` result instead. Results are journaled by group commit
(:mod:`hi_async.durability`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterable, Callable, Coroutine
from typing import Any

import anyio
from anyio.abc import ObjectSendStream, TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .durability import Committer
from .errors import first_error
from .journal import Journal
from .model import FrameRef, FrameResult, ImageSetRef, InstanceCounts, Summary
from .resume import ResumeReport, read_verified, remove_leftover_tmp
from .stages import frames, metadata, sink
from .stages.context import RunContext
from .workers import dispatch
from .workers.pool import WorkerPool

#: A frame stage of another kind (a cluster's, :mod:`hi_async.ray.dispatch`): takes the
#: frames stream, sends results, and closes both ends when done.
Dispatcher = Callable[[MemoryObjectReceiveStream[FrameRef],
                       MemoryObjectSendStream[list[FrameResult]], RunContext],
                      Coroutine[Any, Any, None]]


async def _feed(source: AsyncIterable[ImageSetRef], send: ObjectSendStream[ImageSetRef]) -> None:
    async with send:
        async for ref in source:
            await send.send(ref)


async def run_pipeline(ctx: RunContext, source: AsyncIterable[ImageSetRef], *,
                       pool: WorkerPool | None = None,
                       dispatcher: Dispatcher | None = None) -> Summary:
    """Download every frame of the image sets ``source`` yields; the run's Summary.

    With ``pool``, frames are done by its worker processes; with ``dispatcher``, by it
    (a cluster's tasks); otherwise in this process.
    """
    started = time.perf_counter()
    retrier = ctx.hi.aws.retrier
    retries_before = retrier.retries
    s = ctx.settings
    work = ctx.work
    journal = None
    report = ResumeReport()
    if work.out_dir is not None:
        out_dir = work.out_dir
        resume = s.resume and not work.want_pixels
        if resume:
            def resumable() -> dict[tuple[str, str], Any]:
                remove_leftover_tmp(out_dir)
                return read_verified(out_dir, work.fmt, verify_existing=s.verify_existing,
                                     report=report)

            # Checking the files on disk reads them: not on the event loop.
            ctx.resumable = await anyio.to_thread.run_sync(resumable)
        journal = Journal(out_dir, resume=resume)
        # A dispatcher's tasks drop their files from the page cache of the machine that
        # wrote them (hi_async.ray.shard); only this machine's writes are released here.
        ctx.committer = Committer(journal,
                                  release=not s.keep_page_cache and dispatcher is None)
    sets_tx, sets_rx = anyio.create_memory_object_stream[ImageSetRef](s.metadata_fetchers)
    frames_tx, frames_rx = anyio.create_memory_object_stream[FrameRef](s.queue_size)
    # With pixels attached a result can weigh tens of MB: keep only a few waiting.
    res_tx, res_rx = anyio.create_memory_object_stream[list[FrameResult]](
        s.decoders * 2 if work.want_pixels else s.queue_size)
    queues = {"frames": frames_rx, "results": res_rx}
    if work.fmt == "dcm":
        ctx.tally.dicom = InstanceCounts()
    try:
        async with anyio.create_task_group() as tg:
            # Decode processes start while the metadata is fetched, not on the first frame
            # (a no-op for threads and for a pool that is already running).
            if work.pool is not None:
                tg.start_soon(work.pool.warm_up)
            tg.start_soon(_feed, source, sets_tx)
            if work.fmt == "dcm":
                queues["frames"] = _start_instances(tg, ctx, sets_rx, res_tx, pool)
            else:
                for _ in range(s.metadata_fetchers):
                    tg.start_soon(metadata.run, sets_rx.clone(), frames_tx.clone(),
                                  res_tx.clone(), ctx)
                if dispatcher is not None:
                    tg.start_soon(dispatcher, frames_rx.clone(), res_tx.clone(), ctx)
                elif pool is not None:
                    tg.start_soon(lambda: dispatch.run(frames_rx.clone(), res_tx.clone(), ctx,
                                                       pool, shard_frames=pool.lanes))
                else:
                    tg.start_soon(_in_process, frames_rx.clone(), res_tx.clone(), ctx)
            tg.start_soon(lambda: sink.run(res_rx, ctx, queues=queues))
            if ctx.committer is not None:
                tg.start_soon(ctx.committer.run)
            if ctx.volumes is not None:
                tg.start_soon(ctx.volumes.run)
            for end in (sets_rx, frames_tx, frames_rx, res_tx):
                end.close()
    except BaseExceptionGroup as group:
        raise first_error(group) from None
    finally:
        if ctx.committer is not None:
            # Frames already on disk are journaled even when the run stops early.
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await ctx.committer.commit()
        if journal is not None:
            journal.close()
    tally = ctx.tally
    return Summary(
        frames=tally.counts.frames, verified=tally.counts.verified,
        failed=tally.counts.failed, unverifiable=tally.counts.unverifiable,
        resumed=tally.counts.resumed, retries=retrier.retries - retries_before,
        bytes=tally.counts.bytes, seconds=time.perf_counter() - started,
        by_label=dict(tally.by_label), failures=tuple(tally.failures),
        workers=dict(tally.by_worker), nodes=dict(tally.by_node),
        warnings=tuple(report.warnings()),
        stages={"busySeconds": dict(ctx.stats.busy), "queueFill": ctx.stats.queue_fill()},
        volumes=ctx.volumes.records() if ctx.volumes is not None else None,
        dicom=tally.dicom,
    )


async def _in_process(frames_rx: MemoryObjectReceiveStream[FrameRef],
                      res_tx: MemoryObjectSendStream[list[FrameResult]],
                      ctx: RunContext) -> None:
    """The frame stage's lanes in this process, fed by the frames stream."""
    async def next_frame() -> FrameRef | None:
        try:
            return await frames_rx.receive()
        except anyio.EndOfStream:
            return None

    async def emit(result: FrameResult) -> None:
        await res_tx.send([result])

    async with frames_rx, res_tx:
        await frames.run(ctx.work, next_frame, emit, lanes=ctx.settings.fetchers)


def _start_instances(tg: TaskGroup, ctx: RunContext,
                     sets_rx: MemoryObjectReceiveStream[ImageSetRef],
                     res_tx: MemoryObjectSendStream[list[FrameResult]],
                     pool: WorkerPool | None) -> MemoryObjectReceiveStream[Any]:
    """The stages of a ``dcm`` run (metadata → instances → frame lanes that write whole
    instances), started in ``tg``; returns the instances queue, sampled as the frames
    queue is in other runs (its instances are frames waiting for the frame stage).

    Imported here: pydicom is loaded only by runs that write DICOM files.
    """
    from .dicom.assembly import InstanceJob
    from .stages import instances
    from .workers import instance_dispatch

    if ctx.dicom is None:
        ctx.dicom = instances.DicomOptions(ctx.settings.dcm_syntax)
    options = ctx.dicom
    jobs_tx, jobs_rx = anyio.create_memory_object_stream[InstanceJob](
        ctx.settings.queue_size)
    with jobs_tx, jobs_rx:
        for _ in range(ctx.settings.metadata_fetchers):
            tg.start_soon(instances.run, sets_rx.clone(), jobs_tx.clone(), res_tx.clone(), ctx)
        if pool is not None:
            tg.start_soon(lambda: instance_dispatch.run(
                jobs_rx.clone(), res_tx.clone(), ctx, pool, shard_frames=pool.lanes,
                syntax=options.syntax))
        else:
            tg.start_soon(instances.run_in_process, jobs_rx.clone(), res_tx.clone(), ctx,
                          options)
    return jobs_rx
