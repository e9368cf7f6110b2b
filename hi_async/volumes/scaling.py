"""How a volume's values are written: stored integers plus a rescale, or float32. Pure.

DICOM's real-world value is ``stored * RescaleSlope + RescaleIntercept``. NIfTI can say
the same with ``scl_slope`` and ``scl_inter``, but they are float32 and one pair for
the whole file. So:

- one slope and one intercept for every slice, both exactly representable in float32
  (1 and -1024, 0.5, 2.25, ...): the stored integers are kept, with that pair. Every
  reader then computes the very values DICOM defines, and the file is as small as the
  data allows;
- otherwise (slopes differing between slices, or a slope such as 0.3 that float32
  cannot hold): the rescaled values themselves, as float32, and an identity rescale.

The same rule decides the NumPy output, so both formats carry the same numbers; the
sidecar records the original per-slice slopes and intercepts either way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .plan import VolumePlan


@dataclass(frozen=True, slots=True)
class Scaling:
    """The on-disk dtype and the rescale a reader must apply to it."""

    dtype: np.dtype  # little-endian
    slope: float
    intercept: float

    @property
    def rescaled(self) -> bool:
        """True when the values on disk are already the real-world values (float32)."""
        return self.dtype == np.dtype("<f4")


def _exact_in_float32(value: float) -> bool:
    return float(np.float32(value)) == value


def scaling_for(plan: VolumePlan) -> Scaling:
    """The rule of this module applied to one plan."""
    stored = np.dtype(plan.dtype).newbyteorder("<")
    if plan.samples_per_pixel > 1:
        return Scaling(stored, 1.0, 0.0)  # colour samples are never rescaled
    slope, intercept = plan.slopes[0], plan.intercepts[0]
    if plan.rescale_uniform and _exact_in_float32(slope) and _exact_in_float32(intercept):
        return Scaling(stored, slope, intercept)
    return Scaling(np.dtype("<f4"), 1.0, 0.0)


def slice_values(plan: VolumePlan, scaling: Scaling, flat_index: int,
                 stored: np.ndarray) -> np.ndarray:
    """One stored slice as it goes to disk under ``scaling`` (little-endian)."""
    if not scaling.rescaled:
        return stored.astype(scaling.dtype, copy=False)
    # float64 arithmetic, one rounding to float32 at the end.
    real = stored.astype(np.float64) * plan.slopes[flat_index] + plan.intercepts[flat_index]
    return real.astype(scaling.dtype)


def real_values(plan: VolumePlan, flat_index: int, stored: np.ndarray) -> np.ndarray:
    """One slice's real-world values (float64): what windowing and previews work on."""
    if plan.samples_per_pixel > 1:
        return stored.astype(np.float64)
    return stored.astype(np.float64) * plan.slopes[flat_index] + plan.intercepts[flat_index]
