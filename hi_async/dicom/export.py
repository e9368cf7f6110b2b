"""Exporting instances of an image set as DICOM files: fetch, verify, then write.

An instance is written only when every one of its frames has been fetched and its
decoded pixels' CRC32 matched the metadata (:func:`hi_async.verify.verify_frame`, the
download's own check; a mismatch is fetched again ``refetches`` times). A frame that still
fails, or has no checksum to verify against, fails its instance: nothing is written for it
and :class:`~hi_async.dicom.errors.InstanceFailed` names it.

Decoding and writing run in worker threads, never on the event loop. This is the simple,
self-contained form of the export (one image set, a few instances at a time); the
download pipeline runs the same pieces (``build_instance``, ``verify_frame``,
``write_instance``) with its own concurrency.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

from ..aws.errors import is_fatal_for_run
from ..errors import HiAsyncError, MetadataError, OutputError
from ..metadata import gunzip_bounded, parse_metadata
from ..model import Check, EncodedFrame, FrameRef
from ..verify import verify_frame
from .errors import InstanceFailed
from .instance import build_instance
from .pixels import SYNTAXES, InstanceFrame, Syntax
from .writer import instance_path, write_instance

if TYPE_CHECKING:
    from ..aws.healthimaging import HealthImaging

#: Fetches one frame by its ID: (the bytes as stored, the Content-Type they came with).
FrameSource = Callable[[str], Awaitable[tuple[bytes, str | None]]]


@dataclass(frozen=True, slots=True)
class ExportedInstance:
    """One instance written: where, and whether its file carries a note about losses."""

    path: Path
    sop_uid: str
    frames: int
    noted: bool


@dataclass(frozen=True, slots=True)
class ExportSummary:
    """What an image set's export came to."""

    image_set_id: str
    written: tuple[ExportedInstance, ...]
    failed: tuple[InstanceFailed, ...]
    seconds: float

    @property
    def noted(self) -> int:
        """Instances whose file notes elements the service could not give back."""
        return sum(1 for instance in self.written if instance.noted)

    @property
    def frames(self) -> int:
        return sum(instance.frames for instance in self.written)

    @property
    def instances_per_second(self) -> float:
        return len(self.written) / self.seconds if self.seconds > 0 else 0.0


async def export_instance(doc: Mapping[str, Any], refs: Sequence[FrameRef],
                          fetch: FrameSource, out_dir: Path, syntax: Syntax = "stored", *,
                          refetches: int = 1) -> ExportedInstance:
    """Fetch and verify every frame of one instance (``refs``, in frame order), then write
    it. Raises :class:`InstanceFailed` naming the instance (and frame) when it cannot.

    The frames of one instance are fetched one after the other; callers run instances
    side by side (as :func:`export_image_set` does).
    """
    if not refs or len({(r.series_instance_uid, r.sop_instance_uid) for r in refs}) != 1:
        raise ValueError("export_instance takes the frame refs of exactly one instance")
    first = refs[0]
    image_set, series, sop = first.image_set_id, first.series_instance_uid, first.sop_instance_uid

    def failed(frame_id: str | None, reason: str) -> InstanceFailed:
        return InstanceFailed(image_set, series, sop, frame_id, reason)

    try:
        path = instance_path(out_dir, image_set, series, sop)
        build = build_instance(doc, series, sop)
    except HiAsyncError as exc:
        raise failed(None, exc.message) from None
    if len(build.frame_ids) != len(refs):
        raise failed(None, f"the metadata lists {len(build.frame_ids)} frames but "
                     f"{len(refs)} were asked for")
    keep_pixels = syntax == "native" or first.bits_allocated == 1
    frames = [await _verified(ref, fetch, refetches, keep_pixels, failed) for ref in refs]
    try:
        await anyio.to_thread.run_sync(functools.partial(
            write_instance, path, build.dataset, frames, syntax))
    except HiAsyncError as exc:
        if isinstance(exc, OutputError) or is_fatal_for_run(exc):
            raise  # the output folder, not this instance: every other one would fail too
        raise failed(None, exc.message) from None
    return ExportedInstance(path, sop, len(frames), bool(build.losses))


