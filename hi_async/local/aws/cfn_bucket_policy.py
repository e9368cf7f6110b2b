"""``AWS::S3::BucketPolicy`` for moto's CloudFormation: accepted and recorded, not enforced.

moto has no CloudFormation model for bucket policies, so a stack that declares one would
skip it with a warning and list a resource with no physical ID. Applying the policy to
moto's S3 is not an option either: moto enforces bucket policies while ignoring their
conditions, so infra/'s "deny unless aws:SecureTransport" would deny every request, and
the local stack speaks plain HTTP on loopback anyway. The resource is therefore tracked
(so the stack's resources read as on AWS) and the policy is kept on the record only.
"""

from __future__ import annotations

import json
from typing import Any

from moto.core.common_models import CloudFormationModel
from moto.s3.models import s3_backends
from moto.utilities.utils import get_partition


class S3BucketPolicyRecord(CloudFormationModel):
    """One bucket policy a stack declared."""

    def __init__(self, bucket: str, document: dict[str, Any]) -> None:
        self.bucket = bucket
        self.document = document

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::S3::BucketPolicy"

    @property
    def physical_resource_id(self) -> str:
        return self.bucket

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return False

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str,
        region_name: str, **kwargs: Any,
    ) -> S3BucketPolicyRecord:
        props = cloudformation_json.get("Properties", {})
        bucket = str(props["Bucket"])
        # The bucket must exist, as CloudFormation requires; this raises NoSuchBucket if not.
        s3_backends[account_id][get_partition(region_name)].get_bucket(bucket)
        document = props.get("PolicyDocument") or {}
        if isinstance(document, str):
            document = json.loads(document)
        return cls(bucket, document)

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str,
        region_name: str,
    ) -> None:
        return None

    def delete(self, account_id: str, region_name: str) -> None:
        return None

    def is_created(self) -> bool:
        return True
