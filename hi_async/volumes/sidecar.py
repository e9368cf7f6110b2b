"""The JSON sidecar of a volume: everything the array alone does not say. Pure, plus one
atomic write.

Written beside ``.npy`` volumes (where it is the only geometry there is) and beside
``.nii.gz`` volumes (where the header holds the affine, but not the per-slice positions,
UIDs, the original rescale or the warnings). Keys are camelCase like the rest of the
download's JSON output.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .files import atomic_file
from .plan import VolumePlan
from .scaling import Scaling, scaling_for

#: Array axes as the files store them (NIfTI voxel order; the .npy has the same shape).
AXES = ["column (i)", "row (j)", "slice (k)"]


def sidecar(plan: VolumePlan, scaling: Scaling | None = None) -> dict[str, Any]:
    """The sidecar document of ``plan`` written with ``scaling`` (default: the rule's)."""
    scaling = scaling or scaling_for(plan)
    nz = plan.shape[1] if plan.is_4d else plan.shape[0]
    rows, columns = plan.slice_shape[:2]
    shape = [columns, rows, nz] + ([plan.shape[0]] if plan.is_4d else [])
    axes = AXES + ([plan.fourth_axis] if plan.fourth_axis else [])
    if plan.samples_per_pixel > 1:
        shape.append(plan.samples_per_pixel)
        axes.append("sample")
    slices = []
    for flat, frame_id in enumerate(plan.frame_ids):
        slices.append({
            "index": list(plan.index_of[frame_id]),
            "imageFrameId": frame_id,
            "sopInstanceUid": plan.sop_instance_uids[flat],
            "frameNumber": plan.frame_numbers[flat],
            "imagePositionPatient": list(plan.positions[flat]),
            "rescaleSlope": plan.slopes[flat],
            "rescaleIntercept": plan.intercepts[flat],
        })
    return {
        "imageSetId": plan.image_set_id,
        "seriesInstanceUid": plan.series_instance_uid,
        "volume": plan.name,
        "seriesDescription": plan.series_description,
        "modality": plan.modality,
        "dimensions": 4 if plan.is_4d else 3,
        "shape": shape,
        "axes": axes,
        "fourthAxis": None if not plan.is_4d else {
            "kind": plan.fourth_axis, "attribute": plan.fourth_key,
            "values": list(plan.fourth_values), "stepSeconds": plan.time_step},
        "dtype": scaling.dtype.str,
        "storedDtype": plan.dtype,
        "samplesPerPixel": plan.samples_per_pixel,
        "photometricInterpretation": plan.photometric,
        "affine": [list(row) for row in plan.affine],
        "affineSpace": "RAS+ millimetres (NIfTI); voxel (i, j, k) = (column, row, slice)",
        "spacing": list(plan.spacing),
        "imageOrientationPatient": list(plan.orientation),
        "sliceOrder": "ascending projection of ImagePositionPatient on the normal of "
                      "ImageOrientationPatient (row direction x column direction)",
        "sliceLocations": list(plan.locations),
        "rescale": {
            "slope": scaling.slope, "intercept": scaling.intercept,
            "applied": scaling.rescaled,
            "type": plan.rescale_type,
            "meaning": ("values are real-world values" if scaling.rescaled else
                        "real-world value = stored value * slope + intercept"),
        },
        "window": None if plan.window is None else {"center": plan.window[0],
                                                    "width": plan.window[1]},
        "slices": slices,
        "warnings": list(plan.warnings),
    }


def write_sidecar(plan: VolumePlan, path: Path, scaling: Scaling | None = None) -> Path:
    """Write the sidecar of ``plan`` to ``path`` atomically; returns ``path``."""
    text = json.dumps(sidecar(plan, scaling), indent=1, allow_nan=False)
    with atomic_file(Path(path)) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
    return Path(path)
