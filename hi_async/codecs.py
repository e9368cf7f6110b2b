"""Decode a frame by its Content-Type and compute the CRC32 the service publishes. Pure.

Runs inside decode workers (processes or threads), so it imports only numpy and
imagecodecs and touches no files. The CRC32 rule (reference page, "Frames"): zlib's
CRC-32 over the decoded full-resolution pixels, samples interleaved, little-endian,
ceil(bit depth / 8) bytes per sample, signed values as stored, compared unsigned.
"""

from __future__ import annotations

import math
import struct
import sys
import threading
from collections.abc import Callable
from typing import Any

import imagecodecs
import numpy as np

from .errors import DecodeError, UnsupportedContentType

# imagecodecs' deflate_crc32 gives zlib's CRC-32, an order of magnitude faster than
# zlib.crc32 (benchmarks/NOTES.md).
_crc32: Callable[[Any], int] = imagecodecs.deflate_crc32


def little_endian(dtype: np.dtype[Any]) -> bool:
    """Whether values of ``dtype`` are held as little-endian bytes (single bytes are)."""
    return dtype.byteorder in "<|" or (dtype.byteorder == "=" and sys.byteorder == "little")


def crc32(pixels: np.ndarray) -> int:
    """CRC-32 of the pixels' bytes in C order, as an unsigned 32-bit integer."""
    arr = np.ascontiguousarray(pixels)
    if not little_endian(arr.dtype):
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return int(_crc32(arr)) & 0xFFFFFFFF


def _htj2k(data: bytes) -> np.ndarray:
    # Accepts the JPEG 2000 family file wrapper (image/jph) and bare codestreams (jphc).
    return imagecodecs.htj2k_decode(data)


#: Frames up to this many decoded bytes may be decoded into a reused buffer.
SCRATCH_MAX_BYTES = 4 << 20
#: Buffers one thread keeps (one per frame geometry it met last).
SCRATCH_PER_THREAD = 4
_scratch_local = threading.local()
#: Per thread: how many codec errors the interpreter reported without raising them.
_swallowed = threading.local()


def note_swallowed_codec_error() -> None:
    """Count a codec error reported on this thread but not raised: OpenJPH's error
    callback raises inside C++ code that Cython cannot propagate through, so the decode
    call returns pixels as if it had succeeded. The interpreter's hooks
    (:func:`hi_async.decodepool._quiet_codec_noise`) call this; :func:`decode` checks the
    count around each decode and turns such a decode into a DecodeError."""
    _swallowed.count = getattr(_swallowed, "count", 0) + 1


