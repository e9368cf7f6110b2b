"""Decoded pixels → stored frames, the way HealthImaging stores them.

Lossless sources are re-encoded as lossless HTJ2K (OpenJPH through imagecodecs) and
wrapped in a JPH file (ISO/IEC 15444-15: JP2 signature box, ``ftyp`` brand ``jph ``,
``jp2h`` with ``ihdr`` + ``colr``, then the codestream in ``jp2c``), served as
``image/jph``. The codestream parameters follow the service: reversible 5/3 wavelet,
RPCL progression, 64x64 code blocks and as many decomposition levels as the frame size
allows, up to five. OpenJPH's defaults already give RPCL and 64x64 blocks; the number of
levels is set through ``htj2k_encode(resolutions=...)``, which (despite its name) writes
the COD decomposition-levels field. ``read_cod`` parses the COD marker so tests can
check all of this on the bytes themselves.

Checksums: ``PixelDataChecksumFromBaseToFullResolution`` holds one CRC32 per
resolution, base first. The lower resolutions are decoded from the codestream we just
wrote (OpenJPH can stop at a reduced resolution: ``htj2k_decode(skipres=k)``), so every
entry describes pixels a client can actually reconstruct; the last entry is the CRC32 of
the full-resolution pixels as imported.

Data stores created with ``losslessStorageFormat=JPEG_2000_LOSSLESS`` keep lossless
frames as JPEG 2000 instead (see :func:`encode_j2k`).

Everything here is pure and runs inside worker processes.
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass

import imagecodecs
import numpy as np

from ..healthimaging.records import EncodedFrame

#: Stored transfer syntax of frames transcoded to HTJ2K lossless RPCL.
HTJ2K_LOSSLESS_RPCL = "1.2.840.10008.1.2.4.202"
JPH_CONTENT_TYPE = "image/jph"
#: Stored transfer syntax and content type of frames kept as JPEG 2000 lossless.
JPEG2000_LOSSLESS = "1.2.840.10008.1.2.4.90"
J2K_CONTENT_TYPE = "image/j2c"
#: ``losslessStorageFormat`` values of CreateDatastore (botocore's LosslessStorageFormat).
STORAGE_HTJ2K = "HTJ2K"
STORAGE_JPEG_2000_LOSSLESS = "JPEG_2000_LOSSLESS"
STORAGE_FORMATS = (STORAGE_HTJ2K, STORAGE_JPEG_2000_LOSSLESS)
MAX_DECOMPOSITION_LEVELS = 5

_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
#: Enumerated colour spaces of the ``colr`` box (ISO/IEC 15444-1 Annex I).
_ENUM_CS_SRGB = 16
_ENUM_CS_GREYSCALE = 17
_ENUM_CS_SYCC = 18
_PROGRESSION_ORDERS = ("LRCP", "RLCP", "RPCL", "PCRL", "CPRL")


@dataclass(frozen=True, slots=True)
class CodingStyle:
    """The fields of a COD marker that describe how a codestream was encoded."""

    progression_order: str
    layers: int
    multiple_component_transform: bool
    decomposition_levels: int
    code_block_width: int
    code_block_height: int
    reversible: bool


def decomposition_levels(rows: int, columns: int) -> int:
    """As many levels as halving the smaller side allows, capped at five, at least one.

    One is the floor because ``htj2k_encode`` reads 0 as "use the default" (five).
    """
    smallest = max(1, min(rows, columns))
    return max(1, min(MAX_DECOMPOSITION_LEVELS, int(math.log2(smallest))))


def little_endian(pixels: np.ndarray) -> np.ndarray:
    """The same values in native little-endian, C-contiguous layout."""
    if pixels.dtype.byteorder == ">" or (
        pixels.dtype.byteorder == "=" and np.little_endian is False
    ):
        pixels = pixels.astype(pixels.dtype.newbyteorder("<"))
    return np.ascontiguousarray(pixels)


def pixel_crc32(pixels: np.ndarray) -> int:
    """CRC32 of pixels as HealthImaging hashes them: interleaved samples, little-endian."""
    return zlib.crc32(little_endian(pixels).tobytes()) & 0xFFFFFFFF


def pixel_range(pixels: np.ndarray) -> tuple[int | float | None, int | float | None]:
    """``MinPixelValue`` / ``MaxPixelValue`` as JSON numbers (None for an empty frame)."""
    if pixels.size == 0:
        return None, None
    lo, hi = pixels.min(), pixels.max()
    if pixels.dtype.kind == "f":
        return float(lo), float(hi)
    return int(lo), int(hi)


def encode_jph(pixels: np.ndarray, *, ybr: bool = False) -> bytes:
    """Lossless HTJ2K codestream of one frame ((rows, cols) or (rows, cols, samples))."""
    pixels = little_endian(pixels)
    if pixels.dtype.kind not in "ui":
        raise ValueError(f"cannot store {pixels.dtype} pixels as HTJ2K; need integer samples")
    rows, columns = pixels.shape[:2]
    codestream = imagecodecs.htj2k_encode(
        pixels,
        reversible=True,
        resolutions=decomposition_levels(rows, columns),
        planar=False,
    )
    return wrap_jph(bytes(codestream), pixels, ybr=ybr)


def wrap_jph(codestream: bytes, pixels: np.ndarray, *, ybr: bool = False) -> bytes:
    """Put a codestream in the JP2-family wrapper the service serves as ``image/jph``.

    ``ybr`` marks three-sample frames whose samples are YCbCr (kept as imported).
    """
    rows, columns = pixels.shape[:2]
    samples = 1 if pixels.ndim == 2 else pixels.shape[2]
    bits = pixels.dtype.itemsize * 8  # what OpenJPH writes in SIZ for this dtype
    bpc = (bits - 1) | (0x80 if pixels.dtype.kind == "i" else 0)
    # ihdr: height, width, components, bpc, compression type 7, colour unknown 0, IPR 0.
    ihdr = _box(b"ihdr", struct.pack(">IIHBBBB", rows, columns, samples, bpc, 7, 0, 0))
    colour_space = _ENUM_CS_GREYSCALE
    if samples > 1:
        colour_space = _ENUM_CS_SYCC if ybr else _ENUM_CS_SRGB
    colr = _box(b"colr", struct.pack(">BBBI", 1, 0, 0, colour_space))
    ftyp = _box(b"ftyp", b"jph " + struct.pack(">I", 0) + b"jph ")
    return _JP2_SIGNATURE + ftyp + _box(b"jp2h", ihdr + colr) + _box(b"jp2c", codestream)


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def jph_boxes(data: bytes) -> list[tuple[bytes, bytes]]:
    """Top-level boxes of a JP2-family file as (type, payload), for checks and tests."""
    boxes: list[tuple[bytes, bytes]] = []
    pos = 0
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        header = 8
        if length == 1:
            length = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
            header = 16
        elif length == 0:
            length = len(data) - pos
        if length < header or pos + length > len(data):
            raise ValueError(f"truncated or malformed box {kind!r} at offset {pos}")
        boxes.append((kind, data[pos + header : pos + length]))
        pos += length
    return boxes


def codestream_of(data: bytes) -> bytes:
    """The bare codestream of a JPH/JP2 file (or the input when it already is one)."""
    if data[:4] == b"\xff\x4f\xff\x51":
        return data
    for kind, payload in jph_boxes(data):
        if kind == b"jp2c":
            return payload
    raise ValueError("no jp2c box: not a JPEG 2000 family file")


def read_cod(data: bytes) -> CodingStyle:
    """Parse the main-header COD marker of a codestream (bare or wrapped)."""
    cs = codestream_of(data)
    pos = 2  # after SOC
    while pos + 4 <= len(cs):
        marker, length = struct.unpack(">HH", cs[pos : pos + 4])
        if marker == 0xFF52:
            body = cs[pos + 4 : pos + 2 + length]
            return CodingStyle(
                progression_order=_PROGRESSION_ORDERS[body[1]],
                layers=struct.unpack(">H", body[2:4])[0],
                multiple_component_transform=bool(body[4]),
                decomposition_levels=body[5],
                code_block_width=1 << (body[6] + 2),
                code_block_height=1 << (body[7] + 2),
                reversible=body[9] == 1,
            )
        if marker == 0xFF90:  # SOT: main header is over
            break
        pos += 2 + length
    raise ValueError("no COD marker in the codestream's main header")


def resolution_checksums(jph: bytes, full: np.ndarray) -> tuple[dict[str, int], ...]:
    """CRC32 per resolution, base first, decoded from the stored codestream."""
    levels = read_cod(jph).decomposition_levels
    entries: list[dict[str, int]] = []
    for skip in range(levels, 0, -1):
        reduced = imagecodecs.htj2k_decode(jph, skipres=skip)
        entries.append(_checksum_entry(reduced))
    entries.append(_checksum_entry(full))
    return tuple(entries)


def _checksum_entry(pixels: np.ndarray) -> dict[str, int]:
    return {"Width": int(pixels.shape[1]), "Height": int(pixels.shape[0]),
            "Checksum": pixel_crc32(pixels)}


def encode_j2k(pixels: np.ndarray, *, ybr: bool = False) -> bytes:
    """Lossless JPEG 2000 (Part 1) codestream of one frame, served as ``image/j2c``.

    What the service serves for data stores created with ``JPEG_2000_LOSSLESS`` is not
    documented (reference page, "Import"). We store the bare codestream, the form DICOM's
    JPEG 2000 lossless syntax (.4.90) encapsulates, and answer ``image/j2c``, the media
    type registered for a bare JPEG 2000 codestream (RFC 3745) and the one the service
    already uses for JPEG 2000 frames it keeps as imported. OpenJPEG through imagecodecs:
    reversible 5/3 wavelet (``level=0`` is lossless), the same number of decomposition
    levels as our HTJ2K frames, 64x64 code blocks (OpenJPEG's default), LRCP (its default;
    no RPCL requirement is documented for this format). Three-sample RGB frames use the
    reversible colour transform; YCbCr frames are already decorrelated and skip it.
    """
    pixels = little_endian(pixels)
    if pixels.dtype.kind not in "ui":
        raise ValueError(f"cannot store {pixels.dtype} pixels as JPEG 2000; "
                         "need integer samples")
    rows, columns = pixels.shape[:2]
    samples = 1 if pixels.ndim == 2 else pixels.shape[2]
    codestream = imagecodecs.jpeg2k_encode(
        pixels, level=0, codecformat="J2K", reversible=True, planar=False,
        resolutions=decomposition_levels(rows, columns) + 1,
        mct=samples == 3 and not ybr,
    )
    return bytes(codestream)


def j2k_lossless_frame(pixels: np.ndarray, *, ybr: bool = False) -> EncodedFrame:
    """One decoded frame → a stored JPEG 2000 lossless frame with its metadata facts.

    The checksum list holds only the full resolution: imagecodecs' OpenJPEG decoder
    (``jpeg2k_decode``) cannot stop at a reduced resolution, and every entry we publish
    must describe pixels a client can reconstruct. The list may hold a single entry
    (reference page, "Metadata"), and clients verify against the last one.
    """
    pixels = little_endian(pixels)
    data = encode_j2k(pixels, ybr=ybr)
    lo, hi = pixel_range(pixels)
    return EncodedFrame(data=data, content_type=J2K_CONTENT_TYPE, min_pixel_value=lo,
                        max_pixel_value=hi, checksums=(_checksum_entry(pixels),))


def stored_lossless_syntax(storage_format: str) -> str:
    """The StoredTransferSyntaxUID of lossless sources in a data store of this format."""
    return JPEG2000_LOSSLESS if storage_format == STORAGE_JPEG_2000_LOSSLESS else \
        HTJ2K_LOSSLESS_RPCL


def lossless_frame(pixels: np.ndarray, *, ybr: bool = False,
                   storage_format: str = STORAGE_HTJ2K) -> EncodedFrame:
    """One decoded frame → the stored frame (JPH, or J2K for JPEG 2000 data stores)."""
    if storage_format == STORAGE_JPEG_2000_LOSSLESS:
        return j2k_lossless_frame(pixels, ybr=ybr)
    pixels = little_endian(pixels)
    data = encode_jph(pixels, ybr=ybr)
    lo, hi = pixel_range(pixels)
    return EncodedFrame(
        data=data,
        content_type=JPH_CONTENT_TYPE,
        min_pixel_value=lo,
        max_pixel_value=hi,
        checksums=resolution_checksums(data, pixels),
    )


def as_is_frame(data: bytes, content_type: str, pixels: np.ndarray | None) -> EncodedFrame:
    """A frame stored as it came (lossy syntaxes), with facts from its decoded pixels.

    AWS says the checksum of such frames is "computed on the original image" without
    saying how; we hash the pixels a client gets by decoding the stored bytes, and leave
    the checksum out when they cannot be decoded here.
    """
    if pixels is None:
        return EncodedFrame(data=data, content_type=content_type,
                            min_pixel_value=None, max_pixel_value=None)
    lo, hi = pixel_range(pixels)
    return EncodedFrame(data=data, content_type=content_type, min_pixel_value=lo,
                        max_pixel_value=hi, checksums=(_checksum_entry(pixels),))
