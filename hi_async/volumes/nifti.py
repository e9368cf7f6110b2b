"""Write a volume as NIfTI-1 (``.nii.gz``) with nibabel's header, streaming the voxels.

The header is nibabel's :class:`~nibabel.nifti1.Nifti1Header`; the data is written by
this module, slice by slice, because nibabel's image writer would (rightly, for its
purposes) choose its own ``scl_slope``/``scl_inter`` from the data, and we must write the
DICOM ones (see ``scaling.py``). Slice-by-slice also keeps memory flat: the array may be
a memory map of a 2000-slice series, and nothing here holds more than one slice.

Geometry: the plan's affine (voxel (i, j, k) → RAS mm) is both the sform and the qform,
codes 1 (scanner-based anatomical coordinates). A sheared affine (gantry tilt) is exact
in the sform; the qform, which cannot hold a shear, gets nibabel's nearest rigid one.
Units mm and seconds; pixdim[4] is the time between temporal positions when the plan
knows it (0 otherwise, and for echoes).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
from nibabel.nifti1 import Nifti1Header

from .buffer import stream_slices
from .files import atomic_file, sidecar_path
from .plan import VolumePlan
from .scaling import Scaling, scaling_for, slice_values
from .sidecar import write_sidecar

#: NIfTI's 24-bit RGB voxel type (datatype 128), as nibabel spells it.
RGB24 = np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1")])
#: Fast compression: volumes are large and mostly written once, read many times.
_GZIP_LEVEL = 1


def nifti_header(plan: VolumePlan, scaling: Scaling | None = None) -> Nifti1Header:
    """The header of ``plan``'s NIfTI file (little-endian, single file)."""
    scaling = scaling or scaling_for(plan)
    header = Nifti1Header(endianness="<")
    if plan.samples_per_pixel == 3:
        header.set_data_dtype(RGB24)
    elif plan.samples_per_pixel != 1:
        raise ValueError(f"{plan.name}: NIfTI holds 1 or 3 samples per voxel, "
                         f"not {plan.samples_per_pixel}")
    else:
        header.set_data_dtype(scaling.dtype)
    rows, columns = plan.slice_shape[:2]
    nz = plan.shape[1] if plan.is_4d else plan.shape[0]
    shape = (columns, rows, nz, plan.shape[0]) if plan.is_4d else (columns, rows, nz)
    header.set_data_shape(shape)
    affine = plan.affine_array()
    header.set_sform(affine, code=1)
    header.set_qform(affine, code=1)  # strips any shear (nibabel's default)
    zooms = list(plan.spacing)
    if plan.is_4d:
        zooms.append(plan.time_step or 0.0)
    header.set_zooms(zooms)
    header.set_xyzt_units("mm", "sec")
    header.set_dim_info(slice=2)
    header.set_slope_inter(scaling.slope, scaling.intercept)
    if plan.window is not None and plan.samples_per_pixel == 1:
        # Viewers that honour cal_min/cal_max open the series with its own window.
        center, width = plan.window
        header["cal_min"], header["cal_max"] = center - width / 2, center + width / 2
    if plan.series_description:
        header["descrip"] = plan.series_description.encode("ascii", "replace")[:79]
    return header


def write_nifti(plan: VolumePlan, array: np.ndarray, path: Path, *,
                with_sidecar: bool = True) -> Path:
    """Write ``array`` (the plan's buffer shape, stored dtype) to ``path`` atomically,
    and (unless ``with_sidecar`` is false) the JSON sidecar beside it, as dcm2niix
    writes its BIDS sidecar: the header cannot hold per-slice UIDs or the warnings."""
    if tuple(array.shape) != plan.shape:
        raise ValueError(f"{plan.name}: array shape {array.shape} is not the plan's "
                         f"{plan.shape}")
    scaling = scaling_for(plan)
    header = nifti_header(plan, scaling)
    path = Path(path)
    with atomic_file(path) as tmp, open(tmp, "wb") as raw, \
            gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=_GZIP_LEVEL, mtime=0) as gz:
        header.write_to(gz)
        # The buffer's C order (t, z, row, column[, sample]) is NIfTI's voxel order
        # (i = column fastest, then j, k, t), samples interleaved as RGB24 wants.
        for flat, stored in enumerate(stream_slices(array, plan.slice_shape)):
            gz.write(np.ascontiguousarray(slice_values(plan, scaling, flat, stored)).tobytes())
    if with_sidecar:
        write_sidecar(plan, sidecar_path(path), scaling)
    return path
