"""One verified frame's file: ``.jph`` (the bytes as served), ``.npy`` or ``.raw``.

Written to ``<path>.tmp`` and renamed into place, so a file under its final name is
always whole; an interrupted write leaves only a ``.tmp`` that a resume removes. No fsync
here: files become stable in batches (:mod:`hi_async.durability`) before the journal
lists them.
"""

from __future__ import annotations

import contextlib
import io
import os
from typing import Any

import numpy as np
from imagecodecs import deflate_crc32

from ..codecs import little_endian


def write_frame_file(path: str, fmt: str, data: bytes, pixels: np.ndarray, *,
                     pixels_crc: int | None = None) -> tuple[int, int]:
    """Write the frame in ``fmt`` (jph | npy | raw) to ``path``, atomically; the file's
    size and the CRC32 of its bytes (recorded in the journal, so that a resume can tell
    the file it finds is the one that was written).

    ``pixels_crc``, the CRC32 of the pixels' little-endian bytes in C order (what the
    frame was verified with), is the ``.raw`` file's own CRC32 where those are the bytes
    written: it is not computed a second time.
    """
    file_crc = None
    if fmt == "jph":
        parts: list[Any] = [data]
    else:
        c_order = np.ascontiguousarray(pixels)
        parts = [c_order.data]
        if fmt == "npy":
            # Not np.save: it writes through ndarray.tofile, whose short write on a full
            # disk raises an OSError without errno, which would look like a per-frame
            # failure instead of the run-stopping full disk it is.
            header = io.BytesIO()
            npy = np.lib.format
            npy.write_array_header_1_0(header, npy.header_data_from_array_1_0(c_order))
            parts.insert(0, header.getvalue())
        elif pixels_crc is not None and little_endian(c_order.dtype):
            file_crc = pixels_crc
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        try:
            for part in parts:
                write_all(fd, part)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if file_crc is None:
        file_crc = 0
        for part in parts:
            file_crc = int(deflate_crc32(part, file_crc))
    return sum(memoryview(part).nbytes for part in parts), file_crc & 0xFFFFFFFF


def write_all(fd: int, part: Any) -> None:
    """All of ``part`` (any buffer) to ``fd`` (``os.write`` may write less than it was
    given)."""
    view = memoryview(part).cast("B")
    while view:
        view = view[os.write(fd, view):]


def file_checksum(path: str) -> tuple[int, int]:
    """(size, CRC32) of the file at ``path``, read in blocks."""
    size, crc = 0, 0
    with open(path, "rb", buffering=0) as fh:
        while block := fh.read(1 << 20):
            size += len(block)
            crc = int(deflate_crc32(block, crc))
    return size, crc & 0xFFFFFFFF
