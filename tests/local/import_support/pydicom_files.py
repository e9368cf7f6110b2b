"""pydicom's bundled test files, sorted by what HealthImaging import must do with them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom.data

TEST_FILES = Path(pydicom.data.__file__).parent / "test_files"

#: Files an import must refuse, and a word the FAILURE message must contain. All but one
#: are refused for a reason the service gives too (no P10 header, no pixel data, missing
#: UIDs, broken pixel data); the last by the local stack's own frame size limit.
EXPECTED_FAILURES: dict[str, str] = {
    "ExplVR_BigEndNoMeta.dcm": "Part 10",
    "ExplVR_LitEndNoMeta.dcm": "Part 10",
    "no_meta.dcm": "Part 10",
    "rtstruct.dcm": "Part 10",
    "meta_missing_tsyntax.dcm": "TransferSyntaxUID",
    "JPEGLSNearLossless_08.dcm": "StudyInstanceUID",
    "JPEGLSNearLossless_16.dcm": "StudyInstanceUID",
    "SC_rgb_jls_lossy_line.dcm": "StudyInstanceUID",
    "SC_rgb_jls_lossy_sample.dcm": "StudyInstanceUID",
    "nested_priv_SQ.dcm": "StudyInstanceUID",
    "MR_truncated.dcm": "decoded",
    "badVR.dcm": "NumberOfFrames",
    "UN_sequence.dcm": "PixelData",
    "empty_charset_LEI.dcm": "PixelData",
    "no_meta_group_length.dcm": "PixelData",
    "priv_SQ.dcm": "PixelData",
    "reportsi.dcm": "PixelData",
    "reportsi_with_empty_number_tags.dcm": "PixelData",
    "rtplan.dcm": "PixelData",
    "rtplan_truncated.dcm": "PixelData",
    "test-SR.dcm": "PixelData",
    "waveform_ecg.dcm": "PixelData",
    # Its JPEG 2000 codestream carries a sequence delimiter's bytes where SIZ's image
    # width belongs, so it declares 1024x3722445056 pixels: over the frame limit.
    "JPEG2000-embedded-sequence-delimiter.dcm": "per frame (--import-max-frame-bytes)",
}

LOSSY_AS_IS = {"1.2.840.10008.1.2.4.50": "image/jpeg", "1.2.840.10008.1.2.4.91": "image/j2c"}


def dicom_files() -> list[Path]:
    return sorted(TEST_FILES.glob("*.dcm"))


def accepted_files() -> list[Path]:
    return [p for p in dicom_files() if p.name not in EXPECTED_FAILURES]


def is_binary_segmentation(path: Path) -> bool:
    """A 1-bit SEG in explicit VR little endian: stored as imported (application/octet-stream)."""
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return (str(ds.file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2.1"
            and ds.get("Modality") == "SEG" and ds.get("BitsAllocated") == 1)


def packed_bits(pixels: np.ndarray) -> bytes:
    """One frame of 0/1 pixels packed as DICOM packs 1-bit data (least significant bit first)."""
    return np.packbits(np.asarray(pixels, dtype=np.uint8).ravel(), bitorder="little").tobytes()


def transfer_syntax(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)
