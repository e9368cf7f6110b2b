"""``AWS::HealthImaging::Datastore`` for moto's CloudFormation, so infra/ deploys unchanged.

moto builds its CloudFormation resource map from the subclasses of ``CloudFormationModel``
that exist when a stack is first parsed, and files each model under the second component
of its ``__module__`` (``local`` for every module under ``hi_async.local``); the server
registers this model through :mod:`.cloudformation` at start-up. The resource it creates
is a real data store in the emulator's backend, the same one the HealthImaging API
answers from.

Its deletion, like CloudFormation's handler, waits until the data store is DELETED: a
stack that says DELETE_COMPLETE has no data store left DELETING.
"""

from __future__ import annotations

import time
from typing import Any

from moto.core.common_models import CloudFormationModel

from ..healthimaging.apierrors import ConflictException, ResourceNotFoundException
from ..healthimaging.registry import get_backend


class HealthImagingDatastore(CloudFormationModel):
    """The CloudFormation face of one emulator data store."""

    def __init__(self, account_id: str, region: str, datastore_id: str, arn: str) -> None:
        self.account_id = account_id
        self.region = region
        self.datastore_id = datastore_id
        self.arn = arn

    @staticmethod
    def cloudformation_name_type() -> str:
        return "DatastoreName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::HealthImaging::Datastore"

    @property
    def physical_resource_id(self) -> str:
        # The real resource's primary identifier (what Ref returns) is the data store ID.
        return self.datastore_id

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in ("DatastoreId", "DatastoreArn", "DatastoreStatus", "CreatedAt",
                        "UpdatedAt")

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if attribute_name == "DatastoreId":
            return self.datastore_id
        if attribute_name == "DatastoreArn":
            return self.arn
        if attribute_name in ("DatastoreStatus", "CreatedAt", "UpdatedAt"):
            backend = get_backend(self.account_id, self.region)
            props = backend.datastore_properties(backend.get_datastore(self.datastore_id))
            key = attribute_name[0].lower() + attribute_name[1:]
            return str(props[key])
        raise UnformattedGetAttTemplateException()

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str,
        region_name: str, **kwargs: Any,
    ) -> HealthImagingDatastore:
        props = cloudformation_json.get("Properties", {})
        tags = props.get("Tags") or {}
        if isinstance(tags, list):  # tolerate the Key/Value list form other resources use
            tags = {t["Key"]: t["Value"] for t in tags}
        backend = get_backend(account_id, region_name)
        # CloudFormation reports CREATE_COMPLETE only once the data store is ACTIVE, so the
        # emulator's CREATING phase is skipped: outputs are usable the moment the stack is.
        ds = backend.create_datastore(
            name=props.get("DatastoreName") or resource_name,
            tags={str(k): str(v) for k, v in tags.items()},
            kms_key_arn=props.get("KmsKeyArn"),
            ready=True,
        )
        return cls(account_id, region_name, ds.datastore_id,
                   backend.datastore_arn(ds.datastore_id))

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str,
        region_name: str,
    ) -> None:
        cls._delete(account_id, region_name, resource_name)

    def delete(self, account_id: str, region_name: str) -> None:
        """Called by moto's stack deletion; "already gone" counts as deleted, as on AWS."""
        self._delete(account_id, region_name, self.datastore_id)

    @staticmethod
    def _delete(account_id: str, region_name: str, datastore_id: str) -> None:
        backend = get_backend(account_id, region_name)
        try:
            backend.delete_datastore(datastore_id)
        except ResourceNotFoundException:
            return
        except ConflictException:
            status = backend.datastore_status(backend.get_datastore(datastore_id))
            if status not in ("DELETING", "DELETED"):
                raise  # image sets or running jobs: the deletion fails, as it would on AWS
        _wait_until_deleted(backend, datastore_id)

    def is_created(self) -> bool:
        return True


def _wait_until_deleted(backend: Any, datastore_id: str) -> None:
    """Sleep until the data store's DELETING phase is over (``--datastore-delay``)."""
    datastore = backend.get_datastore(datastore_id)
    while backend.datastore_status(datastore) == "DELETING":
        time.sleep(min(0.05, max(backend.datastore_delay / 10, 0.005)))
