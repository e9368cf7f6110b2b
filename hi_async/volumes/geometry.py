"""Slice geometry as DICOM defines it: order, spacing, irregularities, the affine. Pure.

DICOM PS3.3 C.7.6.2.1.1: pixel (row r, column c) of a slice lies at

    P = ImagePositionPatient + c * PixelSpacing[1] * X + r * PixelSpacing[0] * Y

in the patient's LPS frame (x to the patient's left, y to posterior, z to head), where
X = ImageOrientationPatient[0:3] (the direction along a row) and Y = [3:6] (down a
column). Slices are ordered by the projection of their position on the normal X x Y; the
distance between slices is measured from those projections, never read from
SliceThickness (which is the width of the acquired slab, not the step).

NIfTI indexes voxels (i, j, k) = (column, row, slice) and its affine maps them to RAS
(x to the right, y anterior): the LPS affine with its first two rows negated.

Nothing here resamples. A stack whose slices are not where a single affine can put them
(uneven steps, missing slices) keeps every slice, and the affine uses the median step;
the warnings say how far the worst slice is from where that affine places it. Gantry
tilt (positions drifting sideways along the stack) is kept exactly with a sheared affine:
the NIfTI sform holds the shear; the qform, which cannot, holds the nearest rigid one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Positions closer than this along the normal are the same slice position (mm).
SAME_POSITION_MM = 0.01
#: A step differing from the median by more than this fraction is "uneven".
UNEVEN_FRACTION = 0.01
#: Sideways drift of the slices beyond this (mm over the stack) is gantry tilt.
TILT_MM = 0.01

#: LPS → RAS: negate x and y.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


class GeometryError(ValueError):
    """Orientation vectors that cannot describe a plane (zero, or not perpendicular)."""


@dataclass(frozen=True, slots=True)
class StackGeometry:
    """Where the slices of one stack are, in the order the volume stores them."""

    order: tuple[int, ...]  # indices into the positions given, ascending along the normal
    locations: tuple[float, ...]  # projection on the normal of each stored slice (mm)
    spacing: tuple[float, float, float]  # (i: columns, j: rows, k: slices), mm
    affine_lps: tuple[tuple[float, ...], ...]  # 4x4, voxel (i, j, k) → LPS mm
    warnings: tuple[str, ...]

    @property
    def affine(self) -> np.ndarray:
        """The NIfTI affine: voxel (i, j, k) → RAS mm."""
        ras: np.ndarray = LPS_TO_RAS @ np.array(self.affine_lps)
        return ras


def normal(orientation: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(X, Y, N): unit row and column directions and their cross product."""
    x = np.asarray(orientation[:3], dtype=float)
    y = np.asarray(orientation[3:6], dtype=float)
    nx, ny = np.linalg.norm(x), np.linalg.norm(y)
    if nx < 1e-6 or ny < 1e-6:
        raise GeometryError(f"ImageOrientationPatient {list(orientation)} has a zero vector")
    x, y = x / nx, y / ny
    if abs(float(x @ y)) > 1e-3:
        raise GeometryError(f"ImageOrientationPatient {list(orientation)}: the row and "
                            f"column directions are not perpendicular")
    return x, y, np.cross(x, y)


