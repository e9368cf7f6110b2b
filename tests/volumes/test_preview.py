"""Preview PNGs: layout, windowing, colour and 4-D volumes, read back with Pillow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from hi_async.volumes import VolumePlan, preview_path, write_preview
from hi_async.volumes.preview import MAX_TILES, ORTHO, TILE

from .docs import axial_stack, document, image, plan_one


def _read(path: Path) -> np.ndarray:
    with Image.open(path) as picture:
        assert picture.format == "PNG"
        return np.asarray(picture.convert("RGB"))


def _square_plan(slices: int, **attrs: object) -> VolumePlan:
    return plan_one(document(axial_stack([2.0 * k for k in range(slices)], rows=32, columns=32,
                                         spacing=("1", "1"), **attrs)))


def _tile(path: Path) -> np.ndarray:
    """Grey levels of the first contact-sheet tile (below the caption)."""
    return _read(path)[28 + 8: 28 + TILE - 8, 4 + 8: 4 + TILE - 8, 0]


def test_the_sheet_shows_at_most_16_slices_and_three_orthogonal_views(tmp_path: Path) -> None:
    plan = _square_plan(40)
    volume = np.arange(40 * 32 * 32, dtype=np.int16).reshape(40, 32, 32) % 997
    pixels = _read(write_preview(plan, volume, preview_path(tmp_path, plan)))
    height, width, _ = pixels.shape
    per_row = 4  # 16 tiles, 4 x 4, each TILE px square (square voxels in plane)
    assert MAX_TILES == 16
    assert width == per_row * (TILE + 4) - 4 + 8  # wider than the orthogonal views
    # Orthogonal views: the tallest is 80 mm of slices, scaled to ORTHO px.
    assert height == 28 + per_row * (TILE + 4) - 4 + 8 + ORTHO + 4
    assert pixels[28:].std() > 10


def test_the_series_window_is_applied_to_real_world_values(tmp_path: Path) -> None:
    # Stored 0 and 2000 with intercept -1000: real -1000 and +1000, window 0 ± 50.
    plan = _square_plan(2, RescaleSlope="1", RescaleIntercept="-1000", WindowCenter="0",
                        WindowWidth="100")
    volume = np.zeros(plan.shape, np.int16)
    volume[:, :, 16:] = 2000
    tile = _tile(write_preview(plan, volume, tmp_path / "w.png"))
    # Black and white, but for the display resize's blend along the edge between them.
    assert {0, 255} <= set(np.unique(tile).tolist())
    assert np.isin(tile, [0, 255]).mean() > 0.9


def test_without_a_window_the_percentiles_are_used(tmp_path: Path) -> None:
    plan = _square_plan(3)
    assert plan.window is None
    volume = (np.arange(3 * 32 * 32).reshape(3, 32, 32) % 512 + 30000).astype(np.int16)
    tile = _tile(write_preview(plan, volume, tmp_path / "p.png"))
    assert len(np.unique(tile)) > 100  # spread over the grey range, not one flat level


def test_colour_and_4d_volumes_have_previews(tmp_path: Path) -> None:
    colour = plan_one(document(axial_stack([0, 1], SamplesPerPixel=3, BitsAllocated=8,
                                           BitsStored=8, PixelRepresentation=0,
                                           PhotometricInterpretation="RGB")))
    rgb = np.zeros(colour.shape, np.uint8)
    rgb[..., 0] = 255
    pixels = _read(write_preview(colour, rgb, tmp_path / "c.png"))
    assert (pixels[40, 20] == [255, 0, 0]).all()

    stack = [image((0, 0, 2 * z), number=t * 2 + z + 1, TemporalPositionIdentifier=str(t + 1))
             for t in range(2) for z in range(2)]
    dynamic = plan_one(document(stack))
    volume = np.random.default_rng(0).integers(0, 1000, dynamic.shape).astype(np.int16)
    assert _read(write_preview(dynamic, volume, tmp_path / "d.png"))[28:].std() > 10


def test_the_description_is_burned_in(tmp_path: Path) -> None:
    plan = _square_plan(2)
    volume = np.zeros(plan.shape, np.int16)
    pixels = _read(write_preview(plan, volume, tmp_path / "t.png"))
    caption, below = pixels[:26], pixels[28:]
    assert caption.max() > 200  # text
    assert below.max() <= 16 + 1  # a flat volume shows as one level: the percentile floor
