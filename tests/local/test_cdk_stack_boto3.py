"""A template written the way the AWS CDK writes them deploys, is used and is deleted
through boto3: SSM-typed bootstrap parameter, CDK metadata under its condition, the
bootstrap rule, Lambda-backed auto-delete custom resources carried out natively."""

from __future__ import annotations

import logging
from typing import Any

import boto3
import pytest

from tests.conftest import KEYS
from tests.local.cdk_template import BUCKETS, DATASTORE, PROVIDER, cdk_template_body
from tests.local.cfn_support import (
    bucket_exists,
    copy_study,
    create,
    delete_image_sets,
    deploy,
    events,
    resources,
    run_import,
    status,
    unique,
)


@pytest.fixture(scope="module")
def cfn(make_client: Any) -> Any:
    return make_client("cloudformation")


def test_cdk_stack_deploys_with_every_resource_created(cfn: Any, mi: Any, s3: Any) -> None:
    deployed = deploy(cfn)
    assert status(cfn, deployed.stack_id) == ("CREATE_COMPLETE", None)
    found = resources(cfn, deployed.stack_id)
    assert {r["ResourceStatus"] for r in found.values()} == {"CREATE_COMPLETE"}
    assert found["CDKMetadata"]["ResourceType"] == "AWS::CDK::Metadata"
    auto_delete = [r for r in found.values()
                   if r["ResourceType"] == "Custom::S3AutoDeleteObjects"]
    assert len(auto_delete) == 2
    assert found[PROVIDER]["ResourceType"] == "AWS::Lambda::Function"
    props = mi.get_datastore(datastoreId=deployed.outputs["DatastoreId"])["datastoreProperties"]
    assert props["datastoreStatus"] == "ACTIVE"
    assert found[DATASTORE]["PhysicalResourceId"] == deployed.outputs["DatastoreId"]
    for key in ("InputBucketName", "OutputBucketName"):
        assert bucket_exists(s3, deployed.outputs[key])
        tags = s3.get_bucket_tagging(Bucket=deployed.outputs[key])["TagSet"]
        assert {"Key": "aws-cdk:auto-delete-objects", "Value": "true"} in tags


def test_cdk_stack_is_used_and_deleted_leaving_nothing_behind(cfn: Any, mi: Any,
                                                              s3: Any) -> None:
    deployed = deploy(cfn)
    out = deployed.outputs
    assert copy_study(s3, out["InputBucketName"]) == 2
    job = run_import(mi, deployed)
    assert job["jobStatus"] == "COMPLETED"
    manifest = s3.get_object(Bucket=out["OutputBucketName"],
                             Key=job["outputS3Uri"].split("/", 3)[3] + "job-output-manifest.json")
    assert b"imageSetsSummary" in manifest["Body"].read()
    assert delete_image_sets(mi, out["DatastoreId"]) == 1

    cfn.delete_stack(StackName=deployed.name)
    cfn.get_waiter("stack_delete_complete").wait(StackName=deployed.stack_id,
                                                 WaiterConfig={"Delay": 1})
    assert status(cfn, deployed.stack_id)[0] == "DELETE_COMPLETE"
    for key in ("InputBucketName", "OutputBucketName"):  # emptied by the custom resources
        assert not bucket_exists(s3, out[key])
    props = mi.get_datastore(datastoreId=out["DatastoreId"])["datastoreProperties"]
    assert props["datastoreStatus"] == "DELETED"
    order = [name for name, state, _ in events(cfn, deployed.stack_id)
             if state == "DELETE_COMPLETE"]
    for bucket in BUCKETS.values():  # each custom resource goes before its bucket
        custom = next(n for n in order if n.startswith(bucket + "AutoDelete"))
        assert order.index(custom) < order.index(bucket)


def test_auto_delete_removes_versions_delete_markers_and_multipart_uploads(
        cfn: Any, s3: Any) -> None:
    deployed = deploy(cfn, versioned=True)
    bucket = deployed.outputs["InputBucketName"]
    for body in (b"one", b"two", b"three"):
        s3.put_object(Bucket=bucket, Key="series/a.dcm", Body=body)
    s3.delete_object(Bucket=bucket, Key="series/a.dcm")  # leaves a delete marker
    s3.create_multipart_upload(Bucket=bucket, Key="series/big.dcm")
    listed = s3.list_object_versions(Bucket=bucket)
    assert len(listed["Versions"]) == 3 and len(listed["DeleteMarkers"]) == 1

    cfn.delete_stack(StackName=deployed.stack_id)
    assert status(cfn, deployed.stack_id)[0] == "DELETE_COMPLETE"
    assert not bucket_exists(s3, bucket)


def test_auto_delete_leaves_a_bucket_without_its_tag_alone(cfn: Any, s3: Any) -> None:
    # The CDK's handler empties only buckets tagged aws-cdk:auto-delete-objects=true.
    deployed = deploy(cfn)
    bucket = deployed.outputs["InputBucketName"]
    s3.delete_bucket_tagging(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="kept.dcm", Body=b"x")

    cfn.delete_stack(StackName=deployed.stack_id)
    state, reason = status(cfn, deployed.stack_id)
    assert state == "DELETE_FAILED"
    assert reason == f"The following resource(s) failed to delete: [{BUCKETS['input']}]. "
    assert s3.get_object(Bucket=bucket, Key="kept.dcm")["Body"].read() == b"x"
    s3.delete_object(Bucket=bucket, Key="kept.dcm")
    cfn.delete_stack(StackName=deployed.stack_id)
    assert status(cfn, deployed.stack_id)[0] == "DELETE_COMPLETE"


def test_cdk_metadata_and_its_condition_are_accepted_quietly(
        cfn: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        deployed = deploy(cfn)
    assert "CDKMetadata" in resources(cfn, deployed.stack_id)
    noise = [r.getMessage() for r in caplog.records if "CloudFormation" in r.getMessage()]
    assert noise == []


def test_cdk_metadata_is_left_out_where_its_condition_is_false(endpoint_url: str) -> None:
    # ap-southeast-4 is not among the regions the condition lists.
    cfn = boto3.client("cloudformation", endpoint_url=endpoint_url, region_name="ap-southeast-4",
                       **KEYS)
    name = unique("cdk-region")
    stack_id = create(cfn, name, cdk_template_body(), DatastoreName=name)
    assert status(cfn, stack_id)[0] == "CREATE_COMPLETE"
    assert "CDKMetadata" not in resources(cfn, stack_id)
    cfn.delete_stack(StackName=stack_id)
    assert status(cfn, stack_id)[0] == "DELETE_COMPLETE"


def test_an_old_bootstrap_version_fails_the_template_rule(cfn: Any, make_client: Any) -> None:
    ssm = make_client("ssm")
    ssm.put_parameter(Name="/hi-async-test/old-bootstrap", Value="4", Type="String",
                      Overwrite=True)
    name = unique("cdk-old")
    with pytest.raises(cfn.exceptions.ClientError) as refused:
        create(cfn, name, cdk_template_body(), DatastoreName=name,
               BootstrapVersion="/hi-async-test/old-bootstrap")
    error = refused.value.response["Error"]
    assert error["Code"] == "ValidationError"
    assert error["Message"].startswith("CDK bootstrap stack version 6 required.")
