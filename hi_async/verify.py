"""The work on one frame, run in a decode worker: decode, check the CRC32, write the file.

Runs in a worker thread or process, so it takes one picklable :class:`EncodedFrame` and
returns a small :class:`Outcome`: the decoded pixels travel back only when the caller
asked for them (shipping pixels back through a process pool costs more than decoding).
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING, Any

from . import codecs
from .errors import DecodeError, UnsupportedContentType
from .model import Check, EncodedFrame, Outcome
from .output.frames import write_frame_file

if TYPE_CHECKING:
    from .volumes.buffer import SliceTarget

#: Folders this process has made or found, so that a frame costs no mkdir call.
_FOLDERS: set[str] = set()


def _write(path: str, fmt: str, data: bytes, pixels: Any,
           pixels_crc: int) -> tuple[int, int]:
    folder = os.path.dirname(path)
    if folder not in _FOLDERS:
        os.makedirs(folder, exist_ok=True)
        _FOLDERS.add(folder)
    try:
        return write_frame_file(path, fmt, data, pixels, pixels_crc=pixels_crc)
    except FileNotFoundError:  # the folder went away meanwhile: make it again, once
        os.makedirs(folder, exist_ok=True)
        return write_frame_file(path, fmt, data, pixels, pixels_crc=pixels_crc)


def _write_slice(target: SliceTarget, pixels: Any) -> None:
    from .volumes.buffer import write_slice

    write_slice(target, pixels)


def verify_frame(frame: EncodedFrame, *, path: str | None, fmt: str,
                 want_pixels: bool = False, target: SliceTarget | None = None) -> Outcome:
    """Decode, verify and (when verified or unverifiable) write one frame to ``path`` and,
    with a ``target``, into its slot of a volume's buffer file (``--volume``): the pixels
    go into the volume in the process that decoded them, never through a pipe."""
    ref = frame.ref
    try:
        pixels = codecs.decode(frame.data, frame.content_type, ref.rows, ref.columns,
                               ref.samples_per_pixel, ref.dtype, ref.bits_allocated,
                               scratch=not want_pixels)
    except UnsupportedContentType as exc:
        return Outcome(Check.FAILED, error=exc.message)
    except DecodeError as exc:
        # Possibly damaged in transit: the caller fetches it again, like a mismatch.
        return Outcome(Check.MISMATCH, error=exc.message)
    actual = codecs.crc32(pixels)
    expected = ref.expected_crc32
    if expected is None:
        check = Check.UNVERIFIABLE
    elif actual == expected:
        check = Check.VERIFIED
    else:
        return Outcome(Check.MISMATCH, actual,
                       f"CRC32 mismatch: expected {expected:08x}, got {actual:08x}")
    size = crc = None
    if path is not None:
        try:
            size, crc = _write(path, fmt, frame.data, pixels, actual)
        except OSError as exc:
            full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
            return Outcome(Check.DISK_FULL if full else Check.FAILED, actual,
                           f"cannot write {path}: {exc.strerror or exc}")
    if target is not None:
        try:
            _write_slice(target, pixels)
        except OSError as exc:
            full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
            return Outcome(Check.DISK_FULL if full else Check.FAILED, actual,
                           f"cannot write the frame into its volume {target.path}: "
                           f"{exc.strerror or exc}")
        except ValueError as exc:  # the frame does not fit the planned slice
            return Outcome(Check.FAILED, actual, f"the frame does not fit its volume: {exc}")
    return Outcome(check, actual, None, path, pixels if want_pixels else None,
                   file_bytes=size, file_crc32=crc)


def pixels_of_file(path: str, entry: dict[str, Any]) -> int:
    """The CRC32 of the pixels in a frame file this package wrote, described by its
    index.jsonl ``entry`` (rows, columns, samples, dtype, content type): what
    ``--verify-existing`` checks against the metadata's checksum."""
    import numpy as np

    rows, columns = int(entry["rows"]), int(entry["columns"])
    samples = int(entry["samplesPerPixel"])
    dtype = np.dtype(str(entry["dtype"])).newbyteorder("<")
    if path.endswith(".npy"):
        pixels = np.load(path, allow_pickle=False)
    elif path.endswith(".raw"):
        pixels = np.fromfile(path, dtype=dtype)
    else:
        with open(path, "rb") as fh:
            data = fh.read()
        count = rows * columns * samples
        # Binary segmentations are served as packed bits: a frame of exactly that size.
        packed = dtype.itemsize == 1 and len(data) == (count + 7) // 8 != count
        pixels = codecs.decode(data, entry.get("contentType"), rows, columns, samples,
                               dtype.str, 1 if packed else 0)
    return codecs.crc32(pixels)
