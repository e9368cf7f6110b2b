"""Custom resources (``Custom::*``, ``AWS::CloudFormation::CustomResource``) without Lambda.

On AWS, CloudFormation sends a custom resource's Create, Update and Delete requests to
the Lambda function (or SNS topic) its ``ServiceToken`` names, and waits for the answer.
moto would run that function in Docker, and when it cannot, nobody ever answers: the
stack stays CREATE_IN_PROGRESS and a waiter waits an hour.

The local stack runs no Lambda code. It carries out natively the providers the AWS CDK
puts into templates of its own accord (:data:`NATIVE_PROVIDERS`), with their semantics,
and fails any other custom resource at once: CREATE_FAILED, with a reason naming the
resource type and what the local stack supports (the stack then rolls back as on AWS).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moto.cloudformation.exceptions import UnformattedGetAttTemplateException
from moto.core.common_models import CloudFormationModel

from . import cdk_auto_delete


@dataclass(frozen=True)
class NativeProvider:
    """What a provider's handler does on each request type; returns the resource's Data."""

    on_create: Callable[[str, dict[str, Any]], dict[str, Any]]
    on_update: Callable[[str, dict[str, Any], dict[str, Any]], dict[str, Any]]
    on_delete: Callable[[str, dict[str, Any]], None]


#: Resource type → the provider carried out in its place.
NATIVE_PROVIDERS: dict[str, NativeProvider] = {
    cdk_auto_delete.RESOURCE_TYPE: NativeProvider(
        cdk_auto_delete.on_create, cdk_auto_delete.on_update, cdk_auto_delete.on_delete),
}

GENERIC_TYPE = "AWS::CloudFormation::CustomResource"


def is_custom_type(resource_type: str) -> bool:
    return resource_type.startswith("Custom::") or resource_type == GENERIC_TYPE


class CustomResourceFailed(Exception):
    """The custom resource could not be carried out; ``str()`` is the resource's reason."""


def _unsupported(resource_type: str, token: str) -> CustomResourceFailed:
    supported = ", ".join(sorted(NATIVE_PROVIDERS))
    return CustomResourceFailed(
        f"{resource_type} is a custom resource served by {token or 'no ServiceToken'}; the "
        "local stack runs no Lambda functions, so of custom resources it carries out only "
        f"those the AWS CDK adds itself, natively: {supported}")


def _answered_failed(exc: Exception) -> CustomResourceFailed:
    """A provider's failure, worded as CloudFormation reports a provider's FAILED answer."""
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return CustomResourceFailed(
        f"Received response status [FAILED] from custom resource. Message returned: {message}")


def _provider_for(resource_type: str, token: str, account_id: str,
                  region: str) -> NativeProvider:
    """The native provider of this resource, or CustomResourceFailed saying why there is none."""
    provider = NATIVE_PROVIDERS.get(resource_type)
    if provider is None or ":lambda:" not in token:
        raise _unsupported(resource_type, token)
    from moto.awslambda.utils import get_backend

    try:
        get_backend(account_id, region).get_function(token)
    except Exception as exc:  # moto's UnknownFunctionException
        raise CustomResourceFailed(
            f"{resource_type}: its ServiceToken {token} names no Lambda function of this "
            "account") from exc
    return provider


class CustomResource(CloudFormationModel):
    """One custom resource whose provider the local stack carries out."""

    def __init__(self, account_id: str, region: str, resource_type: str, physical_id: str,
                 properties: dict[str, Any], data: dict[str, Any]) -> None:
        self.account_id = account_id
        self.region = region
        self.resource_type = resource_type
        self.physical_id = physical_id
        self.properties = properties
        self.data = data

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return GENERIC_TYPE

    @property
    def physical_resource_id(self) -> str:
        return self.physical_id

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return True  # whatever the provider returns in Data; checked when read

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        if attribute_name in self.data:
            return self.data[attribute_name]
        raise UnformattedGetAttTemplateException()

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str,
        region_name: str, **kwargs: Any,
    ) -> CustomResource:
        resource_type = str(kwargs.get("ResourceType") or cloudformation_json.get("Type"))
        properties = dict(cloudformation_json.get("Properties") or {})
        token = str(properties.get("ServiceToken") or "")
        provider = _provider_for(resource_type, token, account_id, region_name)
        try:
            data = provider.on_create(account_id, properties)
        except Exception as exc:
            raise _answered_failed(exc) from exc
        # The CDK's provider framework answers with the request ID as the physical ID.
        return cls(account_id, region_name, resource_type, str(uuid.uuid4()), properties,
                   data)

    @classmethod
    def update_from_cloudformation_json(
        cls, original_resource: CustomResource, new_resource_name: str,
        cloudformation_json: dict[str, Any], account_id: str, region_name: str,
    ) -> CustomResource:
        properties = dict(cloudformation_json.get("Properties") or {})
        token = str(properties.get("ServiceToken") or "")
        provider = _provider_for(original_resource.resource_type, token, account_id,
                                 region_name)
        try:
            data = provider.on_update(account_id, original_resource.properties, properties)
        except Exception as exc:
            raise _answered_failed(exc) from exc
        return cls(account_id, region_name, original_resource.resource_type,
                   original_resource.physical_id, properties, data)

    def delete(self, account_id: str, region_name: str) -> None:
        provider = NATIVE_PROVIDERS.get(self.resource_type)
        if provider is None:  # never created: creation fails for these
            return
        try:
            provider.on_delete(account_id, self.properties)
        except Exception as exc:
            # Never a bare TypeError or AttributeError: moto takes those for "this model
            # has no delete method" and would try another way.
            raise _answered_failed(exc) from exc

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str,
        region_name: str,
    ) -> None:
        return None

    def is_created(self) -> bool:
        return True


def resource_class_for(original: Callable[[str], Any]) -> Callable[[str], Any]:
    """moto's type → model lookup, with custom resources answered by :class:`CustomResource`."""
    def resource_class_from_type(resource_type: str) -> Any:
        if is_custom_type(resource_type):
            return CustomResource
        return original(resource_type)
    resource_class_from_type.__wrapped__ = original  # type: ignore[attr-defined]
    return resource_class_from_type
