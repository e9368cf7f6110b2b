"""A frame file an earlier run wrote, read back to its pixels and checked again.

A resumed download does not fetch frames the journal lists as verified; when such a
frame is needed once more (its series is being assembled into a volume), its file is
the copy to use: ``.npy`` and ``.raw`` hold the decoded pixels, ``.jph`` the bytes as
served, decoded again here. Either way the pixels' CRC32 is compared with the
metadata's once more, so a file damaged on disk since is never put into a volume: the
caller fetches that frame again instead.
"""

from __future__ import annotations

import os

import numpy as np

from .. import codecs
from ..model import FrameRef


class FrameFileUnusable(Exception):
    """The file is gone, unreadable, of the wrong shape, or its checksum differs."""


def read_frame_file(path: str | os.PathLike[str], ref: FrameRef,
                    content_type: str | None = None) -> np.ndarray:
    """The pixels of ``ref``'s file at ``path`` (.npy, .raw or .jph), checked against the
    metadata's CRC32. Raises FrameFileUnusable with the reason otherwise."""
    name = os.fspath(path)
    shape = (ref.rows, ref.columns) + ((ref.samples_per_pixel,)
                                       if ref.samples_per_pixel > 1 else ())
    try:
        pixels: np.ndarray
        if name.endswith(".npy"):
            pixels = np.asarray(np.load(name, allow_pickle=False))
        elif name.endswith(".raw"):
            pixels = np.fromfile(name, dtype=np.dtype(ref.dtype))
            if pixels.size != int(np.prod(shape)):
                raise FrameFileUnusable(f"{name} holds {pixels.size} samples, not "
                                        f"{int(np.prod(shape))}")
            pixels = pixels.reshape(shape)
        elif name.endswith(".jph"):
            with open(name, "rb") as fh:
                data = fh.read()
            pixels = codecs.decode(data, content_type or ref.expected_content_type, ref.rows,
                                   ref.columns, ref.samples_per_pixel, ref.dtype,
                                   ref.bits_allocated)
        else:
            raise FrameFileUnusable(f"{name} is not a frame file this client writes")
    except FrameFileUnusable:
        raise
    except Exception as exc:  # OSError, a bad .npy header, a codec's error: all unusable
        raise FrameFileUnusable(f"cannot read {name}: {exc}") from None
    if tuple(pixels.shape) != shape:
        raise FrameFileUnusable(f"{name} has shape {tuple(pixels.shape)}, not {shape}")
    expected = ref.expected_crc32
    if expected is not None and codecs.crc32(pixels) != expected:
        raise FrameFileUnusable(f"{name} changed since it was verified (CRC32 differs)")
    return pixels
