"""Dispatch stage (the run's side): frames go to the worker processes in shards, and
their results come back.

Frames are taken as they come from the metadata stage: a shard holds up to
``shard_frames`` of them, or fewer when no more are waiting, so that workers never wait
for a shard to fill. The pool bounds how many shards wait for a worker.
"""

from __future__ import annotations

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ..model import FrameRef, FrameResult
from ..stages.context import RunContext
from .pool import WorkerPool


async def run(frames: MemoryObjectReceiveStream[FrameRef],
              results: MemoryObjectSendStream[list[FrameResult]], ctx: RunContext,
              pool: WorkerPool, *, shard_frames: int) -> None:
    deliver = results.send

    handle = pool.open_run(deliver)
    out_dir, fmt = ctx.work.out_dir, ctx.work.fmt
    try:
        async with frames:
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
                await pool.submit(handle, shard, out_dir, fmt, targets=targets)
                if handle.error is not None:
                    # The run failed: what the workers hold still comes back first.
                    await pool.finish_run(handle)
            await pool.finish_run(handle)
    finally:
        ctx.tally.by_worker.update(handle.by_worker)
        await pool.close_run(handle)
        results.close()
