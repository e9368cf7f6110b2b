"""Binary segmentations (SEG, 1-bit, explicit VR little endian) are kept as imported.

The reference page says the service stores these frames as they came and serves them as
application/octet-stream. The files are built with pydicom (none of its bundled test files
is a 1-bit segmentation); one has frames of a whole number of bytes, one has frames that
the file packs across byte boundaries.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import pack_bits
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from hi_async.local.dicom_import.convert import SEGMENTATION_STORAGE
from hi_async.local.dicom_import.transcode import pixel_crc32
from tests.local.import_support.jobs import (
    delete_datastore,
    frame,
    instances,
    manifest,
    new_bucket,
    run_job,
    upload,
    wait_active,
)

STUDY = generate_uid()
SHAPES = {"aligned.dcm": (3, 16, 16), "straddling.dcm": (3, 5, 7)}


def _segmentation(frames: int, rows: int, columns: int, seed: int) -> tuple[bytes, np.ndarray]:
    masks = (np.random.default_rng(seed).random((frames, rows, columns)) > 0.6).astype(
        np.uint8)
    sop = generate_uid()
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = SEGMENTATION_STORAGE
    meta.MediaStorageSOPInstanceUID = sop
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = SEGMENTATION_STORAGE, sop
    ds.StudyInstanceUID, ds.SeriesInstanceUID = STUDY, generate_uid()
    ds.PatientID, ds.PatientName, ds.Modality = "SEG1", "Seg^Test", "SEG"
    ds.SegmentationType = "BINARY"
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, columns, str(frames)
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 1, 1, 0, 0
    ds.PixelData = pack_bits(masks.ravel())
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue(), masks


@pytest.fixture(scope="module")
def seg_import(s3: Any, mi: Any) -> Iterator[dict[str, Any]]:
    ds_id = mi.create_datastore(datastoreName="segmentations")["datastoreId"]
    wait_active(mi, ds_id)
    files = {name: _segmentation(*shape, seed=i) for i, (name, shape) in
             enumerate(SHAPES.items())}
    bucket = new_bucket(s3, "seg")
    upload(s3, bucket, "in/", ((name, data) for name, (data, _) in files.items()))
    job = run_job(mi, ds_id, f"s3://{bucket}/in/", f"s3://{bucket}/out/")
    yield {"datastore_id": ds_id, "job": job, "summary": manifest(s3, job), "files": files}
    delete_datastore(mi, ds_id)


def test_segmentations_are_imported(seg_import: dict[str, Any]) -> None:
    assert seg_import["job"]["jobStatus"] == "COMPLETED"
    assert seg_import["summary"]["numberOfImportedFiles"] == len(SHAPES)


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_frames_are_the_packed_bits_as_imported(seg_import: dict[str, Any], mi: Any,
                                                 name: str) -> None:
    data, masks = seg_import["files"][name]
    source = pydicom.dcmread(io.BytesIO(data))
    # pydicom's own reading of the file is the reference for the unpacked pixels.
    np.testing.assert_array_equal(source.pixel_array, masks)
    ds_id = seg_import["datastore_id"]
    found = None
    for entry in seg_import["summary"]["imageSetsSummary"]:
        found = instances(mi, ds_id, entry["imageSetId"]).get(str(source.SOPInstanceUID))
        if found is not None:
            image_set_id = entry["imageSetId"]
            break
    assert found is not None, f"{name} is in no image set"
    assert found["StoredTransferSyntaxUID"] == ExplicitVRLittleEndian
    frames, rows, columns = SHAPES[name]
    assert len(found["ImageFrames"]) == frames
    per_frame_bytes = rows * columns // 8
    for index, meta in enumerate(found["ImageFrames"]):
        body, content_type = frame(mi, ds_id, image_set_id, meta["ID"])
        assert content_type == "application/octet-stream"
        assert body == np.packbits(masks[index].ravel(), bitorder="little").tobytes()
        if rows * columns % 8 == 0:  # byte-aligned frames: the file's own bytes
            assert body == bytes(source.PixelData[index * per_frame_bytes:
                                                  (index + 1) * per_frame_bytes])
        assert meta["PixelDataChecksumFromBaseToFullResolution"] == [
            {"Width": columns, "Height": rows, "Checksum": pixel_crc32(masks[index])}]
        assert (meta["MinPixelValue"], meta["MaxPixelValue"]) == (
            int(masks[index].min()), int(masks[index].max()))


def test_the_client_downloads_and_verifies_segmentation_frames(
        seg_import: dict[str, Any], endpoint_url: str, tmp_path: Any) -> None:
    from hi_async import download
    from hi_async.settings import Settings

    ids = [e["imageSetId"] for e in seg_import["summary"]["imageSetsSummary"]]
    settings = Settings(endpoint_url=endpoint_url, region="us-east-1", pool="thread",
                        access_key_id="test", secret_access_key="test",
                        output_format="npy")
    summary = download(seg_import["datastore_id"], image_set_ids=ids, out_dir=tmp_path,
                       settings=settings)
    frames = sum(shape[0] for shape in SHAPES.values())
    assert (summary.frames, summary.verified, summary.failed) == (frames, frames, 0)
    written = sorted(np.load(p).sum() for p in tmp_path.glob("*/*.npy"))
    expected = sorted(m.sum() for _, masks in seg_import["files"].values() for m in masks)
    assert written == expected
