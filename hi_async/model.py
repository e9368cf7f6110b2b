"""Frozen records that cross stages: what to download, what came back, what it added up to.

They are plain dataclasses so that they pickle cheaply into decode workers and so that
every stage can be tested on its own with hand-made values.
"""

from __future__ import annotations

import enum
import math
import operator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


class FrameStatus(enum.StrEnum):
    """What became of a frame, as index.jsonl spells it."""

    VERIFIED = "verified"  # its decoded pixels' CRC32 equals the metadata's checksum
    FAILED = "failed"  # not downloaded, not decoded, or a CRC32 mismatch after re-fetches
    UNVERIFIABLE = "unverifiable"  # decoded, but the metadata carries no checksum


#: A status as index.jsonl and the workers spell it (a dict lookup: the enum's own call
#: costs more, once per frame).
FRAME_STATUS: dict[str, FrameStatus] = {status.value: status for status in FrameStatus}

#: Stored transfer syntax → the Content-Type GetImageFrame serves it with.
CONTENT_TYPES: dict[str, str] = {
    "1.2.840.10008.1.2.4.202": "image/jph",
    "1.2.840.10008.1.2.4.203": "image/jphc",
    "1.2.840.10008.1.2.4.201": "image/jphc",
    "1.2.840.10008.1.2.4.91": "image/j2c",
    "1.2.840.10008.1.2.4.90": "image/j2c",
    "1.2.840.10008.1.2.4.50": "image/jpeg",
    "1.2.840.10008.1.2.4.112": "image/jxl",
    "1.2.840.10008.1.2.1": "application/octet-stream",
}

#: What the service stores when the metadata does not say (see the reference page).
DEFAULT_STORED_TRANSFER_SYNTAX = "1.2.840.10008.1.2.4.202"


@dataclass(frozen=True, slots=True)
class ImageSetRef:
    """One image set to download; ``label`` groups output and summaries (a study name)."""

    datastore_id: str
    image_set_id: str
    label: str | None = None


@dataclass(frozen=True, slots=True)
class FrameRef:
    """Everything the metadata says about one frame: where it is and how to check it."""

    datastore_id: str
    image_set_id: str
    image_frame_id: str
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    frame_number: int  # 1-based within its instance
    rows: int
    columns: int
    samples_per_pixel: int
    bits_allocated: int
    bits_stored: int
    signed: bool
    stored_transfer_syntax_uid: str
    expected_crc32: int | None  # None: the metadata carries no checksum
    label: str | None = None

    # Shards carry hundreds of these to the worker processes: dataclass's own pickling
    # of a frozen, slotted class looks up fields() for every object, both ways, which
    # cost the parent more CPU per frame than anything else it does.
    def __getstate__(self) -> tuple[Any, ...]:
        state: tuple[Any, ...] = _frame_ref_state(self)
        return state

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        for name, value in zip(_FRAME_REF_FIELDS, state, strict=True):
            object.__setattr__(self, name, value)

    @property
    def bytes_per_sample(self) -> int:
        """ceil(bit depth / 8): the sample width the service's CRC32 is computed over."""
        return max(1, math.ceil(max(self.bits_stored, 1) / 8))

    @property
    def decoded_bytes(self) -> int:
        """The size of the frame's pixels once decoded, at the stored sample width."""
        return self.rows * self.columns * self.samples_per_pixel * self.bytes_per_sample

    @property
    def dtype(self) -> str:
        """The stored numpy dtype, little-endian (for example ``<i2`` for signed CT)."""
        width = self.bytes_per_sample
        if width > 4:
            width = 8
        elif width == 3:
            width = 4
        kind = "i" if self.signed else "u"
        return f"<{kind}{width}" if width > 1 else f"|{kind}1"

    @property
    def expected_content_type(self) -> str:
        return CONTENT_TYPES.get(self.stored_transfer_syntax_uid, "application/octet-stream")

    @property
    def instance_key(self) -> tuple[str, str, str]:
        """(image set ID, SeriesInstanceUID, SOPInstanceUID): the instance it belongs to."""
        return (self.image_set_id, self.series_instance_uid, self.sop_instance_uid)


_FRAME_REF_FIELDS = tuple(f.name for f in fields(FrameRef))
_frame_ref_state = operator.attrgetter(*_FRAME_REF_FIELDS)


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """A frame as GetImageFrame served it, on its way to be decoded and verified."""

    ref: FrameRef
    data: bytes
    content_type: str | None


class Check(enum.Enum):
    """What checking one frame's bytes found."""

    VERIFIED = "verified"  # CRC32 matches; the file (if any) is in place
    UNVERIFIABLE = "unverifiable"  # decoded, but the metadata has no checksum to compare
    MISMATCH = "mismatch"  # CRC32 differs or the bytes do not decode: fetch it again
    FAILED = "failed"  # cannot be helped by fetching again (an unknown content type)
    DISK_FULL = "disk_full"  # the file could not be written for lack of space: stop the run


@dataclass(frozen=True, slots=True)
class Outcome:
    """What checking one frame found, as a decode worker hands it back."""

    check: Check
    actual_crc32: int | None = None
    error: str | None = None
    path: str | None = None
    pixels: Any = None
    #: Size and CRC32 of the file written, when one was.
    file_bytes: int | None = None
    file_crc32: int | None = None


