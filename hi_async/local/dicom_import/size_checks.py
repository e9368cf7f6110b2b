"""An instance's decoded size against the import limits, before anything is allocated.

Three places tell a size before decoding or inflating does:

- the DICOM attributes (Rows, Columns, SamplesPerPixel, BitsAllocated, NumberOfFrames),
  which pydicom's own decoders allocate by (:func:`check_declared`);
- each compressed frame's own header, which the codecs allocate by
  (:func:`check_encoded`, with :mod:`.frame_headers`);
- for a deflated data set, the deflate stream itself, inflated with a bound and only
  counted (:func:`check_deflated`), before pydicom inflates all of it at once.

Each raises :class:`OverLimit` with a message naming the limit and the setting that
raises it; the file then gets a FAILURE record and the job goes on.
"""

from __future__ import annotations

import io
import warnings
import zlib
from collections.abc import Iterable
from typing import Any

from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_dataset, read_preamble
from pydicom.tag import BaseTag
from pydicom.uid import DeflatedExplicitVRLittleEndian

from .frame_headers import Geometry, encoded_geometry
from .limits import ATTRIBUTES_ALLOWANCE, ImportLimits, describe_bytes

FRAME_SETTING = "--import-max-frame-bytes"
INSTANCE_SETTING = "--import-max-instance-bytes"
#: How much of a deflated data set is inflated to read its attributes up to the Image
#: Pixel module (group 0028): a few KB in practice.
_PROBE_BYTES = 1024**2
#: Top-level elements read before group 0028 at most. Real headers have hundreds; a data
#: set of garbage (a run of zeros parses as endless empty elements, 100 s per 256 MB)
#: reaches this in milliseconds.
_PROBE_ELEMENTS = 10_000
_INFLATE_CHUNK = 16 * 1024**2
_LAST_PIXEL_MODULE_TAG = 0x0028FFFF


class OverLimit(Exception):
    """A file over an import limit; the message goes into its FAILURE record."""


def declared_geometry(ds: Dataset) -> tuple[Geometry, int] | None:
    """One frame's geometry and the number of frames, as the attributes declare them.

    None when Rows or Columns are missing or not numbers: nothing can be decoded then,
    and the decoder says why.
    """
    try:
        rows, columns = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
        samples = int(ds.get("SamplesPerPixel") or 1)
        bits = int(ds.get("BitsAllocated") or 8)
        frames = int(str(ds.get("NumberOfFrames") or 1).strip() or 1)
    except (TypeError, ValueError):
        return None
    if rows <= 0 or columns <= 0:
        return None
    # 1-bit data is unpacked to one byte per pixel, as Geometry counts it.
    return Geometry(rows, columns, max(1, samples), max(1, bits)), max(1, frames)


def check_declared(ds: Dataset, limits: ImportLimits) -> None:
    """Refuse an instance whose attributes declare frames or pixel data over the limits."""
    found = declared_geometry(ds)
    if found is None:
        return
    geometry, frames = found
    _check_frame(geometry, limits, "the attributes declare frames of")
    total = geometry.decoded_bytes * frames
    if total > limits.max_instance_bytes:
        raise OverLimit(
            f"the pixel data decodes to {describe_bytes(total)} ({frames} frames of "
            f"{geometry.describe()}), over the local stack's limit of "
            f"{describe_bytes(limits.max_instance_bytes)} per instance ({INSTANCE_SETTING})")


def check_encoded(fragments: Iterable[bytes], limits: ImportLimits, *, samples: int,
                  bits: int) -> None:
    """Refuse compressed frames whose own headers declare more than the limits.

    Every frame starts at the beginning of a fragment (PS3.5 A.4), so reading the first
    bytes of each fragment finds every frame header; continuation fragments declare
    nothing. ``samples`` and ``bits`` stand in where a format's header does not say.
    """
    total = 0
    for fragment in fragments:
        geometry = encoded_geometry(fragment[:4096], samples=samples, bits=bits)
        if geometry is None:
            continue
        _check_frame(geometry, limits, "a frame's compressed header declares")
        total += geometry.decoded_bytes
        if total > limits.max_instance_bytes:
            raise OverLimit(
                f"the frames' compressed headers declare more than "
                f"{describe_bytes(limits.max_instance_bytes)} of pixel data, the local "
                f"stack's limit per instance ({INSTANCE_SETTING})")


