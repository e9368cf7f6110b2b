"""Merging imported instances into image sets (each batch of an import job).

Since mid-2025 the instances of one DICOM series form one primary image set; later
imports of the same series merge into it and bump its version, and instances whose
Patient or Study attributes conflict with it go to a non-primary image set instead.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .. import ids
from ..models import ImageSet
from ..records import ParsedInstance
from .documents import merge
from .image_sets import ImageSetRules

STORED_HTJ2K = "1.2.840.10008.1.2.4.202"


@dataclass(frozen=True, slots=True)
class InstanceResult:
    """Where one imported instance went (what the job's success record reports)."""

    input_file: str
    image_set_id: str
    is_primary: bool
    image_set_version: int


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


class InstanceRules(ImageSetRules):
    """Where imported instances go: their series' primary image set, or a new one."""

    def _put_instance(self, iset: ImageSet, doc: dict[str, Any],
                      inst: ParsedInstance) -> None:
        merge(doc["Patient"]["DICOM"], inst.patient_dicom)
        merge(doc["Study"]["DICOM"], inst.study_dicom)
        doc["Study"]["DICOM"].setdefault("StudyInstanceUID", inst.study_instance_uid)
        series = doc["Study"]["Series"].setdefault(
            inst.series_instance_uid, {"DICOM": {}, "Instances": {}})
        merge(series["DICOM"], inst.series_dicom)
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

    def add_instances(self, datastore_id: str, instances: Sequence[ParsedInstance], *,
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
