"""One PNG per volume, to see at a glance that the right thing came down.

Top: a caption (series description, volume name, shape and spacing) in Pillow's
default font. Middle: a contact sheet of up to 16 evenly spaced slices. Bottom: the
middle slice of each orthogonal plane (along rows, along columns, and across slices),
resized to the voxels' physical aspect ratio. That resize is for display only; the
volume files are never resampled.

Greyscale is windowed by the series' WindowCenter/WindowWidth (the first pair), in
real-world values (after RescaleSlope/Intercept), or where the series has none, by the
1st and 99th percentiles of the slices shown. Colour is shown as stored. A 4-D volume
shows its first time point (or echo).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .buffer import stream_slices
from .files import atomic_file
from .plan import VolumePlan
from .scaling import real_values

TILE = 128  # px, the longer side of a contact-sheet tile
ORTHO = 192  # px, the longest side among the three orthogonal views
MAX_TILES = 16
_GAP = 4
_CAPTION = 28
_BACKGROUND = (16, 16, 16)
_TEXT = (230, 230, 230)

#: (pixels, slice index or one index per row) → uint8 RGB pixels.
Display = Callable[[np.ndarray, "int | np.ndarray"], np.ndarray]


def write_preview(plan: VolumePlan, array: np.ndarray, path: Path) -> Path:
    """Render ``array`` (the plan's buffer shape) as a preview PNG at ``path``."""
    if tuple(array.shape) != plan.shape:
        raise ValueError(f"{plan.name}: array shape {array.shape} is not the plan's "
                         f"{plan.shape}")
    volume = array[0] if plan.is_4d else array  # (z, rows, columns[, samples])
    nz, rows, columns = volume.shape[:3]
    picks = sorted({round(float(v)) for v in np.linspace(0, nz - 1, min(nz, MAX_TILES))})
    # One pass over the slices (a memory map's pages are released as it goes): the
    # picked slices, and one row and one column of every slice for the orthogonal views.
    wanted = {*picks, nz // 2}
    picked: dict[int, np.ndarray] = {}
    across_rows, across_columns = [], []
    for z, pixels in enumerate(stream_slices(volume, plan.slice_shape)):
        if z in wanted:
            picked[z] = np.array(pixels)
        across_rows.append(np.array(pixels[rows // 2]))
        across_columns.append(np.array(pixels[:, columns // 2]))
    to_rgb = _display(plan, [picked[z] for z in picks], picks)
    dx, dy, dz = plan.spacing

    tiles = [_sized(to_rgb(picked[z], z), columns * dx, rows * dy, TILE) for z in picks]
    per_row = math.ceil(math.sqrt(len(tiles)))
    tile_w, tile_h = tiles[0].size
    sheet_rows = math.ceil(len(tiles) / per_row)
    sheet = (per_row * (tile_w + _GAP) - _GAP, sheet_rows * (tile_h + _GAP) - _GAP)

    # Orthogonal middles; the slice axis runs upwards (k ascending to the top).
    extent = max(columns * dx, rows * dy, nz * dz)
    scale = ORTHO / extent
    every = np.arange(nz)
    views = [
        _scaled(to_rgb(picked[nz // 2], nz // 2), columns * dx, rows * dy, scale),
        _scaled(_flip(to_rgb(np.stack(across_rows), every)), columns * dx, nz * dz, scale),
        _scaled(_flip(to_rgb(np.stack(across_columns), every)), rows * dy, nz * dz, scale),
    ]
    ortho_w = sum(v.size[0] for v in views) + _GAP * (len(views) - 1)
    ortho_h = max(v.size[1] for v in views)

    width = max(sheet[0], ortho_w, 320) + 2 * _GAP
    height = _CAPTION + sheet[1] + 2 * _GAP + ortho_h + _GAP
    canvas = Image.new("RGB", (width, height), _BACKGROUND)
    for n, tile in enumerate(tiles):
        x = _GAP + (n % per_row) * (tile_w + _GAP)
        y = _CAPTION + (n // per_row) * (tile_h + _GAP)
        canvas.paste(tile, (x, y))
    x, y = _GAP, _CAPTION + sheet[1] + 2 * _GAP
    for view in views:
        canvas.paste(view, (x, y))
        x += view.size[0] + _GAP
    _caption(canvas, plan)

    path = Path(path)
    with atomic_file(path) as tmp:
        canvas.save(tmp, format="PNG", optimize=True)
    return path


def _display(plan: VolumePlan, slices: list[np.ndarray], picks: list[int]) -> Display:
    """A function (slice pixels, slice index) → uint8 RGB array, windowed for the series."""
    if plan.samples_per_pixel > 1:
        def colour(pixels: np.ndarray, z: int | np.ndarray) -> np.ndarray:
            values = pixels.astype(np.float64)
            top = max(float(np.iinfo(pixels.dtype).max) if pixels.dtype.kind in "ui" else 1.0,
                      1.0)
            return np.clip(values / top * 255.0, 0, 255).astype(np.uint8)[..., :3]
        return colour
    if plan.window is not None:
        center, width = plan.window
        low, high = center - width / 2, center + width / 2
    else:
        sample = np.concatenate([real_values(plan, z, pixels).ravel()
                                 for z, pixels in zip(picks, slices, strict=True)])
        low, high = (float(v) for v in np.percentile(sample, [1, 99]))
    if high <= low:
        high = low + 1.0

    def grey(pixels: np.ndarray, z: int | np.ndarray) -> np.ndarray:
        if isinstance(z, np.ndarray):  # a plane across slices: rescale row by row
            real = (pixels.astype(np.float64) * np.asarray(plan.slopes)[z][:, None]
                    + np.asarray(plan.intercepts)[z][:, None])
        else:
            real = real_values(plan, z, pixels)
        level = np.clip((real - low) / (high - low) * 255.0, 0, 255).astype(np.uint8)
        return np.repeat(level[..., None], 3, axis=-1)
    return grey


def _flip(image: np.ndarray) -> np.ndarray:
    return image[::-1]


def _sized(image: np.ndarray, width_mm: float, height_mm: float, longest: int) -> Image.Image:
    scale = longest / max(width_mm, height_mm)
    return _scaled(image, width_mm, height_mm, scale)


def _scaled(image: np.ndarray, width_mm: float, height_mm: float,
            scale: float) -> Image.Image:
    size = (max(1, round(width_mm * scale)), max(1, round(height_mm * scale)))
    return Image.fromarray(np.ascontiguousarray(image), mode="RGB").resize(
        size, Image.Resampling.BILINEAR)


def _caption(canvas: Image.Image, plan: VolumePlan) -> None:
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    title = plan.series_description or "(no series description)"
    shape = "x".join(str(n) for n in reversed(plan.shape[:-1] if plan.samples_per_pixel > 1
                                              else plan.shape))
    spacing = " x ".join(f"{v:.3g}" for v in plan.spacing)
    detail = f"{plan.name}  {shape}  {spacing} mm"
    if plan.warnings:
        detail += f"  ({len(plan.warnings)} warning{'s' if len(plan.warnings) > 1 else ''})"
    draw.text((_GAP, 2), title, fill=_TEXT, font=font)
    draw.text((_GAP, 14), detail, fill=_TEXT, font=font)
