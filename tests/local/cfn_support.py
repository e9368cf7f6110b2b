"""Deploying, using and deleting test stacks with boto3 (shared by the CloudFormation tests)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from tests.local.cdk_template import cdk_template_body

#: The CT chest series of the stand-in public bucket (2 instances).
CT_CHEST = "00029d25-fb18-4d42-aaa5-a0897d1ac8f7"


@dataclass
class Deployed:
    stack_id: str
    name: str
    outputs: dict[str, str]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create(cfn: Any, name: str, body: str, **parameters: str) -> str:
    """CreateStack; returns the stack ID (the stack may still have failed)."""
    return str(cfn.create_stack(
        StackName=name, TemplateBody=body, Capabilities=["CAPABILITY_NAMED_IAM"],
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
    )["StackId"])


def deploy(cfn: Any, prefix: str = "cdk", **template: Any) -> Deployed:
    """A CDK-style stack, created and waited for as AWS's examples do."""
    name = unique(prefix)
    stack_id = create(cfn, name, cdk_template_body(**template), DatastoreName=name)
    cfn.get_waiter("stack_create_complete").wait(StackName=stack_id,
                                                 WaiterConfig={"Delay": 1})
    return Deployed(stack_id, name, outputs(cfn, stack_id))


def outputs(cfn: Any, stack: str) -> dict[str, str]:
    described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs") or []}


def status(cfn: Any, stack: str) -> tuple[str, str | None]:
    described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    return described["StackStatus"], described.get("StackStatusReason")


def resources(cfn: Any, stack: str) -> dict[str, dict[str, Any]]:
    """Logical ID → DescribeStackResources entry."""
    return {r["LogicalResourceId"]: r
            for r in cfn.describe_stack_resources(StackName=stack)["StackResources"]}


def events(cfn: Any, stack: str) -> list[tuple[str, str, str | None]]:
    """(logical ID, status, reason) of every event, oldest first."""
    found = cfn.describe_stack_events(StackName=stack)["StackEvents"]
    return [(e["LogicalResourceId"], e["ResourceStatus"], e.get("ResourceStatusReason"))
            for e in reversed(found)]


def bucket_exists(s3: Any, bucket: str) -> bool:
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
            return False
        raise
    return True


def copy_study(s3: Any, bucket: str, prefix: str = "input", series: str = CT_CHEST) -> int:
    """Copy a series of the stand-in public bucket into ``bucket`` as the example does."""
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="idc-open-data",
                                                 Prefix=series)["Contents"]]
    for key in keys:
        s3.copy_object(CopySource={"Bucket": "idc-open-data", "Key": key}, Bucket=bucket,
                       Key=f"{prefix}/{key}")
    return len(keys)


def run_import(mi: Any, deployed: Deployed, *, timeout: float = 120.0) -> dict[str, Any]:
    """An import job from the stack's input bucket to its output bucket, waited for."""
    out = deployed.outputs
    job = mi.start_dicom_import_job(
        datastoreId=out["DatastoreId"], dataAccessRoleArn=out["ImportRoleArn"],
        inputS3Uri=f"s3://{out['InputBucketName']}/input/",
        outputS3Uri=f"s3://{out['OutputBucketName']}/output/")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        props = mi.get_dicom_import_job(datastoreId=out["DatastoreId"],
                                        jobId=job["jobId"])["jobProperties"]
        if props["jobStatus"] in ("COMPLETED", "FAILED"):
            return dict(props)
        time.sleep(0.2)
    raise AssertionError(f"import job {job['jobId']} did not finish in {timeout} s")


def delete_image_sets(mi: Any, datastore_id: str) -> int:
    """Delete every image set, as the example does before it deletes the stack."""
    found = mi.search_image_sets(datastoreId=datastore_id, searchCriteria={})
    ids = [s["imageSetId"] for s in found["imageSetsMetadataSummaries"]]
    for image_set_id in ids:
        mi.delete_image_set(datastoreId=datastore_id, imageSetId=image_set_id)
    return len(ids)
