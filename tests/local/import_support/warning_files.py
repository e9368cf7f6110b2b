"""Small real DICOM P10 files for the import warning tests: conformant, or wrong in one way.

Pixel data is 16x16 unsigned 16-bit MONOCHROME2, either native (explicit VR little
endian) or RLE lossless encapsulated with items written here, so that each file's Basic
Offset Table, fragments and NumberOfFrames say exactly what a test needs.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import generate_frames
from pydicom.uid import ExplicitVRLittleEndian, RLELossless

STUDY_UID = "1.2.826.0.1.3680043.8.498.7001"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
ROWS = COLUMNS = 16


def series_uid(index: int) -> str:
    return f"{STUDY_UID}.{index}"


def pixels(frames: int, seed: int) -> np.ndarray:
    """(frames, 16, 16) uint16 with every frame different."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 4096, size=(frames, ROWS, COLUMNS), dtype=np.uint16)


def dataset(index: int, *, sop_uid: str | None = None, frames: int = 1) -> Dataset:
    """A CT image's attributes in series ``index``, without pixel data."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = sop_uid or f"{series_uid(index)}.1"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID = STUDY_UID
    ds.SeriesInstanceUID = series_uid(index)
    ds.PatientID = "WARN-1"
    ds.PatientName = "Warning^Test"
    ds.StudyDate = "20240305"
    ds.Modality = "CT"
    ds.SeriesNumber = str(index)
    ds.InstanceNumber = "1"
    ds.Rows, ds.Columns = ROWS, COLUMNS
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 0
    if frames > 1:
        ds.NumberOfFrames = str(frames)
    return ds


def p10(ds: Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def native_file(ds: Dataset, arr: np.ndarray) -> bytes:
    ds.PixelData = arr.astype("<u2").tobytes()
    return p10(ds)


def rle_fragments(arr: np.ndarray) -> list[bytes]:
    """One RLE lossless fragment per frame, encoded by pydicom."""
    ds = dataset(0, frames=len(arr))
    ds.compress(RLELossless, arr if len(arr) > 1 else arr[0], encoding_plugin="pydicom")
    return [bytes(f) for f in generate_frames(ds.PixelData, number_of_frames=len(arr))]


def item(data: bytes) -> bytes:
    return b"\xfe\xff\x00\xe0" + struct.pack("<L", len(data)) + data


def fragment_offsets(fragments: Sequence[bytes]) -> list[int]:
    """Where each fragment's item starts, counted from the first one (a correct table)."""
    offsets, at = [], 0
    for fragment in fragments:
        offsets.append(at)
        at += 8 + len(fragment)
    return offsets


def encapsulated(basic_offsets: Sequence[int], fragments: Sequence[bytes]) -> bytes:
    """Pixel data items: the Basic Offset Table, then one item per fragment."""
    table = struct.pack(f"<{len(basic_offsets)}L", *basic_offsets)
    return item(table) + b"".join(item(f) for f in fragments)


def rle_file(ds: Dataset, pixel_data: bytes) -> bytes:
    ds.file_meta.TransferSyntaxUID = RLELossless
    ds.PixelData = pixel_data
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    return p10(ds)
