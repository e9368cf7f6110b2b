"""Import jobs end to end over HTTP: real boto3 clients against the local stack."""

from __future__ import annotations

import json
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import imagecodecs
import numpy as np
import pydicom
import pytest
from botocore.config import Config

from hi_async.local.data.synthetic import PUBLIC_SERIES
from hi_async.local.dicom_import.transcode import pixel_crc32, read_cod
from hi_async.local.stack import LocalStack
from tests.local.import_support.jobs import frame, instances
from tests.local.import_support.pydicom_files import (
    EXPECTED_FAILURES,
    LOSSY_AS_IS,
    accepted_files,
    dicom_files,
    is_binary_segmentation,
    packed_bits,
    transfer_syntax,
)

ROLE = "arn:aws:iam::123456789012:role/ImportRole"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    local = LocalStack(data_dir=tmp_path_factory.mktemp("stack"), datastore_delay=0.0).start()
    try:
        yield local
    finally:
        local.stop()


def _client(stack: LocalStack, service: str) -> Any:
    return boto3.client(service, endpoint_url=stack.url, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=Config(inject_host_prefix=False))


@pytest.fixture(scope="module")
def s3(stack: LocalStack) -> Any:
    return _client(stack, "s3")


@pytest.fixture(scope="module")
def mi(stack: LocalStack) -> Any:
    return _client(stack, "medical-imaging")


@pytest.fixture(scope="module")
def datastore_id(mi: Any) -> str:
    ds_id = mi.create_datastore(datastoreName="imports")["datastoreId"]
    for _ in range(100):
        if mi.get_datastore(datastoreId=ds_id)["datastoreProperties"]["datastoreStatus"] == \
                "ACTIVE":
            return ds_id
        time.sleep(0.05)
    raise AssertionError("data store never became ACTIVE")


def _bucket(s3: Any) -> str:
    name = f"imp-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def _run_job(mi: Any, ds_id: str, input_uri: str, output_uri: str) -> dict[str, Any]:
    started = mi.start_dicom_import_job(datastoreId=ds_id, dataAccessRoleArn=ROLE,
                                        inputS3Uri=input_uri, outputS3Uri=output_uri)
    assert started["jobStatus"] == "SUBMITTED"
    seen = set()
    for _ in range(1200):
        props = mi.get_dicom_import_job(datastoreId=ds_id, jobId=started["jobId"])[
            "jobProperties"]
        seen.add(props["jobStatus"])
        if props["jobStatus"] in ("COMPLETED", "FAILED"):
            assert seen <= {"SUBMITTED", "IN_PROGRESS", "COMPLETED", "FAILED"}
            return props
        time.sleep(0.05)
    raise AssertionError(f"job {started['jobId']} never finished")


def _read(s3: Any, uri: str) -> bytes:
    bucket, _, key = uri[5:].partition("/")
    for _ in range(100):  # the manifest may appear a moment after COMPLETED
        try:
            return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            time.sleep(0.05)
    raise AssertionError(f"{uri} never appeared")


