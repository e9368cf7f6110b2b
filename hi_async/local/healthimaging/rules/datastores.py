"""Data stores: CreateDatastore, GetDatastore, ListDatastores, DeleteDatastore.

Also the lookups the other rules start from: :meth:`DatastoreRules.get_datastore` and
:meth:`DatastoreRules.active_datastore`.
"""

from __future__ import annotations

from typing import Any

from .. import ids
from ..apierrors import ConflictException, ResourceNotFoundException, ValidationException
from ..models import Datastore
from .state import BackendState


def check_id(value: str, what: str) -> None:
    """ValidationException unless ``value`` is a service ID (data store, image set)."""
    if not ids.is_id(value):
        raise ValidationException(
            f"{what} {value!r} is not valid: it must be 32 characters of [0-9a-z]")


class DatastoreRules(BackendState):
    """The data stores of one account in one region."""

    def datastore_arn(self, datastore_id: str) -> str:
        return ids.datastore_arn(self.region, self.account_id, datastore_id)

    def datastore_properties(self, ds: Datastore) -> dict[str, Any]:
        return {
            "datastoreId": ds.datastore_id, "datastoreName": ds.name,
            "datastoreStatus": self.datastore_status(ds), "kmsKeyArn": ds.kms_key_arn,
            "lambdaAuthorizerArn": ds.lambda_authorizer_arn,
            "losslessStorageFormat": ds.lossless_storage_format,
            "datastoreArn": self.datastore_arn(ds.datastore_id),
            "createdAt": ds.created_at, "updatedAt": ds.updated_at,
        }

    @staticmethod
    def _check_tags(tags: dict[str, str]) -> None:
        for key in tags:
            if key.startswith("aws:"):
                raise ValidationException(f"tag key {key!r} uses the reserved prefix aws:")

    def create_datastore(self, name: str | None = None, client_token: str | None = None,
                         tags: dict[str, str] | None = None, kms_key_arn: str | None = None,
                         lambda_authorizer_arn: str | None = None,
                         lossless_storage_format: str | None = None,
                         *, ready: bool = False) -> Datastore:
        """Create a data store; ``ready=True`` skips CREATING (for seeding and CloudFormation)."""
        self._check_tags(tags or {})
        with self.lock:
            if client_token:
                for ds in self.datastores.values():
                    if ds.client_token == client_token and ds.deleting_at is None:
                        return ds
            now = self.clock()
            created = now - self.datastore_delay if ready else now
            ds = Datastore(ids.new_id(), name or "", created, created, kms_key_arn,
                           lambda_authorizer_arn, client_token, tags=dict(tags or {}),
                           lossless_storage_format=lossless_storage_format or "HTJ2K")
            with self.store.transaction():
                self.datastores[ds.datastore_id] = ds
                self._save_datastore(ds)
            return ds

    def get_datastore(self, datastore_id: str) -> Datastore:
        check_id(datastore_id, "datastoreId")
        with self.lock:
            ds = self.datastores.get(datastore_id)
            if ds is None:
                raise ResourceNotFoundException(f"data store {datastore_id} does not exist")
            return ds

    def active_datastore(self, datastore_id: str) -> Datastore:
        """The data store, which must be ACTIVE (image set and job operations need it)."""
        ds = self.get_datastore(datastore_id)
        status = self.datastore_status(ds)
        if status == "DELETED":
            raise ResourceNotFoundException(f"data store {datastore_id} has been deleted")
        if status != "ACTIVE":
            raise ConflictException(
                f"data store {datastore_id} is {status}, not ACTIVE; wait until it is ACTIVE")
        return ds

    def list_datastores(self, status: str | None = None) -> list[Datastore]:
        with self.lock:
            items = sorted(self.datastores.values(), key=lambda d: (d.created_at, d.datastore_id))
            return [d for d in items if status is None or self.datastore_status(d) == status]

    def delete_datastore(self, datastore_id: str) -> Datastore:
        with self.lock:
            ds = self.get_datastore(datastore_id)
            status = self.datastore_status(ds)
            if status in ("DELETING", "DELETED"):
                raise ConflictException(f"data store {datastore_id} is already {status}")
            if status == "CREATING":
                raise ConflictException(
                    f"data store {datastore_id} is still CREATING; delete it once ACTIVE")
            mine = [s for s in self.image_sets.values() if s.datastore_id == datastore_id]
            for iset in mine:
                self._settle(iset)  # a deletion that has settled no longer counts
            live = [s for s in mine if s.latest.state != "DELETED"]
            if live:
                raise ConflictException(
                    f"data store {datastore_id} still holds {len(live)} image set(s); "
                    "delete them first")
            running = [j for j in self.jobs.values() if j.datastore_id == datastore_id
                       and j.job_status in ("SUBMITTED", "IN_PROGRESS")]
            if running:
                raise ConflictException(
                    f"data store {datastore_id} has {len(running)} import job(s) running")
            ds.deleting_at = ds.updated_at = self.clock()
            with self.store.transaction():
                self._save_datastore(ds)
            return ds
