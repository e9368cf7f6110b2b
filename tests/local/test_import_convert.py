"""Converting pydicom's own test files, one at a time, without the server."""

from __future__ import annotations

import warnings
from pathlib import Path

import imagecodecs
import numpy as np
import pydicom
import pytest
from pydicom.encaps import generate_frames
from pydicom.pixels import pixel_array

from hi_async.local.dicom_import.convert import ConvertFailure, convert_p10
from hi_async.local.dicom_import.transcode import HTJ2K_LOSSLESS_RPCL, pixel_crc32
from hi_async.local.healthimaging.records import ParsedInstance
from tests.local.import_support.pydicom_files import (
    EXPECTED_FAILURES,
    LOSSY_AS_IS,
    accepted_files,
    dicom_files,
    is_binary_segmentation,
    packed_bits,
    transfer_syntax,
)


def _convert(path: Path) -> ParsedInstance | ConvertFailure:
    return convert_p10(f"s3://in/{path.name}", path.read_bytes())


def _reference_frames(path: Path) -> np.ndarray:
    """pydicom's pixels (raw, as stored), or libjpeg-turbo's where pydicom cannot."""
    ds = pydicom.dcmread(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            arr = pixel_array(ds, raw=True)
        except RuntimeError:
            count = int(ds.get("NumberOfFrames") or 1)
            return np.stack([imagecodecs.jpeg8_decode(f)
                             for f in generate_frames(ds.PixelData, number_of_frames=count)])
    if int(ds.get("NumberOfFrames") or 1) == 1:
        arr = arr[np.newaxis]
    return arr.astype(arr.dtype.newbyteorder("<")) if arr.dtype != np.bool_ else arr


@pytest.mark.parametrize("path", accepted_files(), ids=lambda p: p.name)
def test_accepted_files_convert_with_every_frame(path: Path) -> None:
    result = _convert(path)
    assert isinstance(result, ParsedInstance), result
    ts = transfer_syntax(path)
    if ts in LOSSY_AS_IS:
        assert result.stored_transfer_syntax_uid == ts
        assert {f.content_type for f in result.frames} == {LOSSY_AS_IS[ts]}
        return
    if is_binary_segmentation(path):
        _check_segmentation(result, path)
        return
    assert result.stored_transfer_syntax_uid == HTJ2K_LOSSLESS_RPCL
    expected = _reference_frames(path)
    assert len(result.frames) == len(expected)
    for frame, want in zip(result.frames, expected, strict=True):
        got = imagecodecs.htj2k_decode(frame.data)
        np.testing.assert_array_equal(got, want)
        assert frame.checksums[-1]["Checksum"] == pixel_crc32(want)
        assert frame.checksums[-1]["Width"] == want.shape[1]
        assert frame.min_pixel_value == int(want.min())
        assert frame.max_pixel_value == int(want.max())


def _check_segmentation(result: ParsedInstance, path: Path) -> None:
    """Kept as imported: packed bits, octet-stream, checksum of the unpacked pixels."""
    assert result.stored_transfer_syntax_uid == transfer_syntax(path)
    expected = _reference_frames(path).astype(np.uint8)
    assert len(result.frames) == len(expected)
    for frame, want in zip(result.frames, expected, strict=True):
        assert frame.content_type == "application/octet-stream"
        assert frame.data == packed_bits(want)
        assert frame.checksums == ({"Width": want.shape[1], "Height": want.shape[0],
                                    "Checksum": pixel_crc32(want)},)


@pytest.mark.parametrize("name", sorted(EXPECTED_FAILURES))
def test_refused_files_say_why(name: str) -> None:
    path = next(p for p in dicom_files() if p.name == name)
    result = _convert(path)
    assert isinstance(result, ConvertFailure)
    assert result.exception_type == "ValidationException"
    assert EXPECTED_FAILURES[name] in result.message


def test_every_bundled_file_is_either_accepted_or_refused_on_purpose() -> None:
    names = {p.name for p in dicom_files()}
    assert set(EXPECTED_FAILURES) <= names
    assert len(accepted_files()) >= 50


def test_metadata_levels_follow_the_document_conventions() -> None:
    path = next(p for p in dicom_files() if p.name == "CT_small.dcm")
    result = _convert(path)
    assert isinstance(result, ParsedInstance)
    assert result.patient_dicom["PatientName"] == "CompressedSamples^CT1"
    assert "StudyInstanceUID" in result.study_dicom
    assert result.series_dicom["Modality"] == "CT"
    inst = result.instance_dicom
    assert inst["PixelData"] is None
    assert inst["TransferSyntaxUID"] == "1.2.840.10008.1.2.1"  # as imported
    assert inst["Rows"] == 128 and isinstance(inst["Rows"], int)
    assert isinstance(inst["SliceThickness"], str)  # DS stays a string
    assert isinstance(inst["ImagePositionPatient"], list)
    private = [k for k in inst if len(k) == 8 and k.isupper() and k[:4].isalnum()]
    assert private and all(k in result.instance_vrs for k in private)


def test_a_corrupt_file_is_refused_not_raised() -> None:
    result = convert_p10("s3://in/junk.dcm", b"\x00" * 128 + b"DICM" + b"\xff" * 50)
    assert isinstance(result, ConvertFailure)
