"""A finished volume as the library hands it over (``Downloader.volumes()`` yields these).

``Volume.array`` is what the volume's ``.npy`` file holds: NIfTI voxel order
``(i, j, k[, t][, sample])`` = (column, row, slice[, 4th axis][, colour sample]), so the
affine applies to ``array[i, j, k]`` directly, and the values follow the scaling rule of
``scaling.py`` (stored integers with ``slope``/``intercept``, or float32 real-world
values with an identity rescale). ``to_nifti`` and ``to_npy`` write exactly the files
``--volume`` writes.

Memory: a volume up to ``memmap_threshold`` bytes is a copy in memory; a larger one
keeps a read-only map of its assembly file, taken before the file is removed (on POSIX a
mapping outlives the name), so a 2000-slice series costs page cache, not resident memory,
and its disk space is returned when the Volume is garbage-collected.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from .buffer import DEFAULT_MEMMAP_THRESHOLD, VolumeBuffer, stream_slices
from .plan import VolumePlan
from .scaling import Scaling, scaling_for, slice_values


def voxel_shape(plan: VolumePlan) -> list[int]:
    """The volume's shape as its files hold it: [columns, rows, slices(, t)(, samples)]."""
    rows, columns = plan.slice_shape[:2]
    nz = plan.shape[1] if plan.is_4d else plan.shape[0]
    shape = [columns, rows, nz] + ([plan.shape[0]] if plan.is_4d else [])
    return shape + ([plan.samples_per_pixel] if plan.samples_per_pixel > 1 else [])


def voxel_order(values: np.ndarray, plan: VolumePlan) -> np.ndarray:
    """A view of a buffer-layout array ``(t, z, rows, columns[, samples])`` in NIfTI voxel
    order ``(columns, rows, z[, t][, samples])``: no copy, the same bytes."""
    view = values.T
    return np.moveaxis(view, 0, -1) if plan.samples_per_pixel > 1 else view


class Volume:
    """One series' volume (or one of its stacks): voxels, geometry and the sidecar's facts."""

    __slots__ = ("_array", "_scaling", "_stored", "plan")

    def __init__(self, plan: VolumePlan, stored: np.ndarray, values: np.ndarray,
                 scaling: Scaling) -> None:
        """``stored``: the buffer layout in the stored dtype; ``values``: the same layout
        after ``scaling`` (the same array when nothing is rescaled)."""
        self.plan = plan
        self._stored = stored
        self._scaling = scaling
        self._array = voxel_order(values, plan)

    @classmethod
    def from_buffer(cls, buffer: VolumeBuffer, *,
                    memmap_threshold: int = DEFAULT_MEMMAP_THRESHOLD) -> Volume:
        """Take a complete buffer's voxels before the buffer is closed (see the module
        docstring for where they live)."""
        plan = buffer.plan
        if not buffer.complete:
            raise ValueError(f"volume {plan.name} is incomplete: "
                             f"{len(buffer.missing())} frames are missing")
        mapped = buffer.memory_mapped and plan.nbytes > memmap_threshold
        stored: np.ndarray
        if not buffer.memory_mapped:
            stored = buffer.array  # closing the buffer only drops its own reference
        elif not mapped:
            stored = np.array(buffer.array)
        else:
            assert buffer.path is not None
            stored = np.memmap(buffer.path, dtype=buffer.array.dtype, mode="r",
                               shape=plan.shape)
        scaling = scaling_for(plan)
        if not scaling.rescaled:
            return cls(plan, stored, stored, scaling)
        if not mapped:
            values = np.empty(plan.shape, dtype=scaling.dtype)
            flat_values = values.reshape((-1, *plan.slice_shape))
            for flat, slice_ in enumerate(stream_slices(stored, plan.slice_shape)):
                flat_values[flat] = slice_values(plan, scaling, flat, slice_)
            return cls(plan, stored, values, scaling)
        assert buffer.path is not None
        return cls(plan, stored, _rescaled_file(plan, scaling, stored, buffer.path), scaling)

    # The array and what a reader needs to interpret it.

    @property
    def array(self) -> np.ndarray:
        """Voxels in NIfTI order (i, j, k[, t][, sample]); see the module docstring."""
        return self._array

    @property
    def slope(self) -> float:
        """Real-world value = ``array * slope + intercept`` (1 and 0 for float32 data)."""
        return self._scaling.slope

    @property
    def intercept(self) -> float:
        return self._scaling.intercept

    @property
    def affine(self) -> np.ndarray:
        """4x4, voxel (i, j, k) → RAS+ millimetres, as NIfTI's sform."""
        return self.plan.affine_array()

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size (i, j, k) in mm; k measured between slice positions."""
        return self.plan.spacing

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._array.shape)

    @property
    def memory_mapped(self) -> bool:
        return isinstance(self._stored, np.memmap)

    # Who it is.

    @property
    def name(self) -> str:
        """``<SeriesInstanceUID>`` or ``<SeriesInstanceUID>-<n>`` (the file stem)."""
        return self.plan.name

    @property
    def series_instance_uid(self) -> str:
        return self.plan.series_instance_uid

    @property
    def image_set_id(self) -> str:
        return self.plan.image_set_id

    @property
    def series_description(self) -> str | None:
        return self.plan.series_description

    @property
    def modality(self) -> str | None:
        return self.plan.modality

    @property
    def warnings(self) -> tuple[str, ...]:
        """Geometry and value irregularities (uneven spacing, tilt, missing slices...)."""
        return self.plan.warnings

    @property
    def sidecar(self) -> dict[str, Any]:
        """The JSON sidecar document the volume's files carry (slices, UIDs, rescale...)."""
        from .sidecar import sidecar

        return sidecar(self.plan, self._scaling)

    # Files.

    def to_nifti(self, path: str | os.PathLike[str], *, with_sidecar: bool = True) -> Path:
        """Write the volume as NIfTI-1 (``.nii`` or ``.nii.gz``), the same file
        ``--volume nifti`` writes, and its JSON sidecar beside it; returns the path."""
        from .nifti import write_nifti

        return write_nifti(self.plan, self._stored, Path(path), with_sidecar=with_sidecar)

    def to_npy(self, path: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write the volume as ``.npy`` plus its ``.json`` sidecar; returns both paths."""
        from .npy import write_npy

        return write_npy(self.plan, self._stored, Path(path))

    def __repr__(self) -> str:
        spacing = " x ".join(f"{v:.3g}" for v in self.spacing)
        return (f"Volume({self.name!r}, shape={self.shape}, dtype={self._array.dtype}, "
                f"spacing={spacing} mm)")


def _rescaled_file(plan: VolumePlan, scaling: Scaling, stored: np.ndarray,
                   beside: Path) -> np.ndarray:
    """The rescaled values of a large volume in a file of their own beside the buffer,
    mapped read-only and unlinked at once: page cache, not resident memory."""
    path = beside.with_name(beside.name.replace(".volume.tmp", "") + ".values.tmp")
    try:
        values = np.memmap(path, dtype=scaling.dtype, mode="w+", shape=plan.shape)
        flat_values = values.reshape((-1, *plan.slice_shape))
        for flat, slice_ in enumerate(stream_slices(stored, plan.slice_shape)):
            flat_values[flat] = slice_values(plan, scaling, flat, slice_)
        values.flush()
        del flat_values, values
        return np.memmap(path, dtype=scaling.dtype, mode="r", shape=plan.shape)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
