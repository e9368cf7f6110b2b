"""Every HealthImaging operation through plain boto3, success and error paths."""

from __future__ import annotations

import gzip
import json
import time
import zlib

import imagecodecs
import numpy as np
import pytest
from botocore.exceptions import ClientError

from .helpers import seed_image_set

BAD_ID = "NOT-an-id"
UNKNOWN = "0" * 32
ROLE = "arn:aws:iam::123456789012:role/ImportRole"


def code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    err = exc.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]


def latest_doc(mi, base: dict) -> dict:
    blob = mi.get_image_set_metadata(**base)["imageSetMetadataBlob"].read()
    return json.loads(gzip.decompress(blob))


def wait_status(mi, datastore_id: str, wanted: str) -> dict:
    for _ in range(200):
        props = mi.get_datastore(datastoreId=datastore_id)["datastoreProperties"]
        if props["datastoreStatus"] == wanted:
            return props
        time.sleep(0.02)
    raise AssertionError(f"data store never became {wanted}")


def test_datastore_goes_creating_active_deleting_deleted(mi):
    created = mi.create_datastore(datastoreName="life/cycle#1", tags={"team": "x"})
    assert created["datastoreStatus"] == "CREATING"
    props = wait_status(mi, created["datastoreId"], "ACTIVE")
    assert props["datastoreName"] == "life/cycle#1"
    assert props["datastoreArn"].endswith(f":datastore/{created['datastoreId']}")
    assert mi.list_tags_for_resource(resourceArn=props["datastoreArn"])["tags"] == {"team": "x"}
    deleted = mi.delete_datastore(datastoreId=created["datastoreId"])
    assert deleted["datastoreStatus"] == "DELETING"
    wait_status(mi, created["datastoreId"], "DELETED")


def test_datastore_errors(mi):
    with pytest.raises(ClientError) as e:
        mi.get_datastore(datastoreId=BAD_ID)
    assert code(e) == ("ValidationException", 400)
    with pytest.raises(ClientError) as e:
        mi.get_datastore(datastoreId=UNKNOWN)
    assert code(e) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as e:
        mi.create_datastore(datastoreName="bad name with spaces")
    assert code(e) == ("ValidationException", 400)
    with pytest.raises(ClientError) as e:
        mi.list_datastores(maxResults=51)
    assert code(e) == ("ValidationException", 400)


def test_deleting_a_datastore_with_image_sets_conflicts(mi, backend):
    seeded = seed_image_set(backend)
    with pytest.raises(ClientError) as e:
        mi.delete_datastore(datastoreId=seeded.datastore_id)
    assert code(e) == ("ConflictException", 409)


def test_list_datastores_paginates_with_opaque_tokens(mi, backend):
    for i in range(3):
        backend.create_datastore(f"page-{i}", ready=True)
    seen, token, pages = [], None, 0
    while True:
        kw = {"maxResults": 2, **({"nextToken": token} if token else {})}
        page = mi.list_datastores(**kw)
        seen += [d["datastoreId"] for d in page["datastoreSummaries"]]
        pages += 1
        token = page.get("nextToken")
        if not token:
            break
    assert len(seen) == len(set(seen)) >= 3 and pages >= 2
    # The same set as pages of the maximum size (other tests add data stores too).
    full, token = [], None
    while True:
        page = mi.list_datastores(maxResults=50, **({"nextToken": token} if token else {}))
        full += [d["datastoreId"] for d in page["datastoreSummaries"]]
        token = page.get("nextToken")
        if not token:
            break
    assert sorted(seen) == sorted(full)
    active = mi.list_datastores(datastoreStatus="ACTIVE")["datastoreSummaries"]
    assert active and all(d["datastoreStatus"] == "ACTIVE" for d in active)
    with pytest.raises(ClientError) as e:
        mi.list_datastores(nextToken="garbage")
    assert code(e) == ("ValidationException", 400)


