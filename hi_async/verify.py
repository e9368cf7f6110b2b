"""The work on one frame, run in a decode worker: decode, check the CRC32, write the file.

Runs in a worker thread or process, so it takes one picklable :class:`EncodedFrame` and
returns a small :class:`Outcome`: the decoded pixels travel back only when the caller
asked for them (shipping pixels back through a process pool costs more than decoding).
"""

from __future__ import annotations

import errno
import os
from typing import Any

from . import codecs
from .errors import DecodeError, UnsupportedContentType
from .model import Check, EncodedFrame, Outcome
from .output.frames import write_frame_file

#: Folders this process has made or found, so that a frame costs no mkdir call.
_FOLDERS: set[str] = set()


def _write(path: str, fmt: str, data: bytes, pixels: Any) -> None:
    folder = os.path.dirname(path)
    if folder not in _FOLDERS:
        os.makedirs(folder, exist_ok=True)
        _FOLDERS.add(folder)
    try:
        write_frame_file(path, fmt, data, pixels)
    except FileNotFoundError:  # the folder went away meanwhile: make it again, once
        os.makedirs(folder, exist_ok=True)
        write_frame_file(path, fmt, data, pixels)


def verify_frame(frame: EncodedFrame, *, path: str | None, fmt: str,
                 want_pixels: bool = False) -> Outcome:
    """Decode, verify and (when verified or unverifiable) write one frame to ``path``."""
    ref = frame.ref
    try:
        pixels = codecs.decode(frame.data, frame.content_type, ref.rows, ref.columns,
                               ref.samples_per_pixel, ref.dtype, ref.bits_allocated)
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
    if path is not None:
        try:
            _write(path, fmt, frame.data, pixels)
        except OSError as exc:
            full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
            return Outcome(Check.DISK_FULL if full else Check.FAILED, actual,
                           f"cannot write {path}: {exc.strerror or exc}")
    return Outcome(check, actual, None, path, pixels if want_pixels else None)
