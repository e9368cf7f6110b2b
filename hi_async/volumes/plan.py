"""Image set metadata → one plan per volume: shape, dtype, geometry, where each frame goes.

``plan_volumes(doc)`` is pure: the parsed JSON document GetImageSetMetadata serves in,
plans and notes out. The pipeline builds a :class:`~hi_async.volumes.buffer.VolumeBuffer`
from each plan and puts every decoded frame at ``plan.index_of[frame_id]``.

Naming: a series that yields one volume is ``<SeriesInstanceUID>``; a series that yields
several (other orientations or sizes, a localizer, echoes or temporal positions that do
not form one 4-D grid) gives ``<SeriesInstanceUID>-1``, ``-2``, ... in InstanceNumber
order. A series that yields none (no ImagePositionPatient / ImageOrientationPatient /
PixelSpacing, an orientation that is no plane, a UID that cannot be a file name) gets a
:class:`Note` saying why, and no plan.

Array layout: the buffer holds ``(t, z, rows, columns[, samples])`` in C order, the
natural order of arriving frames (each frame is one contiguous block). That is exactly
NIfTI's on-disk order for voxel axes (i, j, k, t) = (column, row, slice, t), so the
affine of a plan maps (i, j, k) and writers stream the buffer without reordering.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .frames import FrameInfo, series_frames
from .geometry import GeometryError, stack_geometry
from .stacks import Stack, group_by_grid, split_stacks
from .values import text

#: A DICOM UID (PS3.5 9.1): digits in dot-separated components, at most 64 characters.
#: Only such a string becomes a file name, so a hostile "UID" cannot leave the folder.
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")


@dataclass(frozen=True, slots=True)
class Note:
    """Something a user must know about a series that a plan's warnings cannot carry:
    why a series (or some of its frames) has no volume."""

    series_instance_uid: str
    message: str

    def __str__(self) -> str:
        return f"series {self.series_instance_uid}: {self.message}"


@dataclass(frozen=True, slots=True)
class VolumePlan:
    """Everything needed to assemble and write one volume, before any pixel arrives."""

    image_set_id: str
    series_instance_uid: str
    name: str  # file stem: the series UID, with -<n> when the series has several volumes
    series_description: str | None
    modality: str | None
    #: Buffer shape: (z, rows, columns) or (t, z, rows, columns), plus samples if > 1.
    shape: tuple[int, ...]
    dtype: str  # stored numpy dtype (FrameRef.dtype)
    samples_per_pixel: int
    photometric: str | None
    frame_ids: tuple[str, ...]  # per stored slice, t-major
    sop_instance_uids: tuple[str, ...]  # per stored slice
    frame_numbers: tuple[int, ...]  # per stored slice, 1-based within its instance
    positions: tuple[tuple[float, ...], ...]  # ImagePositionPatient per stored slice
    locations: tuple[float, ...]  # per z: projection of the position on the normal (mm)
    orientation: tuple[float, ...]  # ImageOrientationPatient
    spacing: tuple[float, float, float]  # (columns i, rows j, slices k), mm
    affine: tuple[tuple[float, ...], ...]  # 4x4, voxel (i, j, k) → RAS mm
    slopes: tuple[float, ...]  # RescaleSlope per stored slice
    intercepts: tuple[float, ...]  # RescaleIntercept per stored slice
    window: tuple[float, float] | None  # WindowCenter, WindowWidth (first values)
    fourth_axis: str | None = None  # None (3-D) or "time" | "echo" | "acquisition" | "repeat"
    fourth_key: str | None = None  # the DICOM attribute the 4th axis follows
    fourth_values: tuple[float, ...] = ()  # its value per t
    time_step: float | None = None  # seconds between t, when the 4th axis is time and even
    rescale_type: str | None = None  # RescaleType (e.g. HU) when the metadata gives it
    warnings: tuple[str, ...] = ()
    index_of: Mapping[str, tuple[int, ...]] = field(default_factory=dict, compare=False)

    @property
    def is_4d(self) -> bool:
        return self.fourth_axis is not None

    @property
    def slice_shape(self) -> tuple[int, ...]:
        """One frame: (rows, columns) or (rows, columns, samples)."""
        return self.shape[2:] if self.is_4d else self.shape[1:]

    @property
    def slice_count(self) -> int:
        return len(self.frame_ids)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * np.dtype(self.dtype).itemsize

    @property
    def rescale_uniform(self) -> bool:
        """One slope and one intercept for every slice (else values must become float)."""
        return len(set(self.slopes)) == 1 and len(set(self.intercepts)) == 1

    def affine_array(self) -> np.ndarray:
        return np.array(self.affine, dtype=float)

    def flat_index(self, frame_id: str) -> int:
        """The frame's slice number in t-major order (its block in the buffer)."""
        index = self.index_of[frame_id]
        return index[0] * self.shape[1] + index[1] if self.is_4d else index[0]