def test_get_image_set_and_metadata_document(mi, backend):
    seeded = seed_image_set(backend, instances=2, frames=2)
    got = mi.get_image_set(datastoreId=seeded.datastore_id, imageSetId=seeded.image_set_id)
    assert (got["versionId"], got["imageSetState"], got["isPrimary"]) == ("1", "ACTIVE", True)
    assert got["imageSetArn"].endswith(f"/imageset/{seeded.image_set_id}")
    meta = mi.get_image_set_metadata(datastoreId=seeded.datastore_id,
                                     imageSetId=seeded.image_set_id)
    assert meta["contentEncoding"] == "gzip"
    doc = json.loads(gzip.decompress(meta["imageSetMetadataBlob"].read()))
    assert doc["SchemaVersion"] == "1.1" and doc["ImageSetID"] == seeded.image_set_id
    (series,) = doc["Study"]["Series"].values()
    inst = next(iter(series["Instances"].values()))
    assert inst["StoredTransferSyntaxUID"] == "1.2.840.10008.1.2.4.202"
    assert inst["ChecksumType"] == "DECOMPRESSED"
    frame = inst["ImageFrames"][0]
    assert set(frame) >= {"ID", "FrameSizeInBytes", "MinPixelValue", "MaxPixelValue",
                          "PixelDataChecksumFromBaseToFullResolution"}


def test_get_image_frame_streams_real_htj2k(mi, backend):
    seeded = seed_image_set(backend, instances=1, frames=2)
    doc = backend.metadata_doc(seeded.datastore_id, seeded.image_set_id)
    (series,) = doc["Study"]["Series"].values()
    entries = {f["ID"]: f for i in series["Instances"].values() for f in i["ImageFrames"]}
    for frame_id, stored in zip(seeded.frame_ids, seeded.frames, strict=True):
        out = mi.get_image_frame(datastoreId=seeded.datastore_id,
                                 imageSetId=seeded.image_set_id,
                                 imageFrameInformation={"imageFrameId": frame_id})
        assert out["contentType"] == "image/jph"
        data = out["imageFrameBlob"].read()
        assert data == stored.data and data[4:8] == b"jP  "
        pixels = imagecodecs.htj2k_decode(data)
        crc = zlib.crc32(pixels.astype("<i2").tobytes()) & 0xFFFFFFFF
        checks = entries[frame_id]["PixelDataChecksumFromBaseToFullResolution"]
        assert crc == checks[-1]["Checksum"]
        assert entries[frame_id]["FrameSizeInBytes"] == len(data)
        assert pixels.dtype == np.int16


def test_frame_errors(mi, backend):
    seeded = seed_image_set(backend, instances=1)
    base = {"datastoreId": seeded.datastore_id, "imageSetId": seeded.image_set_id}
    with pytest.raises(ClientError) as e:
        mi.get_image_frame(**base, imageFrameInformation={"imageFrameId": BAD_ID})
    assert code(e) == ("ValidationException", 400)
    with pytest.raises(ClientError) as e:
        mi.get_image_frame(**base, imageFrameInformation={"imageFrameId": UNKNOWN})
    assert code(e) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as e:
        mi.get_image_frame(datastoreId=seeded.datastore_id, imageSetId=UNKNOWN,
                           imageFrameInformation={"imageFrameId": seeded.frame_ids[0]})
    assert code(e) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as e:
        mi.get_image_set(**base, versionId="7")
    assert code(e) == ("ResourceNotFoundException", 404)


