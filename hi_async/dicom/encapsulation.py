"""Encoded frames → DICOM encapsulated pixel data, and the JPEG 2000 facts that needs.

DICOM encapsulates a JPEG 2000 family frame (JPEG 2000, HTJ2K) as its bare codestream
(PS3.5 A.4.4 and A.4.11: "the JPEG 2000 bit stream ... without the JP2 file format
header"), but HealthImaging serves HTJ2K lossless RPCL frames (``image/jph``) in the
JPEG 2000 family file wrapper: signature box, ``ftyp``, ``jp2h``, then the codestream in
a ``jp2c`` box (ISO/IEC 15444-1 Annex I, 15444-15). :func:`bare_codestream` takes it out.

Whether a colour codestream applies the multi-component transform, and a reversible one,
is read from its COD marker (15444-1 A.6.1): that decides the Photometric Interpretation
(YBR_RCT, YBR_ICT or the samples as they are; PS3.5 8.2.4 and 8.2.14).

Pure byte handling; runs in worker processes.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from pydicom.encaps import encapsulate, encapsulate_extended

from .errors import UnsupportedPixelData

JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
_SOC = b"\xff\x4f"
_SOC_SIZ = b"\xff\x4f\xff\x51"
_COD, _SOT = 0x52, 0x90
#: A Basic Offset Table holds 32-bit offsets: beyond this the Extended one is needed.
_BOT_LIMIT = 2**32


@dataclass(frozen=True, slots=True)
class ColourTransform:
    """What a codestream's COD marker says about its components."""

    multi_component: bool  # the MCT field: 1 = RCT/ICT applied to components 0-2
    reversible: bool  # 5/3 wavelet (and so RCT), as opposed to 9/7 (ICT)


def bare_codestream(data: bytes) -> bytes:
    """The codestream of a JPEG 2000 family frame, wrapped (JP2/JPH) or bare."""
    if data.startswith(_SOC_SIZ):
        return data
    if not data.startswith(JP2_SIGNATURE):
        raise UnsupportedPixelData("the frame is neither a JPEG 2000 codestream nor a JPEG "
                                   "2000 family file (no SOC marker, no JP2 signature)")
    pos = 0
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        header = 8
        if length == 1:  # a 64-bit length follows the type
            if pos + 16 > len(data):
                break
            length, header = struct.unpack(">Q", data[pos + 8:pos + 16])[0], 16
        elif length == 0:  # the last box runs to the end of the file
            length = len(data) - pos
        if length < header or pos + length > len(data):
            break
        if kind == b"jp2c":
            codestream = data[pos + header:pos + length]
            if not codestream.startswith(_SOC):
                break
            return codestream
        pos += length
    raise UnsupportedPixelData("the JPEG 2000 family file has no well-formed jp2c box "
                               "holding a codestream")


def colour_transform(codestream: bytes) -> ColourTransform:
    """The COD marker's multi-component transform and wavelet of a bare codestream."""
    pos = 2  # after SOC
    while pos + 4 <= len(codestream) and codestream[pos] == 0xFF:
        marker = codestream[pos + 1]
        length = int.from_bytes(codestream[pos + 2:pos + 4], "big")
        if marker == _COD and pos + 14 <= len(codestream):
            body = codestream[pos + 4:pos + 2 + length]
            # Scod, SGcod = (progression, layers x2, MCT), SPcod = (levels, xcb, ycb,
            # style, transformation): transformation 1 is the reversible 5/3 filter.
            return ColourTransform(multi_component=body[4] == 1, reversible=body[9] == 1)
        if marker == _SOT or length < 2:
            break
        pos += 2 + length
    raise UnsupportedPixelData("the JPEG 2000 codestream has no COD marker in its main header")


@dataclass(frozen=True, slots=True)
class Encapsulated:
    """Encapsulated Pixel Data and, past 4 GiB, the Extended Offset Table for it."""

    pixel_data: bytes
    extended_offsets: bytes | None = None
    extended_lengths: bytes | None = None


def encapsulate_frames(frames: Sequence[bytes]) -> Encapsulated:
    """One fragment per frame with a Basic Offset Table (PS3.5 A.4), or an empty one and
    an Extended Offset Table when the offsets no longer fit in 32 bits (A.4.1)."""
    if not frames:
        raise UnsupportedPixelData("an instance without frames has no pixel data to write")
    # Each item is padded to an even length; its offset counts the 8-byte item header.
    total = sum(len(f) + (len(f) & 1) + 8 for f in frames)
    if total < _BOT_LIMIT:
        return Encapsulated(encapsulate(list(frames), fragments_per_frame=1, has_bot=True))
    data, offsets, lengths = encapsulate_extended(list(frames))
    return Encapsulated(data, offsets, lengths)