def _ndjson(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def _reference(path: Path) -> np.ndarray:
    ds = pydicom.dcmread(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            arr = pydicom.pixels.pixel_array(ds, raw=True)
        except RuntimeError:  # pydicom's plugins refuse it; the importer uses libjpeg-turbo
            frames = pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=1)
            return imagecodecs.jpeg8_decode(next(frames))[np.newaxis]
    if int(ds.get("NumberOfFrames") or 1) == 1:
        arr = arr[np.newaxis]
    return arr


@pytest.fixture(scope="module")
def pydicom_job(s3: Any, mi: Any, datastore_id: str) -> dict[str, Any]:
    """All of pydicom's bundled files, in nested folders, imported in one job."""
    inp, out = _bucket(s3), _bucket(s3)
    for i, path in enumerate(dicom_files()):
        s3.put_object(Bucket=inp, Key=f"pydicom/set{i % 3}/deeper/{path.name}",
                      Body=path.read_bytes())
    props = _run_job(mi, datastore_id, f"s3://{inp}/pydicom/", f"s3://{out}/results")
    manifest = json.loads(_read(s3, props["outputS3Uri"] + "job-output-manifest.json"))
    return {"props": props, "manifest": manifest["jobSummary"],
            "success": _ndjson(_read(s3, props["outputS3Uri"] + "SUCCESS/success.ndjson")),
            "failure": _ndjson(_read(s3, props["outputS3Uri"] + "FAILURE/failure.ndjson"))}


def test_job_completes_and_reports_its_output_folder(pydicom_job: dict[str, Any],
                                                     datastore_id: str) -> None:
    props = pydicom_job["props"]
    assert props["jobStatus"] == "COMPLETED"
    assert props["outputS3Uri"].endswith(f"/results/{datastore_id}-DicomImport-"
                                         f"{props['jobId']}/")


def test_manifest_counts_every_file(pydicom_job: dict[str, Any]) -> None:
    summary = pydicom_job["manifest"]
    assert summary["jobId"] == pydicom_job["props"]["jobId"]
    assert summary["outputS3Uri"] == pydicom_job["props"]["outputS3Uri"]
    assert summary["numberOfScannedFiles"] == len(dicom_files())
    assert summary["numberOfImportedFiles"] == len(accepted_files())
    assert summary["numberOfFilesWithCustomerError"] == len(EXPECTED_FAILURES)
    assert summary["numberOfFilesWithServerError"] == 0
    sets = summary["imageSetsSummary"]
    assert summary["numberOfGeneratedImageSets"] == len(sets) > 0
    assert sum(s["numberOfMatchedSOPInstances"] for s in sets) == len(accepted_files())
    for key in ("successOutputS3Uri", "failureOutputS3Uri", "warningsOutputS3Uri"):
        assert summary[key].startswith(summary["outputS3Uri"])


def test_failure_records_give_a_reason_per_file(pydicom_job: dict[str, Any]) -> None:
    failed = {r["inputFile"].rsplit("/", 1)[1]: r["exception"] for r in pydicom_job["failure"]}
    assert set(failed) == set(EXPECTED_FAILURES)
    for name, exc in failed.items():
        assert exc["exceptionType"] == "ValidationException"
        assert EXPECTED_FAILURES[name] in exc["message"]


def test_every_accepted_file_decodes_bit_for_bit(pydicom_job: dict[str, Any], mi: Any,
                                                 datastore_id: str) -> None:
    """Each stored instance equals one of the files that carried its SOP Instance UID.

    Several of pydicom's files are the same instance in other encodings; as on AWS, a
    later import of an instance overwrites it, and the job imports files concurrently.
    """
    by_name = {r["inputFile"].rsplit("/", 1)[1]: r["importResponse"]
               for r in pydicom_job["success"]}
    assert set(by_name) == {p.name for p in accepted_files()}
    carriers: dict[tuple[str, str], list[Path]] = {}
    for path in accepted_files():
        sop = str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
        carriers.setdefault((by_name[path.name]["imageSetId"], sop), []).append(path)
    metadata: dict[str, dict[str, dict[str, Any]]] = {}
    for (image_set_id, sop), paths in carriers.items():
        if image_set_id not in metadata:
            metadata[image_set_id] = instances(mi, datastore_id, image_set_id)
        instance = metadata[image_set_id][sop]
        matches = [p for p in paths if transfer_syntax(p) == instance["DICOM"]["TransferSyntaxUID"]]
        errors = []
        for path in matches:
            try:
                _check_instance(mi, datastore_id, image_set_id, instance, path)
                break
            except AssertionError as exc:
                errors.append(f"{path.name}: {exc}")
        else:
            raise AssertionError(f"instance {sop} matches none of {paths}: {errors}")


def _check_instance(mi: Any, ds_id: str, image_set_id: str, instance: dict[str, Any],
                    path: Path) -> None:
    ts = transfer_syntax(path)
    frames = instance["ImageFrames"]
    if ts in LOSSY_AS_IS:
        data, ctype = frame(mi, ds_id, image_set_id, frames[0]["ID"])
        assert ctype == LOSSY_AS_IS[ts]
        assert instance["StoredTransferSyntaxUID"] == ts
        return
    expected = _reference(path)
    if is_binary_segmentation(path):
        assert instance["StoredTransferSyntaxUID"] == ts
        for meta, want in zip(frames, expected.astype(np.uint8), strict=True):
            data, ctype = frame(mi, ds_id, image_set_id, meta["ID"])
            assert (ctype, data) == ("application/octet-stream", packed_bits(want))
            full = meta["PixelDataChecksumFromBaseToFullResolution"][-1]
            assert full["Checksum"] == pixel_crc32(want)
        return
    assert instance["StoredTransferSyntaxUID"] == "1.2.840.10008.1.2.4.202"
    assert len(frames) == len(expected)
    for meta, want in zip(frames, expected, strict=True):
        data, ctype = frame(mi, ds_id, image_set_id, meta["ID"])
        assert ctype == "image/jph"
        assert read_cod(data).progression_order == "RPCL"
        got = imagecodecs.htj2k_decode(data)
        np.testing.assert_array_equal(got, want.astype(want.dtype.newbyteorder("<")))
        full = meta["PixelDataChecksumFromBaseToFullResolution"][-1]
        assert full["Checksum"] == pixel_crc32(got) and full["Width"] == got.shape[1]
        assert (meta["MinPixelValue"], meta["MaxPixelValue"]) == (int(got.min()),
                                                                  int(got.max()))


def test_missing_input_bucket_fails_the_job(s3: Any, mi: Any, datastore_id: str) -> None:
    out = _bucket(s3)
    props = _run_job(mi, datastore_id, f"s3://no-such-{uuid.uuid4().hex[:8]}/x/",
                     f"s3://{out}/o/")
    assert props["jobStatus"] == "FAILED"
    assert "does not exist" in props["message"]


def test_empty_input_prefix_fails_the_job(s3: Any, mi: Any, datastore_id: str) -> None:
    bucket = _bucket(s3)
    props = _run_job(mi, datastore_id, f"s3://{bucket}/nothing-here/", f"s3://{bucket}/o/")
    assert props["jobStatus"] == "FAILED"
    assert "no files" in props["message"]


def test_public_bucket_holds_the_four_series(s3: Any) -> None:
    counts: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="idc-open-data"):
        for obj in page.get("Contents", []):
            folder, name = obj["Key"].split("/")
            assert name.endswith(".dcm")
            counts[folder] = counts.get(folder, 0) + 1
    assert counts == {s.folder: s.instances for s in PUBLIC_SERIES.values()}


def test_public_ct_chest_imports_as_one_primary_image_set(s3: Any, mi: Any,
                                                          datastore_id: str) -> None:
    out = _bucket(s3)
    folder = PUBLIC_SERIES["ct-chest"].folder
    props = _run_job(mi, datastore_id, f"s3://idc-open-data/{folder}/", f"s3://{out}/")
    summary = json.loads(_read(s3, props["outputS3Uri"] + "job-output-manifest.json"))[
        "jobSummary"]
    assert summary["numberOfImportedFiles"] == 2
    (only,) = summary["imageSetsSummary"]
    assert only["isPrimary"] and only["numberOfMatchedSOPInstances"] == 2
    for instance in instances(mi, datastore_id, only["imageSetId"]).values():
        (meta,) = instance["ImageFrames"]
        data, _ = frame(mi, datastore_id, only["imageSetId"], meta["ID"])
        pixels = imagecodecs.htj2k_decode(data)
        assert pixels.shape == (512, 512) and pixels.dtype == np.int16
        checks = meta["PixelDataChecksumFromBaseToFullResolution"]
        assert [c["Width"] for c in checks] == [16, 32, 64, 128, 256, 512]
        assert checks[-1]["Checksum"] == pixel_crc32(pixels)
