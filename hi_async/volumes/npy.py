"""Write a volume as ``.npy`` plus its ``.json`` sidecar, streaming the voxels.

The array has NIfTI's voxel order, shape ``(columns, rows, slices[, t][, samples])``,
so the sidecar's affine applies to ``np.load(path)[i, j, k]`` exactly as to the NIfTI
file, and ``nibabel.Nifti1Image(np.load(p), affine)`` just works. It is stored in
Fortran order: those bytes are the buffer's C-order bytes, so a slice at a time is
written without reordering (colour samples, the slowest axis in that order, are
written one sample plane after another).

Values follow ``scaling.py`` (stored integers and the rescale in the sidecar, or float32
real-world values), the same numbers the NIfTI output holds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .buffer import stream_slices
from .files import atomic_file, sidecar_path
from .plan import VolumePlan
from .scaling import scaling_for, slice_values
from .sidecar import write_sidecar


def write_npy(plan: VolumePlan, array: np.ndarray, path: Path) -> tuple[Path, Path]:
    """Write ``array`` (the plan's buffer shape) to ``path`` (.npy) and its sidecar
    (.json beside it), each atomically; returns both paths."""
    if tuple(array.shape) != plan.shape:
        raise ValueError(f"{plan.name}: array shape {array.shape} is not the plan's "
                         f"{plan.shape}")
    scaling = scaling_for(plan)
    samples = plan.samples_per_pixel
    spatial = plan.shape[:-1] if samples > 1 else plan.shape  # (t, z, rows, columns)
    header = {"descr": np.lib.format.dtype_to_descr(scaling.dtype), "fortran_order": True,
              "shape": tuple(reversed(spatial)) + ((samples,) if samples > 1 else ())}
    path = Path(path)
    with atomic_file(path) as tmp, open(tmp, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, header)
        for sample in range(samples):
            for flat, stored in enumerate(stream_slices(array, plan.slice_shape)):
                values = slice_values(plan, scaling, flat, stored)
                if samples > 1:
                    values = values[..., sample]
                fh.write(np.ascontiguousarray(values).tobytes())
    side = write_sidecar(plan, sidecar_path(path), scaling)
    return path, side
