"""All 18 operations through aioboto3 (aiobotocore), with botocore parsing the errors."""

from __future__ import annotations

import asyncio
import gzip
import json

import pytest
from botocore.exceptions import ClientError

from .helpers import seed_image_set

ROLE = "arn:aws:iam::123456789012:role/ImportRole"


async def expect(code: str, coro) -> None:
    with pytest.raises(ClientError) as e:
        await coro
    assert e.value.response["Error"]["Code"] == code


async def test_every_operation_through_aioboto3(aio_mi, aio_s3, backend):
    mi = aio_mi
    created = await mi.create_datastore(datastoreName="aio", clientToken="aio-token-1")
    ds = created["datastoreId"]
    for _ in range(100):
        props = (await mi.get_datastore(datastoreId=ds))["datastoreProperties"]
        if props["datastoreStatus"] == "ACTIVE":
            break
        await asyncio.sleep(0.02)
    assert props["datastoreStatus"] == "ACTIVE"
    # Every page (the session's other tests add data stores too), through the paginator.
    active: set[str] = set()
    async for page in mi.get_paginator("list_datastores").paginate(
            datastoreStatus="ACTIVE", PaginationConfig={"PageSize": 50}):
        active |= {d["datastoreId"] for d in page["datastoreSummaries"]}
    assert ds in active

    await aio_s3.create_bucket(Bucket="aio-input")
    job = await mi.start_dicom_import_job(datastoreId=ds, dataAccessRoleArn=ROLE,
                                          inputS3Uri="s3://aio-input/in/",
                                          outputS3Uri="s3://aio-input/out/")
    got = await mi.get_dicom_import_job(datastoreId=ds, jobId=job["jobId"])
    assert got["jobProperties"]["jobId"] == job["jobId"]
    jobs = await mi.list_dicom_import_jobs(datastoreId=ds)
    assert job["jobId"] in {j["jobId"] for j in jobs["jobSummaries"]}

    seeded = seed_image_set(backend, ds, instances=2)
    base = {"datastoreId": ds, "imageSetId": seeded.image_set_id}
    found = await mi.search_image_sets(datastoreId=ds, searchCriteria={"filters": [
        {"operator": "EQUAL", "values": [{"DICOMPatientId": "P1"}]}]})
    assert seeded.image_set_id in {s["imageSetId"] for s in found["imageSetsMetadataSummaries"]}
    image_set = await mi.get_image_set(**base)
    assert image_set["versionId"] == "1"
    meta = await mi.get_image_set_metadata(**base)
    async with meta["imageSetMetadataBlob"] as stream:
        doc = json.loads(gzip.decompress(await stream.read()))
    assert doc["ImageSetID"] == seeded.image_set_id
    frame = await mi.get_image_frame(**base,
                                     imageFrameInformation={"imageFrameId": seeded.frame_ids[0]})
    async with frame["imageFrameBlob"] as stream:
        assert await stream.read() == seeded.frames[0].data
    assert frame["contentType"] == "image/jph"

    updated = await mi.update_image_set_metadata(
        **base, latestVersionId="1", updateImageSetMetadataUpdates={"DICOMUpdates": {
            "updatableAttributes": b'{"Study":{"DICOM":{"StudyDescription":"aio"}}}'}})
    assert updated["latestVersionId"] == "2"
    versions = await mi.list_image_set_versions(**base)
    assert len(versions["imageSetPropertiesList"]) == 2
    copied = await mi.copy_image_set(
        datastoreId=ds, sourceImageSetId=seeded.image_set_id,
        copyImageSetInformation={"sourceImageSet": {"latestVersionId": "2"}})
    copy_id = copied["destinationImageSetProperties"]["imageSetId"]
    arn = image_set["imageSetArn"]
    await mi.tag_resource(resourceArn=arn, tags={"k": "v"})
    assert (await mi.list_tags_for_resource(resourceArn=arn))["tags"] == {"k": "v"}
    await mi.untag_resource(resourceArn=arn, tagKeys=["k"])
    assert (await mi.list_tags_for_resource(resourceArn=arn))["tags"] == {}

    await expect("ConflictException", mi.delete_datastore(datastoreId=ds))
    for image_set_id in (seeded.image_set_id, copy_id):
        deleted = await mi.delete_image_set(datastoreId=ds, imageSetId=image_set_id)
        assert deleted["imageSetWorkflowStatus"] == "DELETING"
    for _ in range(300):
        job_status = (await mi.get_dicom_import_job(datastoreId=ds, jobId=job["jobId"]))
        if job_status["jobProperties"]["jobStatus"] in ("COMPLETED", "FAILED"):
            break
        await asyncio.sleep(0.05)
    # The import of an empty prefix may leave image sets only if it imported something.
    for s in (await mi.search_image_sets(datastoreId=ds))["imageSetsMetadataSummaries"]:
        await mi.delete_image_set(datastoreId=ds, imageSetId=s["imageSetId"])
    assert (await mi.delete_datastore(datastoreId=ds))["datastoreStatus"] == "DELETING"


async def test_error_codes_through_aioboto3(aio_mi, backend):
    mi = aio_mi
    await expect("ValidationException", mi.get_datastore(datastoreId="BAD"))
    await expect("ResourceNotFoundException", mi.get_datastore(datastoreId="0" * 32))
    await expect("ValidationException", mi.list_datastores(maxResults=51))
    seeded = seed_image_set(backend, instances=1)
    base = {"datastoreId": seeded.datastore_id, "imageSetId": seeded.image_set_id}
    await expect("ValidationException",
                 mi.get_image_frame(**base, imageFrameInformation={"imageFrameId": "x"}))
    await expect("ResourceNotFoundException", mi.get_image_set_metadata(
        datastoreId=seeded.datastore_id, imageSetId="0" * 32))
    await expect("ConflictException", mi.update_image_set_metadata(
        **base, latestVersionId="5", updateImageSetMetadataUpdates={"revertToVersionId": "1"}))


async def test_throttling_through_aioboto3(aio_mi, backend, local_stack):
    seeded = seed_image_set(backend, instances=1)
    local_stack.set_faults(throttle_rps=0.5)
    try:
        with pytest.raises(ClientError) as e:
            for _ in range(3):
                await aio_mi.get_image_set(datastoreId=seeded.datastore_id,
                                           imageSetId=seeded.image_set_id)
        assert e.value.response["Error"]["Code"] == "ThrottlingException"
    finally:
        local_stack.set_faults(throttle_rps=0)
