"""Dispatch stage of a ``dcm`` download (the run's side): whole instances go to the worker
processes in shards, and their frames' results come back.

The worker that holds an instance's frames gathers them and writes its file, so a shard
is cut on instance boundaries only: instances are taken as they come from the metadata
stage until the shard holds ``shard_frames`` frames or no more instances are waiting (a
multi-frame instance larger than that is a shard of its own). With the frames goes each
instance's slice of the metadata (a ``DicomShard``), from which the worker rebuilds it.
"""

from __future__ import annotations

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ..dicom.assembly import DicomShard, InstanceJob
from ..dicom.pixels import Syntax
from ..model import FrameResult
from ..stages.context import RunContext
from .dispatch import submitting
from .pool import WorkerPool


def cut(first: InstanceJob, more: MemoryObjectReceiveStream[InstanceJob],
        shard_frames: int) -> list[InstanceJob]:
    """A shard: ``first`` and the instances already waiting after it, while it holds
    fewer than ``shard_frames`` frames. Never splits an instance."""
    shard = [first]
    frames = len(first.refs)
    while frames < shard_frames:
        try:
            job = more.receive_nowait()
        except (anyio.WouldBlock, anyio.EndOfStream):
            break
        shard.append(job)
        frames += len(job.refs)
    return shard


async def run(instances: MemoryObjectReceiveStream[InstanceJob],
              results: MemoryObjectSendStream[list[FrameResult]], ctx: RunContext,
              pool: WorkerPool, *, shard_frames: int, syntax: Syntax) -> None:
    out_dir = ctx.work.out_dir
    async with submitting(pool, results, ctx) as shards, instances:
        while True:
            try:
                first = await instances.receive()
            except anyio.EndOfStream:
                break
            shard = cut(first, instances, shard_frames)
            dicom = DicomShard(syntax, {job.key: job.metadata for job in shard})
            await shards.submit([ref for job in shard for ref in job.refs], out_dir, "dcm",
                                dicom=dicom)
