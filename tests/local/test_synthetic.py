"""The synthetic phantom series: real DICOM, the same bytes every time, anatomy-like."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys

import imagecodecs
import numpy as np
import pydicom
import pytest

from hi_async.local.data.synthetic import PUBLIC_SERIES, SeriesSpec, custom_spec, generate_series

_SMALL = {key: SeriesSpec(spec.folder, spec.anatomy, 3, spec.rows, spec.columns)
          for key, spec in PUBLIC_SERIES.items()}


def _digest(spec: SeriesSpec) -> str:
    h = hashlib.sha256()
    for name, data in generate_series(spec):
        h.update(name.encode())
        h.update(data)
    return h.hexdigest()


def test_public_series_have_the_seed_counts() -> None:
    counts = {spec.folder: spec.instances for spec in PUBLIC_SERIES.values()}
    assert counts == {
        "00029d25-fb18-4d42-aaa5-a0897d1ac8f7": 2,
        "00025d30-ef8f-4135-a35a-d83eff264fc1": 57,
        "0002d261-8a5d-4e63-8e2e-0cbfac87b904": 192,
        "0002dd07-0b7f-4a68-a655-44461ca34096": 92,
    }


def test_same_bytes_in_a_fresh_interpreter() -> None:
    spec = _SMALL["ct-pelvis"]
    code = ("from hi_async.local.data.synthetic import SeriesSpec; "
            "from tests.local.test_synthetic import _digest; "
            f"print(_digest(SeriesSpec({spec.folder!r}, 'pelvis', 3, 512, 512)))")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout.strip()
    assert other == _digest(spec)


@pytest.mark.parametrize("key", sorted(PUBLIC_SERIES))
def test_files_are_valid_ct_or_mr_image_storage(key: str) -> None:
    spec = _SMALL[key]
    files = list(generate_series(spec))
    datasets = [pydicom.dcmread(io.BytesIO(data)) for _, data in files]
    first = datasets[0]
    assert first.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert first.SOPClassUID == first.file_meta.MediaStorageSOPClassUID
    assert first.Modality == spec.modality
    assert (first.Rows, first.Columns) == (spec.rows, spec.columns)
    assert len({ds.SOPInstanceUID for ds in datasets}) == len(datasets)
    assert len({ds.SeriesInstanceUID for ds in datasets}) == 1
    assert all(ds.StudyInstanceUID.startswith("2.25.") for ds in datasets)
    z = [float(ds.ImagePositionPatient[2]) for ds in datasets]
    assert z == sorted(z, reverse=True) and len(set(z)) == len(z)
    for keyword in ("FrameOfReferenceUID", "PixelSpacing", "SliceThickness", "WindowCenter",
                    "WindowWidth", "Manufacturer", "PatientID", "StudyDate"):
        assert keyword in first, keyword
    if spec.modality == "CT":
        assert first.pixel_array.dtype == np.int16 and float(first.RescaleIntercept) == -1024
    else:
        assert first.pixel_array.dtype == np.uint16 and first.BitsStored == 12
    assert all(name.endswith(".dcm") and len(name) == 40 for name, _ in files)


@pytest.mark.parametrize("key", sorted(PUBLIC_SERIES))
def test_htj2k_lossless_ratio_is_like_anatomy(key: str) -> None:
    spec = PUBLIC_SERIES[key]
    ratios = []
    for index, (_, data) in enumerate(generate_series(spec)):
        if index % 10:
            continue
        pixels = pydicom.dcmread(io.BytesIO(data)).pixel_array
        assert np.unique(pixels).size > 100  # not flat
        ratios.append(pixels.nbytes / len(imagecodecs.htj2k_encode(pixels, resolutions=5)))
    assert min(ratios) >= 2.0 and max(ratios) <= 4.0, ratios


def test_custom_series_honours_size_and_count() -> None:
    spec = custom_spec("mr", 4, 128, 96)
    files = list(generate_series(spec))
    assert len(files) == 4
    ds = pydicom.dcmread(io.BytesIO(files[0][1]))
    assert (ds.Modality, ds.Rows, ds.Columns) == ("MR", 128, 96)
