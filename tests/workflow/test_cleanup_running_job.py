"""Cleanup of a run interrupted right after StartDICOMImportJob: the job is still running."""

from __future__ import annotations

from typing import Any

from hi_async.local.data.synthetic import custom_spec, generate_series
from hi_async.workflow.cleanup import delete_datastore, delete_image_sets, wait_for_import_jobs


async def test_cleanup_waits_for_a_running_import_job_then_removes_its_image_sets(
        clients: Any, backend: Any) -> None:
    mi, s3 = clients.mi, clients.s3
    ds = backend.create_datastore("interrupted", ready=True).datastore_id
    await s3.create_bucket(Bucket="interrupted-in")
    await s3.create_bucket(Bucket="interrupted-out")
    for name, data in generate_series(custom_spec("ct", 24, 256, 256)):
        await s3.put_object(Bucket="interrupted-in", Key=f"s/{name}", Body=data)
    job = await mi.start_dicom_import_job(
        datastoreId=ds, dataAccessRoleArn="arn:aws:iam::123456789012:role/import",
        inputS3Uri="s3://interrupted-in/s/", outputS3Uri="s3://interrupted-out/o/")
    said: list[str] = []

    await wait_for_import_jobs(clients, ds, said.append)

    status = (await mi.get_dicom_import_job(datastoreId=ds, jobId=job["jobId"]))[
        "jobProperties"]["jobStatus"]
    assert status == "COMPLETED"
    # The image set the job created after the interruption is found and deleted, and
    # then the data store can go.
    assert await delete_image_sets(clients, ds, []) == 1
    assert await delete_datastore(clients, ds)
    page = await mi.list_dicom_import_jobs(datastoreId=ds, jobStatus="IN_PROGRESS")
    assert page["jobSummaries"] == [] and all("waiting for" in s for s in said)
