"""The emulator's records: plain dataclasses the backend mutates and the store persists."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Datastore:
    datastore_id: str
    name: str
    created_at: float
    updated_at: float
    kms_key_arn: str | None = None
    lambda_authorizer_arn: str | None = None
    client_token: str | None = None
    #: When a DeleteDatastore was accepted; the status is derived from the clock.
    deleting_at: float | None = None
    tags: dict[str, str] = field(default_factory=dict)
    #: CreateDatastore's ``losslessStorageFormat``: HTJ2K (the default) or
    #: JPEG_2000_LOSSLESS; how imports store lossless frames.
    lossless_storage_format: str = "HTJ2K"


@dataclass(slots=True)
class Job:
    datastore_id: str
    job_id: str
    job_name: str
    job_status: str
    data_access_role_arn: str
    input_s3_uri: str
    output_s3_uri: str  # as the user gave it
    submitted_at: float
    client_token: str | None = None
    ended_at: float | None = None
    message: str | None = None
    input_owner_account_id: str | None = None


@dataclass(slots=True)
class ImageSetVersion:
    """The properties of one version of an image set (the metadata lives in the store)."""

    version: int
    state: str  # ACTIVE | LOCKED | DELETED
    workflow_status: str
    created_at: float
    updated_at: float
    is_primary: bool
    deleted_at: float | None = None
    message: str | None = None
    forced: bool | None = None
    #: While LOCKED by an update/copy/delete: when it settles and into which states.
    settles_at: float | None = None
    settle_state: str | None = None
    settle_workflow: str | None = None


@dataclass(slots=True)
class ImageSet:
    datastore_id: str
    image_set_id: str
    created_at: float
    versions: list[ImageSetVersion] = field(default_factory=list)
    #: Search keys of the latest version (DICOMTags as the search results report them).
    tags_dicom: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def latest(self) -> ImageSetVersion:
        return self.versions[-1]


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def image_set_from_dict(d: dict[str, Any]) -> ImageSet:
    versions = [ImageSetVersion(**v) for v in d.pop("versions")]
    return ImageSet(versions=versions, **d)
