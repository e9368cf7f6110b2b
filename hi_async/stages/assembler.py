"""Frames gathered into their instances where they are checked; each instance is written
once its last frame is in.

The frame lanes of a ``dcm`` download hand every frame to :meth:`Assembler.frame`, in this
process (``stages/instances.py``) or in the worker process its shard went to
(``workers/worker.py``). The frame is fetched and checked like any other (fetched again
on a CRC32 mismatch) but no frame file is written: its bytes as served are kept and, for
native output or a 1-bit segmentation, its decoded pixels. When the last frame of an
instance is in, the instance is rebuilt from its slice of the metadata and written (temp
file, rename) in a thread, off the event loop, and the results of all its frames are
handed back together, each naming the file. So a frame's result, and its journal line,
exist only once its instance's file is whole.

A frame that still fails after its re-fetches, or that has no checksum to be verified
against, fails its instance: the instance's frames still to come are not fetched, those
held are dropped, and every frame's result is ``failed`` with an error that says why the
instance was not written (``hi_async.dicom.assembly`` spells them). An instance that cannot
be rebuilt (a malformed attribute, pixel data this exporter cannot write) fails the same
way; an output folder that refuses the file stops the run, as a full disk does for frames.

Memory: an open instance holds its frames until it is written. :attr:`Assembler.held` is
the decoded size of the instances open; whoever feeds the lanes waits in
:meth:`Assembler.room_for` before opening another while that is above a budget.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import anyio

from ..aws import is_fatal_for_run
from ..dicom.assembly import (
    Finished,
    InstanceKey,
    finish_instance,
    frame_failed,
    held_bytes,
    keeps_pixels,
    not_written,
    sibling_failed,
)
from ..dicom.pixels import InstanceFrame, Syntax
from ..dicom.writer import instance_path
from ..errors import HiAsyncError, OutputError
from ..model import Check, FrameRef, FrameResult, FrameStatus
from . import frames
from .context import FrameWork

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

T = TypeVar("T")
#: Called with each instance's dataset (pixel data included) once it is complete.
OnInstance = Callable[["Dataset"], Awaitable[None]]

NO_CHECKSUM = "the metadata has no checksum for this frame, so it cannot be verified"
#: Errors of pydicom and numpy that a malformed value of one instance raises.
_BAD_DATA = (ValueError, TypeError, OverflowError)


@dataclass(eq=False)
class _Open(Generic[T]):
    """One instance being gathered."""

    refs: tuple[FrameRef, ...]
    metadata: Mapping[str, Any]
    path: Path | None
    weight: int
    index: dict[str, int]
    frames: list[InstanceFrame | None]
    results: list[FrameResult | None]
    tags: list[T | None]
    remaining: int
    #: Why it will not be written (None: so far it will).
    failure: str | None = None
    #: The frame whose failure failed it (None: it failed as a whole, or not at all).
    culprit: str | None = None


class Assembler(Generic[T]):
    """Gathers the frames of the instances :meth:`expect` announced; each frame comes back
    with the ``tag`` it was handed in with (a worker's index in its shard)."""

    def __init__(self, work: FrameWork, syntax: Syntax, *,
                 limiter: anyio.CapacityLimiter | None = None,
                 on_instance: OnInstance | None = None) -> None:
        # Frames are checked without being written; some keep their decoded pixels.
        self._plain = dataclasses.replace(work, out_dir=None, fmt="none", want_pixels=False)
        self._pixels = dataclasses.replace(self._plain, want_pixels=True)
        self._out_dir = work.out_dir
        self._stats = work.stats
        self._syntax = syntax
        self._limiter = limiter
        self._on_instance = on_instance
        self._open: dict[InstanceKey, _Open[T]] = {}
        self._changed = anyio.Event()
        #: Decoded size of the frames of the instances open (see :func:`held_bytes`).
        self.held = 0

    @property
    def open_instances(self) -> int:
        return len(self._open)

    def expect(self, refs: Sequence[FrameRef], metadata: Mapping[str, Any]) -> None:
        """Announce an instance: its frames (every one of them, in frame order) and its
        slice of the metadata."""
        first = refs[0]
        path, failure = None, None
        if self._out_dir is not None:
            try:
                path = instance_path(self._out_dir, first.image_set_id,
                                     first.series_instance_uid, first.sop_instance_uid)
            except HiAsyncError as exc:
                failure = exc.message
        n = len(refs)
        weight = held_bytes(refs)
        self._open[first.instance_key] = _Open(
            tuple(refs), metadata, path, weight, {r.image_frame_id: i for i, r in enumerate(refs)},
            [None] * n, [None] * n, [None] * n, n, failure)
        self.held += weight

    async def room_for(self, refs: Sequence[FrameRef], budget: int) -> None:
        """Wait until an instance of ``refs`` fits in ``budget`` bytes beside those open
        (at once when none is open: an instance larger than the budget goes alone)."""
        weight = held_bytes(refs)
        while self._open and self.held + weight > budget:
            await self._changed.wait()

    async def frame(self, ref: FrameRef, tag: T) -> list[tuple[T, FrameResult]]:
        """Fetch and check one frame; the results of its instance's frames if it was the
        last one in, else nothing yet."""
        inst = self._open[ref.instance_key]
        i = inst.index[ref.image_frame_id]
        inst.tags[i] = tag
        if inst.failure is None:
            result, kept = await self._check(ref)
            if kept is None and inst.failure is None:
                inst.failure, inst.culprit = result.error or "failed", ref.image_frame_id
                inst.frames = [None] * len(inst.refs)  # what it held is of no use now
            elif inst.failure is None:
                inst.frames[i] = kept
        else:
            result = FrameResult(ref=ref, status=FrameStatus.FAILED)  # not fetched
        inst.results[i] = result
        inst.remaining -= 1
        if inst.remaining:
            return []
        return await self._finish(inst)

    async def _check(self, ref: FrameRef) -> tuple[FrameResult, InstanceFrame | None]:
        """The frame's result (verified or why not) and, when verified, what its instance
        keeps of it."""
        work = self._pixels if keeps_pixels(ref, self._syntax) else self._plain
        try:
            item = await frames.fetch(work, ref)
        except HiAsyncError as exc:
            if is_fatal_for_run(exc):
                raise
            return FrameResult(ref=ref, status=FrameStatus.FAILED, error=exc.message), None
        item, outcome = await frames.checked(work, item)
        result = FrameResult(ref=ref, status=FrameStatus.VERIFIED,
                             content_type=item.content_type, actual_crc32=outcome.actual_crc32,
                             encoded_bytes=len(item.data))
        if outcome.check is Check.VERIFIED:
            return result, InstanceFrame(item.data, item.content_type, outcome.pixels)
        reason = NO_CHECKSUM if outcome.check is Check.UNVERIFIABLE else (
            outcome.error or outcome.check.value)
        return dataclasses.replace(result, status=FrameStatus.FAILED, error=reason), None

    async def _finish(self, inst: _Open[T]) -> list[tuple[T, FrameResult]]:
        """Write a complete instance (unless it failed); its frames' final results."""
        finished = None
        try:
            if inst.failure is None:
                finished = await self._write(inst)
        finally:
            del self._open[inst.refs[0].instance_key]
            inst.frames = []
            self.held -= inst.weight
            self._changed.set()
            self._changed = anyio.Event()
        results = self._final_results(inst, finished)
        if finished is not None and finished.dataset is not None:
            assert self._on_instance is not None
            await self._on_instance(finished.dataset)
        return [(cast(T, tag), result) for tag, result in zip(inst.tags, results, strict=True)]

    async def _write(self, inst: _Open[T]) -> Finished | None:
        finish = functools.partial(finish_instance, inst.metadata, inst.refs[0],
                                   [f for f in inst.frames if f is not None], self._syntax,
                                   inst.path, keep=self._on_instance is not None)
        t0 = time.perf_counter()
        try:
            return await anyio.to_thread.run_sync(finish, limiter=self._limiter)
        except OutputError:
            raise  # the output folder refuses: every other instance would fail too
        except HiAsyncError as exc:
            inst.failure = exc.message
        except _BAD_DATA as exc:
            inst.failure = f"its data cannot be written as DICOM ({type(exc).__name__}: {exc})"
        finally:
            busy = self._stats.busy
            busy["write"] = busy.get("write", 0.0) + time.perf_counter() - t0
        return None

    def _final_results(self, inst: _Open[T], finished: Finished | None) -> list[FrameResult]:
        out = []
        for result in inst.results:
            assert result is not None
            if inst.failure is None:
                assert finished is not None
                out.append(dataclasses.replace(
                    result, path=inst.path, noted=finished.noted,
                    file_bytes=finished.file_bytes, file_crc32=finished.file_crc32))
            elif inst.culprit is None:
                out.append(dataclasses.replace(result, status=FrameStatus.FAILED,
                                               error=not_written(inst.failure)))
            elif result.ref.image_frame_id == inst.culprit:
                out.append(dataclasses.replace(result, error=frame_failed(inst.failure)))
            else:
                out.append(dataclasses.replace(result, status=FrameStatus.FAILED,
                                               error=sibling_failed(inst.culprit)))
        return out
