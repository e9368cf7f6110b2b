"""Running import jobs over HTTP with boto3, for the import tests on the session stack."""

from __future__ import annotations

import gzip
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

ROLE = "arn:aws:iam::123456789012:role/ImportRole"
FINAL = ("COMPLETED", "FAILED")


def new_bucket(s3: Any, stem: str = "imp") -> str:
    name = f"{stem}-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def wait_active(mi: Any, datastore_id: str) -> dict[str, Any]:
    """GetDatastore's properties once the data store is ACTIVE."""
    for _ in range(200):
        props = mi.get_datastore(datastoreId=datastore_id)["datastoreProperties"]
        if props["datastoreStatus"] == "ACTIVE":
            return props
        time.sleep(0.05)
    raise AssertionError(f"data store {datastore_id} never became ACTIVE")


def start_job(mi: Any, datastore_id: str, input_uri: str, output_uri: str) -> str:
    started = mi.start_dicom_import_job(datastoreId=datastore_id, dataAccessRoleArn=ROLE,
                                        inputS3Uri=input_uri, outputS3Uri=output_uri)
    assert started["jobStatus"] == "SUBMITTED"
    return str(started["jobId"])


def wait_job(mi: Any, datastore_id: str, job_id: str, *, timeout: float = 120.0,
             while_running: Callable[[dict[str, Any]], None] | None = None,
             ) -> dict[str, Any]:
    """Poll GetDICOMImportJob until the job ends; ``while_running`` sees every poll."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        props = mi.get_dicom_import_job(datastoreId=datastore_id, jobId=job_id)[
            "jobProperties"]
        if props["jobStatus"] in FINAL:
            return dict(props)
        if while_running is not None:
            while_running(props)
        else:
            time.sleep(0.05)
    raise AssertionError(f"import job {job_id} did not end within {timeout} s")


def run_job(mi: Any, datastore_id: str, input_uri: str, output_uri: str) -> dict[str, Any]:
    return wait_job(mi, datastore_id, start_job(mi, datastore_id, input_uri, output_uri))


def read_s3(s3: Any, uri: str) -> bytes:
    bucket, _, key = uri[5:].partition("/")
    for _ in range(100):  # the manifest may appear a moment after COMPLETED
        try:
            return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except s3.exceptions.NoSuchKey:
            time.sleep(0.05)
    raise AssertionError(f"{uri} never appeared")


def manifest(s3: Any, job: dict[str, Any]) -> dict[str, Any]:
    return json.loads(read_s3(s3, job["outputS3Uri"] + "job-output-manifest.json"))[
        "jobSummary"]


def instances(mi: Any, datastore_id: str, image_set_id: str) -> dict[str, dict[str, Any]]:
    """SOPInstanceUID → the instance's entry of the image set metadata."""
    blob = mi.get_image_set_metadata(datastoreId=datastore_id, imageSetId=image_set_id)
    doc = json.loads(gzip.decompress(blob["imageSetMetadataBlob"].read()))
    out: dict[str, dict[str, Any]] = {}
    for series in doc["Study"]["Series"].values():
        out.update(series["Instances"])
    return out


def frame(mi: Any, datastore_id: str, image_set_id: str, frame_id: str) -> tuple[bytes, str]:
    resp = mi.get_image_frame(datastoreId=datastore_id, imageSetId=image_set_id,
                              imageFrameInformation={"imageFrameId": frame_id})
    return bytes(resp["imageFrameBlob"].read()), str(resp["contentType"])


def upload(s3: Any, bucket: str, prefix: str, files: Any) -> int:
    """Put (name, bytes) pairs under ``prefix``; returns how many."""
    count = 0
    for name, data in files:
        s3.put_object(Bucket=bucket, Key=f"{prefix}{name}", Body=data)
        count += 1
    return count


def delete_datastore(mi: Any, datastore_id: str) -> None:
    """Delete every image set, then the data store, as a user would: the session stack is
    shared, and tests that list ACTIVE data stores should not see ours."""
    image_set_ids: list[str] = []
    token: dict[str, str] = {}
    while True:
        page = mi.search_image_sets(datastoreId=datastore_id, maxResults=50, **token)
        image_set_ids += [s["imageSetId"] for s in page["imageSetsMetadataSummaries"]]
        if not page.get("nextToken"):
            break
        token = {"nextToken": page["nextToken"]}
    for image_set_id in image_set_ids:
        mi.delete_image_set(datastoreId=datastore_id, imageSetId=image_set_id)
    for image_set_id in image_set_ids:
        for _ in range(200):
            if mi.get_image_set(datastoreId=datastore_id, imageSetId=image_set_id)[
                    "imageSetState"] == "DELETED":
                break
            time.sleep(0.05)
    mi.delete_datastore(datastoreId=datastore_id)
