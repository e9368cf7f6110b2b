"""``AWS::S3::Bucket`` as CloudFormation handles it: versioning, and non-empty buckets.

moto's bucket model ignores ``VersioningConfiguration``; here a bucket declared versioned
is created versioned (the CDK's ``versioned: true``), so its deletion meets versions and
delete markers as on AWS.

moto's CloudFormation deletes a stack's bucket with S3's ``delete_bucket``, which quietly
does nothing when the bucket still holds objects; the stack then said DELETE_COMPLETE
and left the bucket and its objects behind. On AWS, S3 refuses (409 BucketNotEmpty), the
bucket's deletion fails with S3's message, and the stack ends DELETE_FAILED until the
bucket is emptied and the deletion retried (or the template empties it itself, as the
CDK's auto-delete custom resource does). :func:`install` puts both rules in place.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

from moto.s3.models import FakeBucket

from .s3_access import MotoS3


class BucketNotEmpty(Exception):
    """S3 refused to delete the bucket; ``str()`` is CloudFormation's resource reason."""

    def __init__(self) -> None:
        request_id = secrets.token_hex(8).upper()
        super().__init__(
            "The bucket you tried to delete is not empty (Service: Amazon S3; Status Code: "
            f"409; Error Code: BucketNotEmpty; Request ID: {request_id}; S3 Extended Request "
            f"ID: {base64.b64encode(secrets.token_bytes(48)).decode()}; Proxy: null)")


_create_bucket = FakeBucket.create_from_cloudformation_json


def create_bucket(cls: type, resource_name: str, cloudformation_json: Any, account_id: str,
                  region_name: str, **kwargs: Any) -> FakeBucket:
    """moto's bucket, with the versioning the template asks for."""
    bucket = _create_bucket(resource_name, cloudformation_json, account_id, region_name,
                            **kwargs)
    versioning = (cloudformation_json.get("Properties") or {}).get("VersioningConfiguration")
    if isinstance(versioning, dict) and versioning.get("Status"):
        MotoS3(account_id).set_versioning(bucket.name, str(versioning["Status"]))
    return bucket


def delete_bucket(cls: type, resource_name: str, cloudformation_json: Any, account_id: str,
                  region_name: str) -> None:
    """Delete the stack's bucket; a bucket already gone counts as deleted, as on AWS."""
    s3 = MotoS3(account_id)
    if not s3.bucket_exists(resource_name):
        return
    if s3.holds_anything(resource_name):
        raise BucketNotEmpty()
    s3.delete_bucket(resource_name)


def install() -> None:
    """Put both rules into moto's bucket model (idempotent)."""
    FakeBucket.create_from_cloudformation_json = classmethod(create_bucket)  # type: ignore[assignment]
    FakeBucket.delete_from_cloudformation_json = classmethod(delete_bucket)  # type: ignore[assignment]
