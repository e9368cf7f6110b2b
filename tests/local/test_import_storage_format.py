"""Data stores created with losslessStorageFormat=JPEG_2000_LOSSLESS, over HTTP.

Lossless sources are then stored as JPEG 2000 lossless codestreams served as image/j2c
(see ``hi_async.local.dicom_import.transcode.encode_j2k``), GetDatastore reports the format, and the
client downloads and verifies every frame. The installed botocore may predate the
``losslessStorageFormat`` member, so the boto3 client here loads the model the local
stack serves from a data path, the way botocore picks up newer service models.
"""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import imagecodecs
import numpy as np
import pydicom
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from pydicom.data import get_testdata_file

import hi_async
from hi_async.local.data.synthetic import custom_spec, generate_series
from hi_async.local.dicom_import.transcode import JPEG2000_LOSSLESS, pixel_crc32, read_cod
from hi_async.local.healthimaging import wire
from hi_async.settings import Settings
from tests.conftest import KEYS, REGION, client_config
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

#: Lossless sources of several kinds: synthetic CT (int16, uncompressed), JPEG-LS
#: lossless MR (int16) and a two-frame RGB RLE file (uint8, three samples).
PYDICOM_FILES = ("MR_small_jpeg_ls_lossless.dcm", "SC_rgb_rle_2frame.dcm")


@pytest.fixture(scope="module")
def mi_with_format(endpoint_url: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A medical-imaging client whose model has ``losslessStorageFormat``."""
    data_path = tmp_path_factory.mktemp("models")
    model_dir = data_path / "medical-imaging" / "2023-07-19"
    model_dir.mkdir(parents=True)
    (model_dir / "service-2.json").write_text(json.dumps(wire.service_model_json()))
    session = botocore.session.get_session()
    session.set_config_variable("data_path", str(data_path))
    return boto3.Session(botocore_session=session, region_name=REGION).client(
        "medical-imaging", endpoint_url=endpoint_url,
        config=client_config("medical-imaging"), **KEYS)


def _sources() -> list[tuple[str, bytes]]:
    files = list(generate_series(custom_spec("ct", 3, 128, 128, folder="j2k-ct")))
    for name in PYDICOM_FILES:
        path = get_testdata_file(name)
        assert path is not None, f"pydicom's bundled test file {name} is missing"
        files.append((name, Path(path).read_bytes()))
    return files


def _reference(data: bytes) -> np.ndarray:
    """pydicom's own decoded pixels, frames first."""
    ds = pydicom.dcmread(io.BytesIO(data))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arr = pydicom.pixels.pixel_array(ds, raw=True)
    return arr if int(ds.get("NumberOfFrames") or 1) > 1 else arr[np.newaxis]


@pytest.fixture(scope="module")
def j2k_import(mi_with_format: Any, s3: Any) -> Iterator[dict[str, Any]]:
    ds_id = mi_with_format.create_datastore(
        datastoreName="j2k", losslessStorageFormat="JPEG_2000_LOSSLESS")["datastoreId"]
    props = wait_active(mi_with_format, ds_id)
    bucket = new_bucket(s3, "j2k")
    sources = _sources()
    upload(s3, bucket, "in/", sources)
    job = run_job(mi_with_format, ds_id, f"s3://{bucket}/in/", f"s3://{bucket}/out/")
    yield {"datastore_id": ds_id, "props": props, "job": job, "sources": dict(sources),
           "summary": manifest(s3, job)}
    delete_datastore(mi_with_format, ds_id)


def test_get_datastore_reports_the_storage_format(j2k_import: dict[str, Any],
                                                  mi_with_format: Any) -> None:
    assert j2k_import["props"]["losslessStorageFormat"] == "JPEG_2000_LOSSLESS"
    plain = mi_with_format.create_datastore(datastoreName="plain")["datastoreId"]
    assert wait_active(mi_with_format, plain)["losslessStorageFormat"] == "HTJ2K"
    delete_datastore(mi_with_format, plain)


def test_an_unknown_storage_format_is_a_validation_error(endpoint_url: str) -> None:
    # Sent signed but without an SDK: botocore would not send a member it does not know.
    body = json.dumps({"datastoreName": "bad", "clientToken": "t1",
                       "losslessStorageFormat": "PNG"}).encode()
    request = AWSRequest("POST", f"{endpoint_url}/datastore", data=body,
                         headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials("test", "test"), "medical-imaging", REGION).add_auth(request)
    prepared = request.prepare()
    req = urllib.request.Request(prepared.url, data=body, method="POST",
                                 headers=dict(prepared.headers))
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=30)
    assert err.value.code == 400
    answer = json.loads(err.value.read())
    assert "losslessStorageFormat" in answer["message"] and "PNG" in answer["message"]


def test_every_lossless_file_is_imported(j2k_import: dict[str, Any]) -> None:
    assert j2k_import["job"]["jobStatus"] == "COMPLETED"
    summary = j2k_import["summary"]
    assert summary["numberOfImportedFiles"] == len(j2k_import["sources"])
    assert summary["numberOfFilesWithCustomerError"] == 0


def test_frames_are_jpeg_2000_lossless_codestreams_equal_to_the_source(
        j2k_import: dict[str, Any], mi_with_format: Any) -> None:
    ds_id = j2k_import["datastore_id"]
    by_sop = {}
    for data in j2k_import["sources"].values():
        parsed = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        by_sop[str(parsed.SOPInstanceUID)] = data
    checked = 0
    for entry in j2k_import["summary"]["imageSetsSummary"]:
        for sop, inst in instances(mi_with_format, ds_id, entry["imageSetId"]).items():
            assert inst["StoredTransferSyntaxUID"] == JPEG2000_LOSSLESS
            reference = _reference(by_sop[sop])
            assert len(inst["ImageFrames"]) == len(reference)
            for meta, expected in zip(inst["ImageFrames"], reference, strict=True):
                data, content_type = frame(mi_with_format, ds_id, entry["imageSetId"],
                                           meta["ID"])
                assert content_type == "image/j2c"
                assert data[:4] == b"\xff\x4f\xff\x51"  # SOC + SIZ: a bare codestream
                cod = read_cod(data)
                assert cod.reversible and cod.code_block_width == 64
                pixels = imagecodecs.jpeg2k_decode(data)
                np.testing.assert_array_equal(pixels, expected)
                checksums = meta["PixelDataChecksumFromBaseToFullResolution"]
                assert checksums == [{"Width": expected.shape[1], "Height": expected.shape[0],
                                      "Checksum": pixel_crc32(expected)}]
                assert (meta["MinPixelValue"], meta["MaxPixelValue"]) == (
                    int(expected.min()), int(expected.max()))
                checked += 1
    assert checked == 3 + 1 + 2


def test_the_client_downloads_and_verifies_every_frame(j2k_import: dict[str, Any],
                                                       endpoint_url: str,
                                                       tmp_path: Path) -> None:
    settings = Settings(endpoint_url=endpoint_url, region=REGION, pool="thread", decoders=1,
                        fetchers=4, access_key_id=KEYS["aws_access_key_id"],
                        secret_access_key=KEYS["aws_secret_access_key"])
    summary = hi_async.download(j2k_import["datastore_id"],
                                import_job_id=j2k_import["job"]["jobId"],
                                out_dir=tmp_path / "out", settings=settings)
    assert (summary.frames, summary.verified, summary.failed) == (6, 6, 0)
    index = [json.loads(line) for line in (tmp_path / "out" / "index.jsonl").read_text()
             .splitlines()]
    assert {row["contentType"] for row in index} == {"image/j2c"}
    assert all(row["status"] == "verified" for row in index)
