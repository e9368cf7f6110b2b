"""The driver's side of a cluster download: frames cut into shards, shards run as Ray
tasks, their results fed to the run's sink (and so to its one journal).

This is the pipeline's frame stage when the run has a cluster (``run_pipeline(...,
dispatcher=ClusterDispatch(...))``): the metadata stage, the sink, the Committer and the
summary stay in the driver, exactly as for a local run.

- A shard is taken as the metadata stage produces frames: up to ``shard_frames`` of them,
  or fewer when no more are waiting. At most ``in_flight`` shards are on the cluster at
  once (by default twice its CPUs, so that every node has its next shard queued), which
  bounds the driver's memory and what Ctrl-C has to cancel.
- A node lost mid-run: Ray runs its tasks again on the nodes left (``max_retries``).
  A task's results reach the driver only when it returns, so the frames of the lost
  attempt were never journaled, and each frame is journaled exactly once, by the attempt
  that returned. A shard whose every attempt died has its frames reported failed.
- The run stopping (an error, Ctrl-C): every task still on the cluster is cancelled
  (first gently, then by killing its worker) and waited for, and the temporary files it
  may have left are removed, before the run's error goes on.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ..errors import HiAsyncError
from ..model import FRAME_STATUS, FrameRef, FrameResult, FrameStatus
from ..stages.context import RunContext
from .connect import task_error
from .shard import Item, ShardJob, ShardOutcome, remove_tmp, run_shard

#: Times Ray runs a task again after its worker or node died.
MAX_RETRIES = 3
#: Seconds cancelled tasks get to stop by themselves before their workers are killed.
CANCEL_GRACE = 5.0
#: Seconds to wait for killed workers to be reported gone.
KILL_WAIT = 20.0


def shard_task(job: ShardJob, shard: tuple[FrameRef, ...], broker: Any) -> ShardOutcome:
    """The Ray task: one shard on whichever node Ray chose."""
    import ray

    return run_shard(job, shard, broker, ray.get_runtime_context().get_node_id())


@dataclass
class _Running:
    shard: tuple[FrameRef, ...]
    ref: Any


class ClusterDispatch:
    """Runs a download's frames as Ray tasks (use as the pipeline's ``dispatcher``)."""

    def __init__(self, ray: Any, job: ShardJob, *, broker: Any, shard_frames: int,
                 in_flight: int, task_cpus: float = 1.0) -> None:
        self._ray = ray
        self.job = job
        self.broker = broker
        self.shard_frames = shard_frames
        self.in_flight = in_flight
        self._task = ray.remote(shard_task).options(
            num_cpus=task_cpus, max_retries=MAX_RETRIES, retry_exceptions=False,
            name="hi_async_shard")
        self._running: dict[int, _Running] = {}
        #: Frames verified on each node, by Ray node ID.
        self.by_node: collections.Counter[str] = collections.Counter()

    async def __call__(self, frames: MemoryObjectReceiveStream[FrameRef],
                       results: MemoryObjectSendStream[list[FrameResult]],
                       ctx: RunContext) -> None:
        slots = anyio.Semaphore(self.in_flight)
        try:
            async with frames, results, anyio.create_task_group() as tg:
                while (shard := await self._next_shard(frames)) is not None:
                    await slots.acquire()
                    tg.start_soon(self._one, shard, slots, results, ctx)
        finally:
            ctx.tally.by_node.update(self.by_node)
            if self._running:
                with anyio.CancelScope(shield=True):
                    await self._cancel_running()

    async def _next_shard(self, frames: MemoryObjectReceiveStream[FrameRef],
                          ) -> tuple[FrameRef, ...] | None:
        try:
            shard = [await frames.receive()]
        except anyio.EndOfStream:
            return None
        while len(shard) < self.shard_frames:
            try:
                shard.append(frames.receive_nowait())
            except (anyio.WouldBlock, anyio.EndOfStream):
                break
        return tuple(shard)

    async def _one(self, shard: tuple[FrameRef, ...], slots: anyio.Semaphore,
                   results: MemoryObjectSendStream[list[FrameResult]],
                   ctx: RunContext) -> None:
        try:
            ref = self._task.remote(self.job, shard, self.broker)
            self._running[id(ref)] = _Running(shard, ref)
            try:
                outcome = await asyncio.wrap_future(ref.future())
            except self._ray.exceptions.RayTaskError as exc:
                raise task_error(exc) from None
            except self._ray.exceptions.RayError as exc:
                # Every attempt died with its worker or node (or someone cancelled it):
                # the frames failed this run, and a rerun resumes them.
                self._running.pop(id(ref), None)
                await results.send([FrameResult(
                    ref=frame, status=FrameStatus.FAILED,
                    error=f"its Ray task did not finish in {MAX_RETRIES + 1} attempts "
                    f"({type(exc).__name__})") for frame in shard])
                return
            self._running.pop(id(ref), None)
            await self._deliver(outcome, shard, results, ctx)
        finally:
            slots.release()

    async def _deliver(self, outcome: ShardOutcome, shard: tuple[FrameRef, ...],
                       results: MemoryObjectSendStream[list[FrameResult]],
                       ctx: RunContext) -> None:
        ctx.hi.aws.retrier.absorb(outcome.retries, outcome.throttled)
        batch = [_result(shard[item[0]], item) for item in outcome.items]
        self.by_node[outcome.node_id] += sum(
            1 for r in batch if r.status is FrameStatus.VERIFIED)
        if batch:
            await results.send(batch)
        if outcome.error is not None:
            kind, message, hint = outcome.error
            raise _rebuild(kind, message, hint)

    async def _cancel_running(self) -> None:
        """Cancel every task still on the cluster and wait until each has ended."""
        ray = self._ray
        running = list(self._running.values())
        refs = [r.ref for r in running]
        for ref in refs:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=False)
        _, pending = await anyio.to_thread.run_sync(
            lambda: ray.wait(refs, num_returns=len(refs), timeout=CANCEL_GRACE))
        if pending:
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            await anyio.to_thread.run_sync(
                lambda: ray.wait(pending, num_returns=len(pending), timeout=KILL_WAIT))
        self._running.clear()
        if self.job.out_dir is not None:
            out_dir, fmt = self.job.out_dir, self.job.fmt
            for r in running:
                remove_tmp(out_dir, fmt, r.shard)


def _result(ref: FrameRef, item: Item) -> FrameResult:
    from pathlib import Path

    _, status, content_type, crc, error, nbytes, path, file_bytes, file_crc32 = item
    return FrameResult(ref=ref, status=FRAME_STATUS[status], content_type=content_type,
                       actual_crc32=crc, error=error, encoded_bytes=nbytes,
                       path=Path(path) if path is not None else None,
                       file_bytes=file_bytes, file_crc32=file_crc32)


def _rebuild(kind: str, message: str, hint: str | None) -> HiAsyncError:
    """The hi_async error a task met, rebuilt in the driver (same class where possible)."""
    from .. import errors

    cls = getattr(errors, kind, None)
    if not (isinstance(cls, type) and issubclass(cls, HiAsyncError)) or cls is \
            errors.FrameFailed:
        cls = HiAsyncError
    return cls(message, hint=hint)