def test_update_metadata_makes_versions_and_checks_latest(mi, backend):
    seeded = seed_image_set(backend, instances=2)
    base = {"datastoreId": seeded.datastore_id, "imageSetId": seeded.image_set_id}
    # Study level: the Patient and Series levels of a primary image set are not updatable.
    updates = {"DICOMUpdates": {"updatableAttributes": json.dumps(
        {"SchemaVersion": 1.1, "Study": {"DICOM": {"StudyDescription": "Renamed"}}}).encode()}}
    out = mi.update_image_set_metadata(**base, latestVersionId="1",
                                       updateImageSetMetadataUpdates=updates)
    assert out["latestVersionId"] == "2"
    assert out["imageSetState"] == "LOCKED" and out["imageSetWorkflowStatus"] == "UPDATING"
    with pytest.raises(ClientError) as e:
        mi.update_image_set_metadata(**base, latestVersionId="1",
                                     updateImageSetMetadataUpdates=updates)
    assert code(e) == ("ConflictException", 409)
    doc = latest_doc(mi, base)
    assert doc["Study"]["DICOM"]["StudyDescription"] == "Renamed"
    old = mi.get_image_set_metadata(**base, versionId="1")["imageSetMetadataBlob"].read()
    assert "StudyDescription" not in json.loads(gzip.decompress(old))["Study"]["DICOM"]
    removal = {"DICOMUpdates": {"removableAttributes": json.dumps(
        {"Study": {"DICOM": {"AccessionNumber": "ACC1"}}}).encode()}}
    mi.update_image_set_metadata(**base, latestVersionId="2", updateImageSetMetadataUpdates=removal)
    doc = latest_doc(mi, base)
    assert "AccessionNumber" not in doc["Study"]["DICOM"]
    mi.update_image_set_metadata(**base, latestVersionId="3",
                                 updateImageSetMetadataUpdates={"revertToVersionId": "1"})
    versions = mi.list_image_set_versions(**base)["imageSetPropertiesList"]
    assert [v["versionId"] for v in versions] == ["4", "3", "2", "1"]
    assert all("ImageSetWorkflowStatus" in v for v in versions)
    assert versions[0]["ImageSetWorkflowStatus"] == "UPDATED"
    page = mi.list_image_set_versions(**base, maxResults=3)
    assert len(page["imageSetPropertiesList"]) == 3 and page["nextToken"]


def test_copy_to_new_and_existing_image_sets(mi, backend):
    seeded = seed_image_set(backend, instances=2)
    base = {"datastoreId": seeded.datastore_id}
    out = mi.copy_image_set(**base, sourceImageSetId=seeded.image_set_id,
                            copyImageSetInformation={"sourceImageSet": {"latestVersionId": "1"}})
    dest = out["destinationImageSetProperties"]
    assert dest["imageSetId"] != seeded.image_set_id and dest["latestVersionId"] == "1"
    source = out["sourceImageSetProperties"]  # read-only while the copy runs, as on AWS
    assert (source["imageSetState"], source["imageSetWorkflowStatus"]) == (
        "LOCKED", "COPYING_WITH_READ_ONLY_ACCESS")
    after = mi.get_image_set(**base, imageSetId=seeded.image_set_id)
    assert after["imageSetState"] == "ACTIVE"
    got = mi.get_image_set(**base, imageSetId=dest["imageSetId"])
    assert got["imageSetWorkflowStatus"] == "COPIED" and got["isPrimary"] is False
    frame = mi.get_image_frame(**base, imageSetId=dest["imageSetId"],
                               imageFrameInformation={"imageFrameId": seeded.frame_ids[0]})
    assert frame["imageFrameBlob"].read() == seeded.frames[0].data
    other = seed_image_set(backend, seeded.datastore_id, instances=1)
    with pytest.raises(ClientError) as e:
        mi.copy_image_set(**base, sourceImageSetId=other.image_set_id,
                          copyImageSetInformation={
                              "sourceImageSet": {"latestVersionId": "1"},
                              "destinationImageSet": {"imageSetId": dest["imageSetId"],
                                                      "latestVersionId": "9"}})
    assert code(e) == ("ConflictException", 409)
    merged = mi.copy_image_set(**base, sourceImageSetId=other.image_set_id, force=True,
                               copyImageSetInformation={
                                   "sourceImageSet": {"latestVersionId": "1"},
                                   "destinationImageSet": {"imageSetId": dest["imageSetId"],
                                                           "latestVersionId": "1"}})
    assert merged["destinationImageSetProperties"]["latestVersionId"] == "2"


