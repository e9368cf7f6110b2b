"""Decoding into a reused buffer: same pixels as a fresh decode, one buffer per geometry
and thread, never for a caller that keeps the pixels, and the ordinary decode's errors
and conversions where the buffer cannot serve."""

from __future__ import annotations

import threading
import zlib
from pathlib import Path

import numpy as np
import pytest

from hi_async import codecs
from hi_async.errors import DecodeError
from hi_async.model import Check
from hi_async.output.frames import file_checksum, write_frame_file
from hi_async.verify import verify_frame

from .helpers import crc, ct_pixels, encode, encoded_frame


@pytest.mark.parametrize("signed", [True, False])
def test_scratch_decode_gives_the_pixels_of_a_fresh_decode(signed: bool) -> None:
    pixels = ct_pixels(signed=signed)
    dtype = "<i2" if signed else "<u2"
    data = encode(pixels, "image/jph")
    out = codecs.decode(data, "image/jph", 64, 48, 1, dtype, scratch=True)
    assert out.dtype == np.dtype(dtype) and out.shape == (64, 48)
    np.testing.assert_array_equal(out, pixels)
    assert codecs.crc32(out) == crc(pixels)


def test_one_buffer_serves_every_frame_of_a_geometry_in_a_thread() -> None:
    first, second = ct_pixels(seed=1), ct_pixels(seed=2)
    a = codecs.decode(encode(first, "image/jphc"), "image/jphc", 64, 48, 1, "<i2",
                      scratch=True)
    a_crc = codecs.crc32(a)
    b = codecs.decode(encode(second, "image/jphc"), "image/jphc", 64, 48, 1, "<i2",
                      scratch=True)
    assert np.shares_memory(a, b)  # the second frame overwrote the first's pixels
    assert a_crc == crc(first) and codecs.crc32(b) == crc(second)
    other = codecs.decode(encode(ct_pixels(32, 16), "image/jph"), "image/jph", 32, 16, 1,
                          "<i2", scratch=True)
    assert not np.shares_memory(other, b)

    seen: list[np.ndarray] = []
    thread = threading.Thread(target=lambda: seen.append(codecs.decode(
        encode(first, "image/jph"), "image/jph", 64, 48, 1, "<i2", scratch=True)))
    thread.start()
    thread.join()
    assert not np.shares_memory(seen[0], b)  # each thread has its own buffers
    np.testing.assert_array_equal(seen[0], first)


def test_without_scratch_every_decode_has_its_own_pixels() -> None:
    data = encode(ct_pixels(), "image/jph")
    a = codecs.decode(data, "image/jph", 64, 48, 1, "<i2")
    b = codecs.decode(data, "image/jph", 64, 48, 1, "<i2")
    assert not np.shares_memory(a, b)


def test_a_thread_keeps_few_buffers_and_none_for_large_frames(
        monkeypatch: pytest.MonkeyPatch) -> None:
    shapes = [(8 + n, 8) for n in range(codecs.SCRATCH_PER_THREAD + 3)]
    for shape in shapes:
        pixels = ct_pixels(*shape)
        out = codecs.decode(encode(pixels, "image/jph"), "image/jph", *shape, 1, "<i2",
                            scratch=True)
        np.testing.assert_array_equal(out, pixels)
    assert len(codecs._scratch_local.buffers) == codecs.SCRATCH_PER_THREAD

    monkeypatch.setattr(codecs, "SCRATCH_MAX_BYTES", 64 * 48 * 2 - 1)
    data = encode(ct_pixels(), "image/jph")
    a = codecs.decode(data, "image/jph", 64, 48, 1, "<i2", scratch=True)
    b = codecs.decode(data, "image/jph", 64, 48, 1, "<i2", scratch=True)
    assert not np.shares_memory(a, b)


def test_where_the_buffer_cannot_serve_the_ordinary_decode_converts_or_refuses() -> None:
    # An 8-bit codestream for 16-bit stored pixels: converted, as without scratch.
    small = np.arange(64 * 48, dtype=np.uint8).reshape(64, 48)
    out = codecs.decode(encode(small, "image/jph"), "image/jph", 64, 48, 1, "<u2",
                        scratch=True)
    assert out.dtype == np.dtype("<u2")
    np.testing.assert_array_equal(out, small.astype(np.uint16))
    # A header that is not the frame's image: refused before any decode.
    with pytest.raises(DecodeError, match="not 64x48"):
        codecs.decode(encode(ct_pixels(32, 48), "image/jph"), "image/jph", 64, 48, 1, "<i2",
                      scratch=True)


def test_damaged_bytes_decoded_into_the_buffer_are_a_mismatch() -> None:
    pixels = ct_pixels()
    data = bytearray(encode(pixels, "image/jphc"))
    data[len(data) // 2:] = b"\xff" * (len(data) - len(data) // 2)
    # The same frame decoded whole just before, into the same buffer: none of its
    # pixels may pass for the damaged frame's.
    assert codecs.crc32(codecs.decode(encode(pixels, "image/jphc"), "image/jphc", 64, 48, 1,
                                      "<i2", scratch=True)) == crc(pixels)
    frame = encoded_frame(bytes(data), "image/jphc", 64, 48, 1, "<i2", crc(pixels))
    assert verify_frame(frame, path=None, fmt="none").check is Check.MISMATCH


def test_verify_hands_back_pixels_of_their_own_when_asked(tmp_path: Path) -> None:
    pixels = ct_pixels()
    frame = encoded_frame(encode(pixels, "image/jph"), "image/jph", 64, 48, 1, "<i2",
                          crc(pixels))
    kept = verify_frame(frame, path=None, fmt="none", want_pixels=True)
    again = verify_frame(frame, path=None, fmt="none", want_pixels=True)
    assert kept.check is Check.VERIFIED and kept.pixels is not None
    assert again.pixels is not None and not np.shares_memory(kept.pixels, again.pixels)
    np.testing.assert_array_equal(kept.pixels, pixels)


@pytest.mark.parametrize("fmt", ["raw", "npy", "jph"])
def test_written_files_record_the_crc32_of_their_own_bytes(tmp_path: Path, fmt: str) -> None:
    pixels = ct_pixels()
    frame = encoded_frame(encode(pixels, "image/jph"), "image/jph", 64, 48, 1, "<i2",
                          crc(pixels))
    path = tmp_path / f"frame.{fmt}"
    outcome = verify_frame(frame, path=str(path), fmt=fmt)
    assert outcome.check is Check.VERIFIED
    body = path.read_bytes()
    assert (outcome.file_bytes, outcome.file_crc32) == (len(body), zlib.crc32(body))
    assert file_checksum(str(path)) == (len(body), zlib.crc32(body))


def test_a_raw_file_of_big_endian_pixels_is_checksummed_as_written(tmp_path: Path) -> None:
    pixels = ct_pixels().astype(">i2")
    path = tmp_path / "frame.raw"
    size, file_crc = write_frame_file(str(path), "raw", b"", pixels,
                                      pixels_crc=codecs.crc32(pixels))
    body = path.read_bytes()
    assert body == pixels.tobytes() and (size, file_crc) == (len(body), zlib.crc32(body))
    assert file_crc != codecs.crc32(pixels)  # the pixels' CRC is of little-endian bytes
