"""The series every end-to-end volume test uses: written once, imported once, converted once.

Each case names the folder of DICOM files, what the planner should make of it (volumes,
4th axis, warnings) and which of dcm2niix's outputs is the same volume.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .dicom_series import (
    AXIAL,
    CORONAL,
    SAGITTAL,
    SECONDARY_CAPTURE,
    Slice,
    line_positions,
    oblique,
    phantom,
    uid,
    write_classic,
    write_enhanced_mr,
)


@dataclass
class Case:
    name: str
    write: Callable[[Path, str], object]  # (folder, series UID) → files written
    slices: int  # frames in the series
    fourth_axis: str | None = None
    warnings: tuple[str, ...] = ()  # substrings the plan's warnings must contain
    values: str = "stored"  # "stored" (integers kept) or "float32"
    series_uid: str = field(init=False)

    def __post_init__(self) -> None:
        self.series_uid = uid(f"series {self.name}")


def _stack(orientation: tuple[float, ...], distances: list[float], *, dtype: str, seed: int,
           rows: int = 40, cols: int = 48, start: tuple[float, ...] = (-20.0, -15.0, -30.0),
           base: int = 0, numbers: list[int] | None = None) -> list[Slice]:
    positions = line_positions(start, orientation, distances)
    numbers = numbers or list(range(1, len(distances) + 1))
    return [Slice(p, phantom(rows, cols, i, dtype=dtype, seed=seed, base=base), numbers[i])
            for i, p in enumerate(positions)]


def axial_ct(folder: Path, series: str) -> object:
    slices = _stack(AXIAL, [2.5 * i for i in range(12)], dtype="int16", seed=1, base=800)
    return write_classic(folder, series, slices, orientation=AXIAL, pixel_spacing=(0.8, 0.7),
                         slope=1, intercept=-1024, window=(40, 400), description="Axial CT")


def sagittal_mr(folder: Path, series: str) -> object:
    slices = _stack(SAGITTAL, [3.0 * i for i in range(10)], dtype="uint16", seed=2,
                    rows=48, cols=40)
    return write_classic(folder, series, slices, orientation=SAGITTAL,
                         pixel_spacing=(1.0, 0.9), modality="MR", description="Sagittal T1")


def coronal_mr(folder: Path, series: str) -> object:
    slices = _stack(CORONAL, [2.0 * i for i in range(9)], dtype="uint16", seed=3)
    return write_classic(folder, series, slices, orientation=CORONAL,
                         pixel_spacing=(0.75, 0.8), modality="MR", description="Coronal T2")


def negative_oblique(folder: Path, series: str) -> object:
    """Instance 1 is the highest slice along the normal: positions run backwards."""
    orientation = oblique(20)
    slices = _stack(orientation, [-1.5 * i for i in range(10)], dtype="int16", seed=4,
                    base=-100)
    return write_classic(folder, series, slices, orientation=orientation,
                         pixel_spacing=(0.9, 0.6), slope=1, intercept=-1024,
                         description="Oblique, descending")


def ct_half_slope(folder: Path, series: str) -> object:
    slices = _stack(AXIAL, [2.0 * i for i in range(8)], dtype="uint16", seed=5)
    return write_classic(folder, series, slices, orientation=AXIAL, pixel_spacing=(0.7, 0.7),
                         slope="0.5", intercept="-1024", description="CT slope 0.5")


def ct_decimal_slope(folder: Path, series: str) -> object:
    slices = _stack(AXIAL, [2.0 * i for i in range(8)], dtype="int16", seed=6)
    return write_classic(folder, series, slices, orientation=AXIAL, pixel_spacing=(0.7, 0.7),
                         slope="0.3", intercept="-1000.7", description="CT slope 0.3")


def enhanced_mr(folder: Path, series: str) -> object:
    """Frames stored out of spatial order: 3, 0, 6, 1, ... along the normal."""
    orientation = oblique(-12)
    slices = _stack(orientation, [2.2 * i for i in range(8)], dtype="uint16", seed=7)
    shuffled = [slices[i] for i in (3, 0, 6, 1, 7, 2, 5, 4)]
    return write_enhanced_mr(folder, series, shuffled, orientation=orientation,
                             pixel_spacing=(0.85, 0.95), description="Enhanced MR")


def dynamic_4d(folder: Path, series: str) -> object:
    """Six slices at three temporal positions, 2 s apart (instances time-major)."""
    slices = []
    for t in range(3):
        for s in _stack(AXIAL, [3.0 * i for i in range(6)], dtype="uint16", seed=8 + t,
                        base=500 * t):
            s.instance_number += 6 * t
            seconds = 15 * 60 + 2 * t
            s.attrs = {"TemporalPositionIdentifier": t + 1, "NumberOfTemporalPositions": 3,
                       "AcquisitionTime": f"10{seconds // 60:02d}{seconds % 60:02d}.000000",
                       "AcquisitionNumber": t + 1}
            slices.append(s)
    return write_classic(folder, series, slices, orientation=AXIAL, pixel_spacing=(1.0, 1.0),
                         modality="MR", description="Dynamic")


def uneven(folder: Path, series: str) -> object:
    slices = _stack(AXIAL, [0, 2, 4, 6, 9, 12, 15, 17, 19, 21], dtype="int16", seed=11)
    return write_classic(folder, series, slices, orientation=AXIAL, pixel_spacing=(0.8, 0.8),
                         slope=1, intercept=-1024, description="Uneven")


def missing_slice(folder: Path, series: str) -> object:
    distances = [2.0 * i for i in range(12) if i != 5]
    slices = _stack(AXIAL, distances, dtype="int16", seed=12)
    return write_classic(folder, series, slices, orientation=AXIAL, pixel_spacing=(0.8, 0.8),
                         slope=1, intercept=-1024, description="Missing slice")


def rgb(folder: Path, series: str) -> object:
    slices = []
    for s in _stack(AXIAL, [4.0 * i for i in range(4)], dtype="uint8", seed=13, rows=24,
                    cols=32):
        grey = s.pixels.astype(np.uint16)
        s.pixels = np.stack([grey % 256, (grey * 3) % 256, 255 - grey % 256],
                            axis=-1).astype(np.uint8)
        slices.append(s)
    return write_classic(folder, series, slices, orientation=AXIAL, pixel_spacing=(0.5, 0.5),
                         modality="OT", description="Colour", sop_class=SECONDARY_CAPTURE)


CASES = [
    Case("axial_ct", axial_ct, 12),
    Case("sagittal_mr", sagittal_mr, 10),
    Case("coronal_mr", coronal_mr, 9),
    Case("negative_oblique", negative_oblique, 10),
    Case("ct_half_slope", ct_half_slope, 8),
    Case("ct_decimal_slope", ct_decimal_slope, 8, values="float32"),
    Case("enhanced_mr", enhanced_mr, 8),
    Case("dynamic_4d", dynamic_4d, 18, fourth_axis="time"),
    Case("uneven", uneven, 10, warnings=("uneven slice spacing",)),
    Case("missing_slice", missing_slice, 11, warnings=("missing slice",)),
    Case("rgb", rgb, 4),
]
