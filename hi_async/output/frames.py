"""One verified frame's file: ``.jph`` (the bytes as served), ``.npy`` or ``.raw``.

Written to ``<path>.tmp`` and renamed into place, so a file under its final name is
always whole; an interrupted write leaves only a ``.tmp`` that a resume removes. No fsync
here: files become stable in batches (:mod:`hi_async.durability`) before the journal
lists them.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np


def write_frame_file(path: str, fmt: str, data: bytes, pixels: np.ndarray) -> None:
    """Write the frame in ``fmt`` (jph | npy | raw) to ``path``, atomically."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        with os.fdopen(fd, "wb") as fh:
            if fmt == "jph":
                fh.write(data)
            elif fmt == "npy":
                # Not np.save: it writes through ndarray.tofile, whose short write on a
                # full disk raises an OSError without errno, which would look like a
                # per-frame failure instead of the run-stopping full disk it is.
                npy = np.lib.format
                c_order = np.ascontiguousarray(pixels)
                npy.write_array_header_1_0(fh, npy.header_data_from_array_1_0(c_order))
                fh.write(c_order.data)
            else:
                fh.write(np.ascontiguousarray(pixels).data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
