"""What the Dataset of :func:`hi_async.ray.read_frames` runs on the workers.

Two steps, each a Ray Data map over batches of plain columns:

- :func:`frame_refs`: an image set's metadata (GetImageSetMetadata, parsed as the
  pipeline's metadata stage parses it) → one row per frame, describing it (IDs, geometry,
  stored dtype, expected CRC32);
- :func:`fetch_frames`: a block of such rows → fetched, decoded and verified in lanes
  (:func:`hi_async.stages.frames.run`, pixels kept, nothing written) → one row per frame
  with its pixels and CRC32.

Pixels keep their stored dtype and shape. One Arrow tensor column cannot hold two dtypes
(signed CT and unsigned MR, say): a block that would mix them raises with advice, unless
``pixels_dtype`` asks for one dtype that holds every frame's values exactly.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import anyio
import numpy as np

from ..errors import FrameFailed, UsageError, first_error
from ..metadata import parse_metadata
from ..model import FrameRef, FrameResult, FrameStatus
from ..stages import frames
from .access import Access, open_lanes
from .rate import shared_rate

#: The columns of a frame's description, as the refs step emits them.
REF_COLUMNS = ("datastore_id", "image_set_id", "image_frame_id", "study_instance_uid",
               "series_instance_uid", "sop_instance_uid", "frame_number", "rows", "columns",
               "samples_per_pixel", "bits_allocated", "bits_stored", "signed",
               "stored_transfer_syntax_uid", "expected_crc32")
#: The columns of the Dataset (``error`` too with ``on_failure="row"``).
COLUMNS = ("image_set_id", "image_frame_id", "study_instance_uid", "series_instance_uid",
           "sop_instance_uid", "frame_number", "pixels", "crc32")
#: expected_crc32 when the metadata has none (an Arrow integer column has no None).
NO_CRC = -1


@dataclass(frozen=True, slots=True)
class RowJob:
    """What every task of one Dataset shares (pickled into its map functions)."""

    access: Access
    broker: Any
    lanes: int = 8
    decoders: int = 1
    #: "raise": a frame that fails raises FrameFailed; "row": it becomes a row whose
    #: ``error`` says why (pixels empty), never dropped.
    on_failure: str = "raise"
    pixels_dtype: str | None = None


def frame_refs(batch: dict[str, Any], *, job: RowJob) -> dict[str, Any]:
    """Image sets (``datastore_id``, ``image_set_id``) → one row per frame."""
    async def main() -> list[FrameRef]:
        refs: list[FrameRef] = []
        async with open_lanes(job.access, lanes=1, decoders=1) as lanes:
            for datastore_id, image_set_id in zip(batch["datastore_id"],
                                                  batch["image_set_id"], strict=True):
                blob = await lanes.metadata_blob(str(datastore_id), str(image_set_id))
                # Tens of MB of JSON: parsed in a thread, as the metadata stage does.
                refs += await anyio.to_thread.run_sync(functools.partial(
                    parse_metadata, blob, str(datastore_id), str(image_set_id),
                    limit=job.access.settings.metadata_max_bytes))
        return refs

    refs = _run(main)
    columns: dict[str, Any] = {name: [getattr(r, name) for r in refs] for name in REF_COLUMNS}
    columns["expected_crc32"] = [NO_CRC if c is None else c for c in columns["expected_crc32"]]
    return {name: np.asarray(values) for name, values in columns.items()}


def _refs_of(batch: dict[str, Any]) -> list[FrameRef]:
    values = [batch[name] for name in REF_COLUMNS]
    refs = []
    for row in zip(*values, strict=True):
        fields = dict(zip(REF_COLUMNS, row, strict=True))
        for name in ("frame_number", "rows", "columns", "samples_per_pixel",
                     "bits_allocated", "bits_stored"):
            fields[name] = int(fields[name])
        for name in ("datastore_id", "image_set_id", "image_frame_id", "study_instance_uid",
                     "series_instance_uid", "sop_instance_uid", "stored_transfer_syntax_uid"):
            fields[name] = str(fields[name])
        fields["signed"] = bool(fields["signed"])
        crc = int(fields["expected_crc32"])
        fields["expected_crc32"] = None if crc == NO_CRC else crc
        refs.append(FrameRef(**fields))
    return refs


def fetch_frames(batch: dict[str, Any], *, job: RowJob) -> dict[str, Any]:
    """Frame descriptions → verified frames with their pixels, in the batch's order."""
    refs = _refs_of(batch)
    results: dict[int, FrameResult] = {}

    async def main() -> None:
        async with shared_rate(job.broker) as rate, open_lanes(
                job.access, lanes=job.lanes, decoders=job.decoders, rate=rate) as lanes:
            work = lanes.work(None, "none", want_pixels=True)
            todo = iter(refs)
            index_of = {id(ref): i for i, ref in enumerate(refs)}

            async def next_frame() -> FrameRef | None:
                return next(todo, None)

            async def emit(result: FrameResult) -> None:
                results[index_of[id(result.ref)]] = result

            await frames.run(work, next_frame, emit, lanes=min(job.lanes, len(refs)))

    _run(main)
    return _columns(refs, [results[i] for i in range(len(refs))], job)