def test_delete_image_set(mi, backend):
    seeded = seed_image_set(backend, instances=1)
    base = {"datastoreId": seeded.datastore_id, "imageSetId": seeded.image_set_id}
    out = mi.delete_image_set(**base)
    assert out["imageSetWorkflowStatus"] == "DELETING"
    assert mi.get_image_set(**base)["imageSetState"] == "DELETED"
    with pytest.raises(ClientError) as e:
        mi.get_image_frame(**base, imageFrameInformation={"imageFrameId": seeded.frame_ids[0]})
    assert code(e) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as e:
        mi.delete_image_set(**base)
    assert code(e) == ("ConflictException", 409)


def test_search_filters_and_sorts(mi, backend):
    ds = backend.create_datastore("search", ready=True).datastore_id
    a = seed_image_set(backend, ds, instances=1, patient="SA", accession="A1",
                       study_date="20200101")
    b = seed_image_set(backend, ds, instances=1, patient="SB", accession="B1",
                       study_date="20220101")
    def search(criteria, **kw):
        out = mi.search_image_sets(datastoreId=ds, searchCriteria=criteria, **kw)
        return [s["imageSetId"] for s in out["imageSetsMetadataSummaries"]]
    assert search({"filters": [{"operator": "EQUAL", "values": [{"DICOMPatientId": "SB"}]}]}) \
        == [b.image_set_id]
    assert search({"filters": [{"operator": "EQUAL",
                                "values": [{"DICOMAccessionNumber": "A1"}]}]}) == [a.image_set_id]
    between = {"operator": "BETWEEN", "values": [
        {"DICOMStudyDateAndTime": {"DICOMStudyDate": "20190101"}},
        {"DICOMStudyDateAndTime": {"DICOMStudyDate": "20210101"}}]}
    assert search({"filters": [between]}) == [a.image_set_id]
    sort = {"sortField": "DICOMStudyDateAndTime", "sortOrder": "DESC"}
    assert search({"sort": sort}) == [b.image_set_id, a.image_set_id]
    assert search({"sort": {**sort, "sortOrder": "ASC"}}) == [a.image_set_id, b.image_set_id]
    assert set(search({"filters": [{"operator": "EQUAL", "values": [{"isPrimary": True}]}]})) \
        == {a.image_set_id, b.image_set_id}
    page = mi.search_image_sets(datastoreId=ds, maxResults=1)
    assert len(page["imageSetsMetadataSummaries"]) == 1 and page["nextToken"]
    summary = page["imageSetsMetadataSummaries"][0]
    assert summary["version"] == 1 and summary["DICOMTags"]["DICOMSeriesNumber"] == 3
    with pytest.raises(ClientError) as e:
        search({"filters": [{"operator": "BETWEEN", "values": [{"DICOMPatientId": "SA"},
                                                               {"DICOMPatientId": "SB"}]}]})
    assert code(e) == ("ValidationException", 400)


def test_import_job_validation_and_listing(mi, backend, s3):
    ds = backend.create_datastore("jobs", ready=True).datastore_id
    s3.create_bucket(Bucket="jobs-in")
    args = {"datastoreId": ds, "dataAccessRoleArn": ROLE,
            "inputS3Uri": "s3://jobs-in/empty/", "outputS3Uri": "s3://jobs-in/out/"}
    started = mi.start_dicom_import_job(**args)
    assert started["jobStatus"] == "SUBMITTED" and len(started["jobId"]) == 32
    props = mi.get_dicom_import_job(datastoreId=ds, jobId=started["jobId"])["jobProperties"]
    assert props["outputS3Uri"] == f"s3://jobs-in/out/{ds}-DicomImport-{started['jobId']}/"
    assert props["jobName"] and props["dataAccessRoleArn"] == ROLE
    listed = mi.list_dicom_import_jobs(datastoreId=ds)["jobSummaries"]
    assert [j["jobId"] for j in listed] == [started["jobId"]]
    for _ in range(300):
        status = mi.get_dicom_import_job(datastoreId=ds, jobId=started["jobId"])
        if status["jobProperties"]["jobStatus"] in ("COMPLETED", "FAILED"):
            break
        time.sleep(0.05)
    assert status["jobProperties"]["jobStatus"] in ("COMPLETED", "FAILED")
    assert status["jobProperties"]["endedAt"]
    for bad in ({"dataAccessRoleArn": "arn:aws:iam::12:role/x-role-name-long"},
                {"inputS3Uri": "https://not-s3/"}, {"datastoreId": BAD_ID}):
        with pytest.raises(ClientError) as e:
            mi.start_dicom_import_job(**{**args, **bad})
        assert code(e) == ("ValidationException", 400)
    with pytest.raises(ClientError) as e:
        mi.start_dicom_import_job(**{**args, "datastoreId": UNKNOWN})
    assert code(e) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as e:
        mi.get_dicom_import_job(datastoreId=ds, jobId="f" * 32)
    assert code(e) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as e:
        mi.list_dicom_import_jobs(datastoreId=ds, maxResults=99)
    assert code(e) == ("ValidationException", 400)


