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
    with pytest.raises(DecodeError, match="64x48 pixels, not 48x64"):
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


def _patched(data: bytes, offset: int, value: bytes) -> bytes:
    return data[:offset] + value + data[offset + len(value):]


def test_a_damaged_jpeg2000_header_is_refused_before_the_decoder_sees_it() -> None:
    """Headers that made OpenJPH loop for good or crash the process in a fuzz test."""
    import struct

    data = encode(ct_pixels(64, 48), "image/jphc")
    siz = data.index(b"\xff\x51")
    # An image offset past the image's extent: OpenJPH never returned.
    looping = _patched(data, siz + 14, struct.pack(">I", 0xFF00))  # XOsiz
    with pytest.raises(DecodeError, match="image offset 65280,0 outside its extent 48,64"):
        codecs.decode(looping, "image/jphc", 64, 48, 1, "<i2")
    # A QCD segment shorter than its decomposition levels need: a segfault.
    qcd = data.index(b"\xff\x5c")
    short = _patched(data, qcd + 2, struct.pack(">H", 3))
    with pytest.raises(DecodeError, match="the JPEG 2000 header does not describe"):
        codecs.decode(short, "image/jphc", 64, 48, 1, "<i2")
    # Components and depth must be the frame's.
    with pytest.raises(DecodeError, match="1 components, not 3"):
        codecs.decode(data, "image/jphc", 64, 48, 3, "<i2")
    with pytest.raises(DecodeError, match="component 0: 16 bits"):
        codecs.decode(data, "image/jphc", 64, 48, 1, "|u1")


@pytest.mark.parametrize("content_type", ["image/jph", "image/jphc", "image/j2c"])
def test_sound_jpeg2000_headers_pass_the_check(content_type: str) -> None:
    for pixels, samples in ((ct_pixels(64, 48), 1), (rgb_pixels(), 3)):
        data = encode(pixels, content_type)
        rows, columns = pixels.shape[:2]
        codecs.check_jpeg2000_header(data, rows, columns, samples, pixels.dtype.itemsize)
        assert np.array_equal(codecs.decode(data, content_type, rows, columns, samples,
                                            pixels.dtype.str), pixels)
