"""Start one DICOM import job per study, wait for it, and read what it produced.

The job's manifest lists the image sets; the FAILURE records say which files did not
import and why, the WARNING records which imported with a non-conformance (their
instances may have reduced support, e.g. no frames). A job can be COMPLETED with failed
files, and the manifest can appear a little after COMPLETED, so both are polled for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..aws.healthimaging import HealthImaging
from ..aws.s3 import read_json_lines
from ..errors import JobFailed, NotFound, WorkflowError

#: How long the workflow waits for a COMPLETED job's manifest to appear.
MANIFEST_WAIT_SECONDS = 120.0


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


async def _records(hi: HealthImaging, uri: str) -> list[dict[str, Any]]:
    try:
        return await read_json_lines(hi.aws, uri)
    except NotFound:
        return []


async def run_import(hi: HealthImaging, datastore_id: str, job_id: str) -> ImportOutcome:
    """Wait for ``job_id``, then read its manifest, FAILURE and WARNING records."""
    props = await hi.wait_for_import_job(datastore_id, job_id)
    if props["jobStatus"] == "FAILED":
        raise JobFailed(f"import job {job_id} failed: {props.get('message', 'no message')}",
                        hint="check the input files and the role's access to the buckets")
    manifest = await hi.job_manifest(props["outputS3Uri"], give_up_after=MANIFEST_WAIT_SECONDS)
    summary = manifest.get("jobSummary")
    if not isinstance(summary, dict):
        raise WorkflowError(f"the manifest of import job {job_id} has no jobSummary")
    ids = tuple(s["imageSetId"] for s in summary.get("imageSetsSummary", []))
    failures: list[dict[str, Any]] = []
    failure_uri = summary.get("failureOutputS3Uri")
    if failure_uri and (summary.get("numberOfFilesWithCustomerError")
                        or summary.get("numberOfFilesWithServerError")):
        failures = await _records(hi, _records_uri(failure_uri, "failure.ndjson"))
    # The manifest counts no warnings: read the file whenever the job names it.
    warnings: list[dict[str, Any]] = []
    if warning_uri := summary.get("warningsOutputS3Uri"):
        warnings = await _records(hi, _records_uri(warning_uri, "warning.ndjson"))
    return ImportOutcome(
        job_id=job_id, status=props["jobStatus"], image_set_ids=ids,
        scanned=int(summary.get("numberOfScannedFiles", 0)),
        imported=int(summary.get("numberOfImportedFiles", 0)),
        failures=tuple(failures), warnings=tuple(warnings))
