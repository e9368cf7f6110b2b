"""UpdateImageSetMetadata's rules over HTTP (force, primary image sets, removals), and the
``local serve`` flags for the state delays."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import time
import uuid
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from hi_async.local.data.synthetic import custom_spec, generate_series
from hi_async.local.stack import LocalStack

from .helpers import Seeded, seed_image_set

ROLE = "arn:aws:iam::123456789012:role/ImportRole"


# -- helpers -----------------------------------------------------------------------------
def _update(mi: Any, ids: dict[str, str], latest: str, *, updatable: dict | None = None,
            removable: dict | None = None, force: bool = False) -> dict[str, Any]:
    dicom = {}
    if updatable is not None:
        dicom["updatableAttributes"] = json.dumps({"SchemaVersion": 1.1, **updatable}).encode()
    if removable is not None:
        dicom["removableAttributes"] = json.dumps({"SchemaVersion": 1.1, **removable}).encode()
    return mi.update_image_set_metadata(**ids, latestVersionId=latest, force=force,
                                        updateImageSetMetadataUpdates={"DICOMUpdates": dicom})


def _refused(mi: Any, ids: dict[str, str], latest: str, **kw: Any) -> str:
    """The ValidationException's message; the refused update must leave no new version."""
    with pytest.raises(ClientError) as e:
        _update(mi, ids, latest, **kw)
    err = e.value.response
    assert (err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]) == (
        "ValidationException", 400)
    versions = mi.list_image_set_versions(**ids)["imageSetPropertiesList"]
    assert versions[0]["versionId"] == latest
    return err["Error"]["Message"]


def _doc(mi: Any, ids: dict[str, str], version: str | None = None) -> dict[str, Any]:
    extra = {"versionId": version} if version else {}
    blob = mi.get_image_set_metadata(**ids, **extra)["imageSetMetadataBlob"].read()
    return json.loads(gzip.decompress(blob))


def _ids(seeded: Seeded, image_set_id: str | None = None) -> dict[str, str]:
    return {"datastoreId": seeded.datastore_id,
            "imageSetId": image_set_id or seeded.image_set_id}


def _non_primary_copy(mi: Any, seeded: Seeded) -> dict[str, str]:
    """A copy of the seeded image set into a new one, which is not primary."""
    out = mi.copy_image_set(datastoreId=seeded.datastore_id,
                            sourceImageSetId=seeded.image_set_id,
                            copyImageSetInformation={"sourceImageSet": {"latestVersionId": "1"}})
    ids = _ids(seeded, out["destinationImageSetProperties"]["imageSetId"])
    assert mi.get_image_set(**ids)["isPrimary"] is False
    return ids