async def _verified(ref: FrameRef, fetch: FrameSource, refetches: int, keep_pixels: bool,
                    failed: Callable[[str | None, str], InstanceFailed]) -> InstanceFrame:
    """One frame, fetched until its CRC32 matches (at most ``1 + refetches`` times)."""
    reason = "not fetched"
    for _ in range(1 + refetches):
        try:
            data, content_type = await fetch(ref.image_frame_id)
        except HiAsyncError as exc:
            if is_fatal_for_run(exc):
                raise
            raise failed(ref.image_frame_id, exc.message) from None
        outcome = await anyio.to_thread.run_sync(functools.partial(
            verify_frame, EncodedFrame(ref, data, content_type), path=None, fmt="none",
            want_pixels=keep_pixels))
        if outcome.check is Check.VERIFIED:
            return InstanceFrame(data, content_type, outcome.pixels)
        if outcome.check is Check.UNVERIFIABLE:
            raise failed(ref.image_frame_id, "the metadata has no checksum for this frame, "
                         "so it cannot be verified")
        reason = outcome.error or outcome.check.value
        if outcome.check is not Check.MISMATCH:
            break
    raise failed(ref.image_frame_id, reason)


def instances_of(refs: Sequence[FrameRef]) -> list[list[FrameRef]]:
    """Frame refs grouped by instance, in metadata order (frames in frame order)."""
    groups: dict[tuple[str, str], list[FrameRef]] = {}
    for ref in refs:
        groups.setdefault((ref.series_instance_uid, ref.sop_instance_uid), []).append(ref)
    return list(groups.values())


async def export_image_set(hi: HealthImaging, datastore_id: str, image_set_id: str,
                           out_dir: Path, syntax: Syntax = "stored", *,
                           concurrency: int = 8) -> ExportSummary:
    """Every instance of one image set as ``out_dir/<imageSetId>/<series>/<sop>.dcm``.

    ``hi`` must be open with ``data_plane=True``. Instances that fail are named in the
    summary; errors that would fail every instance (credentials, access) are raised.
    """
    if syntax not in SYNTAXES:
        raise ValueError(f"unknown DICOM syntax {syntax!r}: choose 'stored' or 'native'")
    started = time.perf_counter()
    settings = hi.aws.settings
    blob = await hi.metadata_blob(datastore_id, image_set_id)
    try:
        doc = json.loads(gunzip_bounded(blob, settings.metadata_max_bytes))
    except ValueError as exc:
        raise MetadataError(f"image set metadata of {image_set_id} is not JSON: {exc}") from None
    refs = parse_metadata(doc, datastore_id, image_set_id)

    async def fetch(frame_id: str) -> tuple[bytes, str | None]:
        return await hi.get_frame(datastore_id, image_set_id, frame_id)

    written: list[ExportedInstance] = []
    failures: list[InstanceFailed] = []
    send, receive = anyio.create_memory_object_stream[list[FrameRef]](
        max_buffer_size=max(1, concurrency))

    async def worker(queue: MemoryObjectReceiveStream[list[FrameRef]]) -> None:
        async with queue:
            async for group in queue:
                try:
                    written.append(await export_instance(
                        doc, group, fetch, Path(out_dir), syntax,
                        refetches=settings.mismatch_refetches))
                except InstanceFailed as exc:
                    failures.append(exc)

    async with anyio.create_task_group() as tg:
        async with receive:
            for _ in range(max(1, concurrency)):
                tg.start_soon(worker, receive.clone())
        async with send:
            for group in instances_of(refs):
                await send.send(group)
    return ExportSummary(image_set_id, tuple(written), tuple(failures),
                         time.perf_counter() - started)
