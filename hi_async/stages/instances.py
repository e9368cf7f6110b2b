"""The stages of a ``dcm`` download: image sets → instances → DICOM files.

DICOM files are written per instance, so what flows after the metadata is whole
instances (:class:`~hi_async.dicom.assembly.InstanceJob`: frames plus the instance's slice
of the metadata) instead of loose frames; an instance's frames then go through the frame
lanes together and are gathered where they were checked (``stages/assembler.py``), in this
process (:func:`run_in_process`) or in the worker process their shard went to
(``workers/instance_dispatch.py``, which never splits an instance between shards).

:func:`run` is the metadata stage: the document is inflated and parsed once (in a
thread), its frames grouped by instance. Resuming is per instance too: an instance whose
frames all have a ``verified`` line naming its file, and whose file is there, is skipped
(its frames' results go straight to the sink); any other is fetched and written whole.
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream

from ..dicom.assembly import InstanceJob, jobs_of
from ..dicom.pixels import SYNTAXES, Syntax
from ..errors import MetadataError, UsageError
from ..metadata import gunzip_bounded, parse_metadata
from ..model import FrameRef, FrameResult, FrameStatus, ImageSetRef
from .assembler import Assembler, OnInstance
from .context import RunContext

#: Decoded bytes the instances being gathered in this process may hold before another is
#: opened (a larger instance goes alone). Worker processes are bounded by the frames each
#: may hold (``WorkerPool.max_load``) plus the shard that crosses it.
HELD_BYTES = 256 * 2**20


@dataclass(frozen=True)
class DicomOptions:
    """How a run writes DICOM files."""

    syntax: Syntax = "stored"
    #: Called with each instance's dataset as it completes (``Downloader.instances``);
    #: only in this process.
    on_instance: OnInstance | None = None

    def __post_init__(self) -> None:
        if self.syntax not in SYNTAXES:
            raise UsageError(f"unknown DICOM syntax {self.syntax!r}",
                             hint="choose stored (the frames as stored) or native (decoded)")


async def instances_of(ctx: RunContext, image_set: ImageSetRef) -> list[InstanceJob]:
    """Every instance of ``image_set`` with its frames, in metadata order."""
    blob = await ctx.hi.metadata_blob(image_set.datastore_id, image_set.image_set_id)
    return await anyio.to_thread.run_sync(functools.partial(
        _parse, blob, image_set, ctx.settings.metadata_max_bytes))


def _parse(blob: bytes, image_set: ImageSetRef, limit: int) -> list[InstanceJob]:
    try:
        doc = json.loads(gunzip_bounded(blob, limit))
    except (UnicodeDecodeError, ValueError) as exc:
        raise MetadataError(f"image set metadata of {image_set.image_set_id} is not JSON: "
                            f"{exc}") from None
    refs = parse_metadata(doc, image_set.datastore_id, image_set.image_set_id,
                          label=image_set.label)
    return jobs_of(doc, refs)


def resumed(ctx: RunContext, job: InstanceJob) -> list[FrameResult] | None:
    """The resumed results of an instance a previous run wrote, or None to write it."""
    out_dir = ctx.out_dir
    if out_dir is None or not ctx.resumable:
        return None
    entries = [ctx.resumable.get((r.image_set_id, r.image_frame_id)) for r in job.refs]
    first = entries[0]
    if first is None or first.path is None:
        return None
    if any(e is None or e.path != first.path for e in entries):
        return None
    image_set, series, sop = job.key
    if first.path != f"{image_set}/{series}/{sop}.dcm":
        return None
    path = out_dir / first.path
    return [FrameResult(ref=ref, status=FrameStatus.VERIFIED, content_type=e.content_type,
                        actual_crc32=e.actual_crc32, path=path, resumed=True)
            for ref, e in zip(job.refs, entries, strict=True) if e is not None]


async def run(image_sets: ObjectReceiveStream[ImageSetRef],
              instances: ObjectSendStream[InstanceJob],
              results: ObjectSendStream[list[FrameResult]], ctx: RunContext) -> None:
    """Send each instance on to be fetched and written, or its resumed results straight to
    the sink. Stops quietly when the stages after it stopped."""
    with contextlib.suppress(anyio.BrokenResourceError):
        async with image_sets, instances, results:
            async for image_set in image_sets:
                t0 = time.perf_counter()
                jobs = await instances_of(ctx, image_set)
                ctx.stats.busy["metadata"] += time.perf_counter() - t0
                if ctx.progress is not None:
                    ctx.progress.add_total(sum(len(job.refs) for job in jobs))
                for job in jobs:
                    done = resumed(ctx, job)
                    if done is None:
                        await instances.send(job)
                    else:
                        await results.send(done)


async def run_in_process(instances: ObjectReceiveStream[InstanceJob],
                         results: ObjectSendStream[list[FrameResult]], ctx: RunContext,
                         options: DicomOptions) -> None:
    """The frame lanes in this process over the frames of ``instances``, gathered into
    files; an instance is opened only when the held memory leaves room for it."""
    limiter = anyio.CapacityLimiter(max(1, ctx.settings.decoders))
    assembler: Assembler[None] = Assembler(ctx.work, options.syntax, limiter=limiter,
                                           on_instance=options.on_instance)
    lock = anyio.Lock()
    current: Iterator[FrameRef] = iter(())

    async def next_frame() -> FrameRef | None:
        nonlocal current
        async with lock:  # one lane at a time moves on to the next instance
            while (ref := next(current, None)) is None:
                try:
                    job = await instances.receive()
                except anyio.EndOfStream:
                    return None
                # Every frame of the instances open was handed out: they finish without
                # this lane, so waiting here for them cannot deadlock.
                await assembler.room_for(job.refs, HELD_BYTES)
                assembler.expect(job.refs, job.metadata)
                current = iter(job.refs)
            return ref

    async def lane() -> None:
        while (ref := await next_frame()) is not None:
            done = await assembler.frame(ref, None)
            if done:
                await results.send([result for _, result in done])

    async with instances, results, anyio.create_task_group() as tg:
        for _ in range(ctx.settings.fetchers):
            tg.start_soon(lane)

