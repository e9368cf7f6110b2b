"""The AWS CDK's S3 auto-delete-objects provider, carried out natively in Python.

A CDK bucket declared with ``autoDeleteObjects: true`` brings into its template the tag
``aws-cdk:auto-delete-objects=true`` on the bucket, a bucket policy letting the
provider's role list and delete objects, the provider itself (a Node.js Lambda function
and its role), and a ``Custom::S3AutoDeleteObjects`` resource whose ``ServiceToken`` is
the function's ARN and whose ``BucketName`` is the bucket. CloudFormation deletes that
resource before the bucket (it refers to the bucket), and the provider empties the
bucket then, so the bucket's own deletion succeeds.

The local stack runs no Lambda code; this module does what the provider's handler does,
with the same rules:

- Create: nothing.
- Update: when ``BucketName`` changed, the old bucket is emptied (the new one is kept).
- Delete: a bucket that does not exist, or lacks the tag, is left alone. Otherwise new
  uploads are denied through the bucket policy (so nothing lands while the bucket is
  emptied), then every object version and delete marker is deleted; this emulation
  also aborts unfinished multipart uploads. No ``BucketName`` is an error.

A failure (an object under retention, say) fails the custom resource, and so the stack
operation, as it would on AWS.
"""

from __future__ import annotations

import logging
from typing import Any

from ..healthimaging.ids import ACCOUNT_ID
from .s3_access import MotoS3

log = logging.getLogger("hi_async.local")

RESOURCE_TYPE = "Custom::S3AutoDeleteObjects"
TAG = "aws-cdk:auto-delete-objects"


class AutoDeleteFailed(Exception):
    """The provider's handler would have answered FAILED; the message says why."""


def on_create(account_id: str, properties: dict[str, Any]) -> dict[str, Any]:
    """Nothing to do: the bucket is emptied only when it goes."""
    return {}


def on_update(account_id: str, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Empty the bucket the resource no longer points at, if it changed."""
    before, after = old.get("BucketName"), new.get("BucketName")
    if before and after and before != after:
        empty_tagged_bucket(account_id, str(before))
    return {}


def on_delete(account_id: str, properties: dict[str, Any]) -> None:
    bucket = properties.get("BucketName")
    if not bucket:
        raise AutoDeleteFailed("No BucketName was provided.")
    empty_tagged_bucket(account_id, str(bucket))


def empty_tagged_bucket(account_id: str, bucket: str) -> int:
    """Empty ``bucket`` if it exists and carries the tag; returns the versions deleted."""
    s3 = MotoS3(account_id or ACCOUNT_ID)
    if not s3.bucket_exists(bucket):
        log.info("auto-delete: bucket %s does not exist", bucket)
        return 0
    if s3.tags(bucket).get(TAG) != "true":
        log.info("auto-delete: bucket %s does not have the %s tag, skipping", bucket, TAG)
        return 0
    s3.add_policy_statement(bucket, {
        "Principal": "*", "Effect": "Deny", "Action": ["s3:PutObject"],
        "Resource": [f"arn:aws:s3:::{bucket}/*"]})
    try:
        deleted = s3.empty(bucket)
    except Exception as exc:
        raise AutoDeleteFailed(f"could not empty bucket {bucket}: "
                               f"{getattr(exc, 'message', None) or exc}") from exc
    log.info("auto-delete: emptied bucket %s (%d object versions)", bucket, deleted)
    return deleted
