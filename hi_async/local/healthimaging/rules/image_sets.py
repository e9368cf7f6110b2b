"""Image set rules: grouping imported instances, versions, metadata, copy, update, delete.

A mixin of :class:`~.backend.Backend` (which holds the state these methods use). The
metadata document follows the reference page's shape (SchemaVersion 1.1). Since mid-2025
the instances of one DICOM series form one primary image set; later imports of the same
series merge into it and bump its version, and instances whose Patient or Study
attributes conflict with it go to a non-primary image set instead.
"""

from __future__ import annotations

import copy
import gzip
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...dicom_import.records import ParsedInstance
from .. import ids
from ..apierrors import ResourceNotFoundException, ValidationException
from ..models import ImageSet, ImageSetVersion

if TYPE_CHECKING:
    from ..backend import Backend

STORED_HTJ2K = "1.2.840.10008.1.2.4.202"


@dataclass(frozen=True, slots=True)
class InstanceResult:
    """Where one imported instance went (what the job's success record reports)."""

    input_file: str
    image_set_id: str
    is_primary: bool
    image_set_version: int


def _gz(doc: dict[str, Any]) -> bytes:
    return gzip.compress(json.dumps(doc, separators=(",", ":")).encode(), 6, mtime=0)


def _conflicts(doc: dict[str, Any], inst: ParsedInstance) -> bool:
    study_uid = doc["Study"]["DICOM"].get("StudyInstanceUID")
    if study_uid not in (None, inst.study_instance_uid):
        return True
    for level, new in (("Patient", inst.patient_dicom), ("Study", inst.study_dicom)):
        old = doc[level]["DICOM"]
        for key, value in new.items():
            if value is not None and old.get(key) is not None and old[key] != value:
                return True
    return False


def _merge(dst: dict[str, Any], src: dict[str, Any]) -> None:
    for key, value in src.items():
        if isinstance(value, dict) and isinstance(dst.get(key), dict):
            _merge(dst[key], value)
        else:
            dst[key] = copy.deepcopy(value)


def _remove(dst: dict[str, Any], spec: dict[str, Any]) -> None:
    for key, value in spec.items():
        if key not in dst:
            continue
        if isinstance(value, dict) and value and isinstance(dst[key], dict):
            _remove(dst[key], value)
        else:
            del dst[key]


def _dicom_tags(doc: dict[str, Any]) -> dict[str, Any]:
    """The DICOMTags a search result reports, drawn from the metadata document."""
    patient, study = doc["Patient"]["DICOM"], doc["Study"]["DICOM"]
    series_map = doc["Study"].get("Series", {})
    series = next(iter(series_map.values()), {}).get("DICOM", {}) if series_map else {}
    n_instances = sum(len(s.get("Instances", {})) for s in series_map.values())

    def text(d: dict[str, Any], key: str) -> str | None:
        value = d.get(key)
        return None if value is None else str(value).strip()

    number = text(series, "SeriesNumber")
    tags = {
        "DICOMPatientId": text(patient, "PatientID"),
        "DICOMPatientName": text(patient, "PatientName"),
        "DICOMPatientBirthDate": text(patient, "PatientBirthDate"),
        "DICOMPatientSex": text(patient, "PatientSex"),
        "DICOMStudyInstanceUID": text(study, "StudyInstanceUID"),
        "DICOMStudyId": text(study, "StudyID"),
        "DICOMStudyDescription": text(study, "StudyDescription"),
        "DICOMNumberOfStudyRelatedSeries": len(series_map),
        "DICOMNumberOfStudyRelatedInstances": n_instances,
        "DICOMAccessionNumber": text(study, "AccessionNumber"),
        "DICOMSeriesInstanceUID": text(series, "SeriesInstanceUID"),
        "DICOMSeriesModality": text(series, "Modality"),
        "DICOMSeriesBodyPart": text(series, "BodyPartExamined"),
        "DICOMSeriesNumber": int(number) if number and number.lstrip("-").isdigit() else None,
        "DICOMStudyDate": text(study, "StudyDate"),
        "DICOMStudyTime": text(study, "StudyTime"),
    }
    return {k: v for k, v in tags.items() if v is not None}


