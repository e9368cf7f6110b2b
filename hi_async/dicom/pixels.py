"""An instance's verified frames → its Pixel Data, in the stored or in a native syntax.

``stored`` puts the frames in exactly as HealthImaging stores them, under the matching
Transfer Syntax UID: HTJ2K lossless RPCL (``.4.202``; the served JPH file's bare
codestream), HTJ2K (``.4.201``/``.4.203``), JPEG 2000 (``.4.90``/``.4.91``), JPEG
baseline (``.4.50``) and JPEG XL (``.4.112``), each frame one fragment behind a Basic
Offset Table. ``native`` writes the decoded pixels as Explicit VR Little Endian
(``1.2.840.10008.1.2.1``), for tools that read no compressed syntax.

Binary segmentations (Bits Allocated 1) are always written native, 1-bit packed as
PS3.5 8.1.1 packs them (frames back to back, least significant bit first): no
encapsulated syntax allows 1-bit pixels, and the service keeps them that way itself.

The Image Pixel attributes follow the pixels actually written:

- JPEG 2000 family, stored: RGB samples under the multi-component transform are YBR_RCT
  (reversible) or YBR_ICT, and RGB without it, as PS3.5 8.2.4 and 8.2.14 require. YCbCr
  samples the import kept as such (a YBR_FULL_422 source is stored upsampled, one sample
  per pixel per component) stay YBR_FULL even under the transform (OpenJPH applies it to
  every three-component frame): decoders undo it and give the YCbCr samples back, which
  YBR_RCT would misname as RGB. Planar Configuration 0.
- JPEG baseline and JPEG XL, stored: the imported file's values, which describe these
  very bytes.
- native: the decoders (OpenJPH, OpenJPEG, libjpeg-turbo, libjxl through imagecodecs)
  undo the colour transforms, so colour is RGB, except YCbCr samples kept as such
  (YBR_FULL); always interleaved, Planar Configuration 0.

Video (MPEG-2, H.264, HEVC) is not exported: it is refused with a clear error. Frames with
samples wider than 31 bits (32-bit RT Dose, say) are stored as 32-bit HTJ2K, which
OpenJPH decodes but OpenJPEG (pydicom's and most viewers' decoder) refuses; export those
``native`` for such readers.

Pure: frames in, a new dataset out; the input dataset is not changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID

from ..codecs import base_content_type
from .encapsulation import bare_codestream, colour_transform, encapsulate_frames
from .errors import UnsupportedPixelData

Syntax = Literal["stored", "native"]
SYNTAXES: tuple[Syntax, ...] = ("stored", "native")
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
_J2K, _JPEG, _JXL, _NATIVE = "jpeg2000", "jpeg", "jpegxl", "native"
#: StoredTransferSyntaxUID → kind of frame, and the content types it is served as.
_STORED: dict[str, tuple[str, frozenset[str]]] = {
    **dict.fromkeys(("1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203",
                     "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.90",
                     "1.2.840.10008.1.2.4.91"),
                    (_J2K, frozenset({"image/jph", "image/jphc", "image/htj2k", "image/j2c",
                                      "image/jp2", "application/octet-stream"}))),
    "1.2.840.10008.1.2.4.50": (_JPEG, frozenset({"image/jpeg"})),
    "1.2.840.10008.1.2.4.112": (_JXL, frozenset({"image/jxl"})),
    EXPLICIT_VR_LITTLE_ENDIAN: (_NATIVE, frozenset({"application/octet-stream"})),
}
_PIXEL_DATA = 0x7FE00010
_EXTENDED_OFFSETS = (0x7FE00001, 0x7FE00002)
_YBR_TRANSFORMED = ("YBR_RCT", "YBR_ICT")


@dataclass(frozen=True, slots=True)
class InstanceFrame:
    """One verified frame: the bytes as served and, when decoded, its pixels.

    ``pixels`` (shape (rows, columns) or (rows, columns, samples), as
    :func:`hi_async.codecs.decode` returns them) are needed for ``native`` output and for
    binary segmentations; ``stored`` output of other instances needs only the bytes.
    """

    data: bytes
    content_type: str | None
    pixels: np.ndarray | None = None


def with_pixel_data(ds: Dataset, frames: Sequence[InstanceFrame], syntax: Syntax) -> Dataset:
    """A copy of ``ds`` (as :func:`instance_dataset` built it, its file meta naming the
    stored transfer syntax) with Pixel Data and the attributes that describe it."""
    if syntax not in SYNTAXES:
        raise ValueError(f"unknown DICOM syntax {syntax!r}: choose 'stored' or 'native'")
    stored = str(ds.file_meta.TransferSyntaxUID)
    kind = _kind_of(stored, ds)
    _check_frames(ds, frames)
    out = _new_dataset(ds)
    for tag in _EXTENDED_OFFSETS:
        if tag in out:
            del out[tag]
    if _int(ds, "BitsAllocated") == 1:
        _put_bits(out, frames)
    elif syntax == "native":
        _put_native(out, frames, kind)
    elif kind == _NATIVE:
        raise UnsupportedPixelData(f"instance {ds.get('SOPInstanceUID')} is stored native "
                                   "but is not a binary segmentation; export it native")
    else:
        _put_encapsulated(out, frames, kind, stored)
    return out


def _new_dataset(ds: Dataset) -> Dataset:
    """A dataset holding the same elements as ``ds``, in a dict (and file meta) of its own.

    pydicom's copies share the element dict, and setting an attribute changes the element
    in place; so the elements that change are replaced (:func:`_put`), never changed.
    """
    out = Dataset(dict(ds.items()))
    out.file_meta = FileMetaDataset(dict(ds.file_meta.items()))
    return out


def _put(ds: Dataset, keyword: str, value: Any) -> None:
    tag = tag_for_keyword(keyword)
    assert tag is not None, keyword
    ds[tag] = DataElement(tag, dictionary_VR(tag), value)


def _kind_of(stored: str, ds: Dataset) -> str:
    entry = _STORED.get(stored)
    if entry is None:
        what = "video" if stored.startswith("1.2.840.10008.1.2.4.10") else "frames"
        raise UnsupportedPixelData(f"instance {ds.get('SOPInstanceUID')} is stored as "
                                   f"{what} in transfer syntax {stored}, which this exporter "
                                   "does not write", hint="export the image sets without it")
    return entry[0]


def _check_frames(ds: Dataset, frames: Sequence[InstanceFrame]) -> None:
    sop = ds.get("SOPInstanceUID")
    if not frames:
        raise UnsupportedPixelData(f"instance {sop} has no frames to write")
    declared = ds.get("NumberOfFrames")
    count = _number(declared) if declared not in (None, "") else 1
    if count != len(frames):
        raise UnsupportedPixelData(f"instance {sop}: NumberOfFrames says {count} but "
                                   f"{len(frames)} frames were given")
    allowed = _STORED[str(ds.file_meta.TransferSyntaxUID)][1]
    for number, frame in enumerate(frames, start=1):
        served = base_content_type(frame.content_type)
        if served not in allowed:
            raise UnsupportedPixelData(f"instance {sop}: frame {number} was served as "
                                       f"{served}, which is not how its transfer syntax "
                                       f"{ds.file_meta.TransferSyntaxUID} is served")


def _put_encapsulated(out: Dataset, frames: Sequence[InstanceFrame], kind: str,
                      stored: str) -> None:
    fragments = [bare_codestream(f.data) if kind == _J2K else bytes(f.data) for f in frames]
    if kind == _J2K and _int(out, "SamplesPerPixel", 1) > 1:
        _put(out, "PhotometricInterpretation", _stored_colour(out, fragments[0]))
        _put(out, "PlanarConfiguration", 0)
    packed = encapsulate_frames(fragments)
    element = DataElement(_PIXEL_DATA, "OB", packed.pixel_data)
    # Said outright: pydicom cannot tell from a syntax it does not know (JPEG XL) that
    # the value is encapsulated, and encapsulated Pixel Data has undefined length.
    element.is_undefined_length = True
    out[_PIXEL_DATA] = element
    if packed.extended_offsets is not None:
        _put(out, "ExtendedOffsetTable", packed.extended_offsets)
        _put(out, "ExtendedOffsetTableLengths", packed.extended_lengths)
    _put(out.file_meta, "TransferSyntaxUID", UID(stored))


def _put_native(out: Dataset, frames: Sequence[InstanceFrame], kind: str) -> None:
    bits = _int(out, "BitsAllocated")
    if bits not in (8, 16, 32, 64):
        raise UnsupportedPixelData(f"instance {out.get('SOPInstanceUID')}: cannot write "
                                   f"{bits}-bit pixels natively")
    signed = _int(out, "PixelRepresentation", 0) == 1
    dtype = np.dtype(f"<{'i' if signed else 'u'}{bits // 8}")
    shape = _frame_shape(out)
    chunks = []
    for number, frame in enumerate(frames, start=1):
        pixels = _pixels_of(frame, number, out, shape)
        chunks.append(np.ascontiguousarray(pixels.astype(dtype, copy=False)).tobytes())
    if _int(out, "SamplesPerPixel", 1) > 1:
        _put(out, "PhotometricInterpretation", _native_colour(out, kind))
        _put(out, "PlanarConfiguration", 0)
    out[_PIXEL_DATA] = DataElement(_PIXEL_DATA, "OB" if bits == 8 else "OW", b"".join(chunks))
    _put(out.file_meta, "TransferSyntaxUID", UID(EXPLICIT_VR_LITTLE_ENDIAN))


def _stored_colour(out: Dataset, codestream: bytes) -> str:
    pi = str(out.get("PhotometricInterpretation", "")).strip()
    if pi.startswith("YBR_FULL"):
        # YCbCr samples, kept as such on import. A multi-component transform over them is
        # undone by every decoder and gives these samples back, which YBR_RCT (meaning
        # "RGB once decoded") would misname.
        return "YBR_FULL"
    transform = colour_transform(codestream)
    if transform.multi_component:
        return "YBR_RCT" if transform.reversible else "YBR_ICT"
    return "RGB" if pi in _YBR_TRANSFORMED else pi


def _native_colour(out: Dataset, kind: str) -> str:
    pi = str(out.get("PhotometricInterpretation", "")).strip()
    if kind in (_JPEG, _JXL):
        return "RGB"  # libjpeg-turbo and libjxl convert YCbCr to RGB
    if pi.startswith("YBR_FULL"):
        return "YBR_FULL"  # YCbCr samples kept as such, at full resolution
    return "RGB" if pi in _YBR_TRANSFORMED else pi  # OpenJPH/OpenJPEG undo RCT and ICT


def _put_bits(out: Dataset, frames: Sequence[InstanceFrame]) -> None:
    """1-bit pixels, every frame's bits one after the other, packed LSB first."""
    rows, columns = _int(out, "Rows"), _int(out, "Columns")
    bits = []
    for number, frame in enumerate(frames, start=1):
        if frame.pixels is not None:
            pixels = np.asarray(frame.pixels)
            if pixels.size != rows * columns:
                raise UnsupportedPixelData(f"frame {number} has {pixels.size} pixels, not "
                                           f"{rows}x{columns}")
            bits.append((pixels.ravel() != 0).astype(np.uint8))
        elif base_content_type(frame.content_type) == "application/octet-stream":
            packed = np.frombuffer(frame.data, dtype=np.uint8)
            if packed.size * 8 < rows * columns:
                raise UnsupportedPixelData(f"frame {number} holds {packed.size * 8} bits, "
                                           f"not {rows}x{columns}")
            bits.append(np.unpackbits(packed, bitorder="little")[:rows * columns])
        else:
            raise UnsupportedPixelData(f"frame {number} of a 1-bit instance is encoded "
                                       f"({frame.content_type}): pass its decoded pixels")
    data = np.packbits(np.concatenate(bits), bitorder="little").tobytes()
    out[_PIXEL_DATA] = DataElement(_PIXEL_DATA, "OB", data)
    _put(out.file_meta, "TransferSyntaxUID", UID(EXPLICIT_VR_LITTLE_ENDIAN))


