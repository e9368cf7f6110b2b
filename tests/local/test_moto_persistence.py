"""moto's S3, IAM and CloudFormation state survives a restart on the same data folder.

Only a stack that owns its process (``local serve``, ``mode="process"``) saves moto's
process-global state; these tests restart such a stack and look through the APIs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hi_async.local.aws.moto_state import STATE_FILE
from hi_async.local.data.public_data import PUBLIC_BUCKET
from hi_async.local.stack import LocalStack

TEMPLATE = json.dumps({
    "Resources": {"Bucket": {"Type": "AWS::S3::Bucket",
                             "Properties": {"BucketName": "kept-by-a-stack"}}},
})
ROLE_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "medical-imaging.amazonaws.com"},
    "Action": "sts:AssumeRole"}]})


@pytest.mark.slow
def test_buckets_objects_roles_and_stacks_survive_a_restart(tmp_path: Path, make_client) -> None:
    body = bytes(range(256)) * 4096  # 1 MiB
    with LocalStack(mode="process", data_dir=tmp_path) as stack:
        s3, iam, cfn = (make_client(s, url=stack.url) for s in ("s3", "iam", "cloudformation"))
        s3.create_bucket(Bucket="durable-bucket")
        s3.put_object(Bucket="durable-bucket", Key="a/b.dcm", Body=body)
        iam.create_role(RoleName="durable-role", AssumeRolePolicyDocument=ROLE_POLICY)
        cfn.create_stack(StackName="durable-stack", TemplateBody=TEMPLATE)
        public = s3.list_objects_v2(Bucket=PUBLIC_BUCKET)["KeyCount"]
    assert (tmp_path / STATE_FILE).is_file()

    with LocalStack(mode="process", data_dir=tmp_path) as stack:
        s3, iam, cfn = (make_client(s, url=stack.url) for s in ("s3", "iam", "cloudformation"))
        assert s3.get_object(Bucket="durable-bucket", Key="a/b.dcm")["Body"].read() == body
        assert iam.get_role(RoleName="durable-role")["Role"]["RoleName"] == "durable-role"
        described = cfn.describe_stacks(StackName="durable-stack")["Stacks"][0]
        assert described["StackStatus"] == "CREATE_COMPLETE"
        assert "kept-by-a-stack" in {b["Name"] for b in s3.list_buckets()["Buckets"]}
        # The public bucket is not saved but seeded again, whole.
        assert s3.list_objects_v2(Bucket=PUBLIC_BUCKET)["KeyCount"] == public > 0
        # The restored stack still owns its bucket: deleting it removes the bucket.
        cfn.delete_stack(StackName="durable-stack")
        assert "kept-by-a-stack" not in {b["Name"] for b in s3.list_buckets()["Buckets"]}


@pytest.mark.slow
def test_an_unreadable_state_file_is_set_aside_and_the_stack_starts_empty(
        tmp_path: Path, make_client) -> None:
    (tmp_path / STATE_FILE).write_bytes(b"not a pickle at all")
    with LocalStack(mode="process", data_dir=tmp_path) as stack:
        s3 = make_client("s3", url=stack.url)
        assert {b["Name"] for b in s3.list_buckets()["Buckets"]} == {PUBLIC_BUCKET}
    assert (tmp_path / f"{STATE_FILE}.unreadable").read_bytes() == b"not a pickle at all"
    assert (tmp_path / STATE_FILE).is_file()  # this run's (empty) state, saved at stop


def test_an_in_process_stack_leaves_moto_state_alone(tmp_path: Path, make_client) -> None:
    # It shares moto with the rest of its process (here, the test session's stack).
    with LocalStack(data_dir=tmp_path) as stack:
        make_client("s3", url=stack.url).create_bucket(Bucket="in-process-only")
    assert not (tmp_path / STATE_FILE).exists()
    with LocalStack(data_dir=tmp_path) as stack:
        # Nothing was loaded over moto's memory either: the bucket is still there.
        make_client("s3", url=stack.url).delete_bucket(Bucket="in-process-only")


@pytest.mark.slow
def test_a_cdk_stack_deployed_before_a_restart_is_deleted_cleanly_after(
        tmp_path: Path, make_client) -> None:
    from tests.local.cdk_template import cdk_template_body
    from tests.local.cfn_support import create, outputs, status

    with LocalStack(mode="process", data_dir=tmp_path) as stack:
        cfn, s3 = (make_client(s, url=stack.url) for s in ("cloudformation", "s3"))
        stack_id = create(cfn, "cdk-restart", cdk_template_body(), DatastoreName="restart")
        bucket = outputs(cfn, stack_id)["InputBucketName"]
        s3.put_object(Bucket=bucket, Key="study/a.dcm", Body=b"DICM")
    with LocalStack(mode="process", data_dir=tmp_path) as stack:
        cfn, s3 = (make_client(s, url=stack.url) for s in ("cloudformation", "s3"))
        assert status(cfn, stack_id)[0] == "CREATE_COMPLETE"
        # The provider's Lambda function was not kept (moto's Lambda state is not saved);
        # a resource already gone counts as deleted, as on AWS.
        cfn.delete_stack(StackName=stack_id)
        assert status(cfn, stack_id) == ("DELETE_COMPLETE", None)
        assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
