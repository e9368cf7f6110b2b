"""The volume tests' way into the local stack, as a user's: clients, an import of what a
test put under ``s3://<bucket>/in/`` into a new data store, an image set's metadata, and
every frame decoded and CRC-verified by the library."""

from __future__ import annotations

import gzip
import json
import time
from typing import Any

import anyio
import boto3
import numpy as np
from botocore.config import Config

import hi_async
from hi_async.settings import Settings

ROLE = "arn:aws:iam::123456789012:role/ImportRole"
KEYS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


def clients(url: str) -> tuple[Any, Any]:
    """(S3, HealthImaging) clients for the stack at ``url``."""
    kw: dict[str, Any] = dict(endpoint_url=url, region_name="us-east-1",
                              config=Config(inject_host_prefix=False), **KEYS)
    return boto3.client("s3", **kw), boto3.client("medical-imaging", **kw)


def metadata(url: str, datastore: str, image_set_id: str) -> dict[str, Any]:
    """An image set's metadata document, as GetImageSetMetadata serves it."""
    _, mi = clients(url)
    blob = mi.get_image_set_metadata(datastoreId=datastore, imageSetId=image_set_id)
    doc: dict[str, Any] = json.loads(gzip.decompress(blob["imageSetMetadataBlob"].read()))
    return doc


def verified_pixels(url: str, datastore: str, image_sets: list[str]) -> dict[str, np.ndarray]:
    """Every frame of ``image_sets`` by its ID, decoded and CRC-verified by the library."""
    settings = Settings(endpoint_url=url, region="us-east-1", access_key_id="test",
                        secret_access_key="test", workers=1, fetchers=16, decoders=2)
    pixels: dict[str, np.ndarray] = {}

    async def main() -> None:
        async with hi_async.Downloader(settings) as dl:
            async for frame in dl.frames(datastore, image_set_ids=image_sets, want="pixels"):
                pixels[frame.ref.image_frame_id] = frame.pixels

    anyio.run(main)
    return pixels


def import_into_new_datastore(mi: Any, s3: Any, bucket: str, name: str, *,
                              timeout: float = 180.0) -> tuple[str, dict[str, Any]]:
    """(data store ID, the job's manifest summary) once the job COMPLETED."""
    datastore = mi.create_datastore(datastoreName=name)["datastoreId"]
    deadline = time.monotonic() + timeout
    while mi.get_datastore(datastoreId=datastore)["datastoreProperties"][
            "datastoreStatus"] != "ACTIVE":
        assert time.monotonic() < deadline, "data store never became ACTIVE"
        time.sleep(0.05)
    job = mi.start_dicom_import_job(datastoreId=datastore, dataAccessRoleArn=ROLE,
                                    inputS3Uri=f"s3://{bucket}/in/",
                                    outputS3Uri=f"s3://{bucket}/out/")["jobId"]
    while True:
        props = mi.get_dicom_import_job(datastoreId=datastore, jobId=job)["jobProperties"]
        if props["jobStatus"] in ("COMPLETED", "FAILED"):
            break
        assert time.monotonic() < deadline, "import job did not finish"
        time.sleep(0.05)
    assert props["jobStatus"] == "COMPLETED", props
    out_bucket, key = props["outputS3Uri"][len("s3://"):].split("/", 1)
    while True:  # the manifest may appear just after COMPLETED
        try:
            body = s3.get_object(Bucket=out_bucket,
                                 Key=key + "job-output-manifest.json")["Body"]
            return datastore, json.loads(body.read())["jobSummary"]
        except s3.exceptions.NoSuchKey:
            time.sleep(0.05)