def _frame_shape(ds: Dataset) -> tuple[int, ...]:
    rows, columns, samples = _int(ds, "Rows"), _int(ds, "Columns"), _int(ds, "SamplesPerPixel", 1)
    return (rows, columns) if samples == 1 else (rows, columns, samples)


def _pixels_of(frame: InstanceFrame, number: int, ds: Dataset, shape: tuple[int, ...],
               ) -> np.ndarray:
    if frame.pixels is None:
        raise UnsupportedPixelData(f"instance {ds.get('SOPInstanceUID')}: native output needs "
                                   f"the decoded pixels of every frame; frame {number} has "
                                   "none")
    pixels = np.asarray(frame.pixels)
    if pixels.shape != shape:
        raise UnsupportedPixelData(f"instance {ds.get('SOPInstanceUID')}: frame {number} "
                                   f"decodes to shape {pixels.shape}, expected {shape}")
    return pixels


def _int(ds: Dataset, keyword: str, default: int | None = None) -> int:
    value = ds.get(keyword)
    if value in (None, ""):
        if default is None:
            raise UnsupportedPixelData(f"instance {ds.get('SOPInstanceUID')} has no "
                                       f"{keyword}, so its pixels cannot be described")
        return default
    return _number(value)


def _number(value: Any) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise UnsupportedPixelData(f"{value!r} is not a whole number") from None
