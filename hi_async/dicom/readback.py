"""One frame's pixels read back from a DICOM file this package wrote (``--format dcm``).

What ``download --verify-existing`` checks on resume: the frame, decoded from the file as
the download decoded it from the service (same decoders, same dtype), must still have the
metadata's checksum. The file's pixel data is either the frames as stored, one fragment
each (decoded by :func:`hi_async.codecs.decode` with the content type they were served
with: HTJ2K and JPEG 2000 decoders take the bare codestream as well as the JPH file), or
native Explicit VR Little Endian (frames back to back; 1-bit segmentations packed LSB
first across frames).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames

from .. import codecs
from .pixels import EXPLICIT_VR_LITTLE_ENDIAN


def frame_pixels(path: str, entry: Mapping[str, Any]) -> np.ndarray:
    """The pixels of the frame an index.jsonl ``entry`` describes (``frameNumber``,
    ``rows``, ``columns``, ``samplesPerPixel``, ``dtype``, ``contentType``), from the
    DICOM file at ``path``. Raises when the file does not hold that frame."""
    stat = os.stat(path)
    ds = _read(path, stat.st_size, stat.st_mtime_ns)
    number = int(entry["frameNumber"])
    rows, columns = int(entry["rows"]), int(entry["columns"])
    samples = int(entry["samplesPerPixel"])
    target = np.dtype(str(entry["dtype"])).newbyteorder("<")
    count = int(ds.get("NumberOfFrames") or 1)
    if not 1 <= number <= count:
        raise ValueError(f"{path} has {count} frames, not a frame {number}")
    bits = int(ds.BitsAllocated)
    shape = codecs.expected_shape(rows, columns, samples)
    size = rows * columns * samples
    if str(ds.file_meta.TransferSyntaxUID) != EXPLICIT_VR_LITTLE_ENDIAN:
        frame = list(generate_frames(ds.PixelData, number_of_frames=count))[number - 1]
        return codecs.decode(frame, entry.get("contentType"), rows, columns, samples,
                             target.str, bits)
    data = np.frombuffer(ds.PixelData, dtype=np.uint8)
    if bits == 1:
        return np.unpackbits(data, bitorder="little")[(number - 1) * size:number * size] \
            .reshape(shape)
    kind = "i" if int(ds.get("PixelRepresentation") or 0) == 1 else "u"
    stored = np.dtype(f"<{kind}{bits // 8}")
    pixels = np.frombuffer(data, dtype=stored, count=size,
                           offset=(number - 1) * size * stored.itemsize)
    return pixels.astype(target).reshape(shape)


@functools.lru_cache(maxsize=2)
def _read(path: str, size: int, mtime_ns: int) -> Dataset:
    """The file, read once for all the frames of it checked one after the other (keyed by
    size and modification time too, so that a file rewritten since is read again)."""
    return pydicom.dcmread(path)
