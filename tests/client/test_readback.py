"""Frame files read back for a resumed volume: every format this client writes, and every
way such a file can be unusable (then the frame is fetched again)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hi_async.model import FrameRef
from hi_async.output.frames import write_frame_file
from hi_async.output.readback import FrameFileUnusable, read_frame_file
from hi_async.resume import remove_leftover_tmp

from .helpers import crc, ct_pixels, encode, rgb_pixels


def _ref(pixels: np.ndarray, checksum: int | None) -> FrameRef:
    rows, columns = pixels.shape[:2]
    samples = pixels.shape[2] if pixels.ndim == 3 else 1
    bits = pixels.dtype.itemsize * 8
    return FrameRef(datastore_id="0" * 32, image_set_id="1" * 32, image_frame_id="2" * 32,
                    study_instance_uid="1.2", series_instance_uid="1.2.3",
                    sop_instance_uid="1.2.3.4", frame_number=1, rows=rows, columns=columns,
                    samples_per_pixel=samples, bits_allocated=bits, bits_stored=bits,
                    signed=pixels.dtype.kind == "i",
                    stored_transfer_syntax_uid="1.2.840.10008.1.2.4.202",
                    expected_crc32=checksum)


@pytest.mark.parametrize("fmt", ["jph", "npy", "raw"])
@pytest.mark.parametrize("pixels", [ct_pixels(), rgb_pixels()], ids=["ct", "rgb"])
def test_each_format_reads_back_to_the_verified_pixels(tmp_path: Path, fmt: str,
                                                       pixels: np.ndarray) -> None:
    path = str(tmp_path / f"frame.{fmt}")
    write_frame_file(path, fmt, encode(pixels, "image/jph"), pixels)
    back = read_frame_file(path, _ref(pixels, crc(pixels)), "image/jph")
    assert back.dtype == pixels.dtype and np.array_equal(back, pixels)


def test_a_file_changed_since_it_was_verified_is_unusable(tmp_path: Path) -> None:
    pixels = ct_pixels()
    path = tmp_path / "frame.npy"
    write_frame_file(str(path), "npy", b"", pixels)
    with pytest.raises(FrameFileUnusable, match="changed since it was verified"):
        read_frame_file(path, _ref(pixels, crc(pixels) ^ 1))


@pytest.mark.parametrize(("name", "content", "reason"), [
    ("gone.npy", None, "cannot read"),
    ("short.raw", b"\0" * 10, "holds 5 samples"),
    ("broken.jph", b"not a codestream", "cannot read"),
    ("frame.png", b"", "not a frame file"),
])
def test_missing_short_or_foreign_files_are_unusable(tmp_path: Path, name: str,
                                                     content: bytes | None,
                                                     reason: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(FrameFileUnusable, match=reason):
        read_frame_file(path, _ref(ct_pixels(), None), "image/jph")


def test_a_resume_removes_leftover_volume_and_preview_files(tmp_path: Path) -> None:
    image_set = tmp_path / ("1" * 32)
    leftovers = [image_set / "volumes" / "1.2.3.volume.tmp",
                 image_set / "volumes" / "1.2.3.nii.gz.tmp",
                 image_set / "previews" / "1.2.3.png.tmp"]
    kept = image_set / "volumes" / "1.2.3.nii.gz"
    for path in [*leftovers, kept]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    assert remove_leftover_tmp(tmp_path) == 3
    assert kept.is_file() and not any(p.exists() for p in leftovers)
