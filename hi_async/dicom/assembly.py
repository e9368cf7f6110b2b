"""Instances in the download pipeline: what travels with their frames, and finishing one.

``download --format dcm`` runs the export at frame speed: frames flow through the usual
lanes (fetch, decode, CRC32), and each instance's verified frames are gathered where they
were verified (this process, or the worker process its shard went to); once its last frame
is in, the instance is rebuilt and written there. This module holds the pure parts:

- :class:`InstanceJob`: one instance's frames and :func:`instance_slice` of the metadata,
  the part of the image set's document it is rebuilt from (Patient, Study, its Series,
  itself). A worker process gets the slices with the frames (:class:`DicomShard`) and builds
  the dataset itself. Measured on the benchmark's 512x512 CT: a slice pickles and unpickles
  in 0.03 ms (2.5 KB); a pydicom Dataset built in the parent would take 1 ms (5 KB) to
  pickle and unpickle on top of the 2.8 ms its building takes, all of it on the parent's one
  core, which also runs discovery and the journal, instead of spread over the workers.
- :func:`finish_instance`: dataset and verified frames → the file (and/or the dataset).
- the ``error`` texts of a failed instance's frames, and :func:`failed_instances`, the one
  line per failed instance the command line prints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

from ..model import FrameRef, FrameResult
from ..output.frames import file_checksum
from .instance import build_instance
from .pixels import InstanceFrame, Syntax, with_pixel_data
from .writer import write_dataset_file

#: (image set ID, SeriesInstanceUID, SOPInstanceUID), as ``FrameRef.instance_key``.
InstanceKey = tuple[str, str, str]

#: Every ``error`` of a frame whose instance was not written starts so, then says why:
#: the frame failed, or another frame did, or the instance cannot be rebuilt.
NOT_WRITTEN = "instance not written: "
_FRAME = "this frame failed: "
_SIBLING = "frame {} of the instance failed"

@dataclass(frozen=True, slots=True)
class InstanceJob:
    """One instance to export: its frames in frame order and its slice of the metadata."""

    refs: tuple[FrameRef, ...]
    metadata: Mapping[str, Any]

    @property
    def key(self) -> InstanceKey:
        return self.refs[0].instance_key


@dataclass(frozen=True, slots=True)
class DicomShard:
    """What a worker process needs besides a shard's frames to write its instances: the
    syntax, and each instance's slice of the metadata. A shard always holds whole
    instances (``workers/instance_dispatch.py``)."""

    syntax: Syntax
    metadata: Mapping[InstanceKey, Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Finished:
    """An instance rebuilt (and written, when it had a path)."""

    #: Its file notes elements the service could not give back (``losses.py``).
    noted: bool
    #: The dataset with its pixel data, when the caller asked to keep it.
    dataset: Dataset | None
    #: Size and CRC32 of the file written (journaled with each frame: what a resume checks
    #: the file against), or None when nothing was written.
    file_bytes: int | None = None
    file_crc32: int | None = None


def instance_slice(doc: Mapping[str, Any], series_uid: str, sop_uid: str) -> dict[str, Any]:
    """The part of an image set's metadata ``doc`` that one instance is rebuilt from: a
    document of the same shape holding that instance alone.

    The Patient and Study levels and the series' own attributes are shared with ``doc``
    (and with the other instances' slices), not copied. An instance the document does not
    hold gives a slice without it, which :func:`build_instance` refuses by name.
    """
    study = _mapping(doc.get("Study"))
    series = _mapping(study.get("Series")).get(series_uid)
    series_slice: dict[str, Any] = {}
    if isinstance(series, Mapping):
        instances = series.get("Instances")
        instance = instances.get(sop_uid) if isinstance(instances, Mapping) else None
        series_slice = {"DICOM": series.get("DICOM"),
                        "Instances": {sop_uid: instance} if instance is not None else {}}
    return {"ImageSetID": doc.get("ImageSetID"), "Patient": doc.get("Patient"),
            "Study": {"DICOM": study.get("DICOM"), "Series": {series_uid: series_slice}}}


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def jobs_of(doc: Mapping[str, Any], refs: Sequence[FrameRef]) -> list[InstanceJob]:
    """The image set's frames (``parse_metadata`` of ``doc``) as instances, in metadata
    order, each with its slice of ``doc``."""
    groups: dict[InstanceKey, list[FrameRef]] = {}
    for ref in refs:
        groups.setdefault(ref.instance_key, []).append(ref)
    return [InstanceJob(tuple(group), instance_slice(doc, key[1], key[2]))
            for key, group in groups.items()]


def held_bytes(refs: Sequence[FrameRef]) -> int:
    """What an instance's frames weigh decoded: an upper bound of what gathering it holds
    (encoded frames are smaller), used to bound the instances open at once."""
    return sum(r.rows * r.columns * r.samples_per_pixel * r.bytes_per_sample for r in refs)


def keeps_pixels(ref: FrameRef, syntax: Syntax) -> bool:
    """Does writing this frame's instance need its decoded pixels (not only its bytes)?
    Native output does; so do 1-bit segmentations, which are written bit-packed."""
    return syntax == "native" or ref.bits_allocated == 1


def finish_instance(metadata: Mapping[str, Any], first: FrameRef,
                    frames: Sequence[InstanceFrame], syntax: Syntax, path: Path | None, *,
                    keep: bool = False) -> Finished:
    """Rebuild the instance of ``first`` from its slice of the metadata and its verified
    ``frames`` (in frame order); write it to ``path`` (temp file, rename) unless None.

    Raises the DICOM errors of the pieces (:class:`BadAttribute`, :class:`InstanceNotFound`,
    :class:`UnsupportedPixelData`: this instance cannot be written) and
    :class:`~hi_async.errors.OutputError` (the output folder refuses: no instance can be).
    """
    build = build_instance(metadata, first.series_instance_uid, first.sop_instance_uid)
    full = with_pixel_data(build.dataset, frames, syntax)
    size = crc = None
    if path is not None:
        write_dataset_file(path, full)
        # Read back from the page cache: pydicom writes in many small pieces.
        size, crc = file_checksum(str(path))
    return Finished(noted=bool(build.losses), dataset=full if keep else None,
                    file_bytes=size, file_crc32=crc)


def not_written(reason: str) -> str:
    """The ``error`` of every frame of an instance that cannot be rebuilt or written."""
    return NOT_WRITTEN + reason


def frame_failed(reason: str) -> str:
    """The ``error`` of a frame that failed (after its re-fetches), failing its instance."""
    return NOT_WRITTEN + _FRAME + reason


def sibling_failed(frame_id: str) -> str:
    """The ``error`` of the other frames of an instance that ``frame_id`` failed."""
    return NOT_WRITTEN + _SIBLING.format(frame_id)


def why_not_written(results: Sequence[FrameResult]) -> tuple[FrameResult | None, str]:
    """From the failed results of one instance's frames: the frame that failed it (None
    when it failed as a whole) and the reason."""
    culprit = next((r for r in results if (r.error or "").startswith(NOT_WRITTEN + _FRAME)),
                   None)
    if culprit is not None:
        return culprit, (culprit.error or "").removeprefix(NOT_WRITTEN + _FRAME)
    return None, (results[0].error or "failed").removeprefix(NOT_WRITTEN)


def by_instance(results: Sequence[FrameResult]) -> dict[InstanceKey, list[FrameResult]]:
    grouped: dict[InstanceKey, list[FrameResult]] = {}
    for result in results:
        grouped.setdefault(result.ref.instance_key, []).append(result)
    return grouped


def failed_instances(failures: Sequence[FrameResult]) -> list[str]:
    """One line per instance not written, naming it and why, from its frames' results."""
    lines = []
    for (image_set, series, sop), results in by_instance(failures).items():
        where = f"instance {sop} of series {series} in image set {image_set} was not written"
        culprit, reason = why_not_written(results)
        if culprit is None:
            lines.append(f"{where}: {reason}")
        else:
            lines.append(f"{where}: frame {culprit.ref.image_frame_id} (number "
                         f"{culprit.ref.frame_number}) failed: {reason}")
    return lines
