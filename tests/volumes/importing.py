"""Import what a test put under ``s3://<bucket>/in/`` into a new data store, as a user
would: create it, wait until ACTIVE, run one import job, read its manifest."""

from __future__ import annotations

import json
import time
from typing import Any

ROLE = "arn:aws:iam::123456789012:role/ImportRole"


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