def _scratch(shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray | None:
    """This thread's reusable buffer for a frame of ``shape`` and ``dtype``, or None for
    a frame too large to keep a buffer for.

    A decode into a fresh array costs an allocation the size of the frame, and the C
    library hands large ones back to the kernel when freed, so every frame's pixels
    page-fault in again. One buffer per geometry, reused frame after frame, does not.
    """
    if math.prod(shape) * dtype.itemsize > SCRATCH_MAX_BYTES:
        return None
    buffers: dict[tuple[tuple[int, ...], str], np.ndarray] | None = getattr(
        _scratch_local, "buffers", None)
    if buffers is None:
        buffers = _scratch_local.buffers = {}
    key = (shape, dtype.str)
    found = buffers.pop(key, None)
    if found is None:
        found = np.empty(shape, dtype)
        while len(buffers) >= SCRATCH_PER_THREAD:
            del buffers[next(iter(buffers))]
    buffers[key] = found  # most recently used last
    return found


def _htj2k_into(data: bytes, shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray | None:
    """The frame decoded into this thread's buffer for its geometry (so of ``shape`` and
    ``dtype``), or None where that cannot be done (no buffer for its size; or the
    codestream's image is not ``shape`` of ``dtype``'s width, which the caller's own
    decode then reports or converts)."""
    out = _scratch(shape, dtype)
    if out is None:
        return None
    # Zeroed first: a decoder that stopped early without a word leaves zeros, which fail
    # the CRC32 check, never the pixels of the frame decoded here before.
    out.fill(0)
    try:
        imagecodecs.htj2k_decode(data, out=out)
    except Exception:  # the ordinary decode then names what is wrong
        return None
    return out


def _jpeg2k(data: bytes) -> np.ndarray:
    return imagecodecs.jpeg2k_decode(data)


def _jpeg(data: bytes) -> np.ndarray:
    return imagecodecs.jpeg8_decode(data)


def _jpegxl(data: bytes) -> np.ndarray:
    decode = getattr(imagecodecs, "jpegxl_decode", None)
    if decode is None:
        raise UnsupportedContentType("image/jxl frames need imagecodecs built with JPEG XL")
    pixels: np.ndarray = decode(data)
    return pixels


_DECODERS: dict[str, Callable[[bytes], np.ndarray]] = {
    "image/jph": _htj2k,
    "image/jphc": _htj2k,
    "image/htj2k": _htj2k,
    "image/j2c": _jpeg2k,
    "image/jp2": _jpeg2k,
    "image/jpeg": _jpeg,
    "image/jxl": _jpegxl,
}

RAW = "application/octet-stream"


def base_content_type(content_type: str | None) -> str:
    """``image/jph; transfer-syntax=...`` → ``image/jph`` (lower case)."""
    return (content_type or RAW).split(";", 1)[0].strip().lower()


def expected_shape(rows: int, columns: int, samples: int) -> tuple[int, ...]:
    return (rows, columns) if samples == 1 else (rows, columns, samples)


_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
_SOC_SIZ = b"\xff\x4f\xff\x51"
_CAP = b"\xff\x50"  # the CAP marker segment: present in HTJ2K (Part 15) codestreams


def _sniff_jpeg2000(data: bytes) -> bool:
    """A JPEG 2000 family file (signature box) or a bare codestream (SOC then SIZ)."""
    return data.startswith(_JP2_SIGNATURE) or data.startswith(_SOC_SIZ)


def _is_htj2k(data: bytes) -> bool:
    """HTJ2K codestreams carry a CAP segment in their main header (near the start)."""
    return _CAP in data[:4096]


#: JPEG 2000 family content types: checked against their SIZ header before decoding.
_JPEG2000_KINDS = frozenset({"image/jph", "image/jphc", "image/htj2k", "image/j2c",
                             "image/jp2"})
_MAX_TILES = 65535  # ISO/IEC 15444-1: tile indices are 16-bit


def check_jpeg2000_header(data: bytes, rows: int, columns: int, samples: int,
                          itemsize: int) -> None:
    """Refuse a JPEG 2000 / HTJ2K frame whose SIZ header is not the image the metadata
    describes, before a decoder sees it.

    A damaged header can make a decoder allocate for a huge image or loop without end
    (an image offset past the image's extent kept OpenJPH busy for good in a test), and
    a decode in native code cannot be cancelled. A frame that fails here is damaged in
    transit or mislabelled: the caller fetches it again, as after a CRC mismatch.
    """
    at = data.find(_SOC_SIZ, 0, 1 << 16)
    if at < 0:
        raise DecodeError("no JPEG 2000 codestream (SOC and SIZ markers) at the start "
                          "of the frame")
    head = data[at + 4:at + 4 + 38]
    if len(head) < 38:
        raise DecodeError("the JPEG 2000 SIZ header is cut short")
    (length, _rsiz, xsiz, ysiz, xo, yo, xt, yt, xto, yto,
     components) = struct.unpack(">HHIIIIIIIIH", head)
    comp = data[at + 4 + 38:at + 4 + 38 + 3 * components]
    problems = []
    if length != 38 + 3 * components or len(comp) < 3 * components:
        problems.append(f"length {length} for {components} components")
    if not (xo < xsiz and yo < ysiz):
        problems.append(f"image offset {xo},{yo} outside its extent {xsiz},{ysiz}")
    elif (ysiz - yo, xsiz - xo) != (rows, columns):
        problems.append(f"{ysiz - yo}x{xsiz - xo} pixels, not {rows}x{columns}")
    if components != samples:
        problems.append(f"{components} components, not {samples}")
    if not (xt and yt and xto <= xo and yto <= yo and xto + xt > xo and yto + yt > yo):
        problems.append(f"tiles {xt}x{yt} at {xto},{yto} do not cover the image")
    elif -(-(xsiz - xto) // xt) * -(-(ysiz - yto) // yt) > _MAX_TILES:
        problems.append("more tiles than a codestream can have")
    for c in range(min(components, len(comp) // 3)):
        depth, dx, dy = (comp[3 * c] & 0x7F) + 1, comp[3 * c + 1], comp[3 * c + 2]
        if depth > 8 * itemsize or not (dx and dy):
            problems.append(f"component {c}: {depth} bits, sub-sampling {dx}x{dy}")
            break
    if not problems:
        problems = _main_header_problems(data, at + 4 + length)
    if problems:
        raise DecodeError("the JPEG 2000 header does not describe the frame's image: "
                          + "; ".join(problems))


def _main_header_problems(data: bytes, pos: int) -> list[str]:
    """Check the marker segments after SIZ up to the first tile (SOT): every length in
    bounds, and COD and QCD consistent with each other (a QCD shorter than its
    decomposition levels need crashed OpenJPH in a fuzz test)."""
    levels: int | None = None
    qcd: bytes | None = None
    while True:
        if pos + 4 > len(data) or data[pos] != 0xFF:
            return [f"no marker at byte {pos} of the main header"]
        marker = data[pos + 1]
        if marker == 0x90:  # SOT: the main header is over
            break
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        body = data[pos + 4:pos + 2 + length]
        if length < 2 or len(body) != length - 2:
            return [f"marker FF{marker:02X} at byte {pos} has length {length}"]
        if marker == 0x52:  # COD
            if len(body) < 10:
                return ["COD is cut short"]
            scod, layers, levels = body[0], int.from_bytes(body[2:4], "big"), body[5]
            xcb, ycb = body[6], body[7]
            if not layers or levels > 32 or xcb > 8 or ycb > 8 or xcb + ycb > 8:
                return [f"COD: {layers} layers, {levels} levels, code-block {xcb},{ycb}"]
            if len(body) != 10 + (levels + 1 if scod & 1 else 0):
                return [f"COD has {len(body)} bytes for {levels} levels"]
        elif marker == 0x5C:  # QCD
            qcd = body
        pos += 2 + length
    if levels is None or qcd is None:
        return ["the main header has no COD or no QCD"]
    if not qcd:
        return ["QCD is empty"]
    style, bands = qcd[0] & 0x1F, 3 * levels + 1
    need = {0: 1 + bands, 1: 3, 2: 1 + 2 * bands}.get(style)
    if need is None or len(qcd) != need:
        return [f"QCD has {len(qcd)} bytes for {levels} levels (style {style})"]
    return []


def _unpack_bits(data: bytes, count: int, shape: tuple[int, ...]) -> np.ndarray:
    """1-bit pixels (binary segmentations), first pixel in the lowest bit as DICOM packs
    them, to one uint8 of 0 or 1 per pixel: what the service's checksum covers."""
    need = (count + 7) // 8
    if len(data) < need:
        raise DecodeError(f"1-bit raw frame has {len(data)} bytes, expected {need}")
    packed = np.frombuffer(data, dtype=np.uint8, count=need)
    return np.unpackbits(packed, bitorder="little")[:count].reshape(shape)


def decode(
    data: bytes, content_type: str | None, rows: int, columns: int, samples: int, dtype: str,
    bits_allocated: int = 0, *, scratch: bool = False,
) -> np.ndarray:
    """Decoded pixels, shape (rows, columns) or (rows, columns, samples), stored dtype.

    ``bits_allocated=1`` marks a binary segmentation, whose raw frames are packed bits.
    ``scratch``: the pixels may be decoded into a buffer this thread reuses for the next
    frame of the same geometry, so the caller must be done with them before it decodes
    again in the same thread.
    Raises UnsupportedContentType for a content type without a decoder and DecodeError
    when the bytes do not decode to the described image.
    """
    kind = base_content_type(content_type)
    target = np.dtype(dtype)
    shape = expected_shape(rows, columns, samples)
    if kind == RAW and bits_allocated == 1:
        return _unpack_bits(data, rows * columns * samples, shape)
    need = rows * columns * samples * target.itemsize
    if kind == RAW and len(data) != need and _sniff_jpeg2000(data):
        # application/octet-stream is the model's default Content-Type: a JPEG 2000
        # family frame served under it is decoded by what it is, not what it is called.
        kind = "image/jph" if _is_htj2k(data) else "image/j2c"
    if kind == RAW:
        if len(data) < need:
            raise DecodeError(f"raw frame has {len(data)} bytes, expected {need}")
        return np.frombuffer(data, dtype=target, count=rows * columns * samples).reshape(shape)
    decoder = _DECODERS.get(kind)
    if kind in _JPEG2000_KINDS:
        check_jpeg2000_header(data, rows, columns, samples, target.itemsize)
    if decoder is None:
        raise UnsupportedContentType(
            f"content type {kind!r} is not supported",
            hint="hi_async decodes image/jph, image/jphc, image/j2c, image/jpeg and "
            "application/octet-stream frames",
        )
    swallowed = getattr(_swallowed, "count", 0)
    pixels = None
    if scratch and decoder is _htj2k and samples == 1:
        pixels = _htj2k_into(data, shape, target)  # already of the shape and dtype asked
    if pixels is None:
        try:
            pixels = decoder(bytes(data))
        except UnsupportedContentType:
            raise
        except Exception as exc:  # imagecodecs raises its own error classes per codec
            raise DecodeError(f"{kind} frame does not decode: {exc}") from None
    if getattr(_swallowed, "count", 0) != swallowed:
        raise DecodeError(f"{kind} frame does not decode: the decoder reported an error")
    if pixels.shape != shape:
        if pixels.size == rows * columns * samples and pixels.ndim == 3 and samples > 1 \
                and pixels.shape[0] == samples:
            pixels = np.moveaxis(pixels, 0, -1)  # planar → interleaved
        else:
            raise DecodeError(f"{kind} frame decodes to shape {pixels.shape}, expected {shape}")
    if pixels.dtype != target:
        # Same width: reinterpret (signed as stored); wider or narrower: convert values.
        if pixels.dtype.itemsize == target.itemsize and pixels.dtype.kind in "iu":
            pixels = pixels.view(target.newbyteorder("=")).astype(target, copy=False)
        else:
            pixels = pixels.astype(target)
    return pixels