def _check_frame(geometry: Geometry, limits: ImportLimits, what: str) -> None:
    if geometry.decoded_bytes > limits.max_frame_bytes:
        raise OverLimit(
            f"{what} {geometry.describe()}, which decode to "
            f"{describe_bytes(geometry.decoded_bytes)}, over the local stack's limit of "
            f"{describe_bytes(limits.max_frame_bytes)} per frame ({FRAME_SETTING})")


def check_deflated(data: bytes, limits: ImportLimits) -> None:
    """Refuse a deflated data set that would inflate past what it can legitimately hold.

    pydicom inflates a deflated data set whole, in memory, before parsing it. So first
    its attributes up to the Image Pixel module are read from a small inflated prefix and
    checked like any instance's; then the stream is inflated chunk by chunk, counted and
    discarded, and refused once past the pixel data it declares plus
    :data:`~.limits.ATTRIBUTES_ALLOWANCE` (or past the instance limit, if the prefix did
    not reach Rows and Columns). Files of any other syntax return at once.
    """
    stream = _deflated_stream(data)
    if stream is None:
        return
    header, complete = _probe(stream)
    found = declared_geometry(header) if header is not None else None
    if header is not None and found is not None:
        check_declared(header, limits)
        geometry, frames = found
        pixels = geometry.decoded_bytes * frames
        bound = pixels + ATTRIBUTES_ALLOWANCE
        why = (f"its pixel data needs {describe_bytes(pixels)} ({frames} frames of "
               f"{geometry.describe()}) and its other attributes may add "
               f"{describe_bytes(ATTRIBUTES_ALLOWANCE)} (the service's limit on an image "
               "set's metadata)")
    elif complete:
        bound = ATTRIBUTES_ALLOWANCE
        why = ("its first elements declare no pixel data (no Rows and Columns), and the "
               f"attributes of an instance may take {describe_bytes(ATTRIBUTES_ALLOWANCE)} "
               "(the service's limit on an image set's metadata)")
    else:
        bound = limits.max_instance_bytes + ATTRIBUTES_ALLOWANCE
        why = (f"the local stack's limit per instance is "
               f"{describe_bytes(limits.max_instance_bytes)} ({INSTANCE_SETTING})")
    if _inflated_size(stream, bound) > bound:
        raise OverLimit(f"the deflated data set inflates to more than "
                        f"{describe_bytes(bound)}: {why}")


def _deflated_stream(data: bytes) -> memoryview | None:
    """The deflate stream after the file meta of a deflated P10 file, else None."""
    fp = io.BytesIO(data)
    try:
        read_preamble(fp, False)
        meta = read_dataset(fp, is_implicit_VR=False, is_little_endian=True,
                            stop_when=lambda tag, vr, length: tag >> 16 != 2)
        syntax = str(meta.get("TransferSyntaxUID", ""))
    except (InvalidDicomError, EOFError, ValueError, KeyError):
        return None  # not P10 or broken meta: dcmread will say so
    return memoryview(data)[fp.tell():] if syntax == DeflatedExplicitVRLittleEndian else None


def _probe(stream: memoryview) -> tuple[Dataset | None, bool]:
    """The top-level attributes up to group 0028 from the first inflated bytes, and
    whether reading them came to an end by itself (rather than by running out of bytes).
    """
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        prefix = inflater.decompress(stream, _PROBE_BYTES)
    except zlib.error:
        return None, False  # pydicom's inflate will refuse it with zlib's reason
    whole = inflater.eof
    seen = 0
    stopped = False

    def stop(tag: BaseTag, vr: Any, length: int) -> bool:
        nonlocal seen, stopped
        seen += 1
        stopped = stopped or tag > _LAST_PIXEL_MODULE_TAG or seen > _PROBE_ELEMENTS
        return stopped

    try:
        with warnings.catch_warnings():  # pydicom warns about each oddity of garbage
            warnings.simplefilter("ignore")
            header = read_dataset(io.BytesIO(prefix), is_implicit_VR=False,
                                  is_little_endian=True, stop_when=stop)
    except Exception:  # garbage that pydicom cannot even start on: nothing declared
        return None, True
    return header, stopped or whole


def _inflated_size(stream: memoryview, bound: int) -> int:
    """How many bytes ``stream`` inflates to, counting no further than past ``bound``."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    total = 0
    pending: Any = stream
    try:
        while True:
            out = inflater.decompress(pending, _INFLATE_CHUNK)
            total += len(out)
            pending = inflater.unconsumed_tail
            if total > bound or inflater.eof or not (out or pending):
                return total
    except zlib.error:
        return total  # a broken stream: pydicom's inflate will refuse it
