"""Dispatch stage (the run's side): frames go to the worker processes in shards, and
their results come back.

Frames are taken as they come from the metadata stage: a shard holds up to
``shard_frames`` of them, or fewer when no more are waiting, so that workers never wait
for a shard to fill. The pool bounds how many shards wait for a worker.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ..model import FrameRef, FrameResult
from ..stages.context import RunContext
from .pool import WorkerPool
from .shards import RunHandle


class Submitter:
    """One run's shards going to the pool: ``submit`` each, then ``finish``."""

    def __init__(self, pool: WorkerPool, handle: RunHandle) -> None:
        self._pool, self._handle = pool, handle

    async def submit(self, frames: list[FrameRef], out_dir: Path | None, fmt: str,
                     **shard: Any) -> None:
        await self._pool.submit(self._handle, frames, out_dir, fmt, **shard)
        if self._handle.error is not None:
            # The run failed: what the workers hold still comes back first.
            await self._pool.finish_run(self._handle)


@contextlib.asynccontextmanager
async def submitting(pool: WorkerPool, results: MemoryObjectSendStream[list[FrameResult]],
                     ctx: RunContext) -> AsyncIterator[Submitter]:
    """A run opened on ``pool`` whose results go to ``results``; on leaving, its
    shards' results are all waited for (unless leaving by an error), its frames per
    worker are counted in the tally, and the run and ``results`` are closed."""
    handle = pool.open_run(results.send)
    try:
        yield Submitter(pool, handle)
        await pool.finish_run(handle)
    finally:
        ctx.tally.by_worker.update(handle.by_worker)
        await pool.close_run(handle)
        results.close()


async def run(frames: MemoryObjectReceiveStream[FrameRef],
              results: MemoryObjectSendStream[list[FrameResult]], ctx: RunContext,
              pool: WorkerPool, *, shard_frames: int) -> None:
    out_dir, fmt = ctx.work.out_dir, ctx.work.fmt
    async with submitting(pool, results, ctx) as shards, frames:
        while True:
            try:
                shard = [await frames.receive()]
            except anyio.EndOfStream:
                break
            while len(shard) < shard_frames:
                try:
                    shard.append(frames.receive_nowait())
                except (anyio.WouldBlock, anyio.EndOfStream):
                    break
            targets = None
            if ctx.volumes is not None:  # each frame's slot in its volume, if any
                found = [ctx.volumes.target(ref) for ref in shard]
                targets = found if any(t is not None for t in found) else None
            await shards.submit(shard, out_dir, fmt, targets=targets)
