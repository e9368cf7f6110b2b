"""The stored HTJ2K frames: lossless, JPH-wrapped, coded the way the service codes them."""

from __future__ import annotations

import struct
import zlib

import imagecodecs
import numpy as np
import pytest

from hi_async.local.dicom_import.transcode import (
    JPH_CONTENT_TYPE,
    decomposition_levels,
    jph_boxes,
    lossless_frame,
    pixel_crc32,
    read_cod,
)


def _image(shape: tuple[int, ...], dtype: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    ramp = np.linspace(info.min / 4, info.max / 4, num=int(np.prod(shape)))
    noisy = ramp + rng.normal(0, 50, ramp.shape)
    return np.clip(noisy, info.min, info.max).astype(dtype).reshape(shape)


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [((512, 512), "int16"), ((64, 64), "uint16"), ((100, 100, 3), "uint8"),
     ((10, 10), "uint32"), ((3, 3, 3), "uint8"), ((1, 7), "uint8"), ((300, 484), "uint16")],
)
def test_frames_decode_to_the_same_pixels(shape: tuple[int, ...], dtype: str) -> None:
    pixels = _image(shape, dtype)
    frame = lossless_frame(pixels)
    decoded = imagecodecs.htj2k_decode(frame.data)
    assert decoded.dtype == pixels.dtype
    np.testing.assert_array_equal(decoded, pixels)
    assert frame.content_type == JPH_CONTENT_TYPE


def test_big_endian_pixels_are_stored_with_their_values() -> None:
    pixels = _image((32, 48), "int16").astype(">i2")
    decoded = imagecodecs.htj2k_decode(lossless_frame(pixels).data)
    np.testing.assert_array_equal(decoded, pixels.astype("<i2"))


def test_jph_wrapper_has_signature_ftyp_header_and_codestream() -> None:
    pixels = _image((40, 60), "int16")
    boxes = jph_boxes(lossless_frame(pixels).data)
    assert [kind for kind, _ in boxes] == [b"jP  ", b"ftyp", b"jp2h", b"jp2c"]
    ftyp = dict(boxes)[b"ftyp"]
    assert ftyp[:4] == b"jph " and b"jph " in ftyp[8:]
    header = jph_boxes(dict(boxes)[b"jp2h"])
    assert [kind for kind, _ in header] == [b"ihdr", b"colr"]
    height, width, components, bpc, compression = struct.unpack(">IIHBB", header[0][1][:12])
    assert (height, width, components, compression) == (40, 60, 1, 7)
    assert bpc == (16 - 1) | 0x80  # signed 16-bit
    assert dict(boxes)[b"jp2c"][:4] == b"\xff\x4f\xff\x51"  # SOC, SIZ


@pytest.mark.parametrize(("rows", "columns", "levels"),
                         [(512, 512, 5), (64, 64, 5), (16, 100, 4), (3, 3, 1), (1, 9, 1)])
def test_cod_marker_says_reversible_rpcl_64x64_and_levels(rows: int, columns: int,
                                                          levels: int) -> None:
    assert decomposition_levels(rows, columns) == levels
    cod = read_cod(lossless_frame(_image((rows, columns), "uint16")).data)
    assert cod.progression_order == "RPCL"
    assert cod.reversible
    assert (cod.code_block_width, cod.code_block_height) == (64, 64)
    assert cod.decomposition_levels == levels


def test_checksums_run_from_base_to_full_resolution() -> None:
    pixels = _image((512, 512), "int16")
    frame = lossless_frame(pixels)
    widths = [entry["Width"] for entry in frame.checksums]
    assert widths == [16, 32, 64, 128, 256, 512]
    assert frame.checksums[-1]["Checksum"] == zlib.crc32(pixels.astype("<i2").tobytes())
    half = imagecodecs.htj2k_decode(frame.data, skipres=1)
    assert frame.checksums[-2] == {"Width": 256, "Height": 256, "Checksum": pixel_crc32(half)}


def test_min_and_max_pixel_values_are_the_frames_own() -> None:
    pixels = _image((64, 80), "int16")
    frame = lossless_frame(pixels)
    assert (frame.min_pixel_value, frame.max_pixel_value) == (int(pixels.min()),
                                                                int(pixels.max()))


def test_crc32_hashes_interleaved_little_endian_samples() -> None:
    rgb = np.arange(2 * 3 * 3, dtype=">u2").reshape(2, 3, 3)
    expected = zlib.crc32(rgb.astype("<u2").tobytes())
    assert pixel_crc32(rgb) == expected
