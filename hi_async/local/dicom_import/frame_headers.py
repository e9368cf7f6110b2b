"""The size a compressed frame says it decodes to, read from its header alone.

A decoder allocates its output from the stream's own header, whatever the DICOM
attributes around it say: a 1 KB JPEG whose frame header claims 65500x65500 pixels
makes libjpeg allocate 4 GB. Reading that header first (a few dozen bytes) lets the
import refuse such a frame before any decoder sees it.

Covered: JPEG (the SOF marker segment of every process: baseline, extended, lossless,
and JPEG-LS's SOF55), JPEG 2000 and HTJ2K (the SIZ marker segment, bare codestream or
JP2-family file) and JPEG XL (the SizeHeader; samples and bit depth are not in it, so
the caller's come in). Anything else, or a header that cannot be read, gives None: the
decoder will then refuse the stream itself, and the DICOM attributes were checked
already.

Pure: bytes in, numbers out; runs in the import workers.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

_SOI = b"\xff\xd8"
_SOC_SIZ = b"\xff\x4f\xff\x51"
_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
_JXL_CODESTREAM = b"\xff\x0a"
_JXL_CONTAINER = b"\x00\x00\x00\x0cJXL \r\n\x87\n"
#: Start-of-frame markers (ITU T.81 B.1.1.3: C0-C3, C5-C7, C9-CB, CD-CF) and JPEG-LS's
#: SOF55 (ITU T.87, F7). Their segments all begin P, Y, X, Nf.
_SOF_MARKERS = frozenset({*range(0xC0, 0xC4), *range(0xC5, 0xC8), *range(0xC9, 0xCC),
                          *range(0xCD, 0xD0), 0xF7})
#: Markers without a length field: TEM and the restart markers.
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
_SOS = 0xDA
#: JPEG XL's fixed aspect ratios (SizeHeader ``ratio`` 1-7) as width / height.
_JXL_RATIOS = {1: (1, 1), 2: (12, 10), 3: (4, 3), 4: (3, 2), 5: (16, 9), 6: (5, 4), 7: (2, 1)}


@dataclass(frozen=True, slots=True)
class Geometry:
    """What a decoder will produce for one frame."""

    rows: int
    columns: int
    samples: int
    bits: int

    @property
    def bytes_per_sample(self) -> int:
        """The decoders' output types: 8-bit, 16-bit, else 32-bit samples."""
        return 1 if self.bits <= 8 else 2 if self.bits <= 16 else 4

    @property
    def decoded_bytes(self) -> int:
        return self.rows * self.columns * self.samples * self.bytes_per_sample

    def describe(self) -> str:
        """``65500x65500 pixels, 3 samples of 8 bits`` (rows x columns, as DICOM says it)."""
        samples = "1 sample" if self.samples == 1 else f"{self.samples} samples"
        return f"{self.rows}x{self.columns} pixels, {samples} of {self.bits} bits"


def encoded_geometry(data: bytes, *, samples: int = 1, bits: int = 8) -> Geometry | None:
    """The geometry a compressed frame's header declares, or None if it declares none.

    ``samples`` and ``bits`` stand in where the format's first header does not say
    (JPEG XL): pass the instance's SamplesPerPixel and BitsAllocated.
    """
    try:
        if data[:2] == _SOI:
            return _jpeg(data)
        if data[:4] == _SOC_SIZ:
            return _siz(data)
        if data[:12] == _JP2_SIGNATURE:
            codestream = _box_payload(data, b"jp2c")
            return _siz(codestream) if codestream is not None else None
        if data[:2] == _JXL_CODESTREAM:
            return _jxl(data, 2, samples, bits)
        if data[:12] == _JXL_CONTAINER:
            codestream = _box_payload(data, b"jxlc")
            if codestream is None and (partial := _box_payload(data, b"jxlp")) is not None:
                codestream = partial[4:]  # after the partial box's sequence number
            if codestream is not None and codestream[:2] == _JXL_CODESTREAM:
                return _jxl(codestream, 2, samples, bits)
    except (IndexError, struct.error):  # a header cut short declares nothing
        return None
    return None


def _jpeg(data: bytes) -> Geometry | None:
    """The first SOF segment's P (bits), Y (rows), X (columns), Nf (components)."""
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None  # not at a marker: malformed, the decoder will say so
        marker = data[pos + 1]
        if marker == 0xFF:  # a fill byte before the marker
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        (length,) = struct.unpack_from(">H", data, pos + 2)
        if marker in _SOF_MARKERS:
            bits, rows, columns, components = struct.unpack_from(">BHHB", data, pos + 4)
            # Rows 0 means "defined later by a DNL marker"; nothing to check then.
            return Geometry(rows, columns, components, bits) if rows else None
        if marker == _SOS:
            return None  # a scan before any frame header
        pos += 2 + length
    return None


def _siz(codestream: bytes) -> Geometry | None:
    """ISO/IEC 15444-1 A.5.1: image extent minus its offset, components and their depth."""
    if codestream[:4] != _SOC_SIZ:
        return None
    (xsiz, ysiz, xosiz, yosiz) = struct.unpack_from(">IIII", codestream, 8)
    (components,) = struct.unpack_from(">H", codestream, 40)
    depths = [(codestream[42 + 3 * i] & 0x7F) + 1 for i in range(components)]
    if not depths or xsiz <= xosiz or ysiz <= yosiz:
        return None
    return Geometry(ysiz - yosiz, xsiz - xosiz, components, max(depths))


def _box_payload(data: bytes, kind: bytes) -> bytes | None:
    """The payload of the first top-level box of type ``kind`` in a JP2-family file.

    Unlike :func:`.transcode.jph_boxes`, content with a box that runs past its end is
    fine: a frame's first fragment may hold only the start of its ``jp2c`` box, and
    only the start is read."""
    pos = 0
    while pos + 8 <= len(data):
        length, found = struct.unpack_from(">I4s", data, pos)
        header = 8
        if length == 1:
            (length,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif length == 0:
            length = len(data) - pos
        if length < header:
            return None
        if found == kind:
            return data[pos + header:pos + length]
        pos += length
    return None


class _Bits:
    """JPEG XL's bit reader: least significant bit first (ISO/IEC 18181-1, 9.2.1)."""

    def __init__(self, data: bytes, start: int) -> None:
        self._data, self._bit = data, start * 8

    def u(self, count: int) -> int:
        value = 0
        for i in range(count):
            byte = self._data[self._bit >> 3]
            value |= ((byte >> (self._bit & 7)) & 1) << i
            self._bit += 1
        return value

    def size(self) -> int:
        """U32(BitsOffset(9, 1), BitsOffset(13, 1), BitsOffset(18, 1), BitsOffset(30, 1))."""
        return 1 + self.u((9, 13, 18, 30)[self.u(2)])


def _jxl(codestream: bytes, start: int, samples: int, bits: int) -> Geometry:
    """The SizeHeader right after the codestream signature: height, then width or ratio."""
    reader = _Bits(codestream, start)
    small = reader.u(1)
    rows = (reader.u(5) + 1) * 8 if small else reader.size()
    ratio = reader.u(3)
    if ratio:
        width, height = _JXL_RATIOS[ratio]
        columns = rows * width // height
    else:
        columns = (reader.u(5) + 1) * 8 if small else reader.size()
    return Geometry(rows, columns, max(1, samples), bits)