def stack_geometry(orientation: Sequence[float], pixel_spacing: Sequence[float],
                   positions: Sequence[Sequence[float]], *,
                   fallback_spacing: float | None = None) -> StackGeometry:
    """Order, spacing, affine and warnings of slices sharing one orientation and grid.

    ``positions`` must be distinct along the normal (the planner has already split
    repeats into volumes or a 4th dimension). ``fallback_spacing`` (SpacingBetweenSlices
    or SliceThickness) is the slice spacing of a one-slice stack, where nothing can be
    measured.
    """
    x, y, n = normal(orientation)
    points = np.asarray(positions, dtype=float)
    projections = points @ n
    order = np.argsort(projections, kind="stable")
    points, projections = points[order], projections[order]
    row_mm, col_mm = float(pixel_spacing[0]), float(pixel_spacing[1])
    warnings: list[str] = []
    if len(points) == 1:
        known = fallback_spacing is not None and fallback_spacing > 0
        step_mm = float(fallback_spacing) if known and fallback_spacing else 1.0
        source = ("SpacingBetweenSlices or SliceThickness" if known
                  else "a default: the metadata gives no spacing")
        warnings.append(f"one slice: its extent along the normal is taken as {step_mm:g} mm "
                        f"(from {source})")
        step = n * step_mm
    else:
        steps = np.diff(projections)
        step_mm = float(np.median(steps))
        warnings += _spacing_warnings(steps, step_mm, projections)
        drift = _sideways_drift(points, projections, n)
        sideways_mm = float(np.linalg.norm(drift)) * float(projections[-1] - projections[0])
        if sideways_mm > TILT_MM:
            step = n * step_mm + drift * step_mm
            angle = float(np.degrees(np.arctan(np.linalg.norm(drift))))
            warnings.append(
                f"gantry tilt: slice positions run {angle:.2f}° off the normal of the image "
                f"plane ({sideways_mm:.2f} mm sideways over the stack); the affine is "
                f"sheared to keep every voxel where it was acquired (the NIfTI sform is "
                f"exact, the qform cannot hold a shear)")
        else:
            step = n * step_mm
        worst = _worst_misplacement(points, points[0], step)
        if worst > SAME_POSITION_MM and any("missing" in w or "uneven" in w
                                            for w in warnings):
            warnings.append(f"with one affine for the whole stack, a slice lies up to "
                            f"{worst:.2f} mm from where the affine puts it; the sidecar "
                            f"lists every slice's position")
    lps = np.eye(4)
    lps[:3, 0] = x * col_mm
    lps[:3, 1] = y * row_mm
    lps[:3, 2] = step
    lps[:3, 3] = points[0]
    return StackGeometry(
        order=tuple(int(i) for i in order),
        locations=tuple(float(p) for p in projections),
        spacing=(col_mm, row_mm, float(np.linalg.norm(step))),
        affine_lps=tuple(tuple(float(v) for v in row) for row in lps),
        warnings=tuple(warnings),
    )


def _spacing_warnings(steps: np.ndarray, step_mm: float,
                      projections: np.ndarray) -> list[str]:
    """Missing slices (a step that is a whole multiple of the usual one) and uneven steps."""
    out: list[str] = []
    tolerance = max(UNEVEN_FRACTION * step_mm, SAME_POSITION_MM)
    irregular = np.abs(steps - step_mm) > tolerance
    if not irregular.any():
        return out
    other = False
    for k in np.flatnonzero(irregular):
        multiple = round(float(steps[k]) / step_mm)
        if multiple >= 2 and abs(steps[k] - multiple * step_mm) <= tolerance:
            gone = multiple - 1
            out.append(f"missing slice{'s' if gone > 1 else ''}: {gone} slice position"
                       f"{'s' if gone > 1 else ''} absent between slices {k} and {k + 1} "
                       f"({projections[k]:.2f} and {projections[k + 1]:.2f} mm along the "
                       f"normal; the usual step is {step_mm:.3g} mm)")
        else:
            other = True
    if other:
        out.append(f"uneven slice spacing: steps from {steps.min():.3g} to {steps.max():.3g} "
                   f"mm (median {step_mm:.3g} mm); the volume is not resampled")
    return out


def _sideways_drift(points: np.ndarray, projections: np.ndarray, n: np.ndarray) -> np.ndarray:
    """In-plane movement of the slice origin per mm along the normal (least squares)."""
    along = projections - projections[0]
    sideways = (points - points[0]) - np.outer(along, n)
    denominator = float(along @ along)
    if denominator <= 0:
        return np.zeros(3)
    drift: np.ndarray = np.asarray(along @ sideways, dtype=float) / denominator
    return drift


def _worst_misplacement(points: np.ndarray, origin: np.ndarray, step: np.ndarray) -> float:
    """Largest distance between a slice's position and where the affine puts slice k."""
    expected = origin + np.outer(np.arange(len(points)), step)
    return float(np.max(np.linalg.norm(points - expected, axis=1)))