@dataclass(frozen=True, slots=True)
class FrameResult:
    """What became of one frame; ``pixels`` only when the caller asked for them."""

    ref: FrameRef
    status: FrameStatus
    content_type: str | None = None
    actual_crc32: int | None = None
    path: Path | None = None  # absolute path written, or None
    error: str | None = None
    encoded_bytes: int = 0
    pixels: Any = None  # numpy.ndarray when requested
    resumed: bool = False
    #: Size and CRC32 of the file written (what a resume checks the file against).
    file_bytes: int | None = None
    file_crc32: int | None = None
    #: dcm output: the instance file this frame went into notes what the service could
    #: not give back (hi_async.dicom.losses).
    noted: bool = False


@dataclass(frozen=True, slots=True)
class Frame:
    """A verified (or unverifiable) frame yielded by ``Downloader.frames``."""

    ref: FrameRef
    pixels: Any = None  # numpy.ndarray with want="pixels"
    path: Path | None = None  # the file written with want="path"
    status: FrameStatus = FrameStatus.VERIFIED


@dataclass(slots=True)
class Counts:
    """Frame counts of one run (mutable while the run goes on)."""

    frames: int = 0
    verified: int = 0
    failed: int = 0
    unverifiable: int = 0
    resumed: int = 0
    bytes: int = 0

    def add(self, result: FrameResult) -> None:
        self.frames += 1
        if result.resumed:
            self.resumed += 1
        if result.status is FrameStatus.VERIFIED:
            self.verified += 1
        elif result.status is FrameStatus.FAILED:
            self.failed += 1
        else:
            self.unverifiable += 1
        self.bytes += result.encoded_bytes


@dataclass(slots=True)
class InstanceCounts:
    """DICOM instances of a ``dcm`` run, counted from their frames' results (each instance
    has exactly one frame 1, and all its frames share its fate)."""

    instances: int = 0
    #: Files on disk, those a previous run wrote (``resumed``) included.
    written: int = 0
    failed: int = 0
    #: Files written by this run that note elements the service could not give back.
    noted: int = 0
    resumed: int = 0

    def add(self, result: FrameResult) -> None:
        if result.ref.frame_number != 1:
            return
        self.instances += 1
        if result.status is FrameStatus.FAILED:
            self.failed += 1
            return
        self.written += 1
        self.resumed += int(result.resumed)
        self.noted += int(result.noted)

    def to_json(self) -> dict[str, int]:
        return {"instances": self.instances, "written": self.written, "failed": self.failed,
                "noted": self.noted, "resumed": self.resumed}


@dataclass(frozen=True, slots=True)
class Summary:
    """The outcome of a run, as written to summary.json."""

    frames: int
    verified: int
    failed: int
    unverifiable: int
    resumed: int
    retries: int
    bytes: int
    seconds: float
    by_label: dict[str, Counts] = field(default_factory=dict)
    failures: tuple[FrameResult, ...] = ()
    #: Frames verified by each worker process (by process ID); empty when run in-process.
    workers: dict[str, int] = field(default_factory=dict)
    #: What the run wants its user to know (lines of the journal skipped on resume...).
    warnings: tuple[str, ...] = ()
    #: Frames verified on each node of a Ray cluster (by Ray node ID); empty elsewhere.
    nodes: dict[str, int] = field(default_factory=dict)
    #: Where the time went: per-stage busy seconds (summed over a stage's tasks) and the
    #: mean fill of each hand-off queue (0..1). A full queue names its consumer as the
    #: bottleneck.
    stages: dict[str, dict[str, float]] = field(default_factory=dict)
    #: ``--volume``/``--preview``: one entry per volume and per note on a series (what
    #: became of it, its files, shape and warnings); None when the run made no volumes.
    volumes: list[dict[str, Any]] | None = None
    #: Instances of a ``dcm`` run (None for the other formats).
    dicom: InstanceCounts | None = None

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        """True when no frame failed (the CLI's exit code 0)."""
        return self.failed == 0

    def to_json(self) -> dict[str, Any]:
        """The summary.json document."""
        doc: dict[str, Any] = {
            "frames": self.frames,
            "verified": self.verified,
            "failed": self.failed,
            "unverifiable": self.unverifiable,
            "resumed": self.resumed,
            "retries": self.retries,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "framesPerSecond": round(self.frames_per_second, 1),
        }
        if self.dicom is not None:
            per_second = self.dicom.instances / self.seconds if self.seconds > 0 else 0.0
            doc["dicom"] = {**self.dicom.to_json(), "instancesPerSecond": round(per_second, 1)}
        if self.workers:
            doc["workers"] = dict(sorted(self.workers.items()))
        if self.warnings:
            doc["warnings"] = list(self.warnings)
        if self.nodes:
            doc["nodes"] = dict(sorted(self.nodes.items()))
        if self.stages:
            doc["stages"] = {
                part: {k: round(v, 4) for k, v in values.items()}
                for part, values in self.stages.items()
            }
        if self.volumes is not None:
            doc["volumes"] = self.volumes
        if self.by_label:
            doc["byLabel"] = {
                label: {
                    "frames": c.frames, "verified": c.verified, "failed": c.failed,
                    "unverifiable": c.unverifiable, "resumed": c.resumed, "bytes": c.bytes,
                }
                for label, c in self.by_label.items()
            }
        return doc