def plan_volumes(doc: Mapping[str, Any], image_set_id: str | None = None,
                 ) -> tuple[list[VolumePlan], list[Note]]:
    """Plans for every series of an image set metadata document, and notes on the rest.

    ``image_set_id`` defaults to the document's ``ImageSetID``. Raises MetadataError when
    the document is malformed (as the frame parser does).
    """
    image_set_id = image_set_id or str(doc.get("ImageSetID") or "")
    plans: list[VolumePlan] = []
    notes: list[Note] = []
    for uid, series_attrs, frames in series_frames(doc):
        if not frames:
            continue  # no pixel data (a report, a structured document): nothing to place
        if not _UID.fullmatch(uid) or len(uid) > 64:
            notes.append(Note(uid, "the series UID is not a valid DICOM UID, so it cannot "
                                   "name a file: no volume"))
            continue
        placed = [f for f in frames if f.orientation and f.position and f.pixel_spacing]
        unplaced = len(frames) - len(placed)
        if not placed:
            notes.append(Note(uid, "no geometry (ImagePositionPatient, ImageOrientationPatient "
                                   "and PixelSpacing are needed to place slices): no volume"))
            continue
        if unplaced:
            notes.append(Note(uid, f"{unplaced} of {len(frames)} frames have no geometry "
                                   f"(ImagePositionPatient, ImageOrientationPatient or "
                                   f"PixelSpacing missing) and are in no volume"))
        stacks: list[Stack] = []
        for group in group_by_grid(placed):
            try:
                stacks += split_stacks(group)
            except GeometryError as exc:
                notes.append(Note(uid, f"{len(group)} frames: {exc}; no volume for them"))
        stacks.sort(key=Stack.sort_key)
        for n, stack in enumerate(stacks, start=1):
            name = uid if len(stacks) == 1 else f"{uid}-{n}"
            try:
                plans.append(_plan(image_set_id, uid, name, series_attrs, stack))
            except GeometryError as exc:  # split_stacks checks the same; belt and braces
                notes.append(Note(uid, f"volume {name}: {exc}; no volume"))
    return plans, notes


def _plan(image_set_id: str, uid: str, name: str, series_attrs: Mapping[str, Any],
          stack: Stack) -> VolumePlan:
    first = stack.first
    assert first.orientation is not None and first.pixel_spacing is not None
    base = stack.grid[0]
    geometry = stack_geometry(first.orientation, first.pixel_spacing,
                              [f.position or () for f in base],
                              fallback_spacing=first.spacing_between_slices
                              or first.slice_thickness)
    # Every row of a 4-D grid covers the same positions in the same (ascending) order,
    # so the first row's order places all of them.
    grid = [[row[i] for i in geometry.order] for row in stack.grid]
    ordered: list[FrameInfo] = [f for row in grid for f in row]
    nz = len(grid[0])
    index_of: dict[str, tuple[int, ...]]
    if stack.axis is not None:
        index_of = {f.frame_id: (t, z) for t, row in enumerate(grid) for z, f in enumerate(row)}
    else:
        index_of = {f.frame_id: (z,) for z, f in enumerate(grid[0])}
    samples = (first.samples_per_pixel,) if first.samples_per_pixel > 1 else ()
    outer = (len(grid), nz) if stack.axis is not None else (nz,)
    warnings = [*stack.warnings, *geometry.warnings]
    if first.photometric and first.photometric.startswith("YBR"):
        warnings.append(f"colour samples are {first.photometric} as stored, not converted "
                        f"to RGB")
    slopes = tuple(f.slope for f in ordered)
    intercepts = tuple(f.intercept for f in ordered)
    if len(set(slopes)) > 1 or len(set(intercepts)) > 1:
        warnings.append("RescaleSlope/RescaleIntercept differ between slices: values are "
                        "stored rescaled, as float32")
    window = next((f.window for f in ordered if f.window is not None), None)
    return VolumePlan(
        image_set_id=image_set_id,
        series_instance_uid=uid,
        name=name,
        series_description=text(series_attrs.get("SeriesDescription")),
        modality=text(series_attrs.get("Modality")),
        shape=(*outer, first.rows, first.columns, *samples),
        dtype=first.dtype,
        samples_per_pixel=first.samples_per_pixel,
        photometric=first.photometric,
        frame_ids=tuple(f.frame_id for f in ordered),
        sop_instance_uids=tuple(f.sop_instance_uid for f in ordered),
        frame_numbers=tuple(f.frame_number for f in ordered),
        positions=tuple(f.position or () for f in ordered),
        locations=geometry.locations,
        orientation=first.orientation,
        spacing=geometry.spacing,
        affine=tuple(tuple(float(v) for v in row) for row in geometry.affine),
        slopes=slopes,
        intercepts=intercepts,
        window=window,
        fourth_axis=stack.axis,
        fourth_key=stack.key if stack.axis is not None else None,
        fourth_values=tuple(stack.values) if stack.axis is not None else (),
        time_step=_time_step(grid) if stack.axis == "time" else None,
        rescale_type=first.rescale_type,
        warnings=tuple(warnings),
        index_of=index_of,
    )


def _time_step(grid: list[list[FrameInfo]]) -> float | None:
    """Seconds between temporal positions, when they are evenly spaced and known.

    From TriggerTime (ms after the R wave) when it differs between positions, else from
    the earliest acquisition time of each position; None when neither gives even steps.
    """
    sources = (
        [[None if f.trigger_time is None else f.trigger_time / 1000.0 for f in row]
         for row in grid],
        [[f.acquisition_time for f in row] for row in grid],
    )
    for rows in sources:
        if any(t is None for row in rows for t in row):
            continue
        steps = np.diff([min(t for t in row if t is not None) for row in rows])
        if len(steps) and steps.min() > 0 and steps.max() - steps.min() <= 0.01 * steps.mean():
            return float(steps.mean())
    return None
