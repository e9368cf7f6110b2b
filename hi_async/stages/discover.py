"""Discover: which image sets to download (explicit IDs, an import job, or all).

An import job's image sets come from its output manifest
(``<outputS3Uri>job-output-manifest.json``, ``jobSummary.imageSetsSummary``); the
manifest can appear a little after the job is COMPLETED, so it is polled briefly.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import urlparse

import anyio

from ..errors import JobFailed, JobNotReady, NotFound, ServiceError
from ..model import ImageSetRef
from ..paths import check_id, check_job_id
from ..retry import Retrier

MANIFEST = "job-output-manifest.json"


async def from_ids(datastore_id: str, image_set_ids: Sequence[str],
                   label: str | None = None) -> AsyncIterator[ImageSetRef]:
    check_id(datastore_id, "data store ID")
    for image_set_id in dict.fromkeys(image_set_ids):  # keep order, drop repeats
        yield ImageSetRef(datastore_id, check_id(image_set_id, "image set ID"), label)


async def search_all(mi: Any, retrier: Retrier, datastore_id: str) -> AsyncIterator[ImageSetRef]:
    """Every image set of the data store (SearchImageSets, page by page)."""
    check_id(datastore_id, "data store ID")
    token: str | None = None
    seen: set[str] = set()
    while True:
        kwargs: dict[str, Any] = {"datastoreId": datastore_id, "maxResults": 50}
        if token:
            kwargs["nextToken"] = token
        page = await retrier.call(lambda kw=kwargs: mi.search_image_sets(**kw),
                                  f"search the image sets of data store {datastore_id}")
        for item in page.get("imageSetsMetadataSummaries", []):
            image_set_id = check_id(item.get("imageSetId"), "image set ID from the service")
            if image_set_id not in seen:
                seen.add(image_set_id)
                yield ImageSetRef(datastore_id, image_set_id)
        token = page.get("nextToken")
        if not token:
            return


async def job_output_uri(mi: Any, retrier: Retrier, datastore_id: str, job_id: str) -> str:
    """The job's output folder; raises unless the job is COMPLETED."""
    check_id(datastore_id, "data store ID")
    check_job_id(job_id)
    answer = await retrier.call(
        lambda: mi.get_dicom_import_job(datastoreId=datastore_id, jobId=job_id),
        f"get import job {job_id}",
    )
    props = answer["jobProperties"]
    status = props.get("jobStatus")
    if status in ("SUBMITTED", "IN_PROGRESS"):
        raise JobNotReady(
            f"import job {job_id} is {status}",
            hint="wait until it is COMPLETED ('aws medical-imaging get-dicom-import-job') "
            "and run again",
        )
    if status == "FAILED":
        reason = props.get("message") or "no reason given"
        raise JobFailed(f"import job {job_id} FAILED: {reason}",
                        hint="look at the job's FAILURE records under its output S3 URI")
    if status != "COMPLETED":
        raise ServiceError(f"import job {job_id} has an unknown status {status!r}")
    uri = str(props["outputS3Uri"])
    return uri if uri.endswith("/") else uri + "/"


async def read_manifest(s3: Any, retrier: Retrier, output_uri: str, *,
                        wait: float = 10.0) -> dict[str, Any]:
    """The job's output manifest, polling for up to ``wait`` seconds while it is missing."""
    parsed = urlparse(output_uri + MANIFEST)
    bucket, key = parsed.netloc, parsed.path.lstrip("/")

    async def get() -> bytes:
        answer = await s3.get_object(Bucket=bucket, Key=key)
        async with answer["Body"] as body:
            return bytes(await body.read())

    deadline = anyio.current_time() + wait
    while True:
        try:
            raw = await retrier.call(get, f"read s3://{bucket}/{key}")
            break
        except NotFound:
            if anyio.current_time() >= deadline:
                raise NotFound(
                    f"the import job's manifest s3://{bucket}/{key} does not exist",
                    hint="the job may still be writing its output; try again shortly",
                ) from None
            await anyio.sleep(0.5)
    try:
        return dict(json.loads(raw))
    except (ValueError, TypeError) as exc:
        raise ServiceError(f"the import job's manifest is not JSON: {exc}") from None


def image_sets_in_manifest(manifest: dict[str, Any], datastore_id: str,
                           label: str | None = None) -> list[ImageSetRef]:
    summary = manifest.get("jobSummary") or {}
    refs = []
    for item in summary.get("imageSetsSummary") or []:
        image_set_id = check_id(item.get("imageSetId"), "image set ID from the manifest")
        refs.append(ImageSetRef(datastore_id, image_set_id, label))
    return list(dict.fromkeys(refs))


async def from_job(mi: Any, s3: Any, retrier: Retrier, datastore_id: str, job_id: str,
                   label: str | None = None) -> AsyncIterator[ImageSetRef]:
    uri = await job_output_uri(mi, retrier, datastore_id, job_id)
    manifest = await read_manifest(s3, retrier, uri)
    for ref in image_sets_in_manifest(manifest, datastore_id, label):
        yield ref
