"""``AWS::CDK::Metadata``, the resource every CDK-made template carries: accepted quietly.

The CDK adds it (under the condition ``CDKMetadataAvailable``, true in the regions that
know the type) to report which constructs a stack uses; it creates nothing. moto does
not know the type and would warn and leave it out of the stack's resources; here it is
a resource with a physical ID and no effect, as on AWS.
"""

from __future__ import annotations

import uuid
from typing import Any

from moto.core.common_models import CloudFormationModel


class CdkMetadata(CloudFormationModel):
    """The metadata record; nothing to create or delete."""

    def __init__(self, physical_id: str) -> None:
        self.physical_id = physical_id

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CDK::Metadata"

    @property
    def physical_resource_id(self) -> str:
        return self.physical_id

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return False

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str,
        region_name: str, **kwargs: Any,
    ) -> CdkMetadata:
        return cls(str(uuid.uuid4()))

    def delete(self, account_id: str, region_name: str) -> None:
        return None

    def is_created(self) -> bool:
        return True
