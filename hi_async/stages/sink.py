"""Sink stage: every result is journaled, counted, shown and handed to the caller.

Results already waiting share one journal write: each frame in a batch is already in
place on disk, so batching keeps the journal exact while saving a system call per frame.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

from ..model import FrameResult
from .context import RunContext

#: At most this many results are journaled in one write.
BATCH = 64


def _sample_queues(ctx: RunContext, queues: dict[str, Any]) -> None:
    stats = ctx.stats
    stats.samples += 1
    for name, stream in queues.items():
        st = stream.statistics()
        fill = st.current_buffer_used / max(1, st.max_buffer_size)
        stats.fill_sum[name] = stats.fill_sum.get(name, 0.0) + fill


async def run(results: MemoryObjectReceiveStream[FrameResult], ctx: RunContext, *,
              queues: dict[str, Any]) -> None:
    """``queues`` (name → receive stream) are sampled once per batch for their fill."""
    async with results:
        async for first in results:
            batch = [first]
            while len(batch) < BATCH:
                try:
                    batch.append(results.receive_nowait())
                except (anyio.WouldBlock, anyio.EndOfStream):
                    break
            t0 = time.perf_counter()
            if ctx.journal is not None:
                ctx.journal.append_many([r for r in batch if not r.resumed])
            _sample_queues(ctx, queues)
            for result in batch:
                ctx.tally.add(result)
                if ctx.progress is not None:
                    ctx.progress.on_result(result)
            ctx.stats.busy["sink"] += time.perf_counter() - t0
            if ctx.on_result is not None:
                for result in batch:
                    await ctx.on_result(result)
