"""Sink stage: every result is counted, shown, handed to the caller and committed.

Results are journaled by the run's :class:`~hi_async.durability.Committer`, in batches,
each after a barrier that made its files stable; the counts and the progress display
move as soon as a result arrives. When a barrier takes so long that many results wait
for the next one, the sink waits for it too, and the stages before it with it.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

from ..model import FrameResult
from .context import RunContext

#: Waiting batches of results are taken together up to this many results.
BATCH = 256


def _sample_queues(ctx: RunContext, queues: dict[str, Any]) -> None:
    stats = ctx.stats
    stats.samples += 1
    for name, stream in queues.items():
        st = stream.statistics()
        fill = st.current_buffer_used / max(1, st.max_buffer_size)
        stats.fill_sum[name] = stats.fill_sum.get(name, 0.0) + fill


async def run(results: MemoryObjectReceiveStream[list[FrameResult]], ctx: RunContext, *,
              queues: dict[str, Any]) -> None:
    """Results arrive in batches. ``queues`` (name → receive stream) are sampled once per
    batch for their fill."""
    try:
        await _consume(results, ctx, queues)
    finally:
        # Stopped early (an error elsewhere, Ctrl-C): results already handed over are
        # frames on disk; they are journaled with the rest.
        if ctx.committer is not None:
            while True:
                try:
                    batch = results.receive_nowait()
                except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                    break
                ctx.committer.add(r for r in batch if not r.resumed)
        results.close()


async def _consume(results: MemoryObjectReceiveStream[list[FrameResult]], ctx: RunContext,
                   queues: dict[str, Any]) -> None:
    async for first in results:
        batch = list(first)
        while len(batch) < BATCH:
            try:
                batch.extend(results.receive_nowait())
            except (anyio.WouldBlock, anyio.EndOfStream):
                break
        t0 = time.perf_counter()
        if ctx.committer is not None:
            ctx.committer.add(r for r in batch if not r.resumed)
        _sample_queues(ctx, queues)
        for result in batch:
            ctx.tally.add(result)
            if ctx.progress is not None:
                ctx.progress.on_result(result)
        ctx.stats.busy["sink"] += time.perf_counter() - t0
        if ctx.committer is not None:
            await ctx.committer.room()
        if ctx.volumes is not None:
            await ctx.volumes.on_results(batch)
        if ctx.on_result is not None:
            for result in batch:
                await ctx.on_result(result)
    if ctx.committer is not None:
        ctx.committer.close()
    if ctx.volumes is not None:
        await ctx.volumes.results_done()
