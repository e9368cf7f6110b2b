"""Plain records that cross from the DICOM importer into the emulator's backend.

The importer (:mod:`hi_async.local.dicom_import`, and the transcoding it runs in a
process pool) turns each DICOM P10 file into one :class:`ParsedInstance`, what the
backend's ``add_instances`` takes; the backend groups instances into image sets, assigns
image set and frame IDs, stores the frames and builds the image set metadata document.
Nothing here knows about HTTP or S3.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One stored frame as the service keeps it, with the facts its metadata carries."""

    data: bytes
    content_type: str
    min_pixel_value: int | float | None
    max_pixel_value: int | float | None
    #: ``PixelDataChecksumFromBaseToFullResolution`` entries, base first, full last:
    #: ``[{"Width": w, "Height": h, "Checksum": crc32}, ...]``. Empty when not computed.
    checksums: tuple[dict[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class ImportWarning:
    """One non-conformance an instance was imported with (its ``warning.ndjson`` entry)."""

    code: int  # warning_reason_code, a number as in the service's records (0xB111 = 45329)
    type: str  # e.g. "FrameNumberMismatch"
    message: str


@dataclass(frozen=True, slots=True)
class ParsedInstance:
    """One DICOM instance, ready to be merged into an image set."""

    input_file: str  # s3://bucket/key it came from
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    #: DICOM attributes by keyword at each level, in the metadata document's value
    #: conventions (IS/DS as strings, US/SS as numbers, sequences as lists of dicts,
    #: bulk binary elements left out). Private tags by 8-hex-digit tag.
    patient_dicom: dict[str, Any]
    study_dicom: dict[str, Any]
    series_dicom: dict[str, Any]
    instance_dicom: dict[str, Any]
    #: VRs of private tags (and of any attribute whose VR the reader cannot infer).
    instance_vrs: dict[str, str]
    stored_transfer_syntax_uid: str
    frames: tuple[EncodedFrame, ...] = field(default_factory=tuple)
    #: What the import found wrong but imported anyway; empty for a conformant file.
    warnings: tuple[ImportWarning, ...] = ()
