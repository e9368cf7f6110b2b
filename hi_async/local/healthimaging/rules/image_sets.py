"""Image sets: GetImageSet, ListImageSetVersions, GetImageSetMetadata, GetImageFrame.

Also the lookups and the writing of new versions that the import and change rules share.
Each version's metadata document (see :mod:`.documents`) is kept gzipped in the store;
frames are files, indexed per image set in memory.
"""

from __future__ import annotations

import gzip
import json
from typing import Any

from .. import ids
from ..apierrors import ResourceNotFoundException, ValidationException
from ..models import ImageSet, ImageSetVersion
from .datastores import DatastoreRules
from .documents import dicom_tags, gzip_document


class ImageSetRules(DatastoreRules):
    """Reading image sets and their frames, and writing new versions of them."""

    # -- lookups ---------------------------------------------------------------------------
    def image_set(self, datastore_id: str, image_set_id: str) -> ImageSet:
        """The image set (states settled); 400 for bad IDs, 404 when unknown."""
        if not ids.is_id(datastore_id):
            raise ValidationException(
                f"datastoreId {datastore_id!r} is not 32 characters of [0-9a-z]")
        if not ids.is_id(image_set_id):
            raise ValidationException(
                f"imageSetId {image_set_id!r} is not 32 characters of [0-9a-z]")
        with self.lock:
            self.active_datastore(datastore_id)
            iset = self.image_sets.get(image_set_id)
            if iset is None or iset.datastore_id != datastore_id:
                raise ResourceNotFoundException(
                    f"image set {image_set_id} does not exist in data store {datastore_id}")
            self._settle(iset)
            return iset

    def _version(self, iset: ImageSet, version: str | None) -> ImageSetVersion:
        if version is None:
            return iset.latest
        if not ids.VERSION_RE.fullmatch(version):
            raise ValidationException(f"version {version!r} is not a number")
        n = int(version)
        if not 1 <= n <= len(iset.versions):
            raise ResourceNotFoundException(
                f"image set {iset.image_set_id} has no version {n} "
                f"(latest is {iset.latest.version})")
        return iset.versions[n - 1]

    def image_set_arn(self, iset: ImageSet) -> str:
        return ids.image_set_arn(self.region, self.account_id, iset.datastore_id,
                                 iset.image_set_id)

    def image_set_properties(self, iset: ImageSet,
                             v: ImageSetVersion | None = None) -> dict[str, Any]:
        v = v or iset.latest
        return {
            "datastoreId": iset.datastore_id, "imageSetId": iset.image_set_id,
            "versionId": str(v.version), "imageSetState": v.state,
            "imageSetWorkflowStatus": v.workflow_status, "createdAt": v.created_at,
            "updatedAt": v.updated_at, "deletedAt": v.deleted_at, "message": v.message,
            "imageSetArn": self.image_set_arn(iset),
            "overrides": {"forced": True} if v.forced else None, "isPrimary": v.is_primary,
        }

    def get_image_set(self, datastore_id: str, image_set_id: str,
                      version: str | None = None) -> dict[str, Any]:
        with self.lock:
            iset = self.image_set(datastore_id, image_set_id)
            return self.image_set_properties(iset, self._version(iset, version))

    def list_image_set_versions(self, datastore_id: str,
                                image_set_id: str) -> list[dict[str, Any]]:
        with self.lock:
            iset = self.image_set(datastore_id, image_set_id)
            out = []
            for v in reversed(iset.versions):
                props = self.image_set_properties(iset, v)
                props["ImageSetWorkflowStatus"] = props.pop("imageSetWorkflowStatus")
                for key in ("datastoreId", "imageSetArn"):
                    props.pop(key)
                out.append(props)
            return out

    def _readable(self, iset: ImageSet) -> None:
        if iset.latest.state == "DELETED":
            raise ResourceNotFoundException(f"image set {iset.image_set_id} has been deleted")

    def metadata_gz(self, datastore_id: str, image_set_id: str,
                    version: str | None = None) -> bytes:
        with self.lock:
            iset = self.image_set(datastore_id, image_set_id)
            self._readable(iset)
            v = self._version(iset, version)
            blob = self.store.get_metadata(image_set_id, v.version)
            if blob is None:
                raise ResourceNotFoundException(f"image set {image_set_id} has no metadata")
            return blob

    def metadata_doc(self, datastore_id: str, image_set_id: str,
                     version: str | None = None) -> dict[str, Any]:
        return json.loads(gzip.decompress(self.metadata_gz(datastore_id, image_set_id, version)))

    def frame(self, datastore_id: str, image_set_id: str,
              frame_id: str) -> tuple[bytes, str]:
        """The stored bytes and content type of one frame (the GetImageFrame hot path)."""
        with self.lock:
            iset = self.image_sets.get(image_set_id)
            if iset is None or iset.datastore_id != datastore_id or iset.latest.settles_at:
                iset = self.image_set(datastore_id, image_set_id)
            self._readable(iset)
            entry = self.frames.get(image_set_id, {}).get(frame_id)
            if entry is None:
                if not ids.is_id(frame_id):
                    raise ValidationException(
                        f"imageFrameId {frame_id!r} is not 32 characters of [0-9a-z]")
                raise ResourceNotFoundException(
                    f"image frame {frame_id} does not exist in image set {image_set_id}")
            return self.store.read_frame(entry[0]), entry[1]

    # -- writing versions ------------------------------------------------------------------
    def _new_version(self, iset: ImageSet, doc: dict[str, Any], *, workflow: str,
                     is_primary: bool | None = None, locked_as: str | None = None,
                     forced: bool | None = None) -> ImageSetVersion:
        now = self.clock()
        if is_primary is None and iset.versions:
            is_primary = iset.latest.is_primary
        primary = bool(is_primary)
        v = ImageSetVersion(len(iset.versions) + 1, "ACTIVE", workflow, iset.created_at, now,
                            primary, forced=forced)
        if locked_as is not None:
            v.state, v.workflow_status = "LOCKED", locked_as
            v.settles_at = now + self.lock_delay
            v.settle_state, v.settle_workflow = "ACTIVE", workflow
        iset.versions.append(v)
        iset.tags_dicom = dicom_tags(doc)
        self.image_sets[iset.image_set_id] = iset
        self.store.put_metadata(iset.image_set_id, v.version, gzip_document(doc))
        self._save_image_set(iset)
        self._index_primary(iset)
        return v

    def _new_image_set(self, datastore_id: str) -> tuple[ImageSet, dict[str, Any]]:
        iset = ImageSet(datastore_id, ids.new_id(), self.clock())
        doc = {"SchemaVersion": "1.1", "DatastoreID": datastore_id,
               "ImageSetID": iset.image_set_id, "Patient": {"DICOM": {}},
               "Study": {"DICOM": {}, "Series": {}}}
        return iset, doc