def _only_series(doc: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    (uid, series), = doc["Study"]["Series"].items()
    return uid, series


# -- force: UIDs and StudyID -------------------------------------------------------------
def test_a_series_uid_change_needs_force(mi: Any, backend: Any) -> None:
    ids = _non_primary_copy(mi, seed_image_set(backend, instances=1))
    old_uid, _ = _only_series(_doc(mi, ids))
    change = {"Study": {"Series": {old_uid: {"DICOM": {"SeriesInstanceUID": "1.2.999.1"}}}}}

    message = _refused(mi, ids, "1", updatable=change)
    assert "SeriesInstanceUID needs force=true" in message

    out = _update(mi, ids, "1", updatable=change, force=True)
    assert out["latestVersionId"] == "2"
    uid, series = _only_series(_doc(mi, ids))
    assert uid == "1.2.999.1" and series["DICOM"]["SeriesInstanceUID"] == "1.2.999.1"
    assert mi.get_image_set(**ids)["overrides"] == {"forced": True}
    assert _only_series(_doc(mi, ids, "1"))[0] == old_uid


def test_study_uid_and_study_id_need_force(mi: Any, backend: Any) -> None:
    ids = _non_primary_copy(mi, seed_image_set(backend, instances=1))
    for attr, value in (("StudyInstanceUID", "1.2.999.2"), ("StudyID", "S2")):
        latest = mi.get_image_set(**ids)["versionId"]
        change = {"Study": {"DICOM": {attr: value}}}
        assert f"Study.DICOM.{attr} needs force=true" in _refused(mi, ids, latest,
                                                                  updatable=change)
        _update(mi, ids, latest, updatable=change, force=True)
        assert _doc(mi, ids)["Study"]["DICOM"][attr] == value


def test_a_primary_image_set_keeps_its_uids_even_with_force(mi: Any, backend: Any) -> None:
    seeded = seed_image_set(backend, instances=1)
    ids = _ids(seeded)
    assert mi.get_image_set(**ids)["isPrimary"] is True
    uid, series = _only_series(_doc(mi, ids))
    sop = next(iter(series["Instances"]))
    change = {"Study": {"Series": {uid: {"Instances": {sop: {
        "DICOM": {"SOPInstanceUID": "1.2.999.3"}}}}}}}
    message = _refused(mi, ids, "1", updatable=change, force=True)
    assert "primary image set" in message and "even with force=true" in message
    # StudyID is not among the UIDs a primary image set keeps: force still changes it.
    _update(mi, ids, "1", updatable={"Study": {"DICOM": {"StudyID": "S9"}}}, force=True)
    assert _doc(mi, ids)["Study"]["DICOM"]["StudyID"] == "S9"


def test_a_primary_image_set_refuses_patient_level_changes(mi: Any, backend: Any) -> None:
    ids = _ids(seed_image_set(backend, instances=1))
    message = _refused(mi, ids, "1", updatable={"Patient": {"DICOM": {"PatientName": "X^Y"}}},
                       force=True)
    assert "Patient.DICOM.PatientName" in message and "primary image set" in message
    _update(mi, ids, "1", updatable={"Study": {"DICOM": {"StudyDescription": "ok"}}})
    assert _doc(mi, ids)["Study"]["DICOM"]["StudyDescription"] == "ok"


# -- force: private data elements --------------------------------------------------------
def test_an_instance_private_element_needs_force_to_add_and_remove(mi: Any,
                                                                   backend: Any) -> None:
    ids = _non_primary_copy(mi, seed_image_set(backend, instances=1))
    uid, series = _only_series(_doc(mi, ids))
    sop = next(iter(series["Instances"]))

    def at_instance(member: dict) -> dict:
        return {"Study": {"Series": {uid: {"Instances": {sop: member}}}}}

    added = at_instance({"DICOM": {"00091001": "GE_GENESIS"}, "DICOMVRs": {"00091001": "LO"}})
    assert "private data element" in _refused(mi, ids, "1", updatable=added)
    _update(mi, ids, "1", updatable=added, force=True)
    entry = _doc(mi, ids)["Study"]["Series"][uid]["Instances"][sop]
    assert entry["DICOM"]["00091001"] == "GE_GENESIS" and entry["DICOMVRs"]["00091001"] == "LO"

    removed = at_instance({"DICOM": {"00091001": "GE_GENESIS"}})
    assert "needs force=true" in _refused(mi, ids, "2", removable=removed)
    _update(mi, ids, "2", removable=removed, force=True)
    assert "00091001" not in _doc(mi, ids)["Study"]["Series"][uid]["Instances"][sop]["DICOM"]


def test_a_private_element_outside_an_instance_is_refused_even_with_force(
        mi: Any, backend: Any) -> None:
    ids = _non_primary_copy(mi, seed_image_set(backend, instances=1))
    message = _refused(mi, ids, "1", updatable={"Study": {"DICOM": {"00091001": "x"}}},
                       force=True)
    assert "only at the instance level" in message


# -- removableAttributes -----------------------------------------------------------------
def test_removal_needs_the_current_value(mi: Any, backend: Any) -> None:
    ids = _ids(seed_image_set(backend, instances=1, accession="ACC7"))
    wrong = {"Study": {"DICOM": {"AccessionNumber": "ACC8"}}}
    message = _refused(mi, ids, "1", removable=wrong)
    assert "'ACC7', not 'ACC8'" in message
    assert _doc(mi, ids)["Study"]["DICOM"]["AccessionNumber"] == "ACC7"

    _update(mi, ids, "1", removable={"Study": {"DICOM": {"AccessionNumber": "ACC7"}}})
    assert "AccessionNumber" not in _doc(mi, ids)["Study"]["DICOM"]


def test_removing_an_attribute_that_is_not_there_is_refused(mi: Any, backend: Any) -> None:
    ids = _ids(seed_image_set(backend, instances=1))
    message = _refused(mi, ids, "1", removable={"Study": {"DICOM": {"StudyComments": "x"}}})
    assert "has no attribute StudyComments" in message


def test_removing_an_instance_needs_force_and_keeps_older_versions(mi: Any,
                                                                   backend: Any) -> None:
    ids = _ids(seed_image_set(backend, instances=2))
    uid, series = _only_series(_doc(mi, ids))
    gone, kept = sorted(series["Instances"])
    removal = {"Study": {"Series": {uid: {"Instances": {gone: {}}}}}}
    assert "needs force=true" in _refused(mi, ids, "1", removable=removal)

    _update(mi, ids, "1", removable=removal, force=True)
    assert sorted(_only_series(_doc(mi, ids))[1]["Instances"]) == [kept]
    assert sorted(_only_series(_doc(mi, ids, "1"))[1]["Instances"]) == [gone, kept]


# -- what an update may name -------------------------------------------------------------
def test_an_update_cannot_add_a_series(mi: Any, backend: Any) -> None:
    ids = _ids(seed_image_set(backend, instances=1))
    message = _refused(mi, ids, "1", updatable={"Study": {"Series": {"1.2.999.4": {
        "DICOM": {"Modality": "MR"}}}}})
    assert "has no series 1.2.999.4" in message


def test_generated_attributes_are_not_updatable(mi: Any, backend: Any) -> None:
    ids = _non_primary_copy(mi, seed_image_set(backend, instances=1))
    uid, series = _only_series(_doc(mi, ids))
    sop = next(iter(series["Instances"]))
    message = _refused(mi, ids, "1", force=True, updatable={"Study": {"Series": {uid: {
        "Instances": {sop: {"ImageFrames": []}}}}}})
    assert "cannot hold 'ImageFrames'" in message
    assert "cannot hold 'DatastoreID'" in _refused(mi, ids, "1",
                                                   updatable={"DatastoreID": "0" * 32})


def test_a_multi_valued_update_needs_force(mi: Any, backend: Any) -> None:
    ids = _ids(seed_image_set(backend, instances=1))
    change = {"Study": {"DICOM": {"ModalitiesInStudy": ["CT", "SEG"]}}}
    assert "multi-valued" in _refused(mi, ids, "1", updatable=change)
    _update(mi, ids, "1", updatable=change, force=True)
    assert _doc(mi, ids)["Study"]["DICOM"]["ModalitiesInStudy"] == ["CT", "SEG"]


def test_an_attribute_document_over_10000_bytes_is_refused(mi: Any, backend: Any) -> None:
    ids = _ids(seed_image_set(backend, instances=1))
    message = _refused(mi, ids, "1",
                       updatable={"Study": {"DICOM": {"StudyDescription": "x" * 10_000}}})
    assert "at most 10000" in message


# -- local serve: state delays -----------------------------------------------------------
def _client(url: str, service: str) -> Any:
    return boto3.client(service, endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=Config(inject_host_prefix=False,
                                      retries={"mode": "standard", "total_max_attempts": 1}))


def _import_one_instance(url: str, datastore_id: str) -> str:
    """A real one-instance CT series imported through S3; its image set ID."""
    s3, mi = _client(url, "s3"), _client(url, "medical-imaging")
    bucket = f"delay-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    for name, data in generate_series(custom_spec("ct", 1, 64, 64)):
        s3.put_object(Bucket=bucket, Key=f"in/{name}", Body=data)
    job = mi.start_dicom_import_job(datastoreId=datastore_id, dataAccessRoleArn=ROLE,
                                    inputS3Uri=f"s3://{bucket}/in/",
                                    outputS3Uri=f"s3://{bucket}/out/")
    for _ in range(1200):
        props = mi.get_dicom_import_job(datastoreId=datastore_id,
                                        jobId=job["jobId"])["jobProperties"]
        if props["jobStatus"] in ("COMPLETED", "FAILED"):
            break
        time.sleep(0.05)
    assert props["jobStatus"] == "COMPLETED", props
    found = mi.search_image_sets(datastoreId=datastore_id)["imageSetsMetadataSummaries"]
    assert len(found) == 1
    return found[0]["imageSetId"]


def test_local_serve_lock_delay_keeps_an_updated_image_set_locked() -> None:
    lock_delay = 1.0
    with LocalStack(mode="process", datastore_delay=0.0, lock_delay=lock_delay) as stack:
        mi = _client(stack.url, "medical-imaging")
        created = mi.create_datastore(datastoreName="delays")
        assert created["datastoreStatus"] == "ACTIVE"  # --datastore-delay 0 reached it
        ids = {"datastoreId": created["datastoreId"],
               "imageSetId": _import_one_instance(stack.url, created["datastoreId"])}
        started = time.monotonic()
        out = mi.update_image_set_metadata(
            **ids, latestVersionId="1", updateImageSetMetadataUpdates={"DICOMUpdates": {
                "updatableAttributes": b'{"Study":{"DICOM":{"StudyDescription":"later"}}}'}})
        assert (out["imageSetState"], out["imageSetWorkflowStatus"]) == ("LOCKED", "UPDATING")
        assert mi.get_image_set(**ids)["imageSetState"] == "LOCKED"
        with pytest.raises(ClientError) as e:
            mi.delete_image_set(**ids)
        assert e.value.response["Error"]["Code"] == "ConflictException"
        for _ in range(600):
            props = mi.get_image_set(**ids)
            if props["imageSetState"] != "LOCKED":
                break
            time.sleep(0.05)
        assert (props["imageSetState"], props["imageSetWorkflowStatus"]) == ("ACTIVE",
                                                                             "UPDATED")
        assert time.monotonic() - started >= lock_delay


@pytest.mark.parametrize(("flag", "value", "expected"), [
    ("--lock-delay", "-0.5", "--lock-delay must be a finite number of seconds, 0 or more"),
    ("--datastore-delay", "nan", "--datastore-delay must be a finite number of seconds"),
    ("--lock-delay", "soon", "invalid float value: 'soon'"),
])
def test_local_serve_refuses_a_bad_delay(flag: str, value: str, expected: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "hi_async", "local", "serve", "--port", "0",
                           flag, value], capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 2
    assert expected in proc.stderr
    assert proc.stdout == ""  # it never announced a URL


def test_local_stack_refuses_a_negative_delay() -> None:
    with pytest.raises(ValueError, match="lock_delay must be a finite number of seconds"):
        LocalStack(lock_delay=-1)
