"""Hand-made image set metadata documents, in the served conventions, for fast unit tests.

IS/DS values are strings (some with the DICOM pad space), US values numbers, multiple
values arrays, sequences arrays of keyword objects, as the reference page describes.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from hi_async.volumes import VolumePlan, plan_volumes
from hi_async.volumes.plan import Note

AXIAL = ["1", "0", "0", "0", "1", "0"]
IMAGE_SET_ID = "0" * 31 + "1"
SERIES = "1.2.3.4.5"
_ids = itertools.count(1)


def frame_id() -> str:
    return f"{next(_ids):032x}"


def ds(value: float) -> str:
    """A DS string the way files carry them: shortest form, padded to even length."""
    text = f"{value:g}"
    return text + " " if len(text) % 2 else text


def image(position: Sequence[float] | None, *, orientation: Sequence[str] | None = AXIAL,
          spacing: Sequence[str] | None = ("0.5", "0.25 "), rows: int = 4, columns: int = 3,
          number: int = 1, frames: int = 1, **attrs: Any) -> dict[str, Any]:
    """One instance: ``{"DICOM": ..., "ImageFrames": [...]}`` (position None: no geometry)."""
    dicom: dict[str, Any] = {
        "SOPInstanceUID": None, "Rows": rows, "Columns": columns, "BitsAllocated": 16,
        "BitsStored": 12, "HighBit": 11, "PixelRepresentation": 1, "SamplesPerPixel": 1,
        "PhotometricInterpretation": "MONOCHROME2", "InstanceNumber": f"{number} ",
        "SliceThickness": "5 ", "PixelData": None, "NumberOfFrames": str(frames),
    }
    if position is not None:
        dicom["ImagePositionPatient"] = [ds(v) for v in position]
    if orientation is not None:
        dicom["ImageOrientationPatient"] = list(orientation)
    if spacing is not None:
        dicom["PixelSpacing"] = list(spacing)
    dicom.update(attrs)
    return {"DICOM": dicom, "ImageFrames": [{"ID": frame_id()} for _ in range(frames)]}


def document(instances: Sequence[dict[str, Any]], *, series: str = SERIES,
             **series_attrs: Any) -> dict[str, Any]:
    """An image set with one series holding ``instances`` (SOP UIDs made up in order)."""
    members = {}
    for n, inst in enumerate(instances, start=1):
        sop = f"{series}.{n}"
        inst["DICOM"]["SOPInstanceUID"] = sop
        members[sop] = inst
    return {
        "SchemaVersion": "1.1", "DatastoreID": "f" * 32, "ImageSetID": IMAGE_SET_ID,
        "Patient": {"DICOM": {"PatientID": "P"}},
        "Study": {"DICOM": {"StudyInstanceUID": "1.2.3"},
                  "Series": {series: {"DICOM": {"SeriesInstanceUID": series, "Modality": "CT",
                                                **series_attrs},
                                      "Instances": members}}},
    }


def axial_stack(distances: Sequence[float], *, start: Sequence[float] = (10, 20, 30),
                numbers: Sequence[int] | None = None, **attrs: Any) -> list[dict[str, Any]]:
    numbers = numbers or range(1, len(distances) + 1)
    return [image((start[0], start[1], start[2] + d), number=n, **attrs)
            for d, n in zip(distances, numbers, strict=True)]


def plan_one(doc: dict[str, Any]) -> VolumePlan:
    plans, notes = plan_volumes(doc)
    assert notes == [], notes
    (plan,) = plans
    return plan


def plans_and_notes(doc: dict[str, Any]) -> tuple[list[VolumePlan], list[Note]]:
    return plan_volumes(doc)


def frame_ids(doc: dict[str, Any]) -> list[str]:
    """Every frame ID in document order."""
    return [f["ID"] for s in doc["Study"]["Series"].values()
            for i in s["Instances"].values() for f in i["ImageFrames"]]


def voxel_to_lps(plan: VolumePlan, i: float, j: float, k: float) -> np.ndarray:
    """Where the plan's affine puts voxel (i, j, k), in LPS (to compare with DICOM)."""
    ras = plan.affine_array() @ np.array([i, j, k, 1.0])
    return np.array([-ras[0], -ras[1], ras[2]])