def _frame_ids(doc: dict[str, Any]) -> list[str]:
    return [f["ID"] for s in doc["Study"].get("Series", {}).values()
            for i in s.get("Instances", {}).values() for f in i.get("ImageFrames", [])]


class ImageSetRules:
    """Image set operations of :class:`~.backend.Backend`."""

    # -- lookups -----------------------------------------------------------------------
    def _index_primary(self: Backend, iset: ImageSet) -> None:
        latest = iset.latest
        series = iset.tags_dicom.get("DICOMSeriesInstanceUID")
        key = (iset.datastore_id, series)
        if latest.is_primary and latest.state != "DELETED" and series:
            self.primary_by_series[key] = iset.image_set_id
        elif self.primary_by_series.get(key) == iset.image_set_id:
            del self.primary_by_series[key]

    def _settle(self: Backend, iset: ImageSet) -> None:
        latest = iset.latest
        if latest.settles_at is not None and self.clock() >= latest.settles_at:
            latest.state, latest.workflow_status = latest.settle_state, latest.settle_workflow
            latest.settles_at = latest.settle_state = latest.settle_workflow = None
            with self.store.transaction():
                self._save_image_set(iset)
            self._index_primary(iset)

    def image_set(self: Backend, datastore_id: str, image_set_id: str) -> ImageSet:
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

    def _version(self: Backend, iset: ImageSet, version: str | None) -> ImageSetVersion:
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

    def image_set_arn(self: Backend, iset: ImageSet) -> str:
        return ids.image_set_arn(self.region, self.account_id, iset.datastore_id,
                                 iset.image_set_id)

    def image_set_properties(self: Backend, iset: ImageSet,
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

    def get_image_set(self: Backend, datastore_id: str, image_set_id: str,
                      version: str | None = None) -> dict[str, Any]:
        with self.lock:
            iset = self.image_set(datastore_id, image_set_id)
            return self.image_set_properties(iset, self._version(iset, version))

    def list_image_set_versions(self: Backend, datastore_id: str,
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

    def _readable(self: Backend, iset: ImageSet) -> None:
        if iset.latest.state == "DELETED":
            raise ResourceNotFoundException(f"image set {iset.image_set_id} has been deleted")

    def metadata_gz(self: Backend, datastore_id: str, image_set_id: str,
                    version: str | None = None) -> bytes:
        with self.lock:
            iset = self.image_set(datastore_id, image_set_id)
            self._readable(iset)
            v = self._version(iset, version)
            blob = self.store.get_metadata(image_set_id, v.version)
            if blob is None:
                raise ResourceNotFoundException(f"image set {image_set_id} has no metadata")
            return blob

    def metadata_doc(self: Backend, datastore_id: str, image_set_id: str,
                     version: str | None = None) -> dict[str, Any]:
        return json.loads(gzip.decompress(self.metadata_gz(datastore_id, image_set_id, version)))

    def frame(self: Backend, datastore_id: str, image_set_id: str,
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

    # -- writing versions --------------------------------------------------------------
    def _new_version(self: Backend, iset: ImageSet, doc: dict[str, Any], *, workflow: str,
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
        iset.tags_dicom = _dicom_tags(doc)
        self.image_sets[iset.image_set_id] = iset
        self.store.put_metadata(iset.image_set_id, v.version, _gz(doc))
        self._save_image_set(iset)
        self._index_primary(iset)
        return v

    def _new_image_set(self: Backend, datastore_id: str) -> tuple[ImageSet, dict[str, Any]]:
        iset = ImageSet(datastore_id, ids.new_id(), self.clock())
        doc = {"SchemaVersion": "1.1", "DatastoreID": datastore_id,
               "ImageSetID": iset.image_set_id, "Patient": {"DICOM": {}},
               "Study": {"DICOM": {}, "Series": {}}}
        return iset, doc

    def _put_instance(self: Backend, iset: ImageSet, doc: dict[str, Any],
                      inst: ParsedInstance) -> None:
        _merge(doc["Patient"]["DICOM"], inst.patient_dicom)
        _merge(doc["Study"]["DICOM"], inst.study_dicom)
        doc["Study"]["DICOM"].setdefault("StudyInstanceUID", inst.study_instance_uid)
        series = doc["Study"]["Series"].setdefault(
            inst.series_instance_uid, {"DICOM": {}, "Instances": {}})
        _merge(series["DICOM"], inst.series_dicom)
        series["DICOM"].setdefault("SeriesInstanceUID", inst.series_instance_uid)
        frames = []
        index = self.frames.setdefault(iset.image_set_id, {})
        for f in inst.frames:
            frame_id = ids.new_id()
            rel = self.store.write_frame(frame_id, f.data)
            self.store.put_frame(iset.image_set_id, frame_id, f.content_type, rel)
            index[frame_id] = (rel, f.content_type)
            frames.append({"ID": frame_id, "FrameSizeInBytes": len(f.data),
                           "MinPixelValue": f.min_pixel_value, "MaxPixelValue": f.max_pixel_value,
                           "PixelDataChecksumFromBaseToFullResolution":
                               [dict(c) for c in f.checksums]})
        series["Instances"][inst.sop_instance_uid] = {
            "DICOM": copy.deepcopy(inst.instance_dicom), "DICOMVRs": dict(inst.instance_vrs),
            "StoredTransferSyntaxUID": inst.stored_transfer_syntax_uid or STORED_HTJ2K,
            "ChecksumType": "DECOMPRESSED", "ImageFrames": frames,
        }

    def add_instances(self: Backend, datastore_id: str, instances: Sequence[ParsedInstance], *,
                      job_id: str | None = None) -> list[InstanceResult]:
        """Merge parsed instances into their series' image sets; see the module docstring."""
        with self.lock, self.store.transaction():
            self.active_datastore(datastore_id)
            by_series: dict[str, list[ParsedInstance]] = {}
            for inst in instances:
                by_series.setdefault(inst.series_instance_uid, []).append(inst)
            results: list[InstanceResult] = []
            for series_uid, group in by_series.items():
                primary_id = self.primary_by_series.get((datastore_id, series_uid))
                if primary_id is not None:
                    self._settle(self.image_sets[primary_id])
                    primary_id = self.primary_by_series.get((datastore_id, series_uid))
                if primary_id is not None:
                    primary = self.image_sets[primary_id]
                    doc = self.metadata_doc(datastore_id, primary_id)
                    fresh = False
                else:
                    primary, doc = self._new_image_set(datastore_id)
                    fresh = True
                placed: list[ParsedInstance] = []
                others: list[ParsedInstance] = []
                for inst in group:
                    if placed or not fresh:
                        target = others if _conflicts(doc, inst) else placed
                    else:
                        target = placed
                    target.append(inst)
                    if target is placed:
                        self._put_instance(primary, doc, inst)
                if placed:
                    v = self._new_version(primary, doc, workflow="CREATED" if fresh else "IMPORTED",
                                          is_primary=True)
                    results += [InstanceResult(i.input_file, primary.image_set_id, True, v.version)
                                for i in placed]
                if others:
                    extra, extra_doc = self._new_image_set(datastore_id)
                    for inst in others:
                        self._put_instance(extra, extra_doc, inst)
                    v = self._new_version(extra, extra_doc, workflow="CREATED", is_primary=False)
                    results += [InstanceResult(i.input_file, extra.image_set_id, False, v.version)
                                for i in others]
            return results
