"""The backend's import grouping rules, called directly (no HTTP)."""

from __future__ import annotations

import pytest

from hi_async.local.healthimaging.apierrors import ConflictException, ValidationException
from hi_async.local.healthimaging.backend import Backend
from hi_async.local.healthimaging.pagination import paginate

from .helpers import instance


@pytest.fixture
def fresh(tmp_path):
    backend = Backend("123456789012", "us-east-1", tmp_path, datastore_delay=0.0)
    yield backend, backend.create_datastore("rules", ready=True).datastore_id
    backend.close()


def test_one_series_makes_one_primary_image_set(fresh):
    backend, ds = fresh
    results = backend.add_instances(ds, [instance("9.1", "9.1.1"), instance("9.1", "9.1.2")],
                                    job_id="j1")
    assert len({r.image_set_id for r in results}) == 1
    assert all(r.is_primary and r.image_set_version == 1 for r in results)


def test_a_later_import_merges_and_bumps_the_version(fresh):
    backend, ds = fresh
    first = backend.add_instances(ds, [instance("9.2", "9.2.1")], job_id="j1")[0]
    second = backend.add_instances(ds, [instance("9.2", "9.2.2")], job_id="j2")[0]
    assert second.image_set_id == first.image_set_id and second.image_set_version == 2
    doc = backend.metadata_doc(ds, first.image_set_id)
    assert set(doc["Study"]["Series"]["9.2"]["Instances"]) == {"9.2.1", "9.2.2"}


def test_reimporting_an_instance_overwrites_it(fresh):
    backend, ds = fresh
    first = backend.add_instances(ds, [instance("9.3", "9.3.1", seed=1)], job_id="j1")[0]
    old = backend.metadata_doc(ds, first.image_set_id)
    again = backend.add_instances(ds, [instance("9.3", "9.3.1", seed=2)], job_id="j2")[0]
    doc = backend.metadata_doc(ds, again.image_set_id)
    instances = doc["Study"]["Series"]["9.3"]["Instances"]
    assert list(instances) == ["9.3.1"] and again.image_set_version == 2
    old_ids = [f["ID"] for f in old["Study"]["Series"]["9.3"]["Instances"]["9.3.1"]["ImageFrames"]]
    assert instances["9.3.1"]["ImageFrames"][0]["ID"] not in old_ids


def test_conflicting_patient_goes_to_a_non_primary_image_set(fresh):
    backend, ds = fresh
    primary = backend.add_instances(ds, [instance("9.4", "9.4.1", patient="A")], job_id="j1")[0]
    other = backend.add_instances(ds, [instance("9.4", "9.4.2", patient="B")], job_id="j2")[0]
    assert other.image_set_id != primary.image_set_id and other.is_primary is False
    assert backend.get_image_set(ds, primary.image_set_id)["versionId"] == "1"


def test_frames_are_stored_as_files_and_read_back(fresh):
    backend, ds = fresh
    inst = instance("9.5", "9.5.1", frames=2)
    result = backend.add_instances(ds, [inst], job_id="j1")[0]
    doc = backend.metadata_doc(ds, result.image_set_id)
    frames = doc["Study"]["Series"]["9.5"]["Instances"]["9.5.1"]["ImageFrames"]
    for entry, encoded in zip(frames, inst.frames, strict=True):
        data, content_type = backend.frame(ds, result.image_set_id, entry["ID"])
        assert (data, content_type) == (encoded.data, "image/jph")
        assert entry["FrameSizeInBytes"] == len(encoded.data)


def test_state_reloads_from_the_store(tmp_path):
    backend = Backend("123456789012", "us-east-1", tmp_path, datastore_delay=0.0)
    ds = backend.create_datastore("reload", ready=True).datastore_id
    result = backend.add_instances(ds, [instance("9.6", "9.6.1")], job_id="j1")[0]
    job, _ = backend.start_job(ds, data_access_role_arn="arn:aws:iam::123456789012:role/r",
                               input_s3_uri="s3://in/x/", output_s3_uri="s3://out/y/")
    backend.close()
    again = Backend("123456789012", "us-east-1", tmp_path, datastore_delay=0.0)
    assert again.get_image_set(ds, result.image_set_id)["isPrimary"] is True
    reloaded = again.get_job(ds, job.job_id)
    assert reloaded.job_status == "FAILED" and "restart" in reloaded.message
    merged = again.add_instances(ds, [instance("9.6", "9.6.2")], job_id="j2")[0]
    assert merged.image_set_id == result.image_set_id and merged.image_set_version == 2
    again.close()


def test_jobs_need_an_active_datastore(tmp_path):
    backend = Backend("123456789012", "us-east-1", tmp_path, datastore_delay=60.0)
    ds = backend.create_datastore("slow").datastore_id
    with pytest.raises(ConflictException):
        backend.start_job(ds, data_access_role_arn="arn:aws:iam::123456789012:role/r",
                          input_s3_uri="s3://in/x/", output_s3_uri="s3://out/y/")
    backend.close()


def test_paginate_refuses_foreign_tokens_and_large_pages():
    page, token = paginate(list(range(5)), 2, None, "a")
    assert page == [0, 1] and token
    assert paginate(list(range(5)), 2, token, "a")[0] == [2, 3]
    with pytest.raises(ValidationException):
        paginate(list(range(5)), 2, token, "b")
    with pytest.raises(ValidationException):
        paginate(list(range(5)), 51, None, "a")
