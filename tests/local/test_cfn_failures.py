"""Stacks that fail end in the states AWS's waiters stop at, with AWS's reasons, at once."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError, WaiterError

from tests.local.cdk_template import (
    BUCKETS,
    DATASTORE,
    PROVIDER,
    cdk_template,
    cdk_template_body,
)
from tests.local.cfn_support import (
    bucket_exists,
    create,
    deploy,
    events,
    resources,
    status,
    unique,
)

UNKNOWN_CUSTOM = {
    "ReportingFunctionRoleB9D1E3F5": {
        "Type": "AWS::IAM::Role",
        "Properties": {"AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
            "Action": "sts:AssumeRole", "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"}}]}},
    },
    "ReportingFunction0A2C4E6F": {
        "Type": "AWS::Lambda::Function",
        "Properties": {"Code": {"ZipFile": "def handler(event, context):\n    pass\n"},
                       "Handler": "index.handler", "Runtime": "python3.12",
                       "Role": {"Fn::GetAtt": ["ReportingFunctionRoleB9D1E3F5", "Arn"]}},
    },
    "StudyReport1B3D5F7A": {
        "Type": "Custom::StudyReport",
        "Properties": {"ServiceToken": {"Fn::GetAtt": ["ReportingFunction0A2C4E6F", "Arn"]},
                       "Datastore": {"Fn::GetAtt": [DATASTORE, "DatastoreId"]}},
    },
}


@pytest.fixture(scope="module")
def cfn(make_client: Any) -> Any:
    return make_client("cloudformation")


def test_a_bucket_that_is_not_empty_fails_the_deletion_as_on_aws(
        cfn: Any, mi: Any, s3: Any) -> None:
    deployed = deploy(cfn, auto_delete=False)
    bucket = deployed.outputs["InputBucketName"]
    s3.put_object(Bucket=bucket, Key="left/behind.dcm", Body=b"DICM")

    cfn.delete_stack(StackName=deployed.stack_id)
    started = time.monotonic()
    with pytest.raises(WaiterError, match="DELETE_FAILED"):
        cfn.get_waiter("stack_delete_complete").wait(StackName=deployed.stack_id)
    assert time.monotonic() - started < 10
    state, reason = status(cfn, deployed.stack_id)
    assert (state, reason) == (
        "DELETE_FAILED", f"The following resource(s) failed to delete: [{BUCKETS['input']}]. ")
    failed = resources(cfn, deployed.stack_id)[BUCKETS["input"]]
    assert failed["ResourceStatus"] == "DELETE_FAILED"
    assert failed["ResourceStatusReason"].startswith(
        "The bucket you tried to delete is not empty (Service: Amazon S3; Status Code: 409; "
        "Error Code: BucketNotEmpty;")
    listed = cfn.list_stack_resources(StackName=deployed.stack_id)["StackResourceSummaries"]
    assert [(r["LogicalResourceId"], r["ResourceStatus"]) for r in listed] == [
        (BUCKETS["input"], "DELETE_FAILED")]
    # Nothing silently left: the bucket and its object are there, the rest is gone.
    assert s3.get_object(Bucket=bucket, Key="left/behind.dcm")["Body"].read() == b"DICM"
    assert not bucket_exists(s3, deployed.outputs["OutputBucketName"])
    props = mi.get_datastore(datastoreId=deployed.outputs["DatastoreId"])["datastoreProperties"]
    assert props["datastoreStatus"] == "DELETED"
    assert deployed.name in [s["StackName"] for s in cfn.list_stacks(
        StackStatusFilter=["DELETE_FAILED"])["StackSummaries"]]


def test_a_deletion_that_failed_succeeds_once_the_bucket_is_emptied(cfn: Any, s3: Any) -> None:
    deployed = deploy(cfn, auto_delete=False)
    bucket = deployed.outputs["OutputBucketName"]
    s3.put_object(Bucket=bucket, Key="manifest.json", Body=b"{}")
    cfn.delete_stack(StackName=deployed.name)
    assert status(cfn, deployed.stack_id)[0] == "DELETE_FAILED"

    s3.delete_object(Bucket=bucket, Key="manifest.json")
    cfn.delete_stack(StackName=deployed.name)
    cfn.get_waiter("stack_delete_complete").wait(StackName=deployed.stack_id)
    assert status(cfn, deployed.stack_id)[0] == "DELETE_COMPLETE"
    assert not bucket_exists(s3, bucket)


def test_a_provider_that_fails_is_reported_as_cloudformation_reports_it(cfn: Any) -> None:
    # The CDK's handler refuses a Delete without BucketName; the stack can then be deleted
    # by retaining that resource, as on AWS.
    broken = {"NoBucketAutoDelete9E8D7C6B": {
        "Type": "Custom::S3AutoDeleteObjects",
        "Properties": {"ServiceToken": {"Fn::GetAtt": [PROVIDER, "Arn"]}}}}
    deployed = deploy(cfn, extra_resources=broken)
    with pytest.raises(ClientError, match="RetainResources"):
        cfn.delete_stack(StackName=deployed.stack_id,
                         RetainResources=["NoBucketAutoDelete9E8D7C6B"])

    cfn.delete_stack(StackName=deployed.stack_id)
    assert status(cfn, deployed.stack_id) == (
        "DELETE_FAILED",
        "The following resource(s) failed to delete: [NoBucketAutoDelete9E8D7C6B]. ")
    failed = resources(cfn, deployed.stack_id)["NoBucketAutoDelete9E8D7C6B"]
    assert failed["ResourceStatusReason"] == (
        "Received response status [FAILED] from custom resource. Message returned: "
        "No BucketName was provided.")

    cfn.delete_stack(StackName=deployed.stack_id,
                     RetainResources=["NoBucketAutoDelete9E8D7C6B"])
    assert status(cfn, deployed.stack_id)[0] == "DELETE_COMPLETE"


def test_a_retained_bucket_is_kept_and_the_stack_deleted(cfn: Any, s3: Any) -> None:
    deployed = deploy(cfn, auto_delete=False, retain=True)
    bucket = deployed.outputs["InputBucketName"]
    s3.put_object(Bucket=bucket, Key="keep.dcm", Body=b"x")
    cfn.delete_stack(StackName=deployed.stack_id)
    assert status(cfn, deployed.stack_id)[0] == "DELETE_COMPLETE"
    assert bucket_exists(s3, bucket)
    assert (BUCKETS["input"], "DELETE_SKIPPED", None) in events(cfn, deployed.stack_id)


def test_delete_complete_means_the_datastore_is_deleted(cfn: Any, mi: Any) -> None:
    deployed = deploy(cfn)
    cfn.delete_stack(StackName=deployed.stack_id)
    assert status(cfn, deployed.stack_id)[0] == "DELETE_COMPLETE"
    props = mi.get_datastore(datastoreId=deployed.outputs["DatastoreId"])["datastoreProperties"]
    assert props["datastoreStatus"] == "DELETED"


def test_a_datastore_with_image_sets_fails_the_deletion(cfn: Any, backend: Any) -> None:
    from tests.local.helpers import seed_image_set

    deployed = deploy(cfn)
    seed_image_set(backend, deployed.outputs["DatastoreId"])
    cfn.delete_stack(StackName=deployed.stack_id)
    state, reason = status(cfn, deployed.stack_id)
    assert (state, reason) == (
        "DELETE_FAILED", f"The following resource(s) failed to delete: [{DATASTORE}]. ")
    assert "image set" in resources(cfn, deployed.stack_id)[DATASTORE]["ResourceStatusReason"]


def test_an_unknown_lambda_backed_custom_resource_fails_fast(cfn: Any, mi: Any,
                                                            s3: Any) -> None:
    name = unique("cdk-custom")
    started = time.monotonic()
    stack_id = create(cfn, name, cdk_template_body(extra_resources=UNKNOWN_CUSTOM),
                      DatastoreName=name)
    with pytest.raises(WaiterError, match="ROLLBACK_COMPLETE"):
        cfn.get_waiter("stack_create_complete").wait(StackName=stack_id)
    assert time.monotonic() - started < 10

    state, reason = status(cfn, stack_id)
    assert state == "ROLLBACK_COMPLETE"
    assert reason == ("The following resource(s) failed to create: [StudyReport1B3D5F7A]. "
                      "Rollback requested by user.")
    [(_, _, why)] = [e for e in events(cfn, stack_id)
                     if e[0] == "StudyReport1B3D5F7A" and e[1] == "CREATE_FAILED"]
    assert why is not None
    assert "Custom::StudyReport" in why and "Custom::S3AutoDeleteObjects" in why
    assert "no Lambda" in why
    # The rollback deleted what had been created.
    assert resources(cfn, stack_id) == {}
    assert not [b for b in s3.list_buckets()["Buckets"] if b["Name"].startswith(name)]
    named = [d for page in mi.get_paginator("list_datastores").paginate()
             for d in page["datastoreSummaries"] if d["datastoreName"] == name]
    assert [d["datastoreStatus"] for d in named] == ["DELETED"]


def test_disable_rollback_keeps_what_was_created(cfn: Any, s3: Any) -> None:
    name = unique("cdk-keep")
    body = json.dumps(cdk_template(extra_resources=UNKNOWN_CUSTOM))
    stack_id = cfn.create_stack(StackName=name, TemplateBody=body, DisableRollback=True,
                                Capabilities=["CAPABILITY_IAM"],
                                Parameters=[{"ParameterKey": "DatastoreName",
                                             "ParameterValue": name}])["StackId"]
    state, _ = status(cfn, stack_id)
    assert state == "CREATE_FAILED"
    kept = resources(cfn, stack_id)
    assert kept[BUCKETS["input"]]["ResourceStatus"] == "CREATE_COMPLETE"
    assert bucket_exists(s3, kept[BUCKETS["input"]]["PhysicalResourceId"])
    assert "Outputs" not in cfn.describe_stacks(StackName=stack_id)["Stacks"][0]
    cfn.delete_stack(StackName=stack_id)
    assert status(cfn, stack_id)[0] == "DELETE_COMPLETE"


def test_on_failure_delete_removes_the_failed_stack(cfn: Any) -> None:
    name = unique("cdk-gone")
    body = json.dumps(cdk_template(extra_resources=UNKNOWN_CUSTOM))
    stack_id = cfn.create_stack(StackName=name, TemplateBody=body, OnFailure="DELETE",
                                Parameters=[{"ParameterKey": "DatastoreName",
                                             "ParameterValue": name}])["StackId"]
    assert status(cfn, stack_id)[0] == "DELETE_COMPLETE"
    assert name not in [s["StackName"] for s in cfn.describe_stacks()["Stacks"]]


@pytest.mark.parametrize("body, message", [
    ('{"Resources": {"Bucket": {"Type": "AWS::S3::Bucket",}}',
     "Template format error: JSON not well-formed. (line 1, column "),
    ("Resources:\n  Bucket:\n    Type: [AWS::S3::Bucket\n",
     "Template format error: YAML not well-formed. (line "),
    ("just words", "Template format error: unsupported structure."),
    ('{"Description": "no resources"}',
     "Template format error: At least one Resources member must be defined."),
])
def test_a_template_cloudformation_cannot_read_is_a_validation_error(
        cfn: Any, body: str, message: str) -> None:
    with pytest.raises(ClientError) as refused:
        cfn.create_stack(StackName=unique("unreadable"), TemplateBody=body)
    response = refused.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["Error"]["Code"] == "ValidationError"
    assert response["Error"]["Message"].startswith(message)
