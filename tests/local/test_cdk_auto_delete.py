"""The CDK's auto-delete provider's rules, called directly (its wire behaviour is in
test_cdk_stack_boto3.py): what each request type does to which bucket."""

from __future__ import annotations

from typing import Any

import pytest

from hi_async.local.aws import cdk_auto_delete
from hi_async.local.aws.s3_access import MotoS3
from hi_async.local.healthimaging.ids import ACCOUNT_ID
from tests.local.cfn_support import bucket_exists, unique

TAG = {"Key": cdk_auto_delete.TAG, "Value": "true"}


def _bucket(s3: Any, *, tagged: bool = True, objects: int = 2) -> str:
    name = unique("autodelete")
    s3.create_bucket(Bucket=name)
    if tagged:
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [TAG]})
    for i in range(objects):
        s3.put_object(Bucket=name, Key=f"k{i}", Body=b"x")
    return name


def _keys(s3: Any, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_create_changes_nothing(s3: Any, local_stack: Any) -> None:
    bucket = _bucket(s3)
    assert cdk_auto_delete.on_create(ACCOUNT_ID, {"BucketName": bucket}) == {}
    assert _keys(s3, bucket) == ["k0", "k1"]


def test_update_empties_the_bucket_it_no_longer_points_at(s3: Any, local_stack: Any) -> None:
    old, new = _bucket(s3), _bucket(s3)
    cdk_auto_delete.on_update(ACCOUNT_ID, {"BucketName": old}, {"BucketName": new})
    assert _keys(s3, old) == []
    assert _keys(s3, new) == ["k0", "k1"]
    cdk_auto_delete.on_update(ACCOUNT_ID, {"BucketName": new}, {"BucketName": new})
    assert _keys(s3, new) == ["k0", "k1"]


def test_delete_empties_a_tagged_bucket_and_denies_new_uploads(s3: Any,
                                                              local_stack: Any) -> None:
    bucket = _bucket(s3)
    cdk_auto_delete.on_delete(ACCOUNT_ID, {"BucketName": bucket})
    assert _keys(s3, bucket) == []
    assert not MotoS3(ACCOUNT_ID).holds_anything(bucket)
    policy = s3.get_bucket_policy(Bucket=bucket)["Policy"]
    assert '"Effect": "Deny"' in policy and "s3:PutObject" in policy
    assert bucket_exists(s3, bucket)  # the bucket's own resource deletes it afterwards


def test_delete_leaves_an_untagged_bucket_and_a_missing_one_alone(s3: Any,
                                                                 local_stack: Any) -> None:
    bucket = _bucket(s3, tagged=False)
    cdk_auto_delete.on_delete(ACCOUNT_ID, {"BucketName": bucket})
    assert _keys(s3, bucket) == ["k0", "k1"]
    cdk_auto_delete.on_delete(ACCOUNT_ID, {"BucketName": unique("never-created")})


def test_delete_without_a_bucket_name_fails(local_stack: Any) -> None:
    with pytest.raises(cdk_auto_delete.AutoDeleteFailed, match="No BucketName was provided"):
        cdk_auto_delete.on_delete(ACCOUNT_ID, {})
