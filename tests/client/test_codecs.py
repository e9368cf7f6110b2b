"""Decoding every content type on real encoded frames, and the CRC32 rule."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from hi_async import codecs
from hi_async.errors import DecodeError, UnsupportedContentType

from .helpers import crc, ct_pixels, encode, rgb_pixels

LOSSLESS = ["image/jph", "image/jphc", "image/j2c", "application/octet-stream"]


@pytest.mark.parametrize("content_type", LOSSLESS)
@pytest.mark.parametrize("signed", [True, False])
def test_lossless_frames_decode_to_the_original_pixels(content_type: str, signed: bool) -> None:
    pixels = ct_pixels(signed=signed)
    data = encode(pixels, content_type)
    out = codecs.decode(data, content_type, 64, 48, 1, "<i2" if signed else "<u2")
    assert out.dtype == pixels.dtype
    np.testing.assert_array_equal(out, pixels)
    assert codecs.crc32(out) == crc(pixels)


@pytest.mark.parametrize("content_type", ["image/jph", "image/jphc", "image/j2c"])
def test_colour_frames_come_back_interleaved(content_type: str) -> None:
    pixels = rgb_pixels()
    out = codecs.decode(encode(pixels, content_type), content_type, 32, 40, 3, "|u1")
    assert out.shape == (32, 40, 3)
    np.testing.assert_array_equal(out, pixels)


def test_jpeg_frames_decode_to_their_shape() -> None:
    yy, xx = np.mgrid[0:32, 0:40]
    pixels = np.stack([yy * 4, xx * 3, yy + xx], axis=-1).astype(np.uint8)
    out = codecs.decode(encode(pixels, "image/jpeg"), "image/jpeg", 32, 40, 3, "|u1")
    assert out.shape == (32, 40, 3) and out.dtype == np.uint8
    # Lossy: close, not equal.
    assert np.abs(out.astype(int) - pixels).mean() < 8


def test_content_type_parameters_are_ignored() -> None:
    pixels = ct_pixels()
    data = encode(pixels, "image/jph")
    out = codecs.decode(data, "image/jph; transfer-syntax=1.2.840.10008.1.2.4.202",
                        64, 48, 1, "<i2")
    np.testing.assert_array_equal(out, pixels)


def test_unknown_content_type_is_a_clear_error() -> None:
    with pytest.raises(UnsupportedContentType, match="video/mp4"):
        codecs.decode(b"xx", "video/mp4", 4, 4, 1, "<u2")


def test_garbage_and_wrong_shape_are_decode_errors() -> None:
    with pytest.raises(DecodeError):
        codecs.decode(b"\xff\x4f\xff\x51garbage", "image/jph", 64, 48, 1, "<i2")
    data = encode(ct_pixels(), "image/jphc")
    with pytest.raises(DecodeError, match="shape"):
        codecs.decode(data, "image/jphc", 48, 64, 1, "<i2")
    with pytest.raises(DecodeError, match="bytes"):
        codecs.decode(b"\0" * 10, "application/octet-stream", 4, 4, 1, "<u2")


def test_crc32_is_zlib_crc_of_little_endian_bytes_unsigned() -> None:
    pixels = ct_pixels()
    expected = zlib.crc32(pixels.astype("<i2").tobytes()) & 0xFFFFFFFF
    assert codecs.crc32(pixels) == expected
    assert codecs.crc32(pixels.astype(">i2")) == expected
    assert codecs.crc32(np.asfortranarray(pixels)) == expected
    assert codecs.crc32(pixels) >= 0


def test_signed_values_are_hashed_as_stored() -> None:
    pixels = np.array([[-1, -2], [3, -32768]], dtype=np.int16)
    assert codecs.crc32(pixels) == zlib.crc32(pixels.view(np.uint16).astype("<u2").tobytes())


@pytest.mark.parametrize("rows, cols", [(16, 16), (5, 7)])
def test_one_bit_raw_frames_unpack_lowest_bit_first(rows: int, cols: int) -> None:
    mask = (np.random.default_rng(rows).random((rows, cols)) > 0.5).astype(np.uint8)
    packed = np.packbits(mask.ravel(), bitorder="little").tobytes()
    out = codecs.decode(packed, "application/octet-stream", rows, cols, 1, "|u1", bits_allocated=1)
    np.testing.assert_array_equal(out, mask)
    assert codecs.crc32(out) == crc(mask)
    with pytest.raises(DecodeError, match="1-bit raw frame"):
        codecs.decode(packed[:-1], "application/octet-stream", rows, cols, 1, "|u1",
               bits_allocated=1)


@pytest.mark.parametrize("encoded_as", ["image/jph", "image/jphc", "image/j2c"])
def test_jpeg2000_frames_served_as_octet_stream_are_decoded_by_what_they_are(
        encoded_as: str) -> None:
    pixels = ct_pixels()
    data = encode(pixels, encoded_as)
    out = codecs.decode(data, "application/octet-stream", 64, 48, 1, "<i2")
    np.testing.assert_array_equal(out, pixels)