def test_tags_on_datastore_and_image_set(mi, backend):
    seeded = seed_image_set(backend, instances=1)
    arn = mi.get_image_set(datastoreId=seeded.datastore_id,
                           imageSetId=seeded.image_set_id)["imageSetArn"]
    mi.tag_resource(resourceArn=arn, tags={"a": "1", "b": "2"})
    mi.untag_resource(resourceArn=arn, tagKeys=["a"])
    assert mi.list_tags_for_resource(resourceArn=arn)["tags"] == {"b": "2"}
    with pytest.raises(ClientError) as e:
        mi.tag_resource(resourceArn="arn:aws:s3:::bucket", tags={"a": "1"})
    assert code(e) == ("ValidationException", 400)
    missing = arn.rsplit("/", 1)[0] + "/" + UNKNOWN
    with pytest.raises(ClientError) as e:
        mi.list_tags_for_resource(resourceArn=missing)
    assert code(e) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as e:
        mi.tag_resource(resourceArn=arn, tags={"aws:reserved": "1"})
    assert code(e) == ("ValidationException", 400)


def test_datastore_can_be_deleted_right_after_its_image_sets_without_reading_them(mi, backend):
    seeded = seed_image_set(backend, instances=1)
    second = seed_image_set(backend, seeded.datastore_id, instances=1)
    for image_set_id in (seeded.image_set_id, second.image_set_id):
        mi.delete_image_set(datastoreId=seeded.datastore_id, imageSetId=image_set_id)
    out = mi.delete_datastore(datastoreId=seeded.datastore_id)
    assert out["datastoreStatus"] == "DELETING"


def test_study_date_filters_without_a_time_cover_the_whole_day(mi, backend):
    ds = backend.create_datastore("by-day", ready=True).datastore_id
    day = seed_image_set(backend, ds, instances=1, study_date="20240102")  # at 10:15:00
    seed_image_set(backend, ds, instances=1, study_date="20240103")

    def search(*values):
        op = "EQUAL" if len(values) == 1 else "BETWEEN"
        out = mi.search_image_sets(datastoreId=ds, searchCriteria={"filters": [
            {"operator": op, "values": [{"DICOMStudyDateAndTime": v} for v in values]}]})
        return [s["imageSetId"] for s in out["imageSetsMetadataSummaries"]]

    date = {"DICOMStudyDate": "20240102"}
    assert search(date) == [day.image_set_id]
    assert search(date, date) == [day.image_set_id]
    assert search({"DICOMStudyDate": "20240101"}, date) == [day.image_set_id]
    assert search({**date, "DICOMStudyTime": "101500"}) == [day.image_set_id]
    assert search({**date, "DICOMStudyTime": "1016"}, date) == []


def test_an_empty_metadata_update_is_refused(mi, backend):
    seeded = seed_image_set(backend, instances=1)
    base = {"datastoreId": seeded.datastore_id, "imageSetId": seeded.image_set_id,
            "latestVersionId": "1"}
    with pytest.raises(ClientError) as e:
        mi.update_image_set_metadata(**base, updateImageSetMetadataUpdates={"DICOMUpdates": {}})
    assert code(e) == ("ValidationException", 400)
    versions = mi.list_image_set_versions(datastoreId=seeded.datastore_id,
                                          imageSetId=seeded.image_set_id)
    assert len(versions["imageSetPropertiesList"]) == 1  # no new version was made
