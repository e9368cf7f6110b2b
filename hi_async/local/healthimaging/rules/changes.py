"""Changing image sets after import: UpdateImageSetMetadata, CopyImageSet, DeleteImageSet.

Each change writes a new version (delete changes the latest in place), answers LOCKED
with the in-flight workflow status as the service does, and settles to ACTIVE (or
DELETED) after the backend's ``lock_delay``.
"""

from __future__ import annotations

import gzip
import json
from typing import Any

from ..apierrors import ConflictException, ValidationException
from ..models import ImageSet, ImageSetVersion
from .documents import frame_ids, merge
from .image_sets import ImageSetRules
from .metadata_updates import apply_updates, parse_document


class ChangeRules(ImageSetRules):
    """Update, copy and delete of image sets."""

    def _writable(self, iset: ImageSet, latest_version: str | None) -> None:
        if iset.latest.state != "ACTIVE":
            raise ConflictException(
                f"image set {iset.image_set_id} is {iset.latest.state}; retry once it is ACTIVE")
        if latest_version is not None and latest_version != str(iset.latest.version):
            raise ConflictException(
                f"latest version of image set {iset.image_set_id} is "
                f"{iset.latest.version}, not {latest_version}; read it again and retry")

    def update_image_set_metadata(self, datastore_id: str, image_set_id: str,
                                  latest_version: str, updates: dict[str, Any], *,
                                  force: bool = False) -> dict[str, Any]:
        with self.lock, self.store.transaction():
            iset = self.image_set(datastore_id, image_set_id)
            self._writable(iset, latest_version)
            revert = updates.get("revertToVersionId")
            dicom_updates = updates.get("DICOMUpdates")
            # MetadataUpdates is a union: exactly one of its members, and DICOMUpdates
            # must carry at least one of its two attribute documents.
            if (revert is None) == (dicom_updates is None):
                raise ValidationException(
                    "updateImageSetMetadataUpdates takes exactly one of DICOMUpdates and "
                    "revertToVersionId")
            if revert is not None:
                doc = json.loads(gzip.decompress(self.metadata_gz(datastore_id, image_set_id,
                                                                   str(revert))))
            else:
                assert dicom_updates is not None  # exactly one of the two, checked above
                if not (dicom_updates.get("updatableAttributes")
                        or dicom_updates.get("removableAttributes")):
                    raise ValidationException(
                        "DICOMUpdates needs updatableAttributes or removableAttributes")
                doc = self._updated_doc(iset, dicom_updates, force=force)
            v = self._new_version(iset, doc, workflow="UPDATED", locked_as="UPDATING",
                                  forced=True if force else None)
            props = self.image_set_properties(iset, v)
            props["latestVersionId"] = props.pop("versionId")
            return props

    def _updated_doc(self, iset: ImageSet, dicom_updates: dict[str, Any], *,
                     force: bool) -> dict[str, Any]:
        """The latest metadata with the DICOMUpdates applied, under the service's rules
        (:mod:`.metadata_updates`)."""
        docs = {key: parse_document(key, raw) for key in ("removableAttributes",
                                                           "updatableAttributes")
                if (raw := dicom_updates.get(key)) is not None}
        doc = self.metadata_doc(iset.datastore_id, iset.image_set_id)
        return apply_updates(doc, docs.get("removableAttributes"),
                             docs.get("updatableAttributes"), force=force,
                             primary=iset.latest.is_primary)

    def copy_image_set(self, datastore_id: str, source_id: str, info: dict[str, Any], *,
                       force: bool = False, promote_to_primary: bool = False) -> dict[str, Any]:
        with self.lock, self.store.transaction():
            src = self.image_set(datastore_id, source_id)
            source_info = info.get("sourceImageSet") or {}
            self._writable(src, source_info.get("latestVersionId"))
            doc = self.metadata_doc(datastore_id, source_id)
            copiable = (source_info.get("DICOMCopies") or {}).get("copiableAttributes")
            if copiable:
                try:
                    spec = json.loads(copiable)
                    wanted = {(s, i) for s, series in spec["Study"]["Series"].items()
                              for i in series.get("Instances", {})}
                except (ValueError, KeyError, TypeError, AttributeError) as exc:
                    raise ValidationException(
                        "copiableAttributes must be JSON of the form "
                        '{"SchemaVersion":"1.1","Study":{"Series":{"<uid>":{"Instances":{...}}}}}'
                    ) from exc
                for s_uid, series in list(doc["Study"]["Series"].items()):
                    series["Instances"] = {k: v for k, v in series["Instances"].items()
                                           if (s_uid, k) in wanted}
                    if not series["Instances"]:
                        del doc["Study"]["Series"][s_uid]
            dest_info = info.get("destinationImageSet")
            if dest_info:
                dest = self.image_set(datastore_id, dest_info["imageSetId"])
                self._writable(dest, dest_info.get("latestVersionId"))
                dest_doc = self.metadata_doc(datastore_id, dest.image_set_id)
                if not force and (dest_doc["Patient"]["DICOM"] != doc["Patient"]["DICOM"] or
                                  dest_doc["Study"]["DICOM"].get("StudyInstanceUID")
                                  != doc["Study"]["DICOM"].get("StudyInstanceUID")):
                    raise ConflictException(
                        "source and destination image sets differ in Patient or Study "
                        "attributes; pass force=true to copy anyway")
                merge(dest_doc["Study"]["Series"], doc["Study"]["Series"])
                new_doc = dest_doc
            else:
                dest, new_doc = self._new_image_set(datastore_id)
                new_doc["Patient"], new_doc["Study"] = doc["Patient"], doc["Study"]
            index = self.frames.setdefault(dest.image_set_id, {})
            src_frames = self.frames.get(source_id, {})
            for frame_id in frame_ids(new_doc):
                if frame_id not in index and frame_id in src_frames:
                    index[frame_id] = src_frames[frame_id]
                    self.store.put_frame(dest.image_set_id, frame_id, src_frames[frame_id][1],
                                         src_frames[frame_id][0])
            primary = promote_to_primary or bool(dest_info and dest.latest.is_primary)
            if promote_to_primary:
                old = self.primary_by_series.get(
                    (datastore_id, src.tags_dicom.get("DICOMSeriesInstanceUID")))
                if old and old != dest.image_set_id:
                    self.image_sets[old].latest.is_primary = False
                    self._save_image_set(self.image_sets[old])
                    self._index_primary(self.image_sets[old])
            v = self._new_version(dest, new_doc, workflow="COPIED", is_primary=primary,
                                  locked_as="COPYING", forced=True if force else None)
            if src is not dest:
                self._lock_source(src)
            return {
                "datastoreId": datastore_id,
                "sourceImageSetProperties": self._copy_props(src, src.latest),
                "destinationImageSetProperties": self._copy_props(dest, v),
            }

    def _lock_source(self, src: ImageSet) -> None:
        """The copy's source is read-only until the copy ends (AWS answers LOCKED /
        COPYING_WITH_READ_ONLY_ACCESS for it); it then returns to what it was."""
        sv = src.latest
        sv.settle_state, sv.settle_workflow = sv.state, sv.workflow_status
        sv.state, sv.workflow_status = "LOCKED", "COPYING_WITH_READ_ONLY_ACCESS"
        sv.settles_at = self.clock() + self.lock_delay
        self._save_image_set(src)

    def _copy_props(self, iset: ImageSet, v: ImageSetVersion) -> dict[str, Any]:
        return {"imageSetId": iset.image_set_id, "latestVersionId": str(v.version),
                "imageSetState": v.state, "imageSetWorkflowStatus": v.workflow_status,
                "createdAt": v.created_at, "updatedAt": v.updated_at,
                "imageSetArn": self.image_set_arn(iset)}

    def delete_image_set(self, datastore_id: str, image_set_id: str) -> dict[str, Any]:
        with self.lock, self.store.transaction():
            iset = self.image_set(datastore_id, image_set_id)
            self._writable(iset, None)
            v = iset.latest
            now = self.clock()
            v.state, v.workflow_status, v.deleted_at, v.updated_at = "LOCKED", "DELETING", now, now
            v.settles_at = now + self.lock_delay
            v.settle_state = v.settle_workflow = "DELETED"
            self._save_image_set(iset)
            self._index_primary(iset)
            return {"datastoreId": datastore_id, "imageSetId": image_set_id,
                    "imageSetState": v.state, "imageSetWorkflowStatus": v.workflow_status}
