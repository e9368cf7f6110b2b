"""Start one DICOM import job per study, wait for it, and read what it produced.

The job's manifest lists the image sets; the FAILURE records say which files did not
import and why, the WARNING records which imported with a non-conformance (their
instances may have reduced support, e.g. no frames). A job can be COMPLETED with failed
files, and the manifest can appear a little after COMPLETED, so both are polled for.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

import anyio

from ..errors import JobFailed, NotFound, WorkflowError
from .clients import call


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    """The facts a study's report needs from its import job."""

    job_id: str
    status: str
    image_set_ids: tuple[str, ...]
    scanned: int
    imported: int
    failures: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    warnings: tuple[dict[str, Any], ...] = field(default_factory=tuple)


def _records_uri(folder_or_file: str, name: str) -> str:
    """``FAILURE/`` → ``FAILURE/failure.ndjson``; a URI of the file itself stays as is."""
    if folder_or_file.endswith(".ndjson"):
        return folder_or_file
    return folder_or_file.rstrip("/") + "/" + name


def split_s3_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


async def start_import(mi: Any, datastore_id: str, role_arn: str, input_uri: str,
                       output_uri: str, job_name: str) -> str:
    """StartDICOMImportJob; returns the job ID."""
    answer = await call(f"start the import of {input_uri}", mi.start_dicom_import_job(
        jobName=job_name[:64], datastoreId=datastore_id, dataAccessRoleArn=role_arn,
        inputS3Uri=input_uri, outputS3Uri=output_uri))
    return str(answer["jobId"])


async def wait_for_job(mi: Any, datastore_id: str, job_id: str, *, give_up_after: float = 3600.0,
                       first_delay: float = 0.1, max_delay: float = 10.0) -> dict[str, Any]:
    """Poll GetDICOMImportJob with jittered exponential backoff until it is finished."""
    delay = first_delay
    with anyio.fail_after(give_up_after):
        while True:
            answer = await call(f"read import job {job_id}", mi.get_dicom_import_job(
                datastoreId=datastore_id, jobId=job_id))
            props = answer["jobProperties"]
            if props["jobStatus"] in ("COMPLETED", "FAILED"):
                return dict(props)
            await anyio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 1.6, max_delay)


async def _get_json_lines(s3: Any, uri: str) -> list[dict[str, Any]]:
    bucket, key = split_s3_uri(uri)
    try:
        body = await call(f"read {uri}", s3.get_object(Bucket=bucket, Key=key))
    except NotFound:
        return []
    async with body["Body"] as stream:
        text = (await stream.read()).decode("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


async def read_manifest(s3: Any, job_output_uri: str, *, give_up_after: float = 120.0
                        ) -> dict[str, Any]:
    """The job-output-manifest.json under the job's output folder (polled until present)."""
    base = job_output_uri if job_output_uri.endswith("/") else job_output_uri + "/"
    bucket, key = split_s3_uri(base + "job-output-manifest.json")
    delay = 0.05
    with anyio.fail_after(give_up_after):
        while True:
            try:
                answer = await call(f"read s3://{bucket}/{key}",
                                    s3.get_object(Bucket=bucket, Key=key))
            except NotFound:
                await anyio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            async with answer["Body"] as stream:
                return dict(json.loads(await stream.read()))


async def run_import(mi: Any, s3: Any, datastore_id: str, job_id: str) -> ImportOutcome:
    """Wait for ``job_id``, then read its manifest, FAILURE and WARNING records."""
    props = await wait_for_job(mi, datastore_id, job_id)
    if props["jobStatus"] == "FAILED":
        raise JobFailed(f"import job {job_id} failed: {props.get('message', 'no message')}",
                        hint="check the input files and the role's access to the buckets")
    manifest = await read_manifest(s3, props["outputS3Uri"])
    summary = manifest.get("jobSummary")
    if not isinstance(summary, dict):
        raise WorkflowError(f"the manifest of import job {job_id} has no jobSummary")
    ids = tuple(s["imageSetId"] for s in summary.get("imageSetsSummary", []))
    failures: list[dict[str, Any]] = []
    failure_uri = summary.get("failureOutputS3Uri")
    if failure_uri and (summary.get("numberOfFilesWithCustomerError")
                        or summary.get("numberOfFilesWithServerError")):
        failures = await _get_json_lines(s3, _records_uri(failure_uri, "failure.ndjson"))
    # The manifest counts no warnings: read the file whenever the job names it.
    warnings: list[dict[str, Any]] = []
    if warning_uri := summary.get("warningsOutputS3Uri"):
        warnings = await _get_json_lines(s3, _records_uri(warning_uri, "warning.ndjson"))
    return ImportOutcome(
        job_id=job_id, status=props["jobStatus"], image_set_ids=ids,
        scanned=int(summary.get("numberOfScannedFiles", 0)),
        imported=int(summary.get("numberOfImportedFiles", 0)),
        failures=tuple(failures), warnings=tuple(warnings))
