"""One DICOM P10 file's bytes → a :class:`ParsedInstance`, or the reason it was refused.

This runs in the import job's worker processes, so it is pure: bytes in, records out.

Reading pixel data: pydicom decodes uncompressed, deflated and RLE data itself; for the
compressed syntaxes it needs plugins, and we use the pylibjpeg family from PyPI:
``pylibjpeg-libjpeg`` (JPEG lossless/extended, JPEG-LS), ``pylibjpeg-openjpeg`` (JPEG
2000) and ``pylibjpeg-rle`` (a faster RLE). They are what pydicom's own documentation
recommends, they cover every syntax the service transcodes, and they keep the stored
pixels identical to what ``pydicom.pixels.pixel_array(ds, raw=True)`` returns.

Colour: frames are stored with the samples the file holds, decoded with ``raw=True``,
i.e. without colour-space conversion. RGB stays RGB; YBR_FULL stays YBR_FULL (the JPH
``colr`` box then says sYCC); YBR_FULL_422 comes out upsampled to full resolution (one
sample per pixel per component) because HTJ2K frames here carry no chroma subsampling.
The metadata keeps the PhotometricInterpretation as imported. Lossless, and what a
client needs to reproduce the file's values bit for bit.

Frames of syntaxes the service keeps as imported (JPEG baseline, JPEG 2000 lossy,
HTJ2K .203, JPEG XL, video) are the file's own fragments; their checksum is computed
from the stored bytes decoded with imagecodecs, the way a client would decode them.
JPEG extended streams that pydicom's plugins refuse are decoded with imagecodecs'
libjpeg-turbo instead (see ``_fallback_frames``).

Binary segmentations (SEG, 1-bit, explicit VR little endian) are kept as imported and
served as ``application/octet-stream``, as the reference page says the service does (see
``_segmentation_frames``).

Sizes: before anything is inflated or decoded, the instance's declared size, each
compressed frame's header and a deflated data set's inflated size are checked against
the import limits (``size_checks``); a file over them gets a FAILURE record naming the
limit. Running out of the worker's memory cap (``worker_memory``) is a FAILURE record too.

Non-conformances the service imports anyway (invalid UIDs, over-long values, a
NumberOfFrames the encapsulated items contradict, a wrong offset table) travel with the
instance as warnings; ``import_warnings.py`` finds them and says what is then stored.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import imagecodecs
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.encaps import generate_fragments, generate_frames
from pydicom.errors import InvalidDicomError
from pydicom.pixels import iter_pixels

from ...libc import exit_with_parent
from ..healthimaging.records import EncodedFrame, ImportWarning, ParsedInstance
from . import worker_memory
from .dicom_attrs import split_levels
from .import_warnings import check_encapsulated, metadata_warnings
from .limits import ImportLimits, describe_bytes
from .size_checks import OverLimit, check_declared, check_deflated, check_encoded
from .transcode import STORAGE_HTJ2K, as_is_frame, lossless_frame, stored_lossless_syntax

#: Syntaxes the service transcodes to HTJ2K lossless RPCL (reference page, "Import").
TRANSCODED_SYNTAXES = frozenset({
    "1.2.840.10008.1.2",  # implicit VR little endian
    "1.2.840.10008.1.2.1",  # explicit VR little endian
    "1.2.840.10008.1.2.2",  # explicit VR big endian
    "1.2.840.10008.1.2.1.99",  # deflated explicit VR little endian
    "1.2.840.10008.1.2.5",  # RLE lossless
    "1.2.840.10008.1.2.4.57",  # JPEG lossless
    "1.2.840.10008.1.2.4.70",  # JPEG lossless SV1
    "1.2.840.10008.1.2.4.51",  # JPEG extended
    "1.2.840.10008.1.2.4.80",  # JPEG-LS lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS near-lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 lossless
    "1.2.840.10008.1.2.4.92",  # JPEG 2000 part 2 lossless
    "1.2.840.10008.1.2.4.93",  # JPEG 2000 part 2
    "1.2.840.10008.1.2.4.201",  # HTJ2K lossless
    "1.2.840.10008.1.2.4.202",  # HTJ2K lossless RPCL
})

#: Transcoded syntaxes whose pixel data is not encapsulated (no items, no offset tables).
NATIVE_SYNTAXES = frozenset({
    "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2",
    "1.2.840.10008.1.2.1.99",
})

#: Syntaxes stored as imported, with the content type GetImageFrame answers.
STORED_AS_IS = {
    "1.2.840.10008.1.2.4.50": "image/jpeg",
    "1.2.840.10008.1.2.4.91": "image/j2c",
    "1.2.840.10008.1.2.4.203": "image/jphc",
    "1.2.840.10008.1.2.4.112": "image/jxl",
    **dict.fromkeys(("1.2.840.10008.1.2.4.100", "1.2.840.10008.1.2.4.100.1",
                     "1.2.840.10008.1.2.4.101", "1.2.840.10008.1.2.4.101.1"), "video/mpeg"),
    **dict.fromkeys(("1.2.840.10008.1.2.4.102", "1.2.840.10008.1.2.4.102.1",
                     "1.2.840.10008.1.2.4.103", "1.2.840.10008.1.2.4.103.1",
                     "1.2.840.10008.1.2.4.104", "1.2.840.10008.1.2.4.104.1",
                     "1.2.840.10008.1.2.4.105", "1.2.840.10008.1.2.4.105.1",
                     "1.2.840.10008.1.2.4.106", "1.2.840.10008.1.2.4.106.1"), "video/mp4"),
    # The service's documented content type for HEVC really is spelled this way.
    **dict.fromkeys(("1.2.840.10008.1.2.4.107", "1.2.840.10008.1.2.4.108"), "video/H256"),
}

#: Second decoders for transcoded syntaxes whose streams some encoders write loosely.
_FALLBACK_DECODERS: dict[str, Callable[[bytes], np.ndarray]] = {
    "1.2.840.10008.1.2.4.51": imagecodecs.jpeg8_decode,
}
_VIDEO_PREFIX = "video/"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
OCTET_STREAM = "application/octet-stream"
_REQUIRED_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
_AS_IS_DECODERS: dict[str, Callable[[bytes], Any]] = {
    "image/jpeg": imagecodecs.jpeg8_decode,
    "image/j2c": imagecodecs.jpeg2k_decode,
    "image/jphc": imagecodecs.htj2k_decode,
    "image/jxl": imagecodecs.jpegxl_decode,
}


@dataclass(frozen=True, slots=True)
class ConvertFailure:
    """Why one file was not imported, as its FAILURE record will say."""

    input_file: str
    exception_type: str  # "ValidationException" (customer) or "InternalServerException"
    message: str

    @property
    def is_customer_error(self) -> bool:
        return self.exception_type != "InternalServerException"


class _Refused(Exception):
    """A file the service refuses; the message goes into the FAILURE record."""


def start_worker(memory_budget: int | None) -> None:
    """Import pool initializer: exit when the stack does; cap the worker's memory now that
    this module is loaded."""
    exit_with_parent(os.getppid())
    worker_memory.limit_memory(memory_budget)


def convert_p10(input_file: str, data: bytes, storage_format: str = STORAGE_HTJ2K,
                limits: ImportLimits | None = None) -> ParsedInstance | ConvertFailure:
    """Parse and transcode one file. Never raises: every problem becomes a failure.

    ``storage_format`` is the data store's ``losslessStorageFormat``: lossless sources
    become HTJ2K (``HTJ2K``) or JPEG 2000 (``JPEG_2000_LOSSLESS``) frames.
    """
    limits = limits or ImportLimits()
    peak_before = worker_memory.peak()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _convert(input_file, data, storage_format, limits)
    except (_Refused, OverLimit) as exc:
        return ConvertFailure(input_file, "ValidationException", str(exc))
    except MemoryError as exc:
        return out_of_memory(input_file, limits, exc)
    except Exception as exc:
        if worker_memory.hit_the_cap(peak_before):
            return out_of_memory(input_file, limits, exc)
        return ConvertFailure(input_file, "InternalServerException",
                              f"the file could not be processed: {type(exc).__name__}: {exc}")


def out_of_memory(input_file: str, limits: ImportLimits, exc: Exception) -> ConvertFailure:
    """A server-side failure: the stack's own memory cap, not the file, is what stopped it.

    Also for a worker that cannot send its result back (see :mod:`.importer`)."""
    cap = (f"the {describe_bytes(limits.worker_memory)} an import worker may use "
           "(--import-worker-memory)" if limits.worker_memory else "the memory available")
    return ConvertFailure(input_file, "InternalServerException",
                          f"converting this file needed more memory than {cap}: "
                          f"{type(exc).__name__}: {exc}")


def _convert(input_file: str, data: bytes, storage_format: str,
             limits: ImportLimits) -> ParsedInstance:
    check_deflated(data, limits)  # before pydicom inflates it whole
    try:
        ds = pydicom.dcmread(io.BytesIO(data))
    except InvalidDicomError as exc:
        raise _Refused("the file is not a DICOM Part 10 file (no 'DICM' preamble and "
                       "file meta information)") from exc
    except Exception as exc:
        raise _Refused(f"the DICOM file could not be parsed: {exc}") from exc
    meta = getattr(ds, "file_meta", None)
    ts = meta.get("TransferSyntaxUID") if meta is not None else None
    if not ts:
        raise _Refused("DICOM attribute TransferSyntaxUID does not exist")
    ts = str(ts)
    if "PixelData" not in ds:
        raise _Refused("DICOM attribute PixelData does not exist: only instances with "
                       "pixel data can be imported")
    for keyword in _REQUIRED_UIDS:
        if not ds.get(keyword):
            raise _Refused(f"DICOM attribute {keyword} does not exist")
    if ts not in TRANSCODED_SYNTAXES and ts not in STORED_AS_IS:
        raise _Refused(f"transfer syntax {ts} is not supported by HealthImaging import")
    check_declared(ds, limits)
    found = metadata_warnings(ds)
    # The attributes are read before the pixel data, which a wrong offset table changes.
    patient, study, series, instance, vrs = split_levels(ds)
    frames, stored_ts = _pixel_frames(ds, ts, storage_format, found, limits)
    return ParsedInstance(
        input_file=input_file,
        study_instance_uid=str(ds.StudyInstanceUID),
        series_instance_uid=str(ds.SeriesInstanceUID),
        sop_instance_uid=str(ds.SOPInstanceUID),
        patient_dicom=patient,
        study_dicom=study,
        series_dicom=series,
        instance_dicom=instance,
        instance_vrs=vrs,
        stored_transfer_syntax_uid=stored_ts,
        frames=frames,
        warnings=tuple(found),
    )


def _pixel_frames(ds: Dataset, ts: str, storage_format: str, found: list[ImportWarning],
                  limits: ImportLimits) -> tuple[tuple[EncodedFrame, ...], str]:
    """The frames to store and their transfer syntax (``ts`` for an instance with none)."""
    if is_binary_segmentation(ds, ts):
        return tuple(_segmentation_frames(ds)), ts
    if not _frames_can_be_split(ds, ts, found):
        return (), ts
    if ts not in NATIVE_SYNTAXES and not STORED_AS_IS.get(ts, "").startswith(_VIDEO_PREFIX):
        check_encoded(_each_fragment(ds.PixelData), limits,
                      samples=int(ds.get("SamplesPerPixel") or 1),
                      bits=int(ds.get("BitsAllocated") or 8))
    if ts in TRANSCODED_SYNTAXES:
        return (tuple(_transcoded_frames(ds, ts, storage_format)),
                stored_lossless_syntax(storage_format))
    return tuple(_as_is_frames(ds, STORED_AS_IS[ts])), ts


def _each_fragment(pixel_data: bytes) -> Iterator[bytes]:
    """The fragments of encapsulated pixel data, as far as they can be read: malformed
    items end the walk, and the decoder later refuses them with its own reason."""
    try:
        yield from generate_fragments(pixel_data)
    except Exception:
        return


def _frames_can_be_split(ds: Dataset, ts: str, found: list[ImportWarning]) -> bool:
    """Check encapsulated items against NumberOfFrames; drop an offset table that is wrong.

    Native pixel data has no items, and a video's fragments are one stream whatever
    NumberOfFrames says.
    """
    if ts in NATIVE_SYNTAXES or STORED_AS_IS.get(ts, "").startswith(_VIDEO_PREFIX):
        return True
    layout = check_encapsulated(ds.PixelData, number_of_frames(ds),
                                ds.get("ExtendedOffsetTable"),
                                ds.get("ExtendedOffsetTableLengths"))
    if layout.warning is not None:
        found.append(layout.warning)
    if layout.repaired_pixel_data is not None:
        ds.PixelData = layout.repaired_pixel_data
        for keyword in ("ExtendedOffsetTable", "ExtendedOffsetTableLengths"):
            if keyword in ds:
                del ds[keyword]
    return layout.frames_usable


def number_of_frames(ds: Dataset) -> int:
    """NumberOfFrames as an int (1 when absent), refusing values that are not numbers."""
    raw = ds.get("NumberOfFrames")
    if raw in (None, ""):
        return 1
    try:
        count = int(str(raw).strip())
    except ValueError as exc:
        raise _Refused(f"DICOM attribute NumberOfFrames has an invalid value {raw!r}") from exc
    if count < 1:
        raise _Refused(f"DICOM attribute NumberOfFrames must be at least 1, not {count}")
    return count


def _transcoded_frames(ds: Dataset, ts: str, storage_format: str) -> list[EncodedFrame]:
    expected = number_of_frames(ds)
    ybr = str(ds.get("PhotometricInterpretation", "")).startswith("YBR_FULL")
    try:
        frames = [lossless_frame(_normalise(p), ybr=ybr, storage_format=storage_format)
                  for p in iter_pixels(ds, raw=True)]
    except Exception as exc:
        fallback = _FALLBACK_DECODERS.get(ts)
        if fallback is None:
            raise _Refused(f"the pixel data could not be decoded: {exc}") from exc
        frames = _fallback_frames(ds, expected, fallback, ybr, exc, storage_format)
    if len(frames) != expected:
        raise _Refused(f"the pixel data holds {len(frames)} frames, "
                       f"NumberOfFrames says {expected}")
    return frames


def _fallback_frames(ds: Dataset, count: int, decoder: Callable[[bytes], np.ndarray],
                     ybr: bool, first_error: Exception,
                     storage_format: str) -> list[EncodedFrame]:
    """Decode each fragment with imagecodecs when pydicom's plugins refuse the stream.

    libjpeg-turbo reads some JPEG extended streams that libjpeg rejects (a scan header
    with a non-zero spectral start, as in pydicom's own ``JPEG-lossy.dcm``).
    """
    try:
        return [lossless_frame(_normalise(decoder(chunk)), ybr=ybr,
                               storage_format=storage_format)
                for chunk in generate_frames(ds.PixelData, number_of_frames=count)]
    except Exception as exc:
        raise _Refused(f"the pixel data could not be decoded: {first_error}") from exc


def _normalise(pixels: np.ndarray) -> np.ndarray:
    """Booleans and byte-swapped arrays → the integer, little-endian form we store."""
    if pixels.dtype == np.bool_:
        pixels = pixels.astype(np.uint8)
    return pixels


def _as_is_frames(ds: Dataset, content_type: str) -> Iterator[EncodedFrame]:
    count = number_of_frames(ds)
    try:
        if content_type.startswith(_VIDEO_PREFIX):
            # A video's fragments together are one stream; it is served as one frame.
            chunks = [b"".join(generate_fragments(ds.PixelData))]
        else:
            chunks = list(generate_frames(ds.PixelData, number_of_frames=count))
    except Exception as exc:
        raise _Refused(f"the encapsulated pixel data could not be read: {exc}") from exc
    if not content_type.startswith(_VIDEO_PREFIX) and len(chunks) != count:
        raise _Refused(f"the pixel data holds {len(chunks)} frames, NumberOfFrames says {count}")
    decoder = _AS_IS_DECODERS.get(content_type)
    for chunk in chunks:
        pixels = None
        if decoder is not None:
            try:
                pixels = decoder(chunk)
            except MemoryError:
                raise  # the worker's cap, not the stream: the file fails (see convert_p10)
            except Exception:
                pixels = None  # kept without checksum: the service stores it regardless
        yield as_is_frame(bytes(chunk), content_type, pixels)


def is_binary_segmentation(ds: Dataset, ts: str) -> bool:
    """A 1-bit segmentation in explicit VR little endian: the service keeps these as is."""
    is_seg = str(ds.get("SOPClassUID", "")) == SEGMENTATION_STORAGE or \
        str(ds.get("Modality", "")) == "SEG"
    return ts == EXPLICIT_VR_LITTLE_ENDIAN and is_seg and ds.get("BitsAllocated") == 1


def _segmentation_frames(ds: Dataset) -> list[EncodedFrame]:
    """Each frame's packed bits as imported, with facts from its unpacked pixels.

    Stored bytes: the frame's bits packed as in the file (least significant bit first),
    starting at the frame's first bit. When a frame's pixel count is a multiple of eight
    this is exactly the file's byte range for the frame; otherwise the file packs frames
    back to back across byte boundaries, and each stored frame starts on a byte of its
    own with its last byte padded with zeros.

    Checksum: AWS does not document what it hashes for these frames. We hash the decoded
    (unpacked) pixels, one byte per pixel with value 0 or 1 (what pydicom's
    ``pixel_array`` gives), like every other ``ChecksumType: DECOMPRESSED`` frame, so a
    client verifies what it reconstructs rather than the packing.
    """
    count = number_of_frames(ds)
    rows, columns = int(ds.Rows), int(ds.Columns)
    if int(ds.get("SamplesPerPixel", 1)) != 1:
        raise _Refused("a binary segmentation must have SamplesPerPixel 1")
    per_frame = rows * columns
    # Only the bytes the frames need are unpacked (eight bytes out per byte in).
    needed = -(-per_frame * count // 8)
    bits = np.unpackbits(np.frombuffer(ds.PixelData, dtype=np.uint8,
                                       count=min(needed, len(ds.PixelData))), bitorder="little")
    if bits.size < per_frame * count:
        raise _Refused(f"the pixel data holds {bits.size} bits, {count} frames of "
                       f"{rows}x{columns} need {per_frame * count}")
    frames = []
    for index in range(count):
        pixels = bits[index * per_frame:(index + 1) * per_frame]
        data = np.packbits(pixels, bitorder="little").tobytes()
        frames.append(as_is_frame(data, OCTET_STREAM, pixels.reshape(rows, columns)))
    return frames