def _columns(refs: list[FrameRef], results: list[FrameResult], job: RowJob) -> dict[str, Any]:
    failed = [r for r in results if r.status is FrameStatus.FAILED]
    if failed and job.on_failure == "raise":
        first = failed[0]
        raise FrameFailed(first.ref.image_set_id, first.ref.image_frame_id,
                          f"{first.error} ({len(failed)} of {len(results)} frames of this "
                          "block failed)")
    pixels = [_pixels(r, job.pixels_dtype) for r in results]
    kinds = {p.dtype.str for p in pixels}
    if len(kinds) > 1:
        raise UsageError(
            f"these frames have different stored dtypes ({', '.join(sorted(kinds))}), which "
            "one Dataset column cannot hold",
            hint="pass pixels_dtype (for example 'int32', which holds 16-bit signed and "
            "unsigned values alike) or read such image sets as separate Datasets")
    columns: dict[str, Any] = {
        "image_set_id": np.asarray([r.image_set_id for r in refs]),
        "image_frame_id": np.asarray([r.image_frame_id for r in refs]),
        "study_instance_uid": np.asarray([r.study_instance_uid for r in refs]),
        "series_instance_uid": np.asarray([r.series_instance_uid for r in refs]),
        "sop_instance_uid": np.asarray([r.sop_instance_uid for r in refs]),
        "frame_number": np.asarray([r.frame_number for r in refs], dtype=np.int64),
        "pixels": _stack(pixels),
        "crc32": np.asarray([-1 if r.actual_crc32 is None else r.actual_crc32
                             for r in results], dtype=np.int64),
    }
    if job.on_failure == "row":
        columns["error"] = np.asarray([r.error if r.status is FrameStatus.FAILED else None
                                       for r in results], dtype=object)
    return columns


def _pixels(result: FrameResult, dtype: str | None) -> np.ndarray:
    ref = result.ref
    if result.status is FrameStatus.FAILED or result.pixels is None:
        shape = (0, 0) if ref.samples_per_pixel == 1 else (0, 0, ref.samples_per_pixel)
        return np.zeros(shape, dtype=dtype or ref.dtype)
    pixels = np.asarray(result.pixels)
    if dtype is None:
        return pixels
    if not np.can_cast(pixels.dtype, dtype, casting="safe"):
        raise UsageError(f"pixels_dtype {dtype!r} cannot hold {pixels.dtype} values exactly",
                         hint="choose a wider dtype, e.g. 'int32' or 'float64'")
    return pixels.astype(dtype)


def _stack(pixels: list[np.ndarray]) -> Any:
    """One array when every frame has the same shape (a fixed-shape tensor column),
    else a list of arrays (a variable-shape one)."""
    if len({p.shape for p in pixels}) == 1:
        return np.stack(pixels)
    return pixels


def _run(main: Any) -> Any:
    """``anyio.run(main)``, the first error of a failed task group unwrapped."""
    try:
        return anyio.run(main)
    except BaseExceptionGroup as group:
        raise first_error(group) from None
