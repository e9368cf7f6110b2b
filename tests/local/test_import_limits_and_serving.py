"""Job-level limits of import jobs, and frames served while an import runs, over HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from hi_async.local.aws.s3_access import MotoS3
from hi_async.local.data.synthetic import custom_spec, generate_series
from hi_async.local.dicom_import.limits import MAX_FILES
from hi_async.local.stack import LocalStack
from tests.local.helpers import seed_image_set
from tests.local.import_support.jobs import (
    delete_datastore,
    frame,
    manifest,
    new_bucket,
    run_job,
    start_job,
    upload,
    wait_active,
    wait_job,
)


@pytest.fixture(scope="module")
def datastore_id(mi: Any) -> Iterator[str]:
    ds_id = str(mi.create_datastore(datastoreName="limits")["datastoreId"])
    wait_active(mi, ds_id)
    yield ds_id
    delete_datastore(mi, ds_id)


def test_more_than_5000_files_fail_the_job_with_a_clear_message(
        local_stack: LocalStack, s3: Any, mi: Any, datastore_id: str) -> None:
    bucket = new_bucket(s3, "many")
    # 5001 tiny objects straight into moto's in-process S3 (the same objects any S3
    # client of the stack sees): over HTTP this alone would take most of a minute.
    store = MotoS3(local_stack.config.account_id)
    for i in range(MAX_FILES + 1):
        store.write(bucket, f"in/{i // 1000:02d}/{i:05d}.dcm", b"not DICOM")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="in/", MaxKeys=1)
    assert listed["KeyCount"] == 1 and listed["IsTruncated"]
    job = run_job(mi, datastore_id, f"s3://{bucket}/in/", f"s3://{bucket}/out/")
    assert job["jobStatus"] == "FAILED"
    assert "5001 files" in job["message"] and "at most 5000" in job["message"]
    assert "split the input" in job["message"]


def test_exactly_5000_files_are_not_refused(local_stack: LocalStack, s3: Any, mi: Any,
                                            datastore_id: str) -> None:
    bucket = new_bucket(s3, "limit")
    store = MotoS3(local_stack.config.account_id)
    for i in range(MAX_FILES):
        store.write(bucket, f"in/{i:05d}.txt", b"x")
    job = run_job(mi, datastore_id, f"s3://{bucket}/in/", f"s3://{bucket}/out/")
    # Every file fails on its own (not DICOM); the job itself completes.
    assert job["jobStatus"] == "COMPLETED", job.get("message")
    summary = manifest(s3, job)
    assert summary["numberOfScannedFiles"] == MAX_FILES
    assert summary["numberOfFilesWithCustomerError"] == MAX_FILES


def test_frames_are_served_while_an_import_runs(backend: Any, s3: Any, mi: Any,
                                                datastore_id: str) -> None:
    stored = seed_image_set(backend, datastore_id, instances=50, frames=4)
    assert len(stored.frame_ids) == 200
    bucket = new_bucket(s3, "busy")
    count = upload(s3, bucket, "in/",
                   generate_series(custom_spec("ct", 150, 256, 256, folder="busy-ct")))
    job_id = start_job(mi, datastore_id, f"s3://{bucket}/in/", f"s3://{bucket}/out/")

    answered: set[int] = set()
    during_import = 0
    statuses: list[str] = []

    def fetch_next(props: dict[str, Any]) -> None:
        nonlocal during_import
        index = len(statuses) % len(stored.frame_ids)
        data, content_type = frame(mi, datastore_id, stored.image_set_id,
                                   stored.frame_ids[index])
        after = mi.get_dicom_import_job(datastoreId=datastore_id, jobId=job_id)[
            "jobProperties"]["jobStatus"]
        assert (data, content_type) == (stored.frames[index].data, "image/jph")
        answered.add(index)
        statuses.append(after)
        if props["jobStatus"] == after == "IN_PROGRESS":
            during_import += 1

    started = time.monotonic()
    job = wait_job(mi, datastore_id, job_id, while_running=fetch_next)
    print(f"import of {count} instances: {time.monotonic() - started:.2f} s, "
          f"{len(statuses)} frames fetched meanwhile, {during_import} inside IN_PROGRESS")
    for index in range(len(stored.frame_ids)):
        if index not in answered:  # the job ended first: the rest are fetched after it
            data, _ = frame(mi, datastore_id, stored.image_set_id, stored.frame_ids[index])
            assert data == stored.frames[index].data
            answered.add(index)
    assert job["jobStatus"] == "COMPLETED"
    assert manifest(s3, job)["numberOfImportedFiles"] == count
    assert during_import > 0, f"no frame was answered while the job was IN_PROGRESS: {statuses}"
    assert len(answered) == 200


def test_input_over_the_byte_limit_fails_the_job_with_a_clear_message(
        make_client: Any) -> None:
    # The service's 10 GB limit, lowered through the stack's documented setting
    # (--import-max-bytes) so that two small files are over it.
    with LocalStack(import_max_bytes=100_000, datastore_delay=0.0) as stack:
        s3 = make_client("s3", url=stack.url)
        mi = make_client("medical-imaging", url=stack.url)
        ds_id = mi.create_datastore(datastoreName="bytes")["datastoreId"]
        wait_active(mi, ds_id)
        bucket = new_bucket(s3, "bytes")
        files = list(generate_series(custom_spec("ct", 2, 256, 256)))  # 2 x 128 KiB+
        upload(s3, bucket, "in/", files)
        job = run_job(mi, ds_id, f"s3://{bucket}/in/", f"s3://{bucket}/out/")
    assert job["jobStatus"] == "FAILED"
    assert "at most" in job["message"] and "split the input" in job["message"]
